//! The validator: re-execute every request of the models it holds once, and compare
//! the result with **every version** of the result that becomes current for it: the
//! operator's submission (`ResultSubmitted`), and each challenger's result that a
//! dispute installs in its place (`DisputeResolved` with `replaced`), which gets a
//! fresh challenge window. A version whose output or claim differs from ours is
//! challenged within its window through `AIOracle.challenge` (our output and the
//! proof binding it, with the challenge bond), whoever posted it and whatever other
//! disputes are open: a wrong result never finalizes while this node watches.
//!
//! **Tasks.** Like the operator, the validator keeps what is urgent apart from what
//! is heavy: re-executions are jobs of the worker pool, taken in the order of the
//! checks' challenge deadlines (a check whose window closed before it was compared
//! is recorded failed, loudly); sending challenges and playing the games is the
//! dispute task's ([`crate::roles::dispute`]), which runs every poll whatever the pool is
//! doing.
//!
//! Each version gets a [`CheckRecord`]; a challenge is recorded as `Challenging`
//! before it is sent, and on restart `hasChallenged(request, version, us)` on the
//! contract says whether it went through. A won dispute's bond and reward are
//! claimed once the request is final, and a result we hold is finalized by us.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{keccak256, Bytes, B256, U256};
use alloy::sol_types::SolEvent;
use anyhow::{bail, Context, Result};
use oracle_contracts::AIOracle;

use crate::chain::{chain_now, on_chain, revert_reason, Backoff, Status};
use crate::db::{CheckRecord, CheckState, OurResult, RequestEvent};
use crate::faults::challenger_lie;
use crate::roles::dispute::{DisputeRecord, DisputeState, Disputes};
use crate::roles::node::{InFlight, Node};

/// The validator.
pub struct Validator {
    node: Node,
    /// Requests whose re-execution is queued or running in the worker pool.
    in_flight: Arc<InFlight>,
    /// The games our challenges opened.
    disputes: Arc<Disputes>,
}

impl Validator {
    /// A validator on `node`.
    pub fn new(node: Node) -> Arc<Self> {
        node.faults.announce("validator");
        let disputes = Arc::new(Disputes::new(node.clone()));
        Arc::new(Validator {
            node,
            in_flight: Arc::default(),
            disputes,
        })
    }

    /// Check forever (until the future is dropped): the dispute task (challenges and
    /// games) and the check rounds side by side; RPC failures back off.
    pub async fn run(self: Arc<Self>) -> Result<()> {
        let urgent = self
            .node
            .run_rounds("validator disputes", async || self.urgent_round().await);
        let checking = self
            .node
            .run_rounds("validator", async || self.round().await);
        tokio::join!(urgent, checking);
        Ok(())
    }

    /// The urgent work: send queued challenges, then play every game.
    pub async fn urgent_round(&self) -> Result<()> {
        for check in self.node.db.open_checks()? {
            if check.state != CheckState::Challenging {
                continue;
            }
            let (id, version) = (check.id, check.version);
            if let Err(e) = self.challenge(check).await {
                tracing::warn!(request = %id, version = %version, "{e:#} (will retry)");
            }
        }
        self.disputes.round().await
    }

    /// One round: record new results, then compare each open one (re-executing
    /// requests in the worker pool, earliest deadline first).
    pub async fn round(self: &Arc<Self>) -> Result<()> {
        self.sync().await?;
        let mut open = Vec::new();
        for check in self.node.db.open_checks()? {
            if check.state == CheckState::Pending {
                let chain = on_chain(&self.node.provider, self.node.oracle, check.id).await?;
                open.push((chain.challenge_deadline, check));
            }
        }
        open.sort_by_key(|(deadline, c)| (*deadline, c.id, c.version));
        for (_, check) in open {
            let (id, version) = (check.id, check.version);
            if let Err(e) = self.step(check).await {
                tracing::warn!(request = %id, version = %version, "{e:#} (will retry)");
            }
        }
        Ok(())
    }

