//! The operator and the validator as real processes on a real chain (anvil from
//! npm, the real contracts, stories260K W8, the guest in the VM for claims):
//! crash safety at every phase, two operators sharing one chain, a validator
//! catching a corrupting operator, and bad input and faults.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use common::{free_port, start_anvil, status, wait_for, Chain};
use oracle_contracts::{AIOracle, Prompt};

const FINAL: Duration = Duration::from_secs(90);

/// Killed (abort, as a SIGKILL: no cleanup) right after each phase and
/// restarted: every request is served exactly once, no transaction of the
/// operator reverts, and all are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_phase_neither_loses_nor_doubles_a_submission() {
    let chain = Chain::new(1).await;
    let operator = chain.accounts[1].0;
    let mut ids = Vec::new();
    for (i, point) in ["seen", "served", "sent", "submitted"].iter().enumerate() {
        let id = chain.ask(&format!("Lily had a cat number {i}")).await;
        ids.push(id);
        let mut crashing = chain
            .node("operator", 1, "op.redb", &[])
            .env("ORACLE_TEST_CRASH_AT", point)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let exit = loop {
            if let Some(s) = crashing.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < FINAL,
                "the operator did not reach crash point {point}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            !exit.success(),
            "crash point {point}: the process must abort"
        );
        let mut node = chain.spawn("operator", 1, "op.redb", &[], Stdio::null());
        chain.wait_final(id, FINAL).await;
        assert!(node.running());
        node.stop();
    }
    for id in &ids {
        let subs = chain.submissions(*id).await;
        assert_eq!(subs.len(), 1, "request {id}: {} submissions", subs.len());
        assert_eq!(subs[0].operator, operator);
    }
    let txs = chain.txs_from(operator).await;
    // One bond, then a submission and a finalization per request; none reverted.
    assert_eq!(txs.len(), 1 + 2 * ids.len(), "{txs:?}");
    assert!(
        txs.iter().all(|(_, ok)| *ok),
        "a transaction reverted: {txs:?}"
    );
    let p = Prompt::new(chain.prompt, &chain.provider);
    let answer = p
        .getAIResult(chain.model_id, "Lily had a cat number 0".into())
        .call()
        .await
        .unwrap();
    assert!(answer.starts_with("Lily had a cat number 0"), "{answer}");
    let s = status(&chain.path("op.redb"));
    assert!(s.contains("finalized     4"), "{s}");
}

/// Two operators on one chain: each request gets exactly one submission, no
/// losing transaction is paid for, and both keep running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_share_the_requests() {
    let chain = Chain::new(1).await;
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let ask = oracle_tests::console_module();
    let mut a = chain.spawn(
        "operator",
        1,
        "a.redb",
        &[
            "--metrics-addr",
            &metrics,
            "--console-ask",
            ask.to_str().unwrap(),
        ],
        Stdio::null(),
    );
    let mut b = chain.spawn("operator", 4, "b.redb", &[], Stdio::null());
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(chain.ask(&format!("Tom saw a dog {i}")).await);
    }
    for id in &ids {
        chain.wait_final(*id, FINAL).await;
        assert_eq!(chain.submissions(*id).await.len(), 1);
    }
    assert!(a.running() && b.running());
    // Operator a's metrics: every request is in a final state, and what it served
    // was timed.
    let done = |page: &str| {
        ["finalized", "skipped"]
            .iter()
            .map(|s| {
                common::metric(page, &format!("oracle_requests{{state=\"{s}\"}}")).unwrap_or(0.0)
            })
            .sum::<f64>()
    };
    wait_for("operator a's metrics", Duration::from_secs(20), || {
        done(&common::http_get(&metrics, "/metrics")) == 4.0
    })
    .await;
    let page = common::http_get(&metrics, "/metrics");
    assert!(page.contains("# TYPE oracle_requests gauge"), "{page}");
    // The same listener's JSON API: every request, each final for operator a
    // (served and finalized, or left to b), and the model it serves with the root
    // registered on chain.
    let json = |path: &str| {
        let (code, body) = common::http_get_status(&metrics, path);
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        (code, value)
    };
    let (code, list) = json("/api/requests");
    assert_eq!(code, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 4, "{list}");
    for id in &ids {
        let (code, one) = json(&format!("/api/requests/{id}"));
        assert_eq!(code, 200, "{one}");
        let last = one["timeline"].as_array().unwrap().last().unwrap().clone();
        assert!(
            last["stage"] == "finalized" || last["stage"] == "skipped",
            "{one}"
        );
    }
    let (_, models) = json("/api/models");
    let registered = AIOracle::new(chain.oracle, &chain.provider)
        .getModel(chain.model_id)
        .call()
        .await
        .unwrap();
    assert_eq!(
        models[0]["root"],
        serde_json::json!(registered.modelRoot),
        "{models}"
    );
    assert_eq!(models[0]["kind"], "text", "{models}");
    let (code, bad) = json("/api/requests/not-an-id");
    assert_eq!(code, 400, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("not a request id"));
    let s = common::status_via_api(&metrics);
    assert!(s.contains("role          operator"), "{s}");
    assert!(s.contains("seen          4"), "{s}");

    // The console on the same listener, in headless Chromium with an injected
    // EIP-1193 wallet (this node is no devnet: it gives the page neither an RPC nor
    // a key): a fifth request asked from the page goes to AIOracle directly (no
    // callback), the page follows it on chain until final, and the chain holds it
    // with one submission.
    let url = format!("http://{metrics}/");
    let rpc = chain.rpc.clone();
    let page = tokio::task::spawn_blocking(move || {
        let shots = tempfile::tempdir().unwrap();
        common::ask_from_the_page_with(&url, "Tom had a red ball", shots.path(), Some(&rpc))
    })
    .await
    .unwrap();
    assert_eq!(page.id, "5");
    assert!(
        page.signer.contains("your wallet") && page.signer.contains("AIOracle directly"),
        "{}",
        page.signer
    );
    let state = page.chain.iter().find(|r| r[0] == "status").unwrap();
    assert_eq!(state[1], "finalized", "{:?}", page.chain);
    assert_eq!(chain.submissions(U256::from(5u64)).await.len(), 1);
    a.stop();
    b.stop();
    for who in [1usize, 4] {
        let txs = chain.txs_from(chain.accounts[who].0).await;
        assert!(
            txs.iter().all(|(_, ok)| *ok),
            "a losing tx was sent: {txs:?}"
        );
    }
    let (sa, sb) = (status(&chain.path("a.redb")), status(&chain.path("b.redb")));
    assert!(sa.contains("seen          5") && sb.contains("seen          5"));
}

