//! The operator: follow `AICallbackRequest` events (backfilling from the last
//! recorded block, `--confirmations` deep), serve each request for the models this
//! node holds (on the blocking pool), submit the output with its claim, and finalize
//! results whose challenge window has passed so the callbacks are delivered.
//!
//! Every step is recorded in the database before the next one starts, and every
//! transaction is preceded by a look at the chain, so a crash at any point neither
//! loses a request nor sends a second submission:
//!
//! | crash after | on restart |
//! |---|---|
//! | the event is recorded (`Seen`) | serve it again (inference is deterministic) |
//! | inference (`Served`) | check the chain, then submit |
//! | `Submitting` recorded, before or after broadcasting | the chain decides: our result is there → `Submitted`; another's → `Skipped`; the reserved nonce unused → send again with that same nonce (so at most one of the two can ever be mined) |
//! | `Submitted` | finalize after the window unless the chain says it is final |
//!
//! Bad input never stops the node: a prompt longer than the model's context (or
//! any other request the core rejects) is recorded as `Failed` with the core's
//! reason and not submitted (the requester is refunded by the contract after its
//! timeout); a prompt that is not UTF-8 is served like any other, losslessly (the
//! tokenizer's byte fallback); a request for a model this node does not hold is
//! `Skipped`. If another operator's result is already on chain, the request is
//! `Skipped` without sending a losing transaction.
//!
//! Several operators serving the same request would otherwise finish together and
//! race their submissions. They take turns instead, without talking to each other:
//! the bonded operators (from `OperatorBonded` events) are ordered per request by
//! keccak(request id ‖ address); the first submits at once, the k-th waits k
//! [`TURN`]s and looks at the chain again first, so it only submits when those
//! before it did not (down, or not holding the model).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolEvent;
use anyhow::{Context, Result};
use oracle_contracts::AIOracle;

use crate::chain::{chain_now, on_chain, Status};
use crate::db::{RequestRecord, RequestState};
use crate::dispute::Disputes;
use crate::node::{crash_point, Node};

/// How long each operator ahead of us in a request's order has to submit first.
pub const TURN: Duration = Duration::from_secs(2);

/// The operator.
pub struct Operator {
    node: Node,
    /// When each served request may be submitted (our turn in its order).
    turns: Mutex<HashMap<U256, Instant>>,
    /// Test-only: answer another prompt than the one asked (so a validator can be
    /// tested): a wrong result with a consistent VM trace, which loses its game at
    /// the step that reads the request's input.
    corrupt: bool,
    /// The games played in defence of our results.
    disputes: Disputes,
}

impl Operator {
    /// An operator; `corrupt` is the test-only switch that makes its results wrong.
    pub fn new(node: Node, corrupt: bool) -> Self {
        if corrupt {
            tracing::warn!(
                "operator: --corrupt-output-for-tests is on: every result this node posts is WRONG"
            );
        }
        let disputes = Disputes::new(node.clone(), corrupt);
        Operator {
            node,
            turns: Mutex::new(HashMap::new()),
            corrupt,
            disputes,
        }
    }

    /// Serve forever (until the future is dropped); RPC failures back off.
    pub async fn run(self) -> Result<()> {
        self.node
            .run_rounds("operator", async || self.round().await)
            .await;
        Ok(())
    }

    /// One round: record new events, then move every open request one step on.
    pub async fn round(&self) -> Result<()> {
        self.sync().await?;
        let mut open: Vec<RequestRecord> = self
            .node
            .db
            .requests()?
            .into_iter()
            .filter(|r| !r.state.is_terminal())
            .collect();
        // Settle interrupted submissions before anything else reserves a nonce.
        open.sort_by_key(|r| (r.state != RequestState::Submitting, r.id));
        for record in open {
            let id = record.id;
            if let Err(e) = self.step(record).await {
                tracing::warn!("operator: request {id}: {e:#} (will retry)");
            }
        }
        if let Err(e) = self.disputes.round().await {
            tracing::warn!("operator: disputes: {e:#} (will retry)");
        }
        self.publish_counts()
    }

