//! One-step witnesses: for every step of the test programs, the fast VM's post-state
//! hash equals the hash `step_from_witness` computes from the witness alone; bad
//! witnesses are rejected with distinct errors; checkpoints reach any step.

mod common;

use common::{assemble, assemble_text, load, programs, random_program};
use oracle_fpvm::checkpoint::Checkpoints;
use oracle_fpvm::layout::{proof as poff, state as off, syscall};
use oracle_fpvm::memory::zero_hashes;
use oracle_fpvm::state::state_hash;
use oracle_fpvm::witness::{data_access, prove_step, verify_step};
use oracle_fpvm::{step_from_witness, step_from_witness_with_oracle, Vm, WitnessError};
use std::collections::BTreeSet;

/// Steps `vm` to its end, checking every step's witness; returns the opcodes seen.
fn lockstep(vm: &mut Vm, max: u64, what: &str) -> BTreeSet<u32> {
    let mut seen = BTreeSet::new();
    let oracle = vm.oracle().clone();
    while !vm.halted() && vm.cpu.step < max {
        let w = prove_step(vm).expect("prove");
        let insn = vm.mem.load_u32(vm.cpu.pc);
        seen.insert(if insn & 0x7f == 0x73 && insn == 0x73 {
            0x7300 | vm.cpu.regs[17]
        } else {
            insn & 0x7f
        });
        let from_witness = step_from_witness_with_oracle(&w.state, &w.proof, Some(oracle.as_ref()))
            .unwrap_or_else(|e| panic!("{what}: step {} witness rejected: {e}", vm.cpu.step));
        vm.step().expect("host error");
        assert_eq!(
            vm.state_hash(),
            from_witness,
            "{what}: post-state differs after step {}",
            vm.cpu.step
        );
    }
    // The halted state is a fixed point for the witness step too.
    let w = prove_step(vm).expect("prove");
    let enc: &[u8; off::SIZE] = w.state.as_slice().try_into().unwrap();
    assert_eq!(step_from_witness(&w.state, &w.proof), Ok(state_hash(enc)));
    seen
}

#[test]
fn every_step_of_conformance_programs_matches_its_witness() {
    let mut seen = BTreeSet::new();
    for p in programs() {
        let mut vm = load(&assemble(&p.src, &format!("w-{}", p.name)));
        seen.extend(lockstep(&mut vm, 2_000_000, &p.name));
    }
    // Every opcode class and every syscall was proven at least once.
    for op in [0x37, 0x17, 0x6f, 0x67, 0x63, 0x03, 0x23, 0x13, 0x33, 0x0f] {
        assert!(seen.contains(&op), "opcode {op:#x} never proven");
    }
    for sc in [
        syscall::EXIT,
        syscall::WRITE,
        syscall::PREIMAGE_SET_KEY,
        syscall::PREIMAGE_READ,
        syscall::COMMIT_OUTPUT,
    ] {
        assert!(
            seen.contains(&(0x7300 | sc)),
            "syscall {sc:#x} never proven"
        );
    }
}

#[test]
fn every_step_of_random_programs_matches_its_witness() {
    for seed in 100..110 {
        let elf = assemble_text(&random_program(seed, 300), &format!("w-random-{seed}"));
        lockstep(&mut load(&elf), 100_000, &format!("random seed {seed}"));
    }
}

fn preimage_vm() -> Vm {
    let p = programs()
        .into_iter()
        .find(|p| p.name == "preimage")
        .expect("preimage.S");
    load(&assemble(&p.src, "w-preimage-bad"))
}

/// Runs `vm` to the first step whose next instruction is the ecall `nr` with a key
/// of type `key_type` (0: any).
fn run_to_syscall(vm: &mut Vm, nr: u32, key_type: u8) {
    while !vm.halted() {
        let insn = vm.mem.load_u32(vm.cpu.pc);
        if insn == 0x73
            && vm.cpu.regs[17] == nr
            && (key_type == 0 || vm.cpu.preimage_key[0] == key_type)
        {
            return;
        }
        vm.step().expect("host error");
    }
    panic!("syscall {nr:#x} not reached");
}