    /// Record the requests of the models we hold, every submitted result (version
    /// 0) and every result a dispute installed (the next version).
    async fn sync(&self) -> Result<()> {
        if let Some((from, to)) = self.node.next_range("payloads").await? {
            let logs = self
                .node
                .logs(AIOracle::AICallbackRequest::SIGNATURE_HASH, from, to)
                .await?;
            let events: Vec<RequestEvent> = logs
                .iter()
                .filter_map(|l| {
                    let block = l.block_number.unwrap_or(to);
                    l.log_decode::<AIOracle::AICallbackRequest>()
                        .ok()
                        .map(|d| request_event(d.inner.data, block))
                })
                .collect();
            let models = self.node.models.clone();
            self.node
                .db
                .record_payloads(&events, "payloads", to, |m| models.contains_key(&m))?;
        }
        if let Some((from, to)) = self.node.next_range("results").await? {
            let logs = self
                .node
                .logs(AIOracle::ResultSubmitted::SIGNATURE_HASH, from, to)
                .await?;
            let records: Vec<CheckRecord> = logs
                .iter()
                .filter_map(|l| {
                    let block = l.block_number.unwrap_or(to);
                    let e = l.log_decode::<AIOracle::ResultSubmitted>().ok()?.inner.data;
                    Some(pending_check(
                        e.requestId,
                        0,
                        e.operator,
                        e.output,
                        e.claim,
                        block,
                    ))
                })
                .collect();
            self.node.db.record_checks(&records, "results", to)?;
        }
        if let Some((from, to)) = self.node.next_range("replacements").await? {
            let logs = self
                .node
                .logs(AIOracle::DisputeResolved::SIGNATURE_HASH, from, to)
                .await?;
            let mut records = Vec::new();
            for log in logs {
                let block = log.block_number.unwrap_or(to);
                let Ok(e) = log.log_decode::<AIOracle::DisputeResolved>() else {
                    continue;
                };
                let e = e.inner.data;
                if !e.replaced {
                    continue;
                }
                records.push(self.installed(e.requestId, e.disputeId, block).await?);
            }
            self.node.db.record_checks(&records, "replacements", to)?;
        }
        Ok(())
    }

    /// The check of the result dispute `dispute` installed for request `id`: its
    /// challenger's output and claim, one version above the one it beat.
    async fn installed(&self, id: U256, dispute: U256, block: u64) -> Result<CheckRecord> {
        let oracle = AIOracle::new(self.node.oracle, &self.node.provider);
        let d = oracle
            .getDispute(dispute)
            .call()
            .await
            .context("reading the dispute")?;
        let logs = self
            .node
            .logs_about(AIOracle::ResultChallenged::SIGNATURE_HASH, id)
            .await?;
        let output = logs
            .iter()
            .filter_map(|l| l.log_decode::<AIOracle::ResultChallenged>().ok())
            .find(|l| l.inner.data.disputeId == dispute)
            .map(|l| l.inner.data.output.clone())
            .with_context(|| format!("no ResultChallenged event for dispute {dispute}"))?;
        tracing::warn!(
            request = %id, dispute = %dispute, "installed {}'s result as version {}",
            d.challenger,
            d.version + 1
        );
        Ok(pending_check(
            id,
            d.version + 1,
            d.challenger,
            output,
            d.claim,
            block,
        ))
    }

    fn close(&self, mut c: CheckRecord, state: CheckState, why: String) -> Result<()> {
        c.state = state;
        c.error = Some(why);
        self.node.db.put_check(&c).context("recording the check")
    }

