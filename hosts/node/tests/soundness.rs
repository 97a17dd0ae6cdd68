//! A wrong result never finalizes while one honest validator watches (issue #13),
//! end to end on a real chain (anvil, the real contracts and games, the real guest
//! and stories260K), for both game kinds, against the test faults of the node
//! (`hosts/node/src/faults.rs`):
//! - an operator that posts a wrong output with the *honest* claim is refused by the
//!   contract (one-phase), or (two-phase, where the claim is the output's hash) is
//!   bound to a claim of its own and loses to the validator; the truth is delivered;
//! - an operator with a sock puppet: the operator lies and throws its games, the
//!   puppet challenges with another lie and wins first, so its lie becomes the
//!   result; the honest validator challenges both, the truth is delivered, and the
//!   honest validator is paid its bond back and a reward;
//! - a prompt longer than the context is a rejected request whose result is the
//!   error outcome (the empty output); a lying operator posts a made-up text for it,
//!   loses, and the requester's `aiOracleCallbackError` receives the error.

mod common;

use std::process::Stdio;
use std::time::Duration;

use alloy::primitives::U256;
use common::{append, assets, start_anvil, Chain, STEPS};
use oracle_contracts::{AIOracle, Prompt};
use oracle_core::model::outcome::{run, Outcome};
use oracle_core::{Exec, Request, SamplingParams};

/// Long enough for a re-execution, two games decided on time or at one step, and
/// two windows.
const FINAL: Duration = Duration::from_secs(400);

/// Seconds each side has in these games (the thrown games end on time).
const CLOCK: u32 = 40;

/// A chain whose model's games are `two_phase`, with a [`CLOCK`]-second clock.
async fn chain(two_phase: bool) -> Chain {
    let mut config = Chain::config(20, two_phase, STEPS);
    config.game_clock = CLOCK;
    Chain::stories_with_clock(start_anvil(0, &[]), config).await
}

/// What `oracle run` posts for `prompt`: the text, or empty for the error outcome.
fn honest_output(prompt: &str) -> Vec<u8> {
    let (model, _) = assets();
    let request = Request::text(
        prompt.as_bytes(),
        STEPS.parse().unwrap(),
        SamplingParams::GREEDY,
    );
    let outcome = run(
        model,
        Exec::default(),
        &request.encode_params(),
        request.prompt,
        |_| {},
    );
    assert!(
        !matches!(outcome, Outcome::Image { .. }),
        "a text model gives text"
    );
    outcome.posted()
}

/// The output the oracle delivered for request `id` (its `AICallbackResult`).
async fn delivered(chain: &Chain, id: U256) -> Vec<u8> {
    chain.final_output(id).await
}

