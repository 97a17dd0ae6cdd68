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
    for seq in 0..2500u64 {
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
    assert!(checked > 6000, "only {checked} steps");
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

/// The first witness of `class` in `program` (any program if `None`) whose VM state
/// satisfies `when`.
fn pick(program: Option<&str>, class: &str, when: impl Fn(&Vm) -> bool) -> Witness {
    for p in programs() {
        if program.is_some_and(|n| n != p.name) {
            continue;
        }
        let mut vm = load(&assemble(&p.src, &format!("evm-v-{}", p.name)));
        while !vm.halted() {
            let insn = vm.mem.load_u32(vm.cpu.pc & !3);
            if insn_class(&vm.cpu, insn) == class && when(&vm) {
                return prove_step(&mut vm).expect("prove");
            }
            vm.step().expect("host error");
        }
    }
    panic!("no {class} step in {program:?}");
}

/// A `PREIMAGE_READ` of 32 bytes from the middle of a 4 KiB keccak preimage (a model
/// chunk's size), into a leaf at offset 0: the most expensive step.
fn preimage_read_4k() -> Witness {
    let chunk: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut o = oracle_fpvm::InMemoryOracle::new();
    let key = o.insert_keccak(chunk);
    let mut vm = Vm::new(CpuState::default(), Memory::new(), std::sync::Arc::new(o));
    vm.cpu.pc = CODE;
    vm.mem.store_u32(CODE, 0x73);
    vm.cpu.regs[17] = syscall::PREIMAGE_READ;
    vm.cpu.regs[10] = DATA;
    vm.cpu.regs[11] = 32;
    vm.cpu.preimage_key = key;
    vm.cpu.preimage_offset = 2048;
    prove_step(&mut vm).expect("prove")
}

/// The gas vectors for the forge tests (contracts/test/vm/vectors/*.json): one
/// witness per instruction class, each with its post-state hash.
fn gas_vectors() -> Vec<(&'static str, &'static str, Witness)> {
    let any = |_: &Vm| true;
    let key_type = |t: u8| move |vm: &Vm| vm.cpu.preimage_key[0] == t;
    let mut v = vec![
        ("lui", "lui", pick(Some("lui"), "lui", any)),
        ("auipc", "auipc", pick(Some("auipc"), "auipc", any)),
        ("jal", "jal", pick(Some("jal"), "jal", any)),
        ("jalr", "jalr", pick(Some("jalr"), "jalr", any)),
        ("branch", "branch", pick(Some("beq"), "branch", any)),
        ("load_word", "load", pick(Some("lw"), "load", any)),
        ("load_byte", "load", pick(Some("lb"), "load", any)),
        ("store_word", "store", pick(Some("sw"), "store", any)),
        ("store_byte", "store", pick(Some("sb"), "store", any)),
        ("alu_imm", "alu-imm", pick(Some("addi"), "alu-imm", any)),
        ("alu", "alu", pick(Some("add"), "alu", any)),
        ("mul", "mul", pick(Some("mulh"), "mul", any)),
        ("div", "div", pick(Some("div"), "div", any)),
        ("fence", "fence", pick(Some("fence"), "fence", any)),
        (
            "ecall_write",
            "ecall-write",
            pick(Some("ecall_write"), "ecall-write", any),
        ),
        (
            "ecall_exit",
            "ecall-exit",
            pick(Some("exit_code"), "ecall-exit", any),
        ),
        (
            "preimage_set_key",
            "ecall-preimage-set-key",
            pick(Some("preimage"), "ecall-preimage-set-key", any),
        ),
        (
            "preimage_read_local",
            "ecall-preimage-read",
            pick(Some("preimage"), "ecall-preimage-read", key_type(1)),
        ),
        (
            "preimage_read_keccak",
            "ecall-preimage-read",
            pick(Some("preimage"), "ecall-preimage-read", key_type(2)),
        ),
        (
            "preimage_read_4k",
            "ecall-preimage-read",
            preimage_read_4k(),
        ),
        (
            "commit_output",
            "ecall-commit-output",
            pick(None, "ecall-commit-output", any),
        ),
        (
            "ecall_unknown",
            "ecall-unknown",
            pick(Some("panic_unknown_syscall"), "ecall-unknown", any),
        ),
        (
            "ebreak",
            "ebreak",
            pick(Some("panic_ebreak"), "ebreak", any),
        ),
        (
            "invalid",
            "invalid",
            pick(Some("panic_invalid_zero"), "invalid", any),
        ),
        (
            "misaligned_load",
            "load",
            pick(Some("panic_misaligned_lw"), "load", |vm: &Vm| {
                let insn = vm.mem.load_u32(vm.cpu.pc);
                let a = vm.cpu.regs[((insn >> 15) & 31) as usize]
                    .wrapping_add(oracle_fpvm::vm::imm_i(insn));
                a & 3 != 0
            }),
        ),
    ];
    let mut halted = v[15].2.clone();
    halted.state[off::STATUS] = 1;
    halted.proof.clear();
    v.push(("halted", "halted", halted));
    v
}

/// The local data of the conformance request, as the forge tests load it.
fn local_json() -> String {
    let oracle = request_oracle();
    let mut m = serde_json::Map::new();
    m.insert(
        "context".into(),
        format!("0x{}", hex::encode(evm::LOCAL_CONTEXT)).into(),
    );
    for ident in 1..=3 {
        let data = oracle.get(local_key(ident)).expect("local data");
        m.insert(
            format!("ident{ident}"),
            format!("0x{}", hex::encode(data)).into(),
        );
    }
    serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap() + "\n"
}

/// The committed forge gas vectors are what this code generates, and each one's
/// `post` is what the EVM returns; prints the gas of each. `FPVM_UPDATE_VECTORS=1`
/// rewrites them.
#[test]
fn gas_vectors_are_current_and_verify() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/test/vm/vectors");
    let update = std::env::var_os("FPVM_UPDATE_VECTORS").is_some();
    if update {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut evm = Evm::new();
    evm.load_request(request_oracle().as_ref());
    let mut files = vec![("local.json".to_string(), local_json())];
    let mut table = String::from("| vector | class | gas |\n| --- | --- | ---: |\n");
    for (name, class, w) in gas_vectors() {
        let oracle = request_oracle();
        let post = step_from_witness_with_oracle(&w.state, &w.proof, Some(oracle.as_ref()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let Outcome::Ok { post: got, gas } = evm.step(&w) else {
            panic!("{name}: EVM step failed");
        };
        assert_eq!(got, post, "{name}");
        table += &format!("| {name} | {class} | {gas} |\n");
        let mut m = serde_json::Map::new();
        m.insert("class".into(), class.into());
        m.insert(
            "state".into(),
            format!("0x{}", hex::encode(&w.state)).into(),
        );
        m.insert(
            "proof".into(),
            format!("0x{}", hex::encode(&w.proof)).into(),
        );
        m.insert("post".into(), format!("0x{}", hex::encode(post)).into());
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap() + "\n";
        files.push((format!("{name}.json"), text));
    }
    println!("{table}");
    for (file, text) in &files {
        let path = dir.join(file);
        if update {
            std::fs::write(&path, text).unwrap();
        } else {
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == *text,
                "{} is stale: run FPVM_UPDATE_VECTORS=1 cargo test -p oracle-fpvm --test evm_diff gas_vectors",
                path.display()
            );
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    on_disk.sort();
    let mut want: Vec<String> = files.into_iter().map(|(f, _)| f).collect();
    want.sort();
    assert_eq!(on_disk, want, "files in {}", dir.display());
}

/// Garbage and half-valid witnesses: the EVM returns the same hash, or reverts with
/// the same code, as the Rust verifier (never another failure).
#[test]
fn garbage_witnesses_agree_with_rust() {
    let oracle = request_oracle();
    let mut evm = Evm::new();
    evm.load_request(oracle.as_ref());
    let valid = gas_vectors();
    let mut r = Rng(0x6a7b);
    let mut codes = BTreeSet::new();
    for i in 0..3000 {
        let (mut state, mut proof) = if i % 2 == 0 {
            let w = &valid[r.below(valid.len() as u64) as usize].2;
            (w.state.clone(), w.proof.clone())
        } else {
            let slen = if r.below(4) == 0 {
                r.below(300) as usize
            } else {
                off::SIZE
            };
            let plen = r.below(2200) as usize;
            (
                (0..slen).map(|_| r.next_u64() as u8).collect(),
                (0..plen).map(|_| r.next_u64() as u8).collect(),
            )
        };
        // A few random byte flips, truncations or running states.
        for _ in 0..r.below(4) {
            match r.below(5) {
                0 if !state.is_empty() => {
                    let at = r.below(state.len() as u64) as usize;
                    state[at] ^= 1 << r.below(8);
                }
                1 if !proof.is_empty() => {
                    let at = r.below(proof.len() as u64) as usize;
                    proof[at] ^= 1 << r.below(8);
                }
                2 if state.len() == off::SIZE => state[off::STATUS] = 0,
                3 => proof.truncate(r.below(proof.len() as u64 + 1) as usize),
                _ => {}
            }
        }
        let rust = step_from_witness_with_oracle(&state, &proof, Some(oracle.as_ref()));
        let evm_out = evm.step_raw(Entry::WithOracle, &state, &proof);
        match rust {
            Ok(h) => assert_eq!(evm_out.post("garbage"), h, "case {i}"),
            Err(e) => {
                assert_eq!(evm_out, Outcome::Revert(e.code()), "case {i}: {e}");
                codes.insert(e.code());
            }
        }
    }
    println!("revert codes seen: {codes:?}");
    for c in [1, 3, 4, 5] {
        assert!(codes.contains(&c), "code {c} never produced");
    }
}
