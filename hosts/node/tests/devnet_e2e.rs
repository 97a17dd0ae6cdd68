//! End to end on a real chain: `oracle devnet` (anvil from npm, the contracts, the
//! operator with VM claims) serves `oracle request` through the Prompt contract,
//! and the result delivered by the callback equals `oracle run` byte for byte.

mod common;

use common::{ask_from_the_page, assert_success, oracle, start_devnet};
use oracle_core::quant::QType;
use oracle_tests::LLAMA_FIXTURES;

/// A running `oracle devnet` serving the stories260K W8 fixture, in its own
/// directory (model, guest, state file, data).
struct Devnet {
    dir: tempfile::TempDir,
    model: std::path::PathBuf,
    state: std::path::PathBuf,
    /// Stops the devnet when dropped (the files stay while `dir` lives).
    proc: common::Proc,
}

impl Devnet {
    /// `oracle devnet --port 0 <extra>` on fresh files.
    fn start(extra: &[&str]) -> Devnet {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.bin");
        std::fs::write(&model, LLAMA_FIXTURES[0].model_file(QType::Q8)).unwrap();
        let guest = dir.path().join("guest.elf");
        std::fs::write(&guest, oracle_tests::guest_elf()).unwrap();
        let state = dir.path().join("devnet.json");
        let proc = start_devnet(
            oracle()
                .args(["devnet", "--port", "0"])
                .args(extra)
                .arg("--model")
                .arg(&model)
                .arg("--guest")
                .arg(&guest)
                .arg("--state-file")
                .arg(&state)
                .arg("--data-dir")
                .arg(dir.path().join("data")),
            &state,
        );
        Devnet {
            dir,
            model,
            state,
            proc,
        }
    }
}

#[test]
fn a_prompt_request_is_served_finalized_and_delivered() {
    let net = Devnet::start(&["--challenge-window", "2", "--steps", "24"]);
    let (model, state) = (net.model.clone(), net.state.clone());

    let prompt = "Once upon a time";
    let out = oracle()
        .args(["request", "--wait", "--timeout", "120", "--prompt", prompt])
        .arg("--state-file")
        .arg(&state)
        .output()
        .unwrap();
    assert_success(&out, "oracle request");

    let local = oracle()
        .args(["run", "--steps", "24", "--prompt", prompt])
        .arg("--model")
        .arg(&model)
        .output()
        .unwrap();
    assert!(local.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&local.stdout)
    );
    assert!(out.stdout.starts_with(prompt.as_bytes()));

    // Five requests sent at once each get their own id (from their receipt's event),
    // and a prompt over the context ends in the error outcome, reported as such.
    let sent: Vec<_> = (0..5)
        .map(|i| {
            oracle()
                .args(["request", "--prompt", &format!("Lily had {i} cats")])
                .arg("--state-file")
                .arg(&state)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids: Vec<u64> = sent
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "distinct request ids: {ids:?}");
    let too_long = "the cat sat on the mat and ".repeat(200);
    let out = oracle()
        .args([
            "request",
            "--wait",
            "--timeout",
            "120",
            "--prompt",
            &too_long,
        ])
        .arg("--state-file")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the error outcome exits non-zero");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rejected by the model") && err.contains("InvalidInput"),
        "{err}"
    );
    drop(net.proc);
}

/// `oracle run`'s text for `prompt`.
fn run_text(model: &std::path::Path, prompt: &str) -> String {
    let local = oracle()
        .args(["run", "--steps", "16", "--prompt", prompt])
        .arg("--model")
        .arg(model)
        .output()
        .unwrap();
    assert_success(&local, "oracle run");
    String::from_utf8(local.stdout).unwrap()
}