    fn publish_counts(&self) -> Result<()> {
        let counts = self.node.db.counts()?;
        for (state, n) in counts.requests {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("oracle_requests", "state" => state).set(n as f64);
        }
        Ok(())
    }

    async fn sync(&self) -> Result<()> {
        let Some((from, to)) = self.node.next_range("requests").await? else {
            return Ok(());
        };
        let logs = self
            .node
            .logs(AIOracle::AICallbackRequest::SIGNATURE_HASH, from, to)
            .await?;
        let mut records = Vec::new();
        for log in logs {
            let block = log.block_number.unwrap_or(to);
            match log.log_decode::<AIOracle::AICallbackRequest>() {
                Ok(decoded) => {
                    let e = decoded.inner.data;
                    tracing::info!(
                        "operator: request {} for model {} ({} input bytes) seen in block {block}",
                        e.requestId,
                        e.modelId,
                        e.input.len()
                    );
                    records.push(RequestRecord::seen(
                        e.requestId,
                        e.modelId,
                        e.input,
                        e.callbackContract,
                        e.gasLimit,
                        e.callbackData,
                        block,
                    ));
                }
                Err(e) => {
                    tracing::warn!("operator: undecodable request event in block {block}: {e}")
                }
            }
        }
        self.node.db.record_requests(&records, to)?;
        if !records.is_empty() {
            crash_point("seen");
        }
        Ok(())
    }

    fn save(&self, r: &RequestRecord) -> Result<()> {
        self.node.db.put_request(r).context("recording the request")
    }

    fn close(&self, mut r: RequestRecord, state: RequestState, why: String) -> Result<()> {
        match state {
            RequestState::Failed => tracing::error!("operator: request {} failed: {why}", r.id),
            _ => tracing::info!("operator: request {} {}: {why}", r.id, state.name()),
        }
        r.state = state;
        r.error = Some(why);
        self.save(&r)
    }

    async fn step(&self, mut r: RequestRecord) -> Result<()> {
        if r.state == RequestState::Seen {
            let Some(model) = self.node.models.get(&r.model_id) else {
                let why = format!("model {} is not served by this node", r.model_id);
                return self.close(r, RequestState::Skipped, why);
            };
            let chain = on_chain(&self.node.provider, self.node.oracle, r.id).await?;
            if chain.status != Status::Pending {
                return self.settle_not_pending(r, chain.status, chain.submitter);
            }
            let timed = match self.node.serve(model, &r.input, self.corrupt).await? {
                Ok(t) => t,
                Err(e) => return self.close(r, RequestState::Failed, format!("{e:#}")),
            };
            let output = timed.served.output;
            let claim = timed.served.claim;
            tracing::info!(
                "operator: request {} served: {} output bytes, {} tokens in {:.2}s, claim {} ({} VM steps)",
                r.id,
                output.len(),
                timed.served.tokens,
                timed.seconds,
                B256::from(claim),
                timed.served.steps
            );
            r.output = Some(Bytes::from(output));
            r.claim = Some(claim.into());
            r.state = RequestState::Served;
            self.save(&r)?;
            crash_point("served");
        }
        match r.state {
            RequestState::Served => {
                if !self.our_turn(r.id).await? {
                    return Ok(());
                }
                self.submit(r, None).await
            }
            RequestState::Submitting => self.recover_submission(r).await,
            RequestState::Submitted => self.finalize(r).await,
            _ => Ok(()),
        }
    }

    /// Whether our turn to submit request `id` has come (see the module docs).
    async fn our_turn(&self, id: U256) -> Result<bool> {
        let due = self.turns.lock().expect("turns").get(&id).copied();
        let due = match due {
            Some(due) => due,
            None => {
                let rank = self.rank(id).await?;
                if rank > 0 {
                    tracing::info!(
                        "operator: request {id}: {rank} operator(s) before us; submitting in {:?} unless one of them does",
                        TURN * rank
                    );
                }
                let due = Instant::now() + TURN * rank;
                self.turns.lock().expect("turns").insert(id, due);
                due
            }
        };
        if Instant::now() < due {
            return Ok(false);
        }
        self.turns.lock().expect("turns").remove(&id);
        Ok(true)
    }

