//! Differential test, Rust vs Solidity, on every step: the fast VM, the Rust witness
//! verifier and `RISCV.step` running in revm agree on every post-state hash of every
//! conformance program and of random programs; random single instructions agree;
//! tampered witnesses revert in the EVM with the code the Rust verifier reports.

mod common;
mod evm;

use common::{assemble, assemble_text, load, programs, random_program, request_oracle, Rng};
use evm::{Entry, Evm, GasTable, Outcome};
use oracle_fpvm::layout::{proof as poff, state as off, syscall};
use oracle_fpvm::memory::Memory;
use oracle_fpvm::preimage::{keccak_key, local_key};
use oracle_fpvm::state::{state_hash, CpuState};
use oracle_fpvm::witness::{insn_class, prove_step, Witness};
use oracle_fpvm::{step_from_witness_with_oracle, Vm, VmError};
use std::collections::BTreeSet;

/// Every class `witness::insn_class` can return for an executed step.
pub const ALL_CLASSES: [&str; 20] = [
    "lui",
    "auipc",
    "jal",
    "jalr",
    "branch",
    "load",
    "store",
    "alu-imm",
    "alu",
    "mul",
    "div",
    "fence",
    "ecall-exit",
    "ecall-write",
    "ecall-preimage-set-key",
    "ecall-preimage-read",
    "ecall-commit-output",
    "ecall-unknown",
    "ebreak",
    "invalid",
];

/// Steps `vm` to its end (or `max`): for each step the EVM's post-state hash must
/// equal the Rust witness verifier's and the fast VM's. Records classes and gas.
fn lockstep(
    evm: &mut Evm,
    vm: &mut Vm,
    max: u64,
    what: &str,
    classes: &mut BTreeSet<&'static str>,
    gas: &mut GasTable,
) {
    let oracle = vm.oracle().clone();
    while !vm.halted() && vm.cpu.step < max {
        let w = prove_step(vm).expect("prove");
        let insn = if vm.cpu.pc & 3 == 0 {
            vm.mem.load_u32(vm.cpu.pc)
        } else {
            0
        };
        let class = insn_class(&vm.cpu, insn);
        classes.insert(class);
        let rust = step_from_witness_with_oracle(&w.state, &w.proof, Some(oracle.as_ref()))
            .unwrap_or_else(|e| panic!("{what}: step {} witness rejected: {e}", vm.cpu.step));
        let out = evm.step(&w);
        let step = vm.cpu.step;
        vm.step().expect("host error");
        let fast = vm.state_hash();
        assert_eq!(rust, fast, "{what}: Rust witness vs fast VM at step {step}");
        assert_eq!(
            out.post(&format!("{what} step {step} ({class})")),
            fast,
            "{what}: EVM vs Rust at step {step} ({class}, insn {insn:#010x})"
        );
        if let Outcome::Ok { gas: g, .. } = out {
            gas.add(class, g);
        }
    }
    if vm.halted() {
        // The halted state is a fixed point in the EVM too.
        let w = prove_step(vm).expect("prove");
        let enc: &[u8; off::SIZE] = w.state.as_slice().try_into().unwrap();
        assert_eq!(evm.step(&w).post(what), state_hash(enc), "{what}: halted");
    }
}

#[test]
fn every_step_of_conformance_programs_matches_evm() {
    let mut evm = Evm::new();
    evm.load_request(request_oracle().as_ref());
    let mut classes = BTreeSet::new();
    let mut gas = GasTable::default();
    let mut steps = 0;
    for p in programs() {
        let mut vm = load(&assemble(&p.src, &format!("evm-{}", p.name)));
        lockstep(
            &mut evm,
            &mut vm,
            2_000_000,
            &p.name,
            &mut classes,
            &mut gas,
        );
        steps += vm.cpu.step;
    }
    // Every opcode class and every syscall (and every panic path) ran in the EVM.
    for c in ALL_CLASSES {
        assert!(classes.contains(c), "class {c} never ran in the EVM");
    }
    println!(
        "{steps} steps of the conformance programs agree\n{}",
        gas.markdown()
    );
}

#[test]
fn every_step_of_random_programs_matches_evm() {
    let mut evm = Evm::new();
    evm.load_request(request_oracle().as_ref());
    let (mut classes, mut gas) = (BTreeSet::new(), GasTable::default());
    for seed in 200..206 {
        let elf = assemble_text(&random_program(seed, 300), &format!("evm-random-{seed}"));
        lockstep(
            &mut evm,
            &mut load(&elf),
            100_000,
            &format!("random seed {seed}"),
            &mut classes,
            &mut gas,
        );
    }
}

