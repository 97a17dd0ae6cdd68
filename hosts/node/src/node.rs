//! What the operator and the validator share: the chain connection, the models, the
//! guest, the database, following events with a confirmation depth, the serve path
//! on the blocking pool, and the test-only crash points.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent;
use anyhow::{Context, Result};
use oracle_contracts::AIOracle;

use crate::db::Db;
use crate::dispute::lie;
use crate::models::{ModelSet, ServedModel};
use crate::outputs::OutputStore;
use crate::serve::{serve, serve_two_phase, Served};

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
    /// Image outputs posted as their hash, served over HTTP ([`crate::outputs`]).
    pub outputs: OutputStore,
}

/// A served request with the time the inference took.
pub struct Timed {
    /// Output and claim.
    pub served: Served,
    /// Wall-clock seconds of inference + VM run.
    pub seconds: f64,
}

impl Node {
    /// The block range `[from, to]` of new events for `cursor`, if any: from the
    /// block after the recorded one to the head minus the confirmation depth.
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
                    "the chain head {head} is behind the recorded block {b} (a restarted chain or a reorg deeper than --confirmations); rescanning from block 0"
                );
                0
            }
            Some(b) => b + 1,
            None => 0,
        };
        Ok((from <= safe).then_some((from, safe)))
    }

    /// Logs of `event` emitted by the oracle in `[from, to]`, fetched in chunks.
    pub async fn logs(&self, event: B256, from: u64, to: u64) -> Result<Vec<Log>> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(LOG_CHUNK - 1));
            let filter = Filter::new()
                .address(self.oracle)
                .event_signature(event)
                .from_block(start)
                .to_block(end);
            out.extend(
                self.provider
                    .get_logs(&filter)
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
                    tracing::warn!("{role}: {e:#} (retrying in {d:?})");
                    d
                }
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// The `AICallbackRequest` event of request `id` (its input and callback
    /// payload), looked up to block `up_to` (the head if `None`).
    pub async fn request_event(
        &self,
        id: U256,
        up_to: Option<u64>,
    ) -> Result<Option<AIOracle::AICallbackRequest>> {
        let mut filter = Filter::new()
            .address(self.oracle)
            .event_signature(AIOracle::AICallbackRequest::SIGNATURE_HASH)
            .topic2(B256::from(id))
            .from_block(0);
        if let Some(block) = up_to {
            filter = filter.to_block(block);
        }
        let logs = self
            .provider
            .get_logs(&filter)
            .await
            .context("reading the request event")?;
        Ok(logs
            .into_iter()
            .find_map(|l| l.log_decode::<AIOracle::AICallbackRequest>().ok())
            .map(|l| l.inner.data))
    }

    /// Serve `input` with `model` on the blocking pool (never on the runtime).
    /// `lying` (tests only) serves a wrong result: another prompt's for a one-phase
    /// model ([`lie`]), a one-token lie for a two-phase one
    /// ([`crate::positions::lie_position`]).
    pub async fn serve(
        &self,
        model: &ServedModel,
        input: &[u8],
        lying: bool,
    ) -> Result<Result<Timed>> {
        let two_phase = model.two_phase;
        let trace_bound = model.trace_bound;
        let image = model.image.map(|p| if lying { p.lie() } else { p });
        let store = self.outputs.clone();
        let (bytes, guest, steps, input) = (
            model.bytes.clone(),
            self.guest.clone(),
            self.steps,
            if lying && !two_phase && image.is_none() {
                lie(input)
            } else {
                input.to_vec()
            },
        );
        tracing::debug!(
            "running model {} ({}) on {} input bytes",
            model.id,
            model.name,
            input.len()
        );
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            if let Some(params) = image {
                crate::image::serve_image(&bytes, &guest, params, &input, &store, trace_bound)
            } else if two_phase {
                serve_two_phase(&bytes, &input, steps, lying)
            } else {
                serve(&bytes, &guest, &input, steps, trace_bound)
            }
        })
        .await
        .context("the inference task panicked")?;
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

    /// Count a mined transaction's gas in the metrics; returns the gas used.
    pub fn account_gas(&self, receipt: &alloy::rpc::types::TransactionReceipt, what: &str) -> u64 {
        let used = receipt.gas_used;
        metrics::counter!("oracle_gas_used_total", "tx" => what.to_string()).increment(used);
        let wei = u128::from(used).saturating_mul(receipt.effective_gas_price);
        metrics::counter!("oracle_gas_spent_gwei_total", "tx" => what.to_string())
            .increment(u64::try_from(wei / 1_000_000_000).unwrap_or(u64::MAX));
        used
    }
}
