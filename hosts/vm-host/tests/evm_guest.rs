//! Differential test on the real guest: a stories260K W8 request ("Once upon a time",
//! 24 greedy positions) runs in the fast VM, and every step of these windows goes
//! through `RISCV.step` in revm, whose post-state hash must equal the Rust VM's: the
//! first 20,000 steps, 500 steps at 6 seeded random offsets, 500 steps around the
//! output commitment, and the last 500 steps up to the exit. Prints the gas per
//! instruction class of those steps.

// The VM's test helpers (assembling the conformance programs), shared with hosts/fpvm.
#[path = "../../fpvm/tests/common/mod.rs"]
mod common;
// The Solidity twin in revm, shared with hosts/fpvm's differential tests.
#[path = "../../fpvm/tests/evm/mod.rs"]
mod evm;

use std::sync::Arc;

use common::Rng;
use evm::{Evm, GasTable, Outcome};
use oracle_core::quant::QType;
use oracle_core::{Request, SamplingParams};
use oracle_fpvm::layout::syscall;
use oracle_fpvm::witness::{insn_class, prove_step};
use oracle_fpvm::{step_from_witness_with_oracle, SharedOracle, Vm};
use oracle_tests::{guest_elf, LLAMA_FIXTURES};
use oracle_vm_host::guest_oracle;
use std::collections::BTreeSet;

/// Steps `vm` until `end` (or its halt), each step checked in the EVM.
fn window(
    evm: &mut Evm,
    vm: &mut Vm,
    end: u64,
    classes: &mut BTreeSet<&'static str>,
    gas: &mut GasTable,
) -> u64 {
    let oracle = vm.oracle().clone();
    let mut n = 0;
    while !vm.halted() && vm.cpu.step < end {
        let w = prove_step(vm).expect("prove");
        let insn = vm.mem.load_u32(vm.cpu.pc & !3);
        let class = insn_class(&vm.cpu, insn);
        classes.insert(class);
        let step = vm.cpu.step;
        let out = evm.step(&w);
        let rust = step_from_witness_with_oracle(&w.state, &w.proof, Some(oracle.as_ref()))
            .unwrap_or_else(|e| panic!("guest step {step}: witness rejected: {e}"));
        vm.step().expect("host error");
        let fast = vm.state_hash();
        assert_eq!(rust, fast, "guest step {step}: Rust witness vs fast VM");
        assert_eq!(
            out.post(&format!("guest step {step} ({class})")),
            fast,
            "guest step {step}: EVM vs Rust ({class}, insn {insn:#010x})"
        );
        if let Outcome::Ok { gas: g, .. } = out {
            gas.add(class, g);
        }
        n += 1;
    }
    n
}

#[test]
fn guest_steps_match_evm() {
    let elf = guest_elf();
    let model = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let request = Request::text(b"Once upon a time", 24, SamplingParams::GREEDY);
    let oracle: SharedOracle = Arc::new(guest_oracle(&model, &request));

    // The length of the whole run, in fast mode.
    let mut vm = Vm::from_elf(&elf, oracle.clone()).expect("guest loads");
    let mut commit_at = None;
    while !vm.halted() {
        if vm.cpu.regs[17] == syscall::COMMIT_OUTPUT && vm.mem.load_u32(vm.cpu.pc & !3) == 0x73 {
            commit_at = Some(vm.cpu.step);
        }
        vm.step().expect("runs");
    }
    let total = vm.cpu.step;
    let commit_at = commit_at.expect("the guest commits its output");
    assert_eq!((vm.cpu.status, vm.cpu.exit_code), (1, 0), "guest exits 0");

    let mut evm = Evm::new();
    evm.load_request(oracle.as_ref());
    let (mut classes, mut gas) = (BTreeSet::new(), GasTable::default());
    let mut vm = Vm::from_elf(&elf, oracle.clone()).expect("guest loads");

    // The first 20,000 steps.
    let mut checked = window(&mut evm, &mut vm, 20_000, &mut classes, &mut gas);
    assert_eq!(checked, 20_000);

    // Windows of 500 steps at seeded random offsets, then the last 500 steps.
    let mut r = Rng(0x6e57);
    let mut starts: Vec<u64> = (0..6).map(|_| 20_000 + r.below(total - 21_000)).collect();
    starts.push(commit_at.saturating_sub(250).max(20_000));
    starts.push(total - 500);
    starts.sort_unstable();
    for start in &starts {
        if *start > vm.cpu.step {
            vm.run(*start).expect("runs");
        }
        checked += window(&mut evm, &mut vm, start + 500, &mut classes, &mut gas);
    }
    assert!(vm.halted(), "the last window ends with the exit");
    for c in [
        "load",
        "store",
        "alu",
        "alu-imm",
        "branch",
        "mul",
        "jal",
        "jalr",
        "ecall-preimage-set-key",
        "ecall-preimage-read",
        "ecall-commit-output",
        "ecall-exit",
    ] {
        assert!(
            classes.contains(c),
            "class {c} never ran in the guest windows"
        );
    }
    println!(
        "stories260K guest: {total} steps in all; {checked} checked in the EVM (windows at {starts:?})\n{}",
        gas.markdown()
    );
}