/// At most two of these tests at once: each runs a chain, three or four nodes and
/// their VM traces, and on two cores six at once starve the nodes for minutes.
static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_output_with_the_honest_claim_is_refused_one_phase() {
    let _slot = SLOTS.acquire().await.expect("slots");
    honest_claim(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_output_cannot_ride_on_the_honest_claim_two_phase() {
    let _slot = SLOTS.acquire().await.expect("slots");
    honest_claim(true).await;
}

/// Operator 1 posts a wrong output with the honest claim. One-phase: the contract
/// refuses it (the claim's final state commits to the true output), so nothing is
/// posted until an honest operator (4) serves the request. Two-phase: the claim is
/// the output's hash, so the wrong output carries a claim of its own, and the
/// validator (3) challenges and wins. Either way the truth is delivered.
async fn honest_claim(two_phase: bool) {
    let chain = chain(two_phase).await;
    let liar_log = chain.path("liar.log");
    let _liar = chain.spawn(
        "operator",
        1,
        "liar.redb",
        &["--fault-honest-claim-for-tests"],
        append(&liar_log),
    );
    let _validator = chain.spawn(
        "validator",
        3,
        "val.redb",
        &[],
        append(&chain.path("validator.log")),
    );
    let prompt = "Once upon a time";
    let id = chain.ask(prompt).await;
    let liar_text = || std::fs::read_to_string(&liar_log).unwrap_or_default();
    if two_phase {
        chain.wait_final(id, FINAL).await;
        let wins = chain.resolutions().await;
        assert_eq!(wins.len(), 1, "one dispute: {wins:?}");
        assert!(wins[0].1, "the challenger (validator) won");
    } else {
        chain
            .wait_log("liar.log", "the oracle refuses the submission", FINAL)
            .await;
        assert!(
            liar_text().contains("UnboundClaim"),
            "refused because the claim is not bound to the output: {}",
            liar_text()
        );
        assert!(chain.submissions(id).await.is_empty(), "nothing was posted");
        let _honest = chain.spawn("operator", 4, "op.redb", &[], append(&chain.path("op.log")));
        chain.wait_final(id, FINAL).await;
        assert!(
            chain.resolutions().await.is_empty(),
            "no dispute was needed"
        );
    }
    assert_eq!(delivered(&chain, id).await, honest_output(prompt));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sock_puppet_cannot_replace_the_truth_one_phase() {
    let _slot = SLOTS.acquire().await.expect("slots");
    sock_puppet(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sock_puppet_cannot_replace_the_truth_two_phase() {
    let _slot = SLOTS.acquire().await.expect("slots");
    sock_puppet(true).await;
}

/// Operator 1 lies and throws its games; its puppet (account 5, bonded) challenges
/// it with another lie and wins first, on time, so the puppet's lie replaces the
/// result with a fresh window. The honest validator (3) challenges the operator's
/// lie and the puppet's, wins both, and the truth is delivered; once final the
/// validator is paid its bonds back and a share of the slashed bonds.
async fn sock_puppet(two_phase: bool) {
    let chain = chain(two_phase).await;
    let operator = chain.accounts[1].0.to_string();
    let _liar = chain.spawn(
        "operator",
        1,
        "liar.redb",
        &[
            "--fault-wrong-output-for-tests",
            "--fault-throw-games-for-tests",
        ],
        append(&chain.path("liar.log")),
    );
    let _puppet = chain.spawn(
        "validator",
        5,
        "puppet.redb",
        &["--fault-puppet-of-for-tests", &operator],
        append(&chain.path("puppet.log")),
    );
    let prompt = "Once upon a time";
    let id = chain.ask(prompt).await;
    // The puppet challenges first; the honest validator starts a little later.
    chain.wait_log("puppet.log", "CHALLENGED", FINAL).await;
    let validator = chain.accounts[3].0;
    let oracle = AIOracle::new(chain.oracle, &chain.provider);
    let credit_before = oracle
        .balanceOf(validator, alloy::primitives::Address::ZERO)
        .call()
        .await
        .unwrap();
    let _validator = chain.spawn(
        "validator",
        3,
        "val.redb",
        &[],
        append(&chain.path("validator.log")),
    );
    chain.wait_final(id, FINAL).await;
    assert_eq!(delivered(&chain, id).await, honest_output(prompt));
    let resolutions = chain.resolutions().await;
    assert!(
        resolutions.len() >= 3,
        "the puppet's win, the validator's win over the operator and over the puppet: {resolutions:?}"
    );
    // Once the request is final the validator is paid both bonds and a reward:
    // its won challenges' bonds and pot share when it claims them ("settled;"), or,
    // when its challenge of the operator won the race against the puppet's (both
    // games end on the thrower's clock at about the same time), its result was
    // installed, the puppet challenged that, and the defended game credits the
    // puppet's bond at once. The balance is the property either way.
    let bond = U256::from(oracle.challengeBond().call().await.unwrap());
    let started = std::time::Instant::now();
    let credit = loop {
        let credit = oracle
            .balanceOf(validator, alloy::primitives::Address::ZERO)
            .call()
            .await
            .unwrap();
        if credit > credit_before + bond * U256::from(2u64) || started.elapsed() > FINAL {
            break credit;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert!(
        credit > credit_before + bond * U256::from(2u64),
        "the honest validator got both bonds back and a reward: {credit} (bond {bond})\n{}",
        chain.log_tails()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lie_about_a_rejected_request_loses_one_phase() {
    let _slot = SLOTS.acquire().await.expect("slots");
    rejected_request(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lie_about_a_rejected_request_loses_two_phase() {
    let _slot = SLOTS.acquire().await.expect("slots");
    rejected_request(true).await;
}

/// A prompt longer than the model's context: its result is the error outcome. The
/// lying operator posts a made-up text; the validator challenges with the empty
/// output and wins; Prompt's `aiOracleCallbackError` records the rejection.
async fn rejected_request(two_phase: bool) {
    let chain = chain(two_phase).await;
    let _liar = chain.spawn(
        "operator",
        1,
        "liar.redb",
        &["--fault-wrong-output-for-tests"],
        Stdio::null(),
    );
    let _validator = chain.spawn(
        "validator",
        3,
        "val.redb",
        &[],
        append(&chain.path("validator.log")),
    );
    let prompt = "the cat sat on the mat and ".repeat(200);
    assert!(honest_output(&prompt).is_empty(), "the model rejects it");
    let id = chain.ask(&prompt).await;
    chain.wait_final(id, FINAL).await;
    assert!(
        delivered(&chain, id).await.is_empty(),
        "the error outcome is final"
    );
    let p = Prompt::new(chain.prompt, &chain.provider);
    assert!(
        p.rejected(id).call().await.unwrap(),
        "the error callback ran"
    );
    let wins = chain.resolutions().await;
    assert_eq!(wins.len(), 1, "{wins:?}");
    assert!(wins[0].1, "the validator won");
}
