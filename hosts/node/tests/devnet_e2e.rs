//! End to end on a real chain: `oracle devnet` (anvil from npm, the contracts, the
//! operator with VM claims) serves `oracle request` through the Prompt contract,
//! and the result delivered by the callback equals `oracle run` byte for byte.

mod common;

use common::{assert_success, oracle, start_devnet};
use oracle_core::quant::QType;
use oracle_tests::LLAMA_FIXTURES;

#[test]
fn a_prompt_request_is_served_finalized_and_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.bin");
    std::fs::write(&model, LLAMA_FIXTURES[0].model_file(QType::Q8)).unwrap();
    let guest = dir.path().join("guest.elf");
    std::fs::write(&guest, oracle_tests::guest_elf()).unwrap();
    let state = dir.path().join("devnet.json");

    let devnet = start_devnet(
        oracle()
            .args([
                "devnet",
                "--port",
                "0",
                "--challenge-window",
                "2",
                "--steps",
                "24",
            ])
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
    drop(devnet);
}

/// `oracle devnet --liar`: a dishonest operator races the honest one with wrong
/// outputs. Whatever it wins is challenged by the validator and played out: every
/// request still delivers `oracle run`'s text (so each game the liar played, which
/// its database records, it lost), and the validator's database records the
/// mismatches and games.
#[test]
fn a_lying_operator_on_the_devnet_is_caught_and_the_true_result_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.bin");
    std::fs::write(&model, LLAMA_FIXTURES[0].model_file(QType::Q8)).unwrap();
    let guest = dir.path().join("guest.elf");
    std::fs::write(&guest, oracle_tests::guest_elf()).unwrap();
    let state = dir.path().join("devnet.json");
    let data = dir.path().join("data");
    let devnet = start_devnet(
        oracle()
            .args([
                "devnet",
                "--port",
                "0",
                "--challenge-window",
                "4",
                "--steps",
                "16",
                "--liar",
            ])
            .arg("--model")
            .arg(&model)
            .arg("--guest")
            .arg(&guest)
            .arg("--state-file")
            .arg(&state)
            .arg("--data-dir")
            .arg(&data),
        &state,
    );
    for prompt in ["Once upon a time", "Tom and his dog", "Lily saw a bird"] {
        let out = oracle()
            .args(["request", "--wait", "--timeout", "300", "--prompt", prompt])
            .arg("--state-file")
            .arg(&state)
            .output()
            .unwrap();
        assert_success(&out, "oracle request");
        let local = oracle()
            .args(["run", "--steps", "16", "--prompt", prompt])
            .arg("--model")
            .arg(&model)
            .output()
            .unwrap();
        assert!(local.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&local.stdout),
            "the true result is delivered"
        );
    }
    drop(devnet);
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
