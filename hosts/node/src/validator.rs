//! The validator: re-execute every `ResultSubmitted` within its challenge window
//! (the operator's serve path: native inference and the guest in the VM) and, when
//! the output or the claim differs, challenge it through `AIOracle.challenge` with
//! the challenge bond.
//!
//! Each result gets a [`CheckRecord`] in the database; a challenge is recorded as
//! `Challenging` before it is sent, and on restart `hasChallenged` on the contract
//! says whether it went through. A contract without a dispute game factory refuses
//! every challenge with `DisputesDisabled`: the validator records and logs that.
//!
//! A challenge that opens a game is recorded as a dispute and played to the end
//! ([`crate::dispute`]); a won game's result is finalized by the validator.

use std::time::Duration;

use alloy::primitives::{keccak256, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::{bail, Context, Result};
use oracle_contracts::AIOracle;

use crate::chain::{chain_now, on_chain, Backoff};
use crate::db::{CheckRecord, CheckState};
use crate::dispute::{DisputeRecord, DisputeState, Disputes};
use crate::node::Node;

/// The validator.
pub struct Validator {
    node: Node,
    /// Test only: challenge correct results with a wrong one (another prompt's).
    lying: bool,
    /// The games our challenges opened.
    disputes: Disputes,
}

impl Validator {
    /// A validator; `lying` is the test-only switch that makes it challenge correct
    /// results with a wrong claim (to test that operators defend).
    pub fn new(node: Node, lying: bool) -> Self {
        if lying {
            tracing::warn!(
                "validator: --challenge-correct-for-tests is on: this node challenges CORRECT results"
            );
        }
        let disputes = Disputes::new(node.clone(), lying);
        Validator {
            node,
            lying,
            disputes,
        }
    }

    /// Check forever (until the future is dropped); RPC failures back off.
    pub async fn run(self) -> Result<()> {
        self.node
            .run_rounds("validator", async || self.round().await)
            .await;
        Ok(())
    }

    /// One round: record new results, then check each open one.
    pub async fn round(&self) -> Result<()> {
        self.sync().await?;
        let open: Vec<CheckRecord> = self
            .node
            .db
            .checks()?
            .into_iter()
            .filter(|c| !c.state.is_terminal())
            .collect();
        for check in open {
            let id = check.id;
            if let Err(e) = self.step(check).await {
                tracing::warn!("validator: request {id}: {e:#} (will retry)");
            }
        }
        self.disputes.round().await
    }

    /// `oracle challenge`: check request `id`'s current result; if it is wrong,
    /// challenge it and play the game until it is decided and (when we win) our
    /// result is final.
    pub async fn challenge_one(&self, id: U256) -> Result<()> {
        let check = match self.node.db.check(id)? {
            Some(c) => c,
            None => {
                let filter = Filter::new()
                    .address(self.node.oracle)
                    .event_signature(AIOracle::ResultSubmitted::SIGNATURE_HASH)
                    .topic1(B256::from(id))
                    .from_block(0);
                let logs = self
                    .node
                    .provider
                    .get_logs(&filter)
                    .await
                    .context("reading the result event")?;
                let Some((e, block)) = logs.into_iter().rev().find_map(|l| {
                    let block = l.block_number.unwrap_or_default();
                    l.log_decode::<AIOracle::ResultSubmitted>()
                        .ok()
                        .map(|d| (d.inner.data, block))
                }) else {
                    bail!("request {id} has no submitted result");
                };
                let c = pending_check(e, block);
                self.node.db.put_check(&c)?;
                c
            }
        };
        let mut check = check;
        let mut backoff = Backoff::new(self.node.interval, Duration::from_secs(10));
        while !check.state.is_terminal() {
            if let Err(e) = self.step(check).await {
                tracing::warn!("request {id}: {e:#} (retrying)");
                tokio::time::sleep(backoff.fail()).await;
            }
            check = self
                .node
                .db
                .check(id)?
                .context("the check record vanished")?;
        }
        match check.state {
            CheckState::Agreed => {
                println!(
                    "request {id}: the result is correct (equal to our re-execution); no challenge"
                );
                return Ok(());
            }
            CheckState::Challenged => {}
            other => bail!(
                "request {id}: not challenged ({other:?}): {}",
                check.error.unwrap_or_default()
            ),
        }
        loop {
            if let Err(e) = self.disputes.round().await {
                tracing::warn!("disputes: {e:#} (retrying)");
            }
            let ours: Vec<DisputeRecord> = self
                .node
                .db
                .disputes()?
                .into_iter()
                .filter(|d| d.request == id && !d.defending)
                .collect();
            if let Some(d) = ours.iter().find(|d| d.state != DisputeState::Playing) {
                match d.state {
                    DisputeState::Lost => bail!("request {id}: we LOST dispute {}", d.dispute),
                    DisputeState::Finalized => {
                        println!(
                            "request {id}: dispute {} won in {} moves; our result is final",
                            d.dispute, d.moves
                        );
                        return Ok(());
                    }
                    _ => {}
                }
            }
            tokio::time::sleep(self.node.interval).await;
        }
    }

    async fn sync(&self) -> Result<()> {
        let Some((from, to)) = self.node.next_range("results").await? else {
            return Ok(());
        };
        let logs = self
            .node
            .logs(AIOracle::ResultSubmitted::SIGNATURE_HASH, from, to)
            .await?;
        let mut records = Vec::new();
        for log in logs {
            let block = log.block_number.unwrap_or(to);
            match log.log_decode::<AIOracle::ResultSubmitted>() {
                Ok(decoded) => records.push(pending_check(decoded.inner.data, block)),
                Err(e) => {
                    tracing::warn!("validator: undecodable result event in block {block}: {e}")
                }
            }
        }
        self.node.db.record_checks(&records, to)?;
        Ok(())
    }

    fn close(&self, mut c: CheckRecord, state: CheckState, why: String) -> Result<()> {
        c.state = state;
        c.error = Some(why);
        self.node.db.put_check(&c).context("recording the check")
    }

    /// The request event of `id` (its input and callback payload).
    async fn step(&self, mut c: CheckRecord) -> Result<()> {
        if c.submitter == self.node.account {
            return self.close(c, CheckState::Skipped, "our own result".into());
        }
        let Some(req) = self.node.request_event(c.id, Some(c.block)).await? else {
            return self.close(
                c,
                CheckState::Failed,
                "no request event for this result".into(),
            );
        };
        if c.state == CheckState::Pending {
            let Some(model) = self.node.models.get(&req.modelId) else {
                let why = format!("model {} is not held by this node", req.modelId);
                return self.close(c, CheckState::Skipped, why);
            };
            let timed = match self.node.serve(model, &req.input, self.lying).await? {
                Ok(t) => t,
                Err(e) => {
                    let why =
                        format!("a result was posted for a request this node cannot serve: {e:#}");
                    tracing::error!("validator: request {}: {why}", c.id);
                    return self.close(c, CheckState::Failed, why);
                }
            };
            let ours_out = Bytes::from(timed.served.output);
            let ours_claim = B256::from(timed.served.claim);
            if ours_out == c.output && ours_claim == c.claim {
                tracing::info!(
                    "validator: request {}: the result of {} is correct",
                    c.id,
                    c.submitter
                );
                c.state = CheckState::Agreed;
                return self.node.db.put_check(&c).context("recording the check");
            }
            tracing::warn!(
                "validator: request {}: MISMATCH in the result of {}: output {}, claim {} (ours {})",
                c.id,
                c.submitter,
                if ours_out == c.output { "equal" } else { "differs" },
                c.claim,
                ours_claim
            );
            c.our_output = Some(ours_out);
            c.our_claim = Some(ours_claim);
            c.state = CheckState::Challenging;
            self.node.db.put_check(&c).context("recording the check")?;
        }
        if c.state == CheckState::Challenging {
            return self.challenge(c, req).await;
        }
        Ok(())
    }

    async fn challenge(&self, mut c: CheckRecord, req: AIOracle::AICallbackRequest) -> Result<()> {
        let oracle = AIOracle::new(self.node.oracle, &self.node.provider);
        if oracle
            .hasChallenged(c.id, c.claim, self.node.account)
            .call()
            .await
            .context("reading hasChallenged")?
        {
            tracing::info!("validator: request {}: our challenge is on chain", c.id);
            c.state = CheckState::Challenged;
            return self.node.db.put_check(&c).context("recording the check");
        }
        let chain = on_chain(&self.node.provider, self.node.oracle, c.id).await?;
        if chain.claim != c.claim {
            let why = format!(
                "the result changed on chain (status {:?}) before we challenged",
                chain.status
            );
            return self.close(c, CheckState::Skipped, why);
        }
        if chain_now(&self.node.provider).await? > chain.challenge_deadline {
            let why = "the challenge window closed before the challenge was sent".to_string();
            tracing::error!("validator: request {}: {why}", c.id);
            return self.close(c, CheckState::Failed, why);
        }
        let (Some(output), Some(claim)) = (c.our_output.clone(), c.our_claim) else {
            return self.close(c, CheckState::Failed, "mismatch without our result".into());
        };
        let bond = oracle
            .challengeBond()
            .call()
            .await
            .context("reading challengeBond")?;
        let sent = oracle
            .challenge(
                c.id,
                keccak256(&req.input),
                req.callbackContract,
                keccak256(&req.callbackData),
                output,
                claim,
            )
            .value(U256::from(bond))
            .send()
            .await;
        let pending = match sent {
            Ok(p) => p,
            Err(e) => {
                if let Some(AIOracle::AIOracleErrors::DisputesDisabled(_)) =
                    e.as_decoded_interface_error::<AIOracle::AIOracleErrors>()
                {
                    let why = "the oracle has no dispute game factory (DisputesDisabled): the wrong result cannot be challenged".to_string();
                    tracing::error!(
                        "validator: request {}: WRONG RESULT from {} but {why}",
                        c.id,
                        c.submitter
                    );
                    metrics::counter!("oracle_challenges_refused_total").increment(1);
                    return self.close(c, CheckState::DisputesDisabled, why);
                }
                return Err(e).context("sending the challenge");
            }
        };
        let tx = *pending.tx_hash();
        let receipt = pending
            .get_receipt()
            .await
            .context("waiting for the challenge")?;
        self.node.account_gas(&receipt, "challenge");
        if !receipt.status() {
            return self.close(
                c,
                CheckState::Failed,
                format!("the challenge {tx} reverted"),
            );
        }
        let dispute = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<AIOracle::ResultChallenged>().ok())
            .map(|l| (l.inner.data.disputeId, l.inner.data.game));
        tracing::warn!(
            "validator: request {}: CHALLENGED the result of {} in tx {tx} (dispute, game: {dispute:?})",
            c.id,
            c.submitter
        );
        metrics::counter!("oracle_challenges_total").increment(1);
        if let Some((dispute, game)) = dispute {
            self.disputes.join(DisputeRecord {
                dispute,
                request: c.id,
                game,
                defending: false,
                model: req.modelId,
                prompt: req.input.clone(),
                output: c.our_output.clone().unwrap_or_default(),
                callback: req.callbackContract,
                callback_data: req.callbackData.clone(),
                state: DisputeState::Playing,
                moves: 0,
            })?;
        }
        c.state = CheckState::Challenged;
        c.challenge_tx = Some(tx);
        self.node.db.put_check(&c).context("recording the check")
    }
}

/// The check, not made yet, of result `e` submitted in `block`.
fn pending_check(e: AIOracle::ResultSubmitted, block: u64) -> CheckRecord {
    CheckRecord {
        id: e.requestId,
        submitter: e.operator,
        output: e.output,
        claim: e.claim,
        block,
        state: CheckState::Pending,
        our_output: None,
        our_claim: None,
        challenge_tx: None,
        error: None,
    }
}
