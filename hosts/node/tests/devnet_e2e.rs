//! End to end on a real chain: `oracle devnet` (anvil from npm, the contracts, the
//! operator with VM claims) serves `oracle request` through the Prompt contract,
//! and the result delivered by the callback equals `oracle run` byte for byte.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oracle_core::quant::QType;
use oracle_tests::LLAMA_FIXTURES;

fn oracle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oracle"))
}

/// Stops the devnet with Ctrl-C (SIGINT) so it shuts anvil down, even on failure.
struct Devnet(Child);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

#[test]
fn a_prompt_request_is_served_finalized_and_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.bin");
    std::fs::write(&model, LLAMA_FIXTURES[0].model_file(QType::Q8)).unwrap();
    let guest = dir.path().join("guest.elf");
    std::fs::write(&guest, oracle_tests::guest_elf()).unwrap();
    let state = dir.path().join("devnet.json");

    let child = oracle()
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
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .spawn()
        .expect("starting oracle devnet");
    let mut devnet = Devnet(child);
    let started = Instant::now();
    while !state.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the devnet did not come up"
        );
        assert!(
            devnet.0.try_wait().unwrap().is_none(),
            "oracle devnet exited early"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let prompt = "Once upon a time";
    let out = oracle()
        .args(["request", "--wait", "--timeout", "120", "--prompt", prompt])
        .arg("--state-file")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

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
    drop(devnet);
}
