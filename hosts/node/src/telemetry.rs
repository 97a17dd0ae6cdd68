//! Logs (`tracing`, filtered by `RUST_LOG`, default `info`) and the metrics the
//! Prometheus `/metrics` endpoint shows (served by [`crate::http`]).
//!
//! Metrics: `oracle_requests{state}` (operator requests by state),
//! `oracle_inference_seconds` (histogram), `oracle_tokens_per_second` (last
//! request), `oracle_gas_used_total{tx}` and `oracle_gas_spent_gwei_total{tx}`
//! (submit, finalize, challenge), `oracle_submissions_total`,
//! `oracle_finalizations_total`, `oracle_challenges_total`,
//! `oracle_challenges_refused_total`.

use tracing_subscriber::EnvFilter;

/// Log to stderr with `RUST_LOG` (default `info`). Safe to call more than once.
pub fn init_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
