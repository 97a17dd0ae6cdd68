//! What the operator and the validator share: the chain connection, the models, the
//! guest, the database, following events from stored cursors with a confirmation
//! depth, the bounded pool that runs inference and VM runs, and the test-only crash
//! points.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log, TransactionReceipt};
use anyhow::{Context, Result};
use tokio::sync::Semaphore;

use crate::db::Db;
use crate::faults::Faults;
use crate::serve::models::{ModelSet, ServedModel};
use crate::serve::outputs::OutputStore;
use crate::serve::{serve, Served};

/// Environment variable naming a crash point (tests only): the process aborts
/// there, as if killed, leaving the database as it is at that point.
pub const CRASH_ENV: &str = "ORACLE_TEST_CRASH_AT";

/// Blocks per `eth_getLogs` call.
const LOG_CHUNK: u64 = 2000;

/// Abort the process (no unwinding, no flush) if `$ORACLE_TEST_CRASH_AT` names
/// `point`. Points: `seen`, `served`, `sent` (the submission is broadcast but its
/// hash not recorded), `submitted`.
pub fn crash_point(point: &str) {
    if std::env::var(CRASH_ENV).is_ok_and(|v| v == point) {
        eprintln!("{CRASH_ENV}={point}: aborting");
        std::process::abort();
    }
}

/// A running node's shared context.
#[derive(Clone)]
pub struct Node {
    /// Signing provider.
    pub provider: DynProvider,
    /// This node's account.
    pub account: Address,
    /// The AIOracle contract.
    pub oracle: Address,
    /// The first block to read events from (the deployment's).
    pub start_block: u64,
    /// Models served, by registered id.
    pub models: Arc<ModelSet>,
    /// The guest program (claims are its final VM state).
    pub guest: Arc<Vec<u8>>,
    /// Positions run per request.
    pub steps: u32,
    /// Blocks an event must be buried under before it is acted on.
    pub confirmations: u64,
    /// The database.
    pub db: Arc<Db>,
    /// Pause between rounds.
    pub interval: Duration,
    /// Image outputs posted as their hash, served over HTTP ([`crate::serve::outputs`]).
    pub outputs: OutputStore,
    /// The pool of inference and VM runs: at most this many at once, so a backlog
    /// of heavy requests queues here and never delays the dispute moves.
    pub workers: Arc<Semaphore>,
    /// The time one request's computation may take once it has a worker.
    pub budget: Duration,
    /// Test only: how this node lies.
    pub faults: Faults,
}

/// Jobs queued or running in the worker pool, by request: each request's
/// computation is handed to the pool once, whatever the rounds see meanwhile.
#[derive(Default)]
pub struct InFlight(std::sync::Mutex<std::collections::HashSet<U256>>);

impl InFlight {
    /// Run `job` in the background for request `id` unless one is in flight for it;
    /// `role` names its failure in the logs.
    pub fn spawn_once(
        self: &Arc<Self>,
        id: U256,
        role: &'static str,
        job: impl std::future::Future<Output = Result<()>> + Send + 'static,
    ) {
        if !self.0.lock().expect("in flight").insert(id) {
            return;
        }
        let me = self.clone();
        tokio::spawn(
            async move {
                if let Err(e) = job.await {
                    tracing::warn!(task = role, request = %id, "{e:#} (will retry)");
                }
                me.0.lock().expect("in flight").remove(&id);
            }
            .in_current_span(),
        );
    }
}

/// A served request with the time the inference took.
pub struct Timed {
    /// Output, proof and claim.
    pub served: Served,
    /// Wall-clock seconds of inference + VM runs.
    pub seconds: f64,
}

impl Node {
    /// The block range `[from, to]` of new events for `cursor`, if any: from the
    /// block after the recorded one (or the start block) to the head minus the
    /// confirmation depth.
    pub async fn next_range(&self, cursor: &str) -> Result<Option<(u64, u64)>> {
        let head = self
            .provider
            .get_block_number()
            .await
            .context("reading the block number")?;
        let safe = head.saturating_sub(self.confirmations);
        let from = match self.db.cursor(cursor)? {
            Some(b) if b > head => {
                tracing::warn!(
                    "the chain head {head} is behind the recorded block {b} (a restarted chain or a reorg deeper than --confirmations); rescanning from block {}",
                    self.start_block
                );
                self.start_block
            }
            Some(b) => b + 1,
            None => self.start_block,
        };
        Ok((from <= safe).then_some((from, safe)))
    }

    /// Logs of `event` emitted by the oracle in `[from, to]`, fetched in chunks.
    pub async fn logs(&self, event: B256, from: u64, to: u64) -> Result<Vec<Log>> {
        self.chunked_logs(Filter::new().event_signature(event), from, to)
            .await
    }