    /// Our place in request `id`'s order of the bonded operators.
    async fn rank(&self, id: U256) -> Result<u32> {
        let head = self
            .node
            .provider
            .get_block_number()
            .await
            .context("reading the block number")?;
        let logs = self
            .node
            .logs(AIOracle::OperatorBonded::SIGNATURE_HASH, 0, head)
            .await?;
        let mut operators: Vec<Address> = logs
            .iter()
            .filter_map(|l| l.log_decode::<AIOracle::OperatorBonded>().ok())
            .map(|l| l.inner.data.operator)
            .collect();
        operators.sort();
        operators.dedup();
        let key =
            |a: &Address| keccak256([id.to_be_bytes::<32>().as_slice(), a.as_slice()].concat());
        let mine = key(&self.node.account);
        let before = operators
            .iter()
            .filter(|a| **a != self.node.account && key(a) < mine)
            .count();
        Ok(u32::try_from(before).unwrap_or(u32::MAX))
    }

    /// A request we have not submitted is no longer pending: another operator's
    /// result, or refunded.
    fn settle_not_pending(
        &self,
        mut r: RequestRecord,
        status: Status,
        submitter: alloy::primitives::Address,
    ) -> Result<()> {
        if submitter == self.node.account {
            tracing::info!("operator: request {}: our submission is on chain", r.id);
            r.state = RequestState::Submitted;
            return self.save(&r);
        }
        let why = if submitter.is_zero() {
            format!("request is {status:?} on chain")
        } else {
            format!("{submitter} submitted first ({status:?}); no losing transaction sent")
        };
        self.close(r, RequestState::Skipped, why)
    }

    async fn submit(&self, mut r: RequestRecord, nonce: Option<u64>) -> Result<()> {
        let chain = on_chain(&self.node.provider, self.node.oracle, r.id).await?;
        if chain.status != Status::Pending {
            return self.settle_not_pending(r, chain.status, chain.submitter);
        }
        let (Some(output), Some(claim)) = (r.output.clone(), r.claim) else {
            return self.close(r, RequestState::Failed, "served without output".into());
        };
        let nonce = match nonce {
            Some(n) => n,
            None => self
                .node
                .provider
                .get_transaction_count(self.node.account)
                .pending()
                .await
                .context("reading the nonce")?,
        };
        // Write-ahead: the nonce is reserved before anything is broadcast.
        r.state = RequestState::Submitting;
        r.submit_nonce = Some(nonce);
        self.save(&r)?;
        let oracle = AIOracle::new(self.node.oracle, &self.node.provider);
        let pending = oracle
            .submit(r.id, output, claim)
            .nonce(nonce)
            .send()
            .await
            .context("sending the submission")?;
        crash_point("sent");
        let tx = *pending.tx_hash();
        r.state = RequestState::Submitted;
        r.submit_tx = Some(tx);
        self.save(&r)?;
        crash_point("submitted");
        let receipt = pending
            .get_receipt()
            .await
            .context("waiting for the submission")?;
        r.gas_used = r
            .gas_used
            .saturating_add(self.node.account_gas(&receipt, "submit"));
        if receipt.status() {
            tracing::info!("operator: request {} submitted in tx {tx}", r.id);
            metrics::counter!("oracle_submissions_total").increment(1);
            return self.save(&r);
        }
        let chain = on_chain(&self.node.provider, self.node.oracle, r.id).await?;
        if !chain.submitter.is_zero() && chain.submitter != self.node.account {
            let why = format!(
                "lost the race to {} (our tx {tx} reverted)",
                chain.submitter
            );
            return self.close(r, RequestState::Skipped, why);
        }
        self.close(
            r,
            RequestState::Failed,
            format!("the submission {tx} reverted"),
        )
    }