/// An operator posting wrong results (test switch) is caught by the validator
/// within the window: a challenge on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_catches_a_corrupting_operator() {
    let chain = Chain::new(30).await;
    let log = chain.path("validator.log");
    let mut bad = chain.spawn(
        "operator",
        1,
        "bad.redb",
        &["--fault-wrong-output-for-tests"],
        Stdio::null(),
    );
    let mut validator = chain.spawn(
        "validator",
        3,
        "val.redb",
        &[],
        std::fs::File::create(&log).unwrap(),
    );
    let id = chain.ask("Once upon a time").await;
    let oracle = AIOracle::new(chain.oracle, &chain.provider);
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the challenge", FINAL, || text().contains("CHALLENGED")).await;
    let r = oracle.getRequest(id).call().await.unwrap();
    assert_eq!(r.status, 3, "the request must be DISPUTED");
    let submitted = chain.submissions(id).await;
    assert_eq!(submitted.len(), 1);
    // the corrupting operator's output is the truth with a lie appended (`faults`)
    assert!(submitted[0].output.starts_with(b"Once upon a time"));
    assert!(submitted[0].output.ends_with(b" (a lie)\n"));
    validator.stop();
    bad.stop();
    let s = status(&chain.path("val.redb"));
    assert!(s.contains("mismatches    1"), "{s}");
}