    /// The logs of `event` with `topic` as their first indexed argument, from the
    /// start block to the head, in chunks (one request's or one dispute's events).
    pub async fn logs_about(&self, event: B256, topic: U256) -> Result<Vec<Log>> {
        let head = self
            .provider
            .get_block_number()
            .await
            .context("reading the block number")?;
        let filter = Filter::new()
            .event_signature(event)
            .topic1(B256::from(topic));
        self.chunked_logs(filter, self.start_block, head).await
    }

    /// The oracle's logs matching `filter` in `[from, to]`, [`LOG_CHUNK`] blocks per
    /// call (providers refuse wide ranges).
    async fn chunked_logs(&self, filter: Filter, from: u64, to: u64) -> Result<Vec<Log>> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(LOG_CHUNK - 1));
            let chunk = filter
                .clone()
                .address(self.oracle)
                .from_block(start)
                .to_block(end);
            out.extend(
                self.provider
                    .get_logs(&chunk)
                    .await
                    .with_context(|| format!("reading logs of blocks {start}..={end}"))?,
            );
            start = end + 1;
        }
        Ok(out)
    }

    /// Run `round` forever, an interval apart, backing off exponentially (to 10 s)
    /// while it fails; `role` names the failures in the logs.
    pub async fn run_rounds(&self, role: &str, mut round: impl AsyncFnMut() -> Result<()>) {
        let mut backoff = crate::chain::Backoff::new(self.interval, Duration::from_secs(10));
        loop {
            let delay = match round().await {
                Ok(()) => backoff.succeed(),
                Err(e) => {
                    let d = backoff.fail();
                    tracing::warn!(task = role, "{e:#} (retrying in {d:?})");
                    d
                }
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// Serve `input` with `model` in the worker pool (waiting for a free worker;
    /// never on the runtime's threads). An error, or a panic of the computation,
    /// is the inner `Err` (the request failed); the outer one is the pool's.
    pub async fn serve(&self, model: &ServedModel, input: &[u8]) -> Result<Result<Timed>> {
        let permit = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .context("the worker pool is closed")?;
        let (model, guest, input, steps, store, faults) = (
            model.clone(),
            self.guest.clone(),
            input.to_vec(),
            self.steps,
            self.outputs.clone(),
            self.faults,
        );
        tracing::debug!(
            "running model {} ({}) on {} input bytes",
            model.id,
            model.name,
            input.len()
        );
        let started = Instant::now();
        let deadline = started + self.budget;
        let joined = tokio::task::spawn_blocking(move || {
            let served = serve(&model, &guest, &input, steps, &store, faults, deadline);
            drop(permit);
            served
        })
        .await;
        let result = match joined {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("the computation panicked: {e}")),
        };
        let seconds = started.elapsed().as_secs_f64();
        metrics::histogram!("oracle_inference_seconds").record(seconds);
        Ok(result.map(|served| {
            if seconds > 0.0 {
                #[allow(clippy::cast_precision_loss)]
                let tps = served.tokens as f64 / seconds;
                metrics::gauge!("oracle_tokens_per_second").set(tps);
            }
            Timed { served, seconds }
        }))
    }

    /// Wait for a sent transaction's receipt and count its gas under `what` (the
    /// receipt may be a revert).
    pub async fn mined(
        &self,
        pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
        what: &str,
    ) -> Result<TransactionReceipt> {
        let receipt = crate::chain::mined(pending, what).await?;
        self.account_gas(&receipt, what);
        Ok(receipt)
    }

    /// Send `call`, wait for its receipt and count its gas under `what` (the
    /// receipt may be a revert).
    pub async fn send<P: Provider, D: alloy::contract::CallDecoder>(
        &self,
        call: &alloy::contract::CallBuilder<P, D>,
        what: &str,
    ) -> Result<TransactionReceipt> {
        let receipt = crate::chain::send_call(call, what).await?;
        self.account_gas(&receipt, what);
        Ok(receipt)
    }

    /// Count a mined transaction's gas in the metrics; returns the gas used.
    pub fn account_gas(&self, receipt: &TransactionReceipt, what: &str) -> u64 {
        let used = receipt.gas_used;
        metrics::counter!("oracle_gas_used_total", "tx" => what.to_string()).increment(used);
        let wei = u128::from(used).saturating_mul(receipt.effective_gas_price);
        metrics::counter!("oracle_gas_spent_gwei_total", "tx" => what.to_string())
            .increment(u64::try_from(wei / 1_000_000_000).unwrap_or(u64::MAX));
        used
    }
}