    /// After a crash between reserving a nonce and recording the hash.
    async fn recover_submission(&self, r: RequestRecord) -> Result<()> {
        let chain = on_chain(&self.node.provider, self.node.oracle, r.id).await?;
        if chain.status != Status::Pending {
            return self.settle_not_pending(r, chain.status, chain.submitter);
        }
        let Some(nonce) = r.submit_nonce else {
            return self.submit(r, None).await;
        };
        let p = &self.node.provider;
        let mined = p
            .get_transaction_count(self.node.account)
            .latest()
            .await
            .context("reading the nonce")?;
        if mined > nonce {
            let why =
                format!("our submission with nonce {nonce} was mined without a result (reverted)");
            return self.close(r, RequestState::Failed, why);
        }
        let pending = p
            .get_transaction_count(self.node.account)
            .pending()
            .await
            .context("reading the pending nonce")?;
        if pending > nonce {
            tracing::info!(
                "operator: request {}: submission with nonce {nonce} still pending",
                r.id
            );
            return Ok(());
        }
        tracing::info!(
            "operator: request {}: resending the interrupted submission with nonce {nonce}",
            r.id
        );
        self.submit(r, Some(nonce)).await
    }

    async fn finalize(&self, mut r: RequestRecord) -> Result<()> {
        let chain = on_chain(&self.node.provider, self.node.oracle, r.id).await?;
        match chain.status {
            Status::Finalized => {
                tracing::info!("operator: request {} is final", r.id);
                r.state = RequestState::Finalized;
                return self.save(&r);
            }
            Status::Pending => {
                // Our submission is not mined (yet): was its nonce used?
                let mined = self
                    .node
                    .provider
                    .get_transaction_count(self.node.account)
                    .latest()
                    .await?;
                if r.submit_nonce.is_some_and(|n| mined > n) {
                    return self.close(
                        r,
                        RequestState::Failed,
                        "the submission was not accepted".into(),
                    );
                }
                return Ok(());
            }
            Status::Disputed => {
                tracing::info!(
                    "operator: request {} is disputed; waiting for the game",
                    r.id
                );
                return Ok(());
            }
            Status::None | Status::Refunded => {
                let why = format!("request is {:?} on chain", chain.status);
                return self.close(r, RequestState::Skipped, why);
            }
            Status::Submitted => {}
        }
        if chain.submitter != self.node.account {
            let why = format!(
                "the result is now {}'s (replaced after a dispute)",
                chain.submitter
            );
            return self.close(r, RequestState::Skipped, why);
        }
        if chain_now(&self.node.provider).await? <= chain.challenge_deadline {
            return Ok(());
        }
        let Some(output) = r.output.clone() else {
            return self.close(r, RequestState::Failed, "submitted without output".into());
        };
        let oracle = AIOracle::new(self.node.oracle, &self.node.provider);
        let pending = oracle
            .finalize(
                r.id,
                keccak256(&r.input),
                r.callback,
                r.callback_data.clone(),
                output,
            )
            .send()
            .await
            .context("sending the finalization (window not yet passed on chain?)")?;
        let tx = *pending.tx_hash();
        let receipt = pending
            .get_receipt()
            .await
            .context("waiting for the finalization")?;
        r.gas_used = r
            .gas_used
            .saturating_add(self.node.account_gas(&receipt, "finalize"));
        if receipt.status() {
            tracing::info!(
                "operator: request {} finalized in tx {tx}; callback dispatched",
                r.id
            );
            metrics::counter!("oracle_finalizations_total").increment(1);
            r.state = RequestState::Finalized;
            r.finalize_tx = Some(tx);
        } else {
            tracing::warn!(
                "operator: the finalization of request {} reverted ({tx}); will check again",
                r.id
            );
        }
        self.save(&r)
    }
}
