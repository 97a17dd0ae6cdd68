//! The operator loop: follow `AICallbackRequest` events, serve each request for the
//! models this node holds (inference on a blocking thread, never on the async
//! runtime), submit the output with its claim, and finalize results whose
//! challenge window has passed so the callbacks are delivered.
//!
//! This first version keeps its progress in memory; the embedded database that
//! makes a restart lose nothing comes next (issue #6).

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{keccak256, Address, Bytes, FixedBytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::{Context, Result};
use oracle_contracts::AIOracle;

use crate::serve::serve;

/// A model this operator serves.
#[derive(Clone)]
pub struct ServedModel {
    /// Its id on the AIOracle.
    pub id: U256,
    /// The model file.
    pub bytes: Arc<Vec<u8>>,
    /// Positions to run per request.
    pub steps: u32,
}

/// A submitted result waiting for its window to pass.
struct Pending {
    request_id: U256,
    input_hash: FixedBytes<32>,
    callback: Address,
    callback_data: Bytes,
    output: Bytes,
    deadline: u64,
}

/// The operator's state.
pub struct Operator<P> {
    provider: P,
    oracle: Address,
    account: Address,
    model: ServedModel,
    guest: Arc<Vec<u8>>,
    next_block: u64,
    pending: Vec<Pending>,
}

impl<P: Provider + Clone> Operator<P> {
    /// An operator sending from `account` (unlocked on the node).
    pub fn new(
        provider: P,
        oracle: Address,
        account: Address,
        model: ServedModel,
        guest: Arc<Vec<u8>>,
    ) -> Self {
        Operator {
            provider,
            oracle,
            account,
            model,
            guest,
            next_block: 0,
            pending: Vec::new(),
        }
    }

    /// Serve until the future is dropped, polling every `interval`.
    pub async fn run(mut self, interval: Duration) -> Result<()> {
        loop {
            if let Err(e) = self.poll().await {
                eprintln!("operator: {e:#}");
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// One round: new requests, then due finalizations.
    pub async fn poll(&mut self) -> Result<()> {
        let head = self
            .provider
            .get_block_number()
            .await
            .context("reading the block number")?;
        if head >= self.next_block {
            let filter = Filter::new()
                .address(self.oracle)
                .event_signature(AIOracle::AICallbackRequest::SIGNATURE_HASH)
                .from_block(self.next_block)
                .to_block(head);
            let logs = self
                .provider
                .get_logs(&filter)
                .await
                .context("reading request events")?;
            for log in logs {
                let event = log
                    .log_decode::<AIOracle::AICallbackRequest>()
                    .context("decoding a request event")?
                    .inner
                    .data;
                if let Err(e) = self.handle(event).await {
                    eprintln!("operator: request failed: {e:#}");
                }
            }
            self.next_block = head + 1;
        }
        self.finalize_due().await
    }

    async fn handle(&mut self, event: AIOracle::AICallbackRequest) -> Result<()> {
        if event.modelId != self.model.id {
            return Ok(());
        }
        let id = event.requestId;
        let (bytes, guest, steps) = (
            self.model.bytes.clone(),
            self.guest.clone(),
            self.model.steps,
        );
        let input = event.input.to_vec();
        let served = tokio::task::spawn_blocking(move || serve(&bytes, &guest, &input, steps))
            .await
            .context("the inference task")??;
        eprintln!(
            "operator: request {id}: {} output bytes, claim 0x{} ({} VM steps)",
            served.output.len(),
            hex::encode(served.claim),
            served.steps
        );
        let oracle = AIOracle::new(self.oracle, &self.provider);
        let output = Bytes::from(served.output);
        let receipt = oracle
            .submit(id, output.clone(), served.claim.into())
            .from(self.account)
            .send()
            .await
            .context("sending the submission")?
            .get_receipt()
            .await
            .context("waiting for the submission")?;
        anyhow::ensure!(receipt.status(), "the submission of request {id} reverted");
        let deadline = oracle
            .getRequest(id)
            .call()
            .await
            .context("reading the request")?
            .challengeDeadline;
        self.pending.push(Pending {
            request_id: id,
            input_hash: keccak256(&event.input),
            callback: event.callbackContract,
            callback_data: event.callbackData,
            output,
            deadline: deadline.to::<u64>(),
        });
        Ok(())
    }

    async fn finalize_due(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The finalize transaction's block carries the current time (anvil mines
        // on demand), so the wall clock says whether the window has passed.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let oracle = AIOracle::new(self.oracle, &self.provider);
        let mut still = Vec::new();
        for p in std::mem::take(&mut self.pending) {
            if now <= p.deadline {
                still.push(p);
                continue;
            }
            let sent = oracle
                .finalize(
                    p.request_id,
                    p.input_hash,
                    p.callback,
                    p.callback_data.clone(),
                    p.output.clone(),
                )
                .from(self.account)
                .send()
                .await;
            match sent {
                Ok(pending_tx) => {
                    let receipt = pending_tx.get_receipt().await?;
                    eprintln!(
                        "operator: request {} finalized (status {})",
                        p.request_id,
                        receipt.status()
                    );
                }
                Err(e) => {
                    eprintln!("operator: finalizing request {} failed: {e}", p.request_id);
                    still.push(p);
                }
            }
        }
        self.pending = still;
        Ok(())
    }
}
