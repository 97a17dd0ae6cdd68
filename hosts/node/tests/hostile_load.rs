//! A node under load keeps what is urgent on time (issue #14), on a real chain:
//! - a flood of 1,100 half-open connections on a validator's public HTTP port while
//!   a lying operator's result is disputed: the validator still challenges, plays
//!   and wins, and the truth is delivered (the listener caps its connections, so
//!   the node keeps the file descriptors it needs for its RPC);
//! - a backlog of slow requests (image requests, seconds each in the VM) queued at
//!   an honest operator while a lying challenger disputes one of its results: the
//!   dispute task moves within the operator's clock while the worker pool is busy,
//!   and the operator wins.

mod common;

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use common::{append, free_port, start_anvil, Chain, STEPS};
use oracle_contracts::devnet::DevnetConfig;
use oracle_contracts::game::{Bisection, GameClient, Status};
use oracle_contracts::AIOracle;

/// Long enough for a re-execution, a whole game and a window, on a loaded machine.
const FINAL: Duration = Duration::from_secs(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_does_not_stall_a_validators_dispute() {
    let mut config = Chain::config(20, false, STEPS);
    config.game_clock = 60;
    let chain = Chain::stories_with_clock(start_anvil(0, &[]), config).await;
    let outputs = format!("127.0.0.1:{}", free_port());
    let _validator = chain.spawn(
        "validator",
        3,
        "val.redb",
        &["--outputs-addr", &outputs],
        append(&chain.path("validator.log")),
    );
    chain
        .wait_log("validator.log", "image outputs from", FINAL)
        .await;
    // 1,100 clients that open a connection and send half a request head, and stay.
    let mut flood = Vec::new();
    for _ in 0..1100 {
        if let Ok(mut s) = std::net::TcpStream::connect(&outputs) {
            use std::io::Write;
            let _ = s.write_all(b"GET /outputs/");
            flood.push(s);
        }
    }
    assert!(flood.len() >= 1000, "the flood connected ({})", flood.len());
    let _liar = chain.spawn(
        "operator",
        1,
        "liar.redb",
        &["--fault-wrong-output-for-tests"],
        append(&chain.path("liar.log")),
    );
    let prompt = "Once upon a time";
    let id = chain.ask(prompt).await;
    // the flood goes on while the request is served and disputed
    let refill = tokio::spawn({
        let outputs = outputs.clone();
        async move {
            let mut more = Vec::new();
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                for _ in 0..50 {
                    if let Ok(s) = tokio::net::TcpStream::connect(&outputs).await {
                        more.push(s);
                    }
                }
            }
            more.len()
        }
    });
    chain.wait_final(id, FINAL).await;
    assert!(refill.await.unwrap() > 0);
    let resolutions = chain.resolutions().await;
    assert_eq!(resolutions.len(), 1, "{resolutions:?}");
    assert!(resolutions[0].1, "the validator won under the flood");
    let delivered = chain.final_output(id).await;
    assert!(delivered.starts_with(prompt.as_bytes()));
    assert!(
        !delivered.ends_with(b" (a lie)\n"),
        "the truth is delivered"
    );
    drop(flood);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_slow_requests_does_not_delay_dispute_moves() {
    let model = oracle_tests::ddpm_mnist_model_file();
    let mut config = DevnetConfig::default();
    config.model.challengeWindow = 30;
    // one DDPM step per request: about 10^9 VM steps for the claim of each
    config.sampling_params = oracle_core::ImageParams {
        steps: 1,
        seed: 7,
        guidance_q16: 0,
    }
    .encode()
    .to_vec();
    let clock = 45u32;
    config.game_clock = clock;
    let (_, guest) = common::assets();
    let chain = Chain::deploy(start_anvil(0, &[]), "ddpm.bin", &model, guest, config).await;
    let _operator = chain.spawn("operator", 1, "op.redb", &[], append(&chain.path("op.log")));
    let liar = chain.spawn(
        "validator",
        3,
        "liar.redb",
        &["--fault-challenge-correct-for-tests"],
        append(&chain.path("liar.log")),
    );
    let first = chain.ask("").await;
    chain.wait_log("liar.log", "CHALLENGED", FINAL).await;
    // the backlog: eight more requests of seconds each, queued behind the game
    let started = Instant::now();
    let mut backlog = Vec::new();
    for _ in 0..8 {
        backlog.push(chain.ask("").await);
    }
    chain.wait_log("op.log", "WON in", FINAL).await;
    let won_after = started.elapsed();
    let oracle = AIOracle::new(chain.oracle, &chain.provider);
    let game = GameClient::of_dispute(&oracle, U256::from(1u64), &chain.provider)
        .await
        .unwrap();
    let state = game.state().await.unwrap();
    assert_eq!(state.status, Status::DefenderWins, "{state:?}");
    // the backlog was still being served when the game was won
    let mut pending = 0;
    for id in &backlog {
        if !oracle.isFinalized(*id).call().await.unwrap() {
            pending += 1;
        }
    }
    eprintln!(
        "game won {:.0}s after the backlog was queued, {pending} of 8 backlog requests not final yet; defender's clock left {}s of {clock}",
        won_after.as_secs_f64(),
        state.defender_clock
    );
    assert!(
        pending > 0,
        "the game was decided while the backlog was served"
    );
    // Every request still finalizes. The liar stops here (the games it opened on
    // the backlog end on its clock): on two shared cores, eight more games of
    // 10^9-step traces made this liveness check the slowest part of the suite.
    drop(liar);
    let deadline = Instant::now() + 3 * FINAL;
    for id in std::iter::once(first).chain(backlog) {
        let left = deadline.saturating_duration_since(Instant::now());
        chain.wait_final(id, left).await;
    }
}