/// `oracle devnet --liar --http`: a dishonest operator races the honest one with
/// wrong outputs, and requests are asked from the web console in headless
/// Chromium. Which operator may submit first follows the turn order
/// (keccak(request id, operator)): on a fresh devnet the honest operator leads for
/// requests 1 and 2 and the liar for request 3. So request 1, asked from the page,
/// is delivered undisputed; request 2 goes through `oracle request`; request 3,
/// asked from the page, is won by the liar, challenged by the validator and played
/// out while the page shows the game move by move (both players, their clocks and
/// gas), and the true result is delivered. Every delivered text is `oracle run`'s,
/// and the databases record the mismatch and the games (the liar's lost).
#[test]
fn a_lying_operator_on_the_devnet_is_caught_and_the_true_result_delivered() {
    let http = format!("127.0.0.1:{}", common::free_port());
    let wasm = oracle_tests::wasm_module();
    let ask = oracle_tests::console_module();
    let net = Devnet::start(&[
        "--challenge-window",
        "4",
        "--steps",
        "16",
        "--liar",
        "--http",
        &http,
        "--console-wasm",
        wasm.to_str().unwrap(),
        "--console-ask",
        ask.to_str().unwrap(),
    ]);
    let (model, state, data) = (
        net.model.clone(),
        net.state.clone(),
        net.dir.path().join("data"),
    );
    let url = format!("http://{http}/");
    let bless = std::env::var_os("ORACLE_BLESS").is_some();
    let shots_dir = tempfile::tempdir().unwrap();
    let shots = |final_shots: bool| {
        if bless && final_shots {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/console")
        } else {
            shots_dir.path().to_path_buf()
        }
    };

    // Request 1, from the page: the honest operator is first, nobody disputes.
    let prompt = "Once upon a time";
    let honest = ask_from_the_page(&url, prompt, &shots(false));
    assert_eq!(honest.id, "1");
    assert!(honest.fee.ends_with(" ETH"), "{}", honest.fee);
    assert_eq!(
        honest.delivered,
        run_text(&model, prompt),
        "the page shows oracle run's text"
    );
    assert!(
        !honest.seen.status.iter().any(|s| s == "disputed"),
        "{:?}",
        honest.seen
    );
    assert!(
        honest.seen.window.iter().any(|w| w.contains("ends in")),
        "{:?}",
        honest.seen
    );
    assert!(honest.games.is_empty() && honest.moves.is_empty());
    assert!(
        honest.verify.contains("result version 0's output hash"),
        "{}",
        honest.verify
    );

    // Request 2, by the CLI.
    let prompt = "Tom and his dog";
    let out = oracle()
        .args(["request", "--wait", "--timeout", "300", "--prompt", prompt])
        .arg("--state-file")
        .arg(&state)
        .output()
        .unwrap();
    assert_success(&out, "oracle request");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        run_text(&model, prompt)
    );

    // Request 3, from the page: the liar is first; the page shows the fraud proof.
    let prompt = "Lily saw a bird";
    let game = ask_from_the_page(&url, prompt, &shots(true));
    assert_eq!(game.id, "3");
    assert_eq!(
        game.delivered,
        run_text(&model, prompt),
        "the true result is delivered"
    );
    assert!(
        game.seen.status.iter().any(|s| s == "disputed")
            && game.seen.status.last().map(String::as_str) == Some("finalized"),
        "{:?}",
        game.seen
    );
    // Watched live: the move table grew while the game was played.
    let grew: Vec<usize> = game.seen.moves.iter().copied().filter(|&n| n > 0).collect();
    assert!(
        grew.len() >= 2 && grew.windows(2).all(|w| w[0] < w[1]),
        "{:?}",
        game.seen
    );
    let player = |row: &Vec<String>| row[1].clone();
    assert!(game
        .moves
        .iter()
        .any(|m| player(m) == "validator (challenger)"));
    assert!(game.moves.iter().any(|m| player(m) == "liar (defender)"));
    assert!(
        game.moves.iter().any(|m| m[2] == "positions")
            && game.moves.iter().any(|m| m[2] == "steps")
    );
    // The range only shrinks, board by board, in the order shown.
    let width = |m: &Vec<String>| -> u64 {
        let (lo, hi) = m[3].split(' ').next().unwrap().split_once("..").unwrap();
        hi.parse::<u64>().unwrap() - lo.parse::<u64>().unwrap()
    };
    for pair in game.moves.windows(2) {
        if pair[0][2] == pair[1][2] {
            assert!(width(&pair[0]) >= width(&pair[1]), "{:?}", game.moves);
        }
    }
    assert!(
        game.gas.contains("challenger") && game.gas.contains("defender"),
        "{}",
        game.gas
    );
    let states: Vec<(&str, &str)> = game
        .games
        .iter()
        .map(|g| (g[2].as_str(), g[4].as_str()))
        .collect();
    assert!(
        states
            .iter()
            .any(|(p, s)| p.starts_with("liar") && *s == "Lost"),
        "{states:?}"
    );
    // The list view: the liar's bond was slashed once, the honest operator's never;
    // the model's program hash and fee come from the chain; the node's figures.
    let operator = |prefix: &str| {
        game.operators
            .iter()
            .find(|o| o[0].starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {:?}", game.operators))
            .clone()
    };
    let (liar, honest) = (operator("0x15d34aaf"), operator("0x70997970"));
    assert_eq!((liar[3].as_str(), liar[4].as_str()), ("1", "1"), "{liar:?}");
    assert_eq!(honest[4], "0", "{honest:?}");
    assert!(game.models[0][6].starts_with("0x") && game.models[0][7].ends_with(" ETH"));
    assert!(game
        .figures
        .iter()
        .any(|f| f[0] == "oracle_disputes_total{outcome=\"lost\"}" && f[1] == "1"));
    let result = game.chain.iter().find(|r| r[0] == "result").unwrap();
    assert!(
        result[1].starts_with("version 1 by "),
        "the validator's result replaced the lie: {result:?}"
    );
    drop(net.proc);
    let status = |db: &str| {
        let out = oracle()
            .args(["status", "--list", "--db"])
            .arg(data.join(db))
            .output()
            .unwrap();
        assert_success(&out, "oracle status");
        String::from_utf8(out.stdout).unwrap()
    };
    let validator = status("validator.redb");
    let figure = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(
        figure(&validator, "mismatches") >= 1 && figure(&validator, "disputes") >= 1,
        "the liar's results were challenged: {validator}"
    );
    // The validator's moves, in order: phase 1 over positions, then the VM steps of
    // the disputed transition.
    assert!(
        validator.lines().any(|l| l.starts_with("dispute ")
            && l.contains("challenging")
            && l.contains("positions 0..")
            && l.contains("steps ")),
        "{validator}"
    );
    let liar = status("liar.redb");
    assert!(figure(&liar, "disputes") >= 1, "the liar played: {liar}");
}
