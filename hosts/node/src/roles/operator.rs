//! The operator: follow `AICallbackRequest` events (from the last recorded block,
//! `--confirmations` deep), serve each request for the models this node holds,
//! submit the output with what binds it on chain, and finalize results whose
//! challenge window has passed so the callbacks are delivered.
//!
//! **Tasks.** Three things run side by side, so that no backlog of work can delay
//! what is urgent:
//! - the **dispute** task ([`crate::roles::dispute`]) plays the games opened against our
//!   results, every poll, whatever else is going on (a chess clock is running);
//! - the **serve** round records new events and moves every open request one step
//!   on (submissions and finalizations are single transactions);
//! - each request's computation (inference and VM runs) is a job of the worker pool
//!   ([`Node::serve`]), taken in deadline order (every request has the same timeout,
//!   so by id), with a per-request step and time budget; a request whose deadline
//!   passed before it got a worker is skipped, and one that fails is recorded failed
//!   once.
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
//! Bad input never stops the node: a request the model rejects (a prompt longer
//! than the context, parameters out of range) is served with the error outcome (the
//! empty output: the requester's `aiOracleCallbackError` receives it); a prompt that
//! is not UTF-8 is served like any other, losslessly (the tokenizer's byte
//! fallback); a request for a model this node does not hold is `Skipped` (its
//! payload is not kept). If another operator's result is already on chain, the
//! request is `Skipped` without sending a losing transaction. If the chain is rolled
//! back and a request id comes back with another request, the record is replaced and
//! the new request served.
//!
//! Several operators serving the same request would otherwise finish together and
//! race their submissions. They take turns instead, without talking to each other:
//! the bonded operators (from `OperatorBonded` events) are ordered per request by
//! keccak(request id ‖ address); the first submits at once, the k-th waits k
//! [`TURN`]s and looks at the chain again first, so it only submits when those
//! before it did not (down, or not holding the model).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolEvent;
use anyhow::{Context, Result};
use oracle_contracts::AIOracle;

use crate::chain::{chain_now, on_chain, revert_reason, Status};
use crate::db::{RequestEvent, RequestRecord, RequestState};
use crate::roles::dispute::Disputes;
use crate::roles::node::{crash_point, InFlight, Node};

/// How long each operator ahead of us in a request's order has to submit first.
pub const TURN: Duration = Duration::from_secs(2);

/// The operator.
pub struct Operator {
    node: Node,
    /// When each served request may be submitted (our turn in its order).
    turns: Mutex<HashMap<U256, Instant>>,
    /// Requests whose computation is queued or running in the worker pool.
    in_flight: Arc<InFlight>,
    /// The games played in defence of our results.
    disputes: Arc<Disputes>,
}

impl Operator {
    /// An operator on `node`.
    pub fn new(node: Node) -> Arc<Self> {
        node.faults.announce("operator");
        let disputes = Arc::new(Disputes::new(node.clone()));
        Arc::new(Operator {
            node,
            turns: Mutex::new(HashMap::new()),
            in_flight: Arc::default(),
            disputes,
        })
    }

    /// Serve forever (until the future is dropped): the dispute task and the serve
    /// rounds, side by side; RPC failures back off.
    pub async fn run(self: Arc<Self>) -> Result<()> {
        let urgent = self
            .node
            .run_rounds("operator disputes", async || self.disputes.round().await);
        let serving = self
            .node
            .run_rounds("operator", async || self.round().await);
        tokio::join!(urgent, serving);
        Ok(())
    }

