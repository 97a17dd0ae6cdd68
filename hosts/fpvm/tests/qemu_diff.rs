//! Differential test against an independent implementation: Debian's
//! `qemu-riscv32` (Linux user mode). The conformance programs and seeded random
//! rv32im programs run on both; each dumps x1..x31 and a 256-byte memory region
//! through `write` and exits: the bytes written and the exit code must match.

mod common;

use common::{assemble, assemble_text, load, programs, random_program};
use oracle_fpvm::layout::status;
use std::path::Path;
use std::process::Command;

const QEMU: &str = "qemu-riscv32";

fn require_qemu() {
    let ok = Command::new(QEMU)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "`{QEMU}` not found: install Debian's `qemu-user` (apt-get install qemu-user, or run .ci/fpvm-install.sh)");
}

/// (stdout, exit code) under qemu.
fn run_qemu(elf: &Path) -> (Vec<u8>, i32) {
    let out = Command::new(QEMU)
        .arg(elf)
        .output()
        .expect("run qemu-riscv32");
    (out.stdout, out.status.code().unwrap_or(-1))
}

/// (debug output, exit code) on the fpvm; panics count as a mismatch.
fn run_fpvm(elf: &Path) -> (Vec<u8>, i32) {
    let mut vm = load(elf);
    vm.run(10_000_000).expect("host error");
    assert_eq!(
        vm.cpu.status,
        status::EXITED,
        "{}: fpvm did not exit (exit code {})",
        elf.display(),
        vm.cpu.exit_code
    );
    (vm.debug_output().to_vec(), vm.cpu.exit_code as i32)
}

fn dump_diff(a: &[u8], b: &[u8]) -> String {
    let words = |x: &[u8]| -> Vec<u32> {
        x.chunks(4)
            .map(|c| c.iter().rev().fold(0u32, |acc, &b| (acc << 8) | b as u32))
            .collect()
    };
    let (wa, wb) = (words(a), words(b));
    let mut s = String::new();
    for (i, (x, y)) in wa.iter().zip(&wb).enumerate() {
        if x != y {
            let what = if i < 32 {
                format!("x{i}")
            } else {
                format!("testdata+{}", 4 * (i - 32))
            };
            s += &format!("  {what}: fpvm {x:#010x} qemu {y:#010x}\n");
        }
    }
    if wa.len() != wb.len() {
        s += &format!("  lengths differ: {} vs {}\n", a.len(), b.len());
    }
    s
}

#[test]
fn conformance_programs_match_qemu() {
    require_qemu();
    let mut n = 0;
    for p in programs().into_iter().filter(|p| !p.fpvm_only) {
        let elf = assemble(&p.src, &format!("qemu-{}", p.name));
        let (q_out, q_code) = run_qemu(&elf);
        let (v_out, v_code) = run_fpvm(&elf);
        assert_eq!(q_code, v_code, "{}: exit code differs", p.name);
        assert!(
            q_out == v_out,
            "{}: output differs\n{}",
            p.name,
            dump_diff(&v_out, &q_out)
        );
        n += 1;
    }
    assert!(n >= 45, "only {n} programs compared");
}

#[test]
fn random_programs_match_qemu() {
    require_qemu();
    const PROGRAMS: u64 = 60;
    const LEN: usize = 400;
    for seed in 0..PROGRAMS {
        let text = random_program(seed, LEN);
        let elf = assemble_text(&text, &format!("random-{seed}"));
        let (q_out, q_code) = run_qemu(&elf);
        let (v_out, v_code) = run_fpvm(&elf);
        assert_eq!(q_code, v_code, "seed {seed}: exit code differs");
        assert_eq!(v_out.len(), 384, "seed {seed}: dump size");
        assert!(
            q_out == v_out,
            "seed {seed}: state differs\n{}",
            dump_diff(&v_out, &q_out)
        );
    }
}