    /// Compare version `c` with our result (computing ours first, in the pool).
    async fn step(self: &Arc<Self>, mut c: CheckRecord) -> Result<()> {
        if c.submitter == self.node.account {
            return self.close(c, CheckState::Skipped, "our own result".into());
        }
        let chain = on_chain(&self.node.provider, self.node.oracle, c.id).await?;
        if chain.version != c.version || chain.status == Status::Finalized {
            let why = format!(
                "no longer the current result (version {} is, status {:?})",
                chain.version, chain.status
            );
            return self.close(c, CheckState::Skipped, why);
        }
        let Some(request) = self.node.db.payload(c.id)? else {
            return self.close(
                c,
                CheckState::Skipped,
                "a model this node does not hold".into(),
            );
        };
        let Some(ours) = self.node.db.ours(c.id)? else {
            self.dispatch(request);
            return Ok(());
        };
        let (output, proof, claim) = match ours {
            OurResult::Served {
                output,
                proof,
                claim,
            } => (output, proof, claim),
            OurResult::Unavailable(why) => {
                let why =
                    format!("a result was posted for a request this node cannot serve: {why}");
                tracing::error!(request = %c.id, "{why}");
                return self.close(c, CheckState::Failed, why);
            }
        };
        let lie = self.node.faults.challenges_with_a_lie(c.submitter);
        if !lie && output == c.output && claim == c.claim {
            tracing::info!(
                request = %c.id, version = %c.version, "the result of {} is correct",
                c.submitter
            );
            c.state = CheckState::Agreed;
            return self.node.db.put_check(&c).context("recording the check");
        }
        if chain_now(&self.node.provider).await? > chain.challenge_deadline {
            let why = "WRONG RESULT found after its challenge window closed".to_string();
            tracing::error!(request = %c.id, version = %c.version, "{why}");
            return self.close(c, CheckState::Failed, why);
        }
        tracing::warn!(
            request = %c.id, version = %c.version, "MISMATCH in the result of {}: output {}, claim {} (ours {claim}); challenging",
            c.submitter,
            if output == c.output { "equal" } else { "differs" },
            c.claim,
        );
        c.state = CheckState::Challenging;
        self.node.db.put_check(&c).context("recording the check")?;
        if lie {
            // Test only: challenge with a wrong output (bound to it) instead of ours.
            let wrong = challenger_lie(&output);
            let proof = if proof.is_empty() {
                proof
            } else {
                Bytes::from(crate::serve::claiming(&proof, &keccak256(&wrong).0)?)
            };
            self.node.db.put_ours(
                c.id,
                &OurResult::Served {
                    claim: if proof.is_empty() {
                        keccak256(&wrong)
                    } else {
                        crate::serve::state_hash(&proof)?.into()
                    },
                    output: Bytes::from(wrong),
                    proof,
                },
            )?;
        }
        Ok(())
    }

    /// Re-execute `request` in the worker pool (once) and record our result.
    fn dispatch(self: &Arc<Self>, request: RequestEvent) {
        let me = self.clone();
        self.in_flight.spawn_once(
            request.id,
            "validator",
            async move { me.compute(request).await },
        );
    }

    async fn compute(&self, request: RequestEvent) -> Result<()> {
        let ours = match self.node.models.get(&request.model_id) {
            None => OurResult::Unavailable(format!("model {} is not held", request.model_id)),
            Some(model) => match self.node.serve(model, &request.input).await? {
                Ok(t) => OurResult::Served {
                    output: Bytes::from(t.served.output),
                    proof: Bytes::from(t.served.proof),
                    claim: t.served.claim.into(),
                },
                Err(e) => OurResult::Unavailable(format!("{e:#}")),
            },
        };
        self.node.db.put_ours(request.id, &ours)?;
        Ok(())
    }

