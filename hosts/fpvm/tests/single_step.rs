//! Property test: random instruction words (valid and invalid, biased towards real
//! opcodes) with random registers, one step at a time: the fast VM and the witness
//! step must agree on every post-state, and garbage witnesses never panic.

mod common;

use common::{request_oracle, Rng};
use oracle_fpvm::layout::{state as off, syscall};
use oracle_fpvm::memory::Memory;
use oracle_fpvm::preimage::{keccak_key, local_key};
use oracle_fpvm::state::CpuState;
use oracle_fpvm::witness::prove_step;
use oracle_fpvm::{step_from_witness, step_from_witness_with_oracle, Vm, VmError};

const OPCODES: [u32; 11] = [
    0x37, 0x17, 0x6f, 0x67, 0x63, 0x03, 0x23, 0x13, 0x33, 0x0f, 0x73,
];
const CODE: u32 = 0x0001_0000;
const DATA: u32 = 0x0002_0000;

fn random_insn(r: &mut Rng) -> u32 {
    match r.below(10) {
        0 => r.next_u64() as u32,
        1 => 0x0000_0073, // ecall
        2 => 0x0010_0073, // ebreak
        _ => {
            let op = *r.pick(&OPCODES);
            let mut w = (r.next_u64() as u32 & !0x7f) | op;
            if r.below(2) == 0 {
                // a valid funct7 for OP / shifts most of the time
                w = (w & 0x01ff_ffff) | (*r.pick(&[0u32, 0x20, 0x01]) << 25);
            }
            w
        }
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

#[test]
fn random_single_steps_agree() {
    let oracle = request_oracle();
    let mut vm = Vm::new(CpuState::default(), Memory::new(), oracle.clone());
    let mut r = Rng(7);
    let keys = [
        local_key(1),
        local_key(2),
        local_key(3),
        keccak_key(common::REQUEST_INPUT),
    ];
    let mut checked = 0;
    for i in 0..30_000u32 {
        let mut cpu = CpuState {
            pc: CODE + 4 * r.below(2048) as u32,
            step: i as u64,
            ..Default::default()
        };
        for reg in 1..32 {
            cpu.regs[reg] = random_reg(&mut r);
        }
        if r.below(3) == 0 {
            cpu.regs[17] = *r.pick(&[
                syscall::EXIT,
                syscall::WRITE,
                syscall::PREIMAGE_SET_KEY,
                syscall::PREIMAGE_READ,
                syscall::COMMIT_OUTPUT,
            ]);
        }
        cpu.preimage_key = *r.pick(&keys);
        cpu.preimage_offset = r.below(120) as u32;
        vm.cpu = cpu;
        let insn = random_insn(&mut r);
        vm.mem.store_u32(vm.cpu.pc, insn);
        if r.below(4) == 0 {
            let a = DATA + 4 * r.below(2048) as u32;
            vm.mem.store_u32(a, r.next_u64() as u32);
        }
        let w = prove_step(&mut vm).expect("all keys are known");
        let from_witness = step_from_witness_with_oracle(&w.state, &w.proof, Some(oracle.as_ref()))
            .unwrap_or_else(|e| panic!("insn {insn:#010x}: witness rejected: {e}"));
        match vm.step() {
            Ok(()) => {}
            Err(VmError::MissingPreimage(_)) => unreachable!("all keys are known"),
            Err(e) => panic!("host error {e}"),
        }
        assert_eq!(
            vm.state_hash(),
            from_witness,
            "insn {insn:#010x} regs {:x?}",
            w.state
        );
        checked += 1;
    }
    assert_eq!(checked, 30_000);
}

#[test]
fn garbage_witnesses_never_panic() {
    let mut r = Rng(99);
    for _ in 0..20_000 {
        let slen = if r.below(4) == 0 {
            r.below(300) as usize
        } else {
            off::SIZE
        };
        let plen = r.below(2200) as usize;
        let mut state: Vec<u8> = (0..slen).map(|_| r.next_u64() as u8).collect();
        if slen == off::SIZE && r.below(2) == 0 {
            state[off::STATUS] = 0;
            state[off::PC..off::PC + 4].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        }
        let proof: Vec<u8> = (0..plen).map(|_| r.next_u64() as u8).collect();
        let _ = step_from_witness(&state, &proof);
    }
    // The step counter wraps (documented; unreachable in practice) instead of failing.
    let mut s = [0u8; off::SIZE];
    s[off::STEP..off::STEP + 8].copy_from_slice(&u64::MAX.to_be_bytes());
    s[off::PC..off::PC + 4].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    let _ = step_from_witness(&s, &[0u8; 1792]);
}