#[test]
fn tampered_witnesses_are_rejected_with_distinct_errors() {
    let mut vm = preimage_vm();
    let oracle = vm.oracle().clone();
    // A store step, to have both proofs in play.
    while !vm.halted() {
        let insn = vm.mem.load_u32(vm.cpu.pc);
        if insn & 0x7f == 0x23 {
            break;
        }
        vm.step().unwrap();
    }
    let w = prove_step(&mut vm).unwrap();
    assert!(data_access(&vm.cpu, vm.mem.load_u32(vm.cpu.pc)).is_some());
    assert!(step_from_witness(&w.state, &w.proof).is_ok());

    // Tampered instruction proof (leaf byte, then a sibling).
    for at in [poff::INSN_PROOF + 3, poff::INSN_PROOF + 32 * 9 + 5] {
        let mut p = w.proof.clone();
        p[at] ^= 1;
        assert_eq!(
            step_from_witness(&w.state, &p),
            Err(WitnessError::InvalidInstructionProof)
        );
    }
    // Tampered data proof.
    for at in [poff::DATA_PROOF + 7, poff::DATA_PROOF + 32 * 27 + 31] {
        let mut p = w.proof.clone();
        p[at] ^= 0x80;
        assert_eq!(
            step_from_witness(&w.state, &p),
            Err(WitnessError::InvalidDataProof)
        );
    }
    // A proof made of zero hashes (as for an empty memory) does not verify either.
    let mut p = w.proof.clone();
    for (i, z) in zero_hashes()[..27].iter().enumerate() {
        p[poff::DATA_PROOF + 32 * (i + 1)..poff::DATA_PROOF + 32 * (i + 2)].copy_from_slice(z);
    }
    assert_eq!(
        step_from_witness(&w.state, &p),
        Err(WitnessError::InvalidDataProof)
    );
    // Truncated proof and state.
    assert_eq!(
        step_from_witness(&w.state, &w.proof[..1000]),
        Err(WitnessError::ProofTooShort(1000))
    );
    assert_eq!(
        step_from_witness(&w.state[..244], &w.proof),
        Err(WitnessError::BadStateLength(244))
    );
    // Tampered state field: the memory root no longer matches the proofs.
    let mut s = w.state.clone();
    s[off::MEM_ROOT] ^= 1;
    assert_eq!(
        step_from_witness(&s, &w.proof),
        Err(WitnessError::InvalidInstructionProof)
    );

    // Wrong step: the witness of step N+1 against the claim of step N, and the proof
    // of step N+1 with the state of step N.
    let pre_n = vm.state_hash();
    vm.step().unwrap();
    while vm.mem.load_u32(vm.cpu.pc) & 0x7f != 0x23 && !vm.halted() {
        vm.step().unwrap();
    }
    let w2 = prove_step(&mut vm).unwrap();
    assert_eq!(
        verify_step(&pre_n, &w2.state, &w2.proof, None),
        Err(WitnessError::PreStateMismatch)
    );
    assert!(verify_step(&pre_n, &w.state, &w.proof, None).is_ok());
    let r = step_from_witness(&w.state, &w2.proof);
    assert!(
        matches!(
            r,
            Err(WitnessError::InvalidInstructionProof) | Err(WitnessError::InvalidDataProof)
        ),
        "mixed-step witness accepted: {r:?}"
    );

    // Preimage reads: the local-key read needs the trusted oracle ...
    let mut vm = preimage_vm();
    run_to_syscall(&mut vm, syscall::PREIMAGE_READ, 1);
    let w = prove_step(&mut vm).unwrap();
    assert_eq!(
        step_from_witness(&w.state, &w.proof),
        Err(WitnessError::UnverifiableLocalPreimage)
    );
    assert!(step_from_witness_with_oracle(&w.state, &w.proof, Some(oracle.as_ref())).is_ok());
    let mut p = w.proof.clone();
    p[poff::PREIMAGE + 12] ^= 1;
    assert_eq!(
        step_from_witness_with_oracle(&w.state, &p, Some(oracle.as_ref())),
        Err(WitnessError::PreimageMismatch)
    );
    // ... a keccak-key read checks the preimage against the key by hashing.
    run_to_syscall(&mut vm, syscall::PREIMAGE_READ, 2);
    let w = prove_step(&mut vm).unwrap();
    assert!(w.proof.len() > poff::PREIMAGE);
    assert!(step_from_witness(&w.state, &w.proof).is_ok());
    let mut p = w.proof.clone();
    p[poff::PREIMAGE] ^= 1;
    assert_eq!(
        step_from_witness(&w.state, &p),
        Err(WitnessError::PreimageMismatch)
    );
    let mut p = w.proof.clone();
    p.pop();
    assert_eq!(
        step_from_witness(&w.state, &p),
        Err(WitnessError::PreimageMismatch)
    );
    // An unknown key type.
    let mut s = w.state.clone();
    s[off::PREIMAGE_KEY] = 7;
    assert_eq!(
        step_from_witness(&s, &w.proof),
        Err(WitnessError::UnsupportedKeyType(7))
    );

    // All the errors above are distinct codes.
    let codes: BTreeSet<u8> = [
        WitnessError::BadStateLength(0),
        WitnessError::PreStateMismatch,
        WitnessError::ProofTooShort(0),
        WitnessError::InvalidInstructionProof,
        WitnessError::InvalidDataProof,
        WitnessError::PreimageMismatch,
        WitnessError::UnverifiableLocalPreimage,
        WitnessError::UnsupportedKeyType(0),
        WitnessError::PreimageTooLarge,
    ]
    .iter()
    .map(|e| e.code())
    .collect();
    assert_eq!(codes.len(), 9);
}