    /// One round: record new events, then move every open request one step on
    /// (a computation is handed to the worker pool, not waited for).
    pub async fn round(self: &Arc<Self>) -> Result<()> {
        self.sync().await?;
        let mut open = self.node.db.open_requests()?;
        // Settle interrupted submissions before anything else reserves a nonce.
        open.sort_by_key(|r| (r.state != RequestState::Submitting, r.id));
        for record in open {
            let id = record.id;
            if let Err(e) = self.step(record).await {
                tracing::warn!(request = %id, "{e:#} (will retry)");
            }
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

    /// Record new requests and bonded operators since the cursors.
    async fn sync(&self) -> Result<()> {
        if let Some((from, to)) = self.node.next_range("operators").await? {
            let logs = self
                .node
                .logs(AIOracle::OperatorBonded::SIGNATURE_HASH, from, to)
                .await?;
            let bonded: Vec<Address> = logs
                .iter()
                .filter_map(|l| l.log_decode::<AIOracle::OperatorBonded>().ok())
                .map(|l| l.inner.data.operator)
                .collect();
            self.node.db.record_operators(&bonded, to)?;
        }
        let Some((from, to)) = self.node.next_range("requests").await? else {
            return Ok(());
        };
        let logs = self
            .node
            .logs(AIOracle::AICallbackRequest::SIGNATURE_HASH, from, to)
            .await?;
        let mut events = Vec::new();
        for log in logs {
            let block = log.block_number.unwrap_or(to);
            match log.log_decode::<AIOracle::AICallbackRequest>() {
                Ok(decoded) => {
                    let e = decoded.inner.data;
                    tracing::info!(
                        request = %e.requestId, "for model {} ({} input bytes) seen in block {block}",
                        e.modelId,
                        e.input.len()
                    );
                    events.push(RequestEvent {
                        id: e.requestId,
                        model_id: e.modelId,
                        input: e.input,
                        callback: e.callbackContract,
                        gas_limit: e.gasLimit,
                        callback_data: e.callbackData,
                        block,
                    });
                }
                Err(e) => {
                    tracing::warn!("undecodable request event in block {block}: {e}")
                }
            }
        }
        let models = self.node.models.clone();
        let replaced = self
            .node
            .db
            .record_requests(&events, to, |m| models.contains_key(&m))?;
        for id in replaced {
            tracing::warn!(
                request = %id, "is another request than the one recorded (the chain was rolled back): serving it again"
            );
            self.turns.lock().expect("turns").remove(&id);
        }
        if !events.is_empty() {
            crash_point("seen");
        }
        Ok(())
    }

    fn save(&self, r: &RequestRecord) -> Result<()> {
        self.node.db.put_request(r).context("recording the request")
    }

    fn close(&self, mut r: RequestRecord, state: RequestState, why: String) -> Result<()> {
        match state {
            RequestState::Failed => tracing::error!(request = %r.id, "failed: {why}"),
            _ => tracing::info!(request = %r.id, "{}: {why}", state.name()),
        }
        r.state = state;
        r.error = Some(why);
        self.save(&r)
    }

    async fn step(self: &Arc<Self>, r: RequestRecord) -> Result<()> {
        match r.state {
            RequestState::Seen => self.dispatch(r),
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

    /// Hand request `r`'s computation to the worker pool (once).
    fn dispatch(self: &Arc<Self>, r: RequestRecord) -> Result<()> {
        let me = self.clone();
        self.in_flight
            .spawn_once(r.id, "operator", async move { me.compute(r).await });
        Ok(())
    }

    /// Serve request `r` (waiting for a worker) unless the chain says there is no
    /// point any more; record the outcome.
    async fn compute(&self, r: RequestRecord) -> Result<()> {
        let Some(model) = self.node.models.get(&r.model_id) else {
            let why = format!("model {} is not served by this node", r.model_id);
            return self.close(r, RequestState::Skipped, why);
        };
        let chain = on_chain(&self.node.provider, self.node.oracle, r.id).await?;
        if chain.status != Status::Pending {
            return self.settle_not_pending(r, chain.status, chain.submitter);
        }
        let timed = self.node.serve(model, &r.input).await?;
        // The request may have moved on while it waited for a worker.
        let chain = on_chain(&self.node.provider, self.node.oracle, r.id).await?;
        let mut r = match self.node.db.request(r.id)? {
            Some(now) if now.payload_hash == r.payload_hash && now.state == RequestState::Seen => {
                now
            }
            _ => return Ok(()),
        };
        if chain.status != Status::Pending {
            return self.settle_not_pending(r, chain.status, chain.submitter);
        }
        if chain_now(&self.node.provider).await? > chain.deadline {
            let why = "its deadline passed before it was served".to_string();
            return self.close(r, RequestState::Skipped, why);
        }
        let timed = match timed {
            Ok(t) => t,
            Err(e) => return self.close(r, RequestState::Failed, format!("{e:#}")),
        };
        let served = timed.served;
        tracing::info!(
            request = %r.id, "served: {} output bytes{}, {} tokens in {:.2}s, claim {} ({} VM steps)",
            served.output.len(),
            served
                .rejected
                .as_ref()
                .map(|why| format!(" (the error outcome: {why})"))
                .unwrap_or_default(),
            served.tokens,
            timed.seconds,
            B256::from(served.claim),
            served.steps
        );
        r.error = served.rejected;
        r.output = Some(Bytes::from(served.output));
        r.proof = Some(Bytes::from(served.proof));
        r.claim = Some(served.claim.into());
        r.state = RequestState::Served;
        self.save(&r)?;
        crash_point("served");
        Ok(())
    }

    /// Whether our turn to submit request `id` has come (see the module docs).
    async fn our_turn(&self, id: U256) -> Result<bool> {
        let due = self.turns.lock().expect("turns").get(&id).copied();
        let due = match due {
            Some(due) => due,
            None => {
                let rank = self.rank(id)?;
                if rank > 0 {
                    tracing::info!(
                        request = %id, "{rank} operator(s) before us; submitting in {:?} unless one of them does",
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
    fn rank(&self, id: U256) -> Result<u32> {
        let operators = self.node.db.operators()?;
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
        submitter: Address,
    ) -> Result<()> {
        if submitter == self.node.account {
            tracing::info!(request = %r.id, "our submission is on chain");
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
        let (Some(output), Some(proof)) = (r.output.clone(), r.proof.clone()) else {
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
        let oracle = AIOracle::new(self.node.oracle, &self.node.provider);
        let call = oracle.submit(r.id, output, proof).nonce(nonce);
        // Simulate first: a submission the contract refuses is never sent (and never
        // reserves a nonce).
        if let Err(e) = call.call().block(alloy::eips::BlockId::pending()).await {
            let why = format!("the oracle refuses the submission: {}", revert_reason(&e));
            let chain = on_chain(&self.node.provider, self.node.oracle, r.id).await?;
            if chain.status != Status::Pending {
                return self.settle_not_pending(r, chain.status, chain.submitter);
            }
            return self.close(r, RequestState::Failed, why);
        }
        // Write-ahead: the nonce is reserved before anything is broadcast.
        r.state = RequestState::Submitting;
        r.submit_nonce = Some(nonce);
        self.save(&r)?;
        let pending = call.send().await.context("sending the submission")?;
        crash_point("sent");
        let tx = *pending.tx_hash();
        r.state = RequestState::Submitted;
        r.submit_tx = Some(tx);
        self.save(&r)?;
        crash_point("submitted");
        let receipt = self.node.mined(pending, "submit").await?;
        r.gas_used = r.gas_used.saturating_add(receipt.gas_used);
        if receipt.status() {
            tracing::info!(request = %r.id, "submitted in tx {tx}");
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
                request = %r.id, "submission with nonce {nonce} still pending"
            );
            return Ok(());
        }
        tracing::info!(
            request = %r.id, "resending the interrupted submission with nonce {nonce}"
        );
        self.submit(r, Some(nonce)).await
    }

    async fn finalize(&self, mut r: RequestRecord) -> Result<()> {
        let chain = on_chain(&self.node.provider, self.node.oracle, r.id).await?;
        match chain.status {
            Status::Finalized => {
                tracing::info!(request = %r.id, "is final");
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
            Status::Disputed => return Ok(()),
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
        let call = oracle.finalize(
            r.id,
            keccak256(&r.input),
            r.callback,
            r.callback_data.clone(),
            output,
        );
        let receipt = self.node.send(&call, "finalize").await?;
        let tx = receipt.transaction_hash;
        r.gas_used = r.gas_used.saturating_add(receipt.gas_used);
        if receipt.status() {
            tracing::info!(
                request = %r.id, "finalized in tx {tx}; callback dispatched"
            );
            metrics::counter!("oracle_finalizations_total").increment(1);
            r.state = RequestState::Finalized;
            r.finalize_tx = Some(tx);
        } else {
            tracing::warn!(
                "the finalization of request {} reverted ({tx}); will check again",
                r.id
            );
        }
        self.save(&r)
    }
}