/// Bad input and faults: a model the node does not hold, a prompt longer than the
/// context (served with the error outcome), non-UTF-8 bytes, a reverting callback
/// receiver, and anvil restarted under the node. The node keeps running and the
/// requests complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_faults_do_not_stop_the_node() {
    let port = free_port();
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("anvil.json");
    let state_arg = state_file.to_str().unwrap().to_string();
    let anvil_args = ["--state", state_arg.as_str(), "--state-interval", "1"];
    let mut chain = Chain::on(start_anvil(port, &anvil_args), 1).await;
    let log = chain.path("op.log");
    let http = format!("127.0.0.1:{}", free_port());
    let mut node = chain.spawn(
        "operator",
        1,
        "op.redb",
        &["--http", &http],
        std::fs::File::create(&log).unwrap(),
    );
    let oracle = AIOracle::new(chain.oracle, &chain.provider);
    // A second model whose file this node does not have.
    let mut other = oracle.getModel(chain.model_id).call().await.unwrap();
    other.modelRoot = common::hash(b"some other model");
    let cfg = AIOracle::ModelConfig {
        modelRoot: other.modelRoot,
        programHash: other.programHash,
        fee: other.fee,
        feeToken: other.feeToken,
        feeReceiver: other.feeReceiver,
        receiverShareBps: other.receiverShareBps,
        challengeWindow: other.challengeWindow,
        maxInputSize: other.maxInputSize,
        maxCallbackGas: other.maxCallbackGas,
    };
    let reg = oracle.registerModel(cfg).from(chain.accounts[0].0);
    let other_id = reg.call().await.unwrap();
    reg.send().await.unwrap().get_receipt().await.unwrap();

    let unknown = chain
        .ask_raw(other_id, b"Lily".to_vec(), Address::ZERO)
        .await;
    // ~4000 bytes of varied letters: far more tokens than the 512-token context.
    let long: Vec<u8> = (0u32..4000)
        .map(|i| b'a' + u8::try_from((i * 7 + i / 13) % 26).unwrap())
        .collect();
    let too_long = chain.ask_raw(chain.model_id, long, Address::ZERO).await;
    let not_utf8 = chain
        .ask_raw(
            chain.model_id,
            vec![0xff, 0xfe, b'L', b'i', 0xc3],
            Address::ZERO,
        )
        .await;
    // Prompt reverts the callback of a request it did not make (UnknownRequest).
    let reverting = chain
        .ask_raw(chain.model_id, b"Tom".to_vec(), chain.prompt)
        .await;
    let good = chain.ask("Once upon a time").await;
    for id in [not_utf8, reverting, good, too_long] {
        chain.wait_final(id, FINAL).await;
    }
    let r = oracle.getRequest(reverting).call().await.unwrap();
    assert_eq!(r.callbackStatus, 2, "the callback must be recorded FAILED");
    assert!(
        chain.final_output(too_long).await.is_empty(),
        "the over-long request's result is the error outcome (the empty output)"
    );
    assert_eq!(oracle.getRequest(unknown).call().await.unwrap().status, 1);
    // Non-UTF-8 bytes are served losslessly: exactly what `oracle run` prints.
    let sub = chain.submissions(not_utf8).await;
    let local = std::process::Command::new(env!("CARGO_BIN_EXE_oracle"))
        .args(["run", "--steps", common::STEPS, "--prompt"])
        .arg(std::ffi::OsStr::from_bytes(&[0xff, 0xfe, b'L', b'i', 0xc3]))
        .arg("--model")
        .arg(chain.path("models/stories260K-q8.bin"))
        .output()
        .unwrap();
    assert!(local.status.success());
    assert_eq!(sub[0].output.as_ref(), local.stdout.as_slice());

    // Restart anvil under the running node (its state is dumped every second).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    drop(chain.anvil.take());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(node.running(), "the node died with the chain");
    // Without its RPC the node still answers from its database.
    let s = common::status_via_api(&http);
    assert!(
        s.contains(&format!("request {too_long} model 1 finalized: prompt is")),
        "{s}"
    );
    chain.anvil = Some(start_anvil(port, &anvil_args));
    let after = chain.ask("Tom saw a dog").await;
    chain.wait_final(after, FINAL).await;
    assert!(node.running());
    node.stop();
    let s = status(&chain.path("op.redb"));
    assert!(
        s.contains(&format!("request {too_long} model 1 finalized: prompt is")),
        "{s}"
    );
    assert!(
        s.contains(&format!(
            "request {unknown} model 2 skipped: model 2 is not served"
        )),
        "{s}"
    );
    let head = chain.provider.get_block_number().await.unwrap();
    assert!(head > 0);
}

/// The chain is rolled back past a request the operator already served (anvil
/// restarted from a state saved before it): the next request reuses the id with
/// another prompt. The operator's record of the old request is replaced (it is
/// keyed by the request's payload too), the new request is served, and the text
/// delivered is the new prompt's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_reused_after_a_rollback_is_served_again() {
    let port = free_port();
    let state = tempfile::tempdir().unwrap();
    let live = state.path().join("live.json");
    let live_arg = live.to_str().unwrap().to_string();
    let mut chain = Chain::on(
        start_anvil(
            port,
            &["--state", live_arg.as_str(), "--state-interval", "1"],
        ),
        1,
    )
    .await;
    // the state with the contracts deployed and no request yet
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = state.path().join("before.json");
    std::fs::copy(&live, &before).unwrap();
    let log = chain.path("op.log");
    let mut node = chain.spawn("operator", 1, "op.redb", &[], common::append(&log));
    let first = chain.ask("Lily had a cat").await;
    chain.wait_final(first, FINAL).await;

    drop(chain.anvil.take());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_arg = before.to_str().unwrap().to_string();
    let anvil = start_anvil(port, &["--state", before_arg.as_str()]);
    // a new client: the old one caches nonces the rolled-back chain never saw
    chain.provider = alloy::providers::ProviderBuilder::new()
        .connect_http(anvil.endpoint_url())
        .erased();
    chain.anvil = Some(anvil);
    let oracle = AIOracle::new(chain.oracle, &chain.provider);
    assert_eq!(
        oracle.getRequest(first).call().await.unwrap().status,
        0,
        "the request is gone with the rollback"
    );
    let again = chain.ask("Tom saw a dog").await;
    assert_eq!(again, first, "the rolled-back chain reuses the id");
    chain.wait_final(again, FINAL).await;
    let p = Prompt::new(chain.prompt, &chain.provider);
    let delivered = p
        .getAIResult(chain.model_id, "Tom saw a dog".to_string())
        .call()
        .await
        .unwrap();
    assert!(delivered.starts_with("Tom saw a dog"), "{delivered}");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("the chain was rolled back"),
        "the operator noticed the reuse"
    );
    assert!(node.running());
    node.stop();
}