#[test]
fn checkpoints_reach_every_step() {
    let p = programs()
        .into_iter()
        .find(|p| p.name == "mulh")
        .expect("mulh.S");
    let elf = assemble(&p.src, "w-checkpoints");
    // Reference: hashes of every step.
    let mut vm = load(&elf);
    let mut hashes = vec![vm.state_hash()];
    while !vm.halted() {
        vm.step().unwrap();
        hashes.push(vm.state_hash());
    }
    let end = vm.cpu.step;
    let mut rec = load(&elf);
    let cp = Checkpoints::record(&mut rec, 97, u64::MAX).unwrap();
    assert_eq!(cp.halted_at, Some(end));
    assert_eq!(cp.len() as u64, end / 97 + 2);
    assert!(cp.memory_bytes() > 0);
    for n in (0..=end).step_by(13).chain([end - 1, end, 96, 97, 98]) {
        assert_eq!(
            cp.vm_at(n).unwrap().state_hash(),
            hashes[n as usize],
            "step {n}"
        );
    }
    // Past the end: the halted state.
    assert_eq!(
        cp.vm_at(end + 1000).unwrap().state_hash(),
        hashes[end as usize]
    );
    // Witnesses from checkpoints verify and give the next hash.
    for n in [0, 150, end - 1] {
        let w = cp.witness_at(n).unwrap();
        assert_eq!(
            step_from_witness(&w.state, &w.proof),
            Ok(hashes[n as usize + 1])
        );
    }
    // Recording with a step limit stops there.
    let mut rec = load(&elf);
    let cp = Checkpoints::record(&mut rec, 50, 120).unwrap();
    assert_eq!((rec.cpu.step, cp.halted_at), (120, None));
}

#[test]
fn abi_witness_roundtrips() {
    let mut vm = preimage_vm();
    vm.run(40).unwrap();
    let w = prove_step(&mut vm).unwrap();
    let enc = w.abi_encode();
    assert_eq!(
        oracle_fpvm::abi::decode_two_bytes(&enc),
        Some((w.state.clone(), w.proof.clone()))
    );
    let cd = w.calldata();
    assert_eq!(&cd[4..], &enc[..]);
}