const CODE: u32 = 0x0001_0000;
const DATA: u32 = 0x0002_0000;

/// A valid rv32im instruction word of a random kind with random fields.
fn random_valid_insn(r: &mut Rng) -> u32 {
    let rd = r.below(32) as u32;
    let rs1 = r.below(32) as u32;
    let rs2 = r.below(32) as u32;
    let f3 = r.below(8) as u32;
    let imm12 = r.below(4096) as u32;
    let hi = (r.next_u64() as u32) & 0xffff_f000;
    match r.below(12) {
        0 => hi | rd << 7 | 0x37,
        1 => hi | rd << 7 | 0x17,
        2 => (r.next_u64() as u32 & 0xffff_f000) | rd << 7 | 0x6f,
        3 => imm12 << 20 | rs1 << 15 | rd << 7 | 0x67,
        4 => {
            let f = *r.pick(&[0u32, 1, 4, 5, 6, 7]);
            (r.next_u64() as u32 & 0xfe00_0f80) | rs2 << 20 | rs1 << 15 | f << 12 | 0x63
        }
        5 => {
            let f = *r.pick(&[0u32, 1, 2, 4, 5]);
            imm12 << 20 | rs1 << 15 | f << 12 | rd << 7 | 0x03
        }
        6 => {
            let f = *r.pick(&[0u32, 1, 2]);
            (imm12 >> 5) << 25 | rs2 << 20 | rs1 << 15 | f << 12 | (imm12 & 31) << 7 | 0x23
        }
        7 => {
            let f = *r.pick(&[0u32, 2, 3, 4, 6, 7]);
            imm12 << 20 | rs1 << 15 | f << 12 | rd << 7 | 0x13
        }
        8 => {
            let (f7, f) = *r.pick(&[(0u32, 1u32), (0, 5), (0x20, 5)]);
            f7 << 25 | (imm12 & 31) << 20 | rs1 << 15 | f << 12 | rd << 7 | 0x13
        }
        9 => {
            let f7 = *r.pick(&[0u32, 1, 0x20]);
            let f = if f7 == 0x20 { *r.pick(&[0u32, 5]) } else { f3 };
            f7 << 25 | rs2 << 20 | rs1 << 15 | f << 12 | rd << 7 | 0x33
        }
        10 => 0x0ff0_000f,
        _ => 0x73,
    }
}

fn random_reg(r: &mut Rng) -> u32 {
    match r.below(6) {
        0 => DATA + r.below(8192) as u32,
        1 => (DATA + r.below(8192) as u32) & !3,
        2 => r.below(0x1100) as u32,
        3 => *r.pick(&[0, 1, 0xffff_ffff, 0x8000_0000, 0x7fff_ffff, 0xffff_fffc]),
        _ => r.next_u64() as u32,
    }
}

/// Property test: random sequences of valid instructions (and some random words)
/// from random registers; each step, Rust (fast and witness) vs the Solidity step.
#[test]
fn random_instruction_sequences_match_evm() {
    let oracle = request_oracle();
    let mut evm = Evm::new();
    evm.load_request(oracle.as_ref());
    let mut r = Rng(0xe7e7);
    let keys = [
        local_key(1),
        local_key(2),
        local_key(3),
        keccak_key(common::REQUEST_INPUT),
    ];
    let mut classes = BTreeSet::new();
    let mut checked = 0;
    for seq in 0..1500u64 {
        let mut vm = Vm::new(CpuState::default(), Memory::new(), oracle.clone());
        vm.cpu.pc = CODE + 4 * r.below(1024) as u32;
        vm.cpu.step = seq << 20;
        for reg in 1..32 {
            vm.cpu.regs[reg] = random_reg(&mut r);
        }
        vm.cpu.preimage_key = *r.pick(&keys);
        vm.cpu.preimage_offset = r.below(120) as u32;
        for k in 0..16 {
            let a = DATA + 4 * r.below(2048) as u32;
            vm.mem.store_u32(a, r.next_u64() as u32 ^ k);
        }
        // A straight-line sequence at pc (jumps and branches may leave it: the code
        // there reads as zero, an invalid instruction, which ends the sequence).
        let len = 8 + r.below(24) as u32;
        for i in 0..len {
            let insn = if r.below(20) == 0 {
                r.next_u64() as u32
            } else {
                random_valid_insn(&mut r)
            };
            vm.mem.store_u32(vm.cpu.pc.wrapping_add(4 * i), insn);
        }
        for _ in 0..len {
            if vm.halted() {
                break;
            }
            if r.below(3) == 0 {
                vm.cpu.regs[17] = *r.pick(&[
                    syscall::EXIT,
                    syscall::WRITE,
                    syscall::PREIMAGE_SET_KEY,
                    syscall::PREIMAGE_READ,
                    syscall::COMMIT_OUTPUT,
                ]);
            }
            let w = prove_step(&mut vm).expect("all keys are known");
            let insn = vm.mem.load_u32(vm.cpu.pc & !3);
            classes.insert(insn_class(&vm.cpu, insn));
            let out = evm.step(&w);
            match vm.step() {
                Ok(()) => {}
                Err(VmError::MissingPreimage(_)) => unreachable!("all keys are known"),
                Err(e) => panic!("host error {e}"),
            }
            assert_eq!(
                out.post("random sequence"),
                vm.state_hash(),
                "seq {seq}: insn {insn:#010x} state {}",
                hex::encode(&w.state)
            );
            checked += 1;
        }
    }
    println!("{checked} random steps agree");
    assert!(checked > 4000, "only {checked} steps");
    for c in [
        "alu", "mul", "div", "load", "store", "branch", "jal", "jalr",
    ] {
        assert!(classes.contains(c), "class {c} not generated");
    }
}

