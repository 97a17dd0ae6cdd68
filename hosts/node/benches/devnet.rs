//! Oracle latency and throughput on a devnet: a real anvil, the real contracts,
//! stories260K W8 with 64 positions per request, and the real `oracle operator`
//! process, once with the model's disputes as one-phase games (the claim is the
//! guest's final state in the VM, so the operator runs the whole request in the
//! VM before submitting) and once as two-phase games (the claim is the output
//! commitment). Not a criterion bench: one request takes seconds, so this
//! measures a handful and prints a table.
//!
//! `cargo bench -p oracle-node --bench devnet` (ORACLE_BENCH_REQUESTS sets the
//! throughput batch, default 12).
//!
//! - latency: request → callback, split into inference (the operator's own
//!   `oracle_inference_seconds` from its `/metrics`) and oracle overhead (the rest,
//!   minus the challenge window), in blocks and seconds. The window is the
//!   contract's minimum, 1 s (a zero-length window is refused by `registerModel`).
//! - throughput: a batch sent at once, requests per minute until all are final.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use common::{http_get, metric, Chain, Proc};
use oracle_contracts::AIOracle;

const STEPS: &str = "64";

async fn event_block(chain: &Chain, sig: B256, id: U256) -> u64 {
    let f = Filter::new()
        .address(chain.oracle)
        .event_signature(sig)
        .topic1(B256::from(id))
        .from_block(0);
    let logs = chain.provider.get_logs(&f).await.unwrap();
    if let Some(l) = logs.first() {
        return l.block_number.unwrap();
    }
    // AICallbackRequest / AICallbackResult index the account first, the id second.
    let f = Filter::new()
        .address(chain.oracle)
        .event_signature(sig)
        .topic2(B256::from(id))
        .from_block(0);
    chain.provider.get_logs(&f).await.unwrap()[0]
        .block_number
        .unwrap()
}

fn inference(page: &str) -> (f64, f64) {
    (
        metric(page, "oracle_inference_seconds_sum").unwrap_or(0.0),
        metric(page, "oracle_inference_seconds_count").unwrap_or(0.0),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("devnet: bench");
        return;
    }
    let batch: u64 = std::env::var("ORACLE_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let chain = |two_phase| Chain::on_with(common::start_anvil(0, &[]), 1, two_phase, STEPS);
    measure(
        chain(false).await,
        batch,
        "one-phase games: claims from the guest in the VM",
    )
    .await;
    measure(
        chain(true).await,
        batch,
        "two-phase games: claims are output commitments, no VM run",
    )
    .await;
}

/// Latency and throughput of one operator on `chain`.
async fn measure(chain: Chain, batch: u64, label: &str) {
    println!("== {label}");
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let mut op = Proc(
        chain
            .node_steps(
                "operator",
                1,
                "op.redb",
                STEPS,
                &["--metrics-addr", &metrics],
            )
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let timeout = Duration::from_secs(600);
    common::wait_for("the metrics endpoint", Duration::from_secs(60), || {
        std::net::TcpStream::connect(&metrics).is_ok()
    })
    .await;

    // Latency, one request at a time.
    let rounds = 5;
    let (mut total_s, mut infer_s, mut blocks) = (0.0, 0.0, 0u64);
    for i in 0..rounds {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = inference(&http_get(&metrics, "/metrics"));
        let started = Instant::now();
        let id = chain
            .ask(&format!("Once upon a time, a cat number {i}"))
            .await;
        chain.wait_final(id, timeout).await;
        let elapsed = started.elapsed().as_secs_f64();
        let mut after = inference(&http_get(&metrics, "/metrics"));
        while after.1 < before.1 + 1.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            after = inference(&http_get(&metrics, "/metrics"));
        }
        let req_block = event_block(&chain, AIOracle::AICallbackRequest::SIGNATURE_HASH, id).await;
        let done_block = event_block(&chain, AIOracle::AICallbackResult::SIGNATURE_HASH, id).await;
        total_s += elapsed;
        infer_s += after.0 - before.0;
        blocks += done_block - req_block;
    }
    let n = f64::from(rounds);
    let (total, infer) = (total_s / n, infer_s / n);
    #[allow(clippy::cast_precision_loss)]
    let blocks = blocks as f64 / n;
    println!("latency over {rounds} requests, {STEPS} positions, 1 s window:");
    println!("  request -> callback   {total:.2} s, {blocks:.1} blocks after the request's");
    println!("  inference (+VM claim if any) {infer:.2} s");
    println!(
        "  oracle overhead       {:.2} s excluding the 1 s window ({:.2} s including it)",
        total - infer - 1.0,
        total - infer
    );

    // Throughput: a batch at once.
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..batch {
        ids.push(
            chain
                .ask(&format!("Lily and Tom went to the park {i}"))
                .await,
        );
    }
    for id in &ids {
        chain.wait_final(*id, timeout).await;
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let per_min = batch as f64 * 60.0 / secs;
    println!("throughput: {batch} requests final in {secs:.1} s = {per_min:.1} requests/min");
    op.stop();
}
