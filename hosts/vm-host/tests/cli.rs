//! The `fpvm` command line: run, state-at, prove agree with each other.

// The VM's test helpers (assembling the conformance programs), shared with hosts/fpvm.
#[path = "../../fpvm/tests/common/mod.rs"]
mod common;

use common::{asm_dir, assemble};
use oracle_fpvm::abi::decode_two_bytes;
use oracle_fpvm::state::state_hash;
use oracle_fpvm::step_from_witness;
use std::path::Path;
use std::process::{Command, Output};

fn fpvm(args: &[&str], elf: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fpvm"))
        .args(&args[..1])
        .arg("--elf")
        .arg(elf)
        .args(&args[1..])
        .output()
        .expect("run fpvm")
}

fn hex_out(o: &Output) -> Vec<u8> {
    assert!(
        o.status.success(),
        "fpvm failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = String::from_utf8_lossy(&o.stdout);
    hex::decode(s.trim().trim_start_matches("0x")).expect("hex output")
}

#[test]
fn run_prints_debug_output_and_status() {
    let elf = assemble(&asm_dir().join("ecall_write.S"), "cli-write");
    let o = fpvm(&["run"], &elf);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(out.starts_with("hello\n"), "stdout: {out:?}");
    assert!(err.contains("status: exited code 0"), "stderr: {err}");
    assert!(
        err.contains("MIPS") && err.contains("state hash: 0x"),
        "stderr: {err}"
    );

    let o = fpvm(&["run", "--steps-max", "10"], &elf);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("steps: 10") && err.contains("step limit"),
        "stderr: {err}"
    );
}

#[test]
fn a_program_that_fails_makes_run_fail() {
    let elf = assemble(&asm_dir().join("exit_code.S"), "cli-exit");
    let o = fpvm(&["run"], &elf);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "exit 42 reported as success: {err}");
    assert!(err.contains("exited code 42"), "stderr: {err}");

    // An ebreak is undefined behaviour here: the VM halts with PANICKED.
    let elf = assemble(&asm_dir().join("panic_ebreak.S"), "cli-panic");
    let o = fpvm(&["run"], &elf);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a panic reported as success: {err}");
    assert!(err.contains("panicked"), "stderr: {err}");
}

#[test]
fn prove_matches_state_at() {
    let elf = assemble(&asm_dir().join("sw.S"), "cli-prove");
    for n in [0u64, 5, 40] {
        let pre = hex_out(&fpvm(
            &[
                "state-at",
                "--step",
                &n.to_string(),
                "--checkpoint-interval",
                "7",
            ],
            &elf,
        ));
        let post = hex_out(&fpvm(&["state-at", "--step", &(n + 1).to_string()], &elf));
        let (state, proof) =
            decode_two_bytes(&hex_out(&fpvm(&["prove", "--step", &n.to_string()], &elf)))
                .expect("ABI witness");
        assert_eq!(state, pre, "state of step {n}");
        let post: [u8; 245] = post.try_into().expect("245-byte state");
        assert_eq!(step_from_witness(&state, &proof), Ok(state_hash(&post)));
    }
    let cd = hex_out(&fpvm(&["prove", "--step", "3", "--calldata"], &elf));
    assert_eq!(
        &cd[..4],
        &oracle_fpvm::hash::keccak256(b"step(bytes,bytes)")[..4]
    );
}

#[test]
fn bad_elf_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.elf");
    std::fs::write(&f, b"\x7fELF\x02garbage").unwrap();
    let o = fpvm(&["run"], &f);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ELF"));
}

#[test]
fn witnesses_are_json_test_vectors() {
    let elf = assemble(&asm_dir().join("preimage.S"), "cli-vectors");
    let o = Command::new(env!("CARGO_BIN_EXE_fpvm"))
        .args(["witnesses", "--elf"])
        .arg(&elf)
        .args(["--count", "100000", "--input"])
        .arg(std::str::from_utf8(common::REQUEST_INPUT).unwrap())
        .output()
        .expect("run fpvm");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let items = v.as_array().expect("array");
    assert!(items.len() > 100);
    let oracle = common::request_oracle();
    let mut classes = std::collections::BTreeSet::new();
    for it in items {
        let h = |k: &str| hex::decode(it[k].as_str().unwrap().trim_start_matches("0x")).unwrap();
        let post = oracle_fpvm::step_from_witness_with_oracle(
            &h("state"),
            &h("proof"),
            Some(oracle.as_ref()),
        );
        assert_eq!(
            post.map(|p| p.to_vec()),
            Ok(h("post")),
            "step {}",
            it["step"]
        );
        classes.insert(it["class"].as_str().unwrap().to_string());
    }
    for c in [
        "ecall-preimage-read",
        "ecall-preimage-set-key",
        "ecall-commit-output",
        "ecall-exit",
        "halted",
    ] {
        assert!(classes.contains(c), "class {c} missing");
    }
}