/// The witness of the first step of `program` whose class is `class`, and the
/// EVM with the request's local data.
fn witness_of(program: &str, class: &str) -> (Witness, Vm) {
    let p = programs()
        .into_iter()
        .find(|p| p.name == program)
        .expect("program");
    let mut vm = load(&assemble(&p.src, &format!("evm-t-{program}")));
    loop {
        assert!(!vm.halted(), "{program}: no {class} step");
        let insn = vm.mem.load_u32(vm.cpu.pc);
        if insn_class(&vm.cpu, insn) == class {
            return (prove_step(&mut vm).expect("prove"), vm);
        }
        vm.step().expect("host error");
    }
}

/// Runs a (tampered) witness in Rust and in the EVM: both reject it with `code`.
fn both_reject(evm: &mut Evm, state: &[u8], proof: &[u8], code: u8, what: &str) {
    let oracle = request_oracle();
    let rust = step_from_witness_with_oracle(state, proof, Some(oracle.as_ref()));
    assert_eq!(
        rust.as_ref().map_err(|e| e.code()),
        Err(code),
        "{what}: Rust"
    );
    assert_eq!(
        evm.step_raw(Entry::WithOracle, state, proof),
        Outcome::Revert(code),
        "{what}: EVM"
    );
}

#[test]
fn tampered_witnesses_revert_with_the_rust_codes() {
    let mut evm = Evm::new();
    evm.load_request(request_oracle().as_ref());

    // 1: bad state length; 3: short proof.
    let (w, _) = witness_of("lw", "load");
    both_reject(&mut evm, &w.state[1..], &w.proof, 1, "short state");
    let mut long = w.state.clone();
    long.push(0);
    both_reject(&mut evm, &long, &w.proof, 1, "long state");
    both_reject(
        &mut evm,
        &w.state,
        &w.proof[..poff::PREIMAGE - 1],
        3,
        "short proof",
    );

    // 4 and 5: a flipped bit in the instruction proof, the data proof, or their leaves.
    for (at, code) in [
        (poff::INSN_PROOF + 3, 4),
        (poff::INSN_PROOF + 32 * 9, 4),
        (poff::DATA_PROOF + 5, 5),
        (poff::DATA_PROOF + 32 * 20 + 7, 5),
    ] {
        let mut p = w.proof.clone();
        p[at] ^= 1;
        both_reject(&mut evm, &w.state, &p, code, &format!("flip at {at}"));
    }
    // A store's data proof too.
    let (ws, _) = witness_of("sw", "store");
    let mut p = ws.proof.clone();
    p[poff::DATA_PROOF + 32 * 3] ^= 0x80;
    both_reject(&mut evm, &ws.state, &p, 5, "store data proof");
    // A changed memory root in the state: both proofs fail, the instruction first.
    let mut s = w.state.clone();
    s[off::MEM_ROOT] ^= 1;
    both_reject(&mut evm, &s, &w.proof, 4, "other root");

    // 2: the pre-state of another step against the claim (verifyStep).
    let (w2, mut vm) = witness_of("lw", "load");
    let pre = vm.state_hash();
    let ok = evm.verify_step(pre, &w2.state, &w2.proof);
    vm.step().expect("host error");
    assert_eq!(ok.post("verifyStep"), vm.state_hash());
    let mut other = pre;
    other[31] ^= 1;
    assert_eq!(
        evm.verify_step(other, &w2.state, &w2.proof),
        Outcome::Revert(2)
    );

    // 6, 7, 8: preimage reads of a keccak key and of a local key.
    let (wr, vm) = witness_of("preimage", "ecall-preimage-read");
    let key_type = vm.cpu.preimage_key[0];
    assert!(
        wr.proof.len() > poff::PREIMAGE,
        "the read carries its preimage"
    );
    let mut p = wr.proof.clone();
    *p.last_mut().unwrap() ^= 1;
    both_reject(&mut evm, &wr.state, &p, 6, "tampered preimage");
    let mut p = wr.proof.clone();
    p.push(0);
    both_reject(&mut evm, &wr.state, &p, 6, "longer preimage");
    let mut s = wr.state.clone();
    s[off::PREIMAGE_KEY] = 3;
    both_reject(&mut evm, &s, &wr.proof, 8, "key type 3");
    s[off::PREIMAGE_KEY] = 0;
    both_reject(&mut evm, &s, &wr.proof, 8, "key type 0");
    // The other key type than the first read's: find a read of each.
    let p = programs()
        .into_iter()
        .find(|p| p.name == "preimage")
        .unwrap();
    let mut vm = load(&assemble(&p.src, "evm-t-preimage-all"));
    let mut seen = BTreeSet::new();
    while !vm.halted() {
        let insn = vm.mem.load_u32(vm.cpu.pc);
        if insn_class(&vm.cpu, insn) == "ecall-preimage-read" && seen.insert(vm.cpu.preimage_key[0])
        {
            let w = prove_step(&mut vm).expect("prove");
            let mut bad = w.proof.clone();
            bad[poff::PREIMAGE] ^= 0x40;
            both_reject(
                &mut evm,
                &w.state,
                &bad,
                6,
                "tampered preimage of each key type",
            );
            let plain = evm.step_raw(Entry::Plain, &w.state, &w.proof);
            if vm.cpu.preimage_key[0] == 1 {
                // Without the oracle a local key cannot be checked (7), in Rust too.
                assert_eq!(plain, Outcome::Revert(7));
                assert_eq!(
                    oracle_fpvm::step_from_witness(&w.state, &w.proof).map_err(|e| e.code()),
                    Err(7)
                );
            } else {
                assert!(matches!(plain, Outcome::Ok { .. }));
            }
        }
        vm.step().expect("host error");
    }
    assert_eq!(
        seen,
        BTreeSet::from([1u8, 2]),
        "reads of both key types, first was {key_type}"
    );

    // A local key of another dispute (context) is not this dispute's data.
    let mut other_ctx = Evm::new();
    other_ctx.load_local(1, &[0x22; 32]);
    other_ctx.load_local(2, &oracle_fpvm::hash::keccak256(b"another input"));
    other_ctx.load_local(3, b"greedy");
    let mut vm = load(&assemble(&p.src, "evm-t-preimage-ctx"));
    let mut rejected = 0;
    while !vm.halted() {
        let insn = vm.mem.load_u32(vm.cpu.pc);
        if insn_class(&vm.cpu, insn) == "ecall-preimage-read" && vm.cpu.preimage_key[0] == 1 {
            let w = prove_step(&mut vm).expect("prove");
            // Other data for this dispute.
            assert_eq!(other_ctx.step(&w), Outcome::Revert(6));
            // The right data, but written for another dispute.
            evm.local_context = [0x77; 32];
            assert_eq!(evm.step(&w), Outcome::Revert(6));
            evm.local_context = evm::LOCAL_CONTEXT;
            assert!(matches!(evm.step(&w), Outcome::Ok { .. }));
            rejected += 1;
        }
        vm.step().expect("host error");
    }
    assert!(rejected > 0);

    // A halted state needs no proof at all.
    let mut halted = w.state.clone();
    halted[off::STATUS] = 1;
    let enc: &[u8; off::SIZE] = halted.as_slice().try_into().unwrap();
    assert_eq!(
        evm.step_raw(Entry::Plain, &halted, &[]).post("halted"),
        state_hash(enc)
    );
}