    /// Send the queued challenge of version `c` (the dispute task's work).
    async fn challenge(&self, mut c: CheckRecord) -> Result<()> {
        let oracle = AIOracle::new(self.node.oracle, &self.node.provider);
        if oracle
            .hasChallenged(c.id, c.version, self.node.account)
            .call()
            .await
            .context("reading hasChallenged")?
        {
            tracing::info!(
                request = %c.id, version = %c.version, "our challenge is on chain"
            );
            c.state = CheckState::Challenged;
            return self.node.db.put_check(&c).context("recording the check");
        }
        let chain = on_chain(&self.node.provider, self.node.oracle, c.id).await?;
        if chain.version != c.version {
            let why = format!(
                "the result changed on chain (version {}) before we challenged",
                chain.version
            );
            return self.close(c, CheckState::Skipped, why);
        }
        if chain_now(&self.node.provider).await? > chain.challenge_deadline {
            let why = "the challenge window closed before the challenge was sent".to_string();
            tracing::error!(request = %c.id, "{why}");
            return self.close(c, CheckState::Failed, why);
        }
        let (Some(request), Some(OurResult::Served { output, proof, .. })) =
            (self.node.db.payload(c.id)?, self.node.db.ours(c.id)?)
        else {
            return self.close(c, CheckState::Failed, "mismatch without our result".into());
        };
        let bond = oracle
            .challengeBond()
            .call()
            .await
            .context("reading challengeBond")?;
        let call = oracle
            .challenge(
                c.id,
                keccak256(&request.input),
                request.callback,
                keccak256(&request.callback_data),
                output.clone(),
                proof,
            )
            .value(U256::from(bond));
        if let Err(e) = call.call().block(alloy::eips::BlockId::pending()).await {
            let why = format!("the oracle refuses our challenge: {}", revert_reason(&e));
            tracing::error!(request = %c.id, "{why}");
            return self.close(c, CheckState::Failed, why);
        }
        let pending = call.send().await.context("sending the challenge")?;
        let tx = *pending.tx_hash();
        let receipt = self.node.mined(pending, "challenge").await?;
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
            request = %c.id, version = %c.version, "CHALLENGED the result of {} in tx {tx} (dispute, game: {dispute:?})",
            c.submitter
        );
        metrics::counter!("oracle_challenges_total").increment(1);
        if let Some((dispute, game)) = dispute {
            self.disputes
                .join(DisputeRecord::ours(dispute, game, false, &request, output))?;
        }
        c.state = CheckState::Challenged;
        c.challenge_tx = Some(tx);
        self.node.db.put_check(&c).context("recording the check")
    }

    /// `oracle challenge`: check request `id`'s current result; if it is wrong,
    /// challenge it and play the game until it is decided and (when we win) our
    /// result is final and our reward claimed.
    pub async fn challenge_one(self: &Arc<Self>, id: U256) -> Result<()> {
        let mut backoff = Backoff::new(self.node.interval, Duration::from_secs(10));
        loop {
            let step = async {
                self.sync().await?;
                let chain = on_chain(&self.node.provider, self.node.oracle, id).await?;
                if matches!(chain.status, Status::None | Status::Pending) {
                    bail!("request {id} has no submitted result");
                }
                let check = self
                    .node
                    .db
                    .check(id, chain.version)?
                    .with_context(|| format!("no recorded result of request {id}"))?;
                match check.state {
                    CheckState::Pending => self.step(check).await?,
                    CheckState::Challenging => self.challenge(check).await?,
                    _ => {}
                }
                self.disputes.round().await?;
                Ok::<_, anyhow::Error>(self.node.db.check(id, chain.version)?)
            };
            match step.await {
                Ok(Some(check)) => match check.state {
                    CheckState::Agreed => {
                        println!(
                            "request {id}: the result is correct (equal to our re-execution); no challenge"
                        );
                        return Ok(());
                    }
                    CheckState::Failed | CheckState::Skipped => bail!(
                        "request {id}: not challenged ({:?}): {}",
                        check.state,
                        check.error.unwrap_or_default()
                    ),
                    _ => {}
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("request {id}: {e:#} (retrying)");
                    tokio::time::sleep(backoff.fail()).await;
                    continue;
                }
            }
            let ours: Vec<DisputeRecord> = self
                .node
                .db
                .disputes()?
                .into_iter()
                .filter(|d| d.request == id && !d.defending)
                .collect();
            if let Some(d) = ours.iter().find(|d| d.state == DisputeState::Lost) {
                bail!("request {id}: we LOST dispute {}", d.dispute);
            }
            if let Some(d) = ours.iter().find(|d| d.state == DisputeState::Settled) {
                println!(
                    "request {id}: dispute {} won in {} moves; the request is final and our bond and reward are claimed",
                    d.dispute, d.moves
                );
                return Ok(());
            }
            tokio::time::sleep(self.node.interval).await;
        }
    }
}

/// The request event of a decoded log.
pub fn request_event(e: AIOracle::AICallbackRequest, block: u64) -> RequestEvent {
    RequestEvent {
        id: e.requestId,
        model_id: e.modelId,
        input: e.input,
        callback: e.callbackContract,
        gas_limit: e.gasLimit,
        callback_data: e.callbackData,
        block,
    }
}

/// The check, not made yet, of version `version` of request `id`'s result.
fn pending_check(
    id: U256,
    version: u32,
    submitter: alloy::primitives::Address,
    output: Bytes,
    claim: B256,
    block: u64,
) -> CheckRecord {
    CheckRecord {
        id,
        version,
        submitter,
        output,
        claim,
        block,
        state: CheckState::Pending,
        challenge_tx: None,
        error: None,
    }
}
