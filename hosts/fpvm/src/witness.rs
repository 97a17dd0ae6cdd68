//! One-step witnesses: the prover ([`prove_step`]) and the verifier
//! ([`step_from_witness`]), the reference the Solidity `step(bytes state, bytes proof)`
//! mirrors line by line.
//!
//! Witness of step N = (`state`, `proof`):
//! - `state`: the [`crate::layout::state`] encoding of the pre-state (245 bytes);
//! - `proof` ([`crate::layout::proof`]): bytes 0..896 the memory proof of the leaf
//!   holding the instruction at pc; 896..1792 the memory proof of the one data leaf
//!   the step touches (load/store target, `PREIMAGE_SET_KEY`/`COMMIT_OUTPUT` buffer,
//!   `PREIMAGE_READ` destination; zeros if none); from 1792 to the end, for a
//!   `PREIMAGE_READ` step only, the whole preimage of the current key.
//!
//! A memory proof is leaf (32 bytes) ‖ 27 sibling hashes, bottom up; both proofs are
//! against the pre-state root (a step writes at most one leaf, so the post root is
//! the data proof's path recomputed with the new leaf).
//!
//! Preimage check: a keccak key must equal `keccak_key(preimage)`; a local key's
//! value cannot be checked from the witness alone, so it is compared with a trusted
//! oracle (on chain: the PreimageOracle contract where the dispute game put the
//! per-dispute data) in [`step_from_witness_with_oracle`]; [`step_from_witness`]
//! without an oracle rejects local-key reads.
//!
//! On the wire (`fpvm prove`), the witness is `abi.encode(bytes state, bytes proof)`,
//! the arguments of `step(bytes,bytes)`.

use crate::hash::{keccak256, Hash};
use crate::layout::memory::{NULL_GUARD, PROOF_SIZE, TREE_DEPTH};
use crate::layout::{key_type, panic, proof as poff, state as off, status, syscall};
use crate::memory::root_from_proof;
use crate::preimage::{keccak_key, stream_read, PreimageOracle};
use crate::state::{state_hash, CpuState};
use crate::vm::{alu_op, imm_b, imm_i, imm_j, imm_s, Vm, VmError};
use thiserror::Error;

/// Why a witness was rejected (numbered like the Solidity revert codes).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WitnessError {
    /// 1: the state is not exactly 245 bytes.
    #[error("state encoding has {0} bytes, expected 245")]
    BadStateLength(usize),
    /// 2: the pre-state does not hash to the claimed pre-state hash.
    #[error("pre-state hash mismatch (a witness for another step or state)")]
    PreStateMismatch,
    /// 3: the proof is shorter than the two memory proofs.
    #[error("proof has {0} bytes, needs at least 1792")]
    ProofTooShort(usize),
    /// 4: the instruction memory proof does not match the memory root.
    #[error("instruction memory proof does not match the memory root")]
    InvalidInstructionProof,
    /// 5: the data memory proof does not match the memory root.
    #[error("data memory proof does not match the memory root")]
    InvalidDataProof,
    /// 6: the preimage in the proof does not match the preimage key.
    #[error("preimage does not match its key")]
    PreimageMismatch,
    /// 7: a local-key preimage with no trusted oracle to check it against.
    #[error("local-key preimage cannot be verified without the oracle")]
    UnverifiableLocalPreimage,
    /// 8: the key type is neither local nor keccak.
    #[error("unsupported preimage key type {0}")]
    UnsupportedKeyType(u8),
    /// 9: the preimage stream would overflow the 32-bit offset.
    #[error("preimage too large")]
    PreimageTooLarge,
}

impl WitnessError {
    /// The numeric code (the Solidity twin reverts with the same number).
    pub fn code(&self) -> u8 {
        match self {
            WitnessError::BadStateLength(_) => 1,
            WitnessError::PreStateMismatch => 2,
            WitnessError::ProofTooShort(_) => 3,
            WitnessError::InvalidInstructionProof => 4,
            WitnessError::InvalidDataProof => 5,
            WitnessError::PreimageMismatch => 6,
            WitnessError::UnverifiableLocalPreimage => 7,
            WitnessError::UnsupportedKeyType(_) => 8,
            WitnessError::PreimageTooLarge => 9,
        }
    }
}

/// The witness of one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    /// Encoded pre-state.
    pub state: Vec<u8>,
    /// Step proof.
    pub proof: Vec<u8>,
}

impl Witness {
    /// `abi.encode(bytes state, bytes proof)`.
    pub fn abi_encode(&self) -> Vec<u8> {
        crate::abi::encode_two_bytes(&self.state, &self.proof)
    }

    /// Calldata of `step(bytes,bytes)`: selector ‖ [`Self::abi_encode`].
    pub fn calldata(&self) -> Vec<u8> {
        let mut out = keccak256(b"step(bytes,bytes)")[..4].to_vec();
        out.extend(self.abi_encode());
        out
    }
}

/// The instruction class of the next step, for coverage and per-class gas tables:
/// `lui auipc jal jalr branch load store alu-imm alu mul div fence ecall-exit
/// ecall-write ecall-preimage-set-key ecall-preimage-read ecall-commit-output
/// ecall-unknown ebreak invalid halted`.
pub fn insn_class(cpu: &CpuState, insn: u32) -> &'static str {
    if cpu.halted() {
        return "halted";
    }
    let funct7 = insn >> 25;
    match insn & 0x7f {
        0x37 => "lui",
        0x17 => "auipc",
        0x6f => "jal",
        0x67 => "jalr",
        0x63 => "branch",
        0x03 => "load",
        0x23 => "store",
        0x13 => "alu-imm",
        0x33 if funct7 == 1 && (insn >> 12) & 7 >= 4 => "div",
        0x33 if funct7 == 1 => "mul",
        0x33 => "alu",
        0x0f => "fence",
        0x73 if insn == 0x0010_0073 => "ebreak",
        0x73 if insn == 0x73 => match cpu.regs[17] {
            syscall::EXIT => "ecall-exit",
            syscall::WRITE => "ecall-write",
            syscall::PREIMAGE_SET_KEY => "ecall-preimage-set-key",
            syscall::PREIMAGE_READ => "ecall-preimage-read",
            syscall::COMMIT_OUTPUT => "ecall-commit-output",
            _ => "ecall-unknown",
        },
        _ => "invalid",
    }
}

/// The data leaf address the next step of `cpu` touches, if any (what the prover must
/// prove). Mirrors the checks of the step: no address if the access would panic.
pub fn data_access(cpu: &CpuState, insn: u32) -> Option<u32> {
    let rs1 = ((insn >> 15) & 31) as usize;
    let funct3 = (insn >> 12) & 7;
    let (addr, align) = match insn & 0x7f {
        0x03 => (
            cpu.regs[rs1].wrapping_add(imm_i(insn)),
            [1u32, 2, 4, 0, 1, 2, 0, 0][funct3 as usize],
        ),
        0x23 => (
            cpu.regs[rs1].wrapping_add(imm_s(insn)),
            [1u32, 2, 4, 0, 0, 0, 0, 0][funct3 as usize],
        ),
        0x73 if insn == 0x73 => match cpu.regs[17] {
            syscall::PREIMAGE_SET_KEY | syscall::COMMIT_OUTPUT => (cpu.regs[10], 32),
            syscall::PREIMAGE_READ => (cpu.regs[10], 1),
            _ => return None,
        },
        _ => return None,
    };
    if align == 0 || addr & (align - 1) != 0 || addr < NULL_GUARD {
        return None;
    }
    Some(addr)
}

/// Builds the witness of the VM's next step (the step from `cpu.step` to +1).
pub fn prove_step(vm: &mut Vm) -> Result<Witness, VmError> {
    let state = vm.encode_state().to_vec();
    let mut proof = vec![0u8; poff::PREIMAGE];
    let cpu = vm.cpu.clone();
    if cpu.halted() {
        return Ok(Witness { state, proof });
    }
    let pc = cpu.pc;
    if pc & 3 == 0 && pc >= NULL_GUARD {
        proof[poff::INSN_PROOF..poff::INSN_PROOF + PROOF_SIZE]
            .copy_from_slice(&vm.mem.proof(pc).encode());
        let insn = vm.mem.load_u32(pc);
        if let Some(addr) = data_access(&cpu, insn) {
            proof[poff::DATA_PROOF..poff::DATA_PROOF + PROOF_SIZE]
                .copy_from_slice(&vm.mem.proof(addr).encode());
            if insn == 0x73 && cpu.regs[17] == syscall::PREIMAGE_READ {
                let data = vm
                    .oracle()
                    .get(cpu.preimage_key)
                    .ok_or(VmError::MissingPreimage(cpu.preimage_key))?;
                proof.extend_from_slice(&data);
            }
        }
    }
    Ok(Witness { state, proof })
}

/// Verifies `state` against a claimed pre-state hash, then runs [`step_from_witness`].
/// This is what the dispute game does with the agreed pre-state claim.
pub fn verify_step(
    claimed_pre: &Hash,
    state: &[u8],
    proof: &[u8],
    local: Option<&dyn PreimageOracle>,
) -> Result<Hash, WitnessError> {
    let enc: &[u8; off::SIZE] = state
        .try_into()
        .map_err(|_| WitnessError::BadStateLength(state.len()))?;
    if state_hash(enc) != *claimed_pre {
        return Err(WitnessError::PreStateMismatch);
    }
    step_from_witness_with_oracle(state, proof, local)
}

/// Re-executes one step from its witness alone; returns the post-state hash.
/// Local-key preimage reads are rejected (use [`step_from_witness_with_oracle`]).
pub fn step_from_witness(state: &[u8], proof: &[u8]) -> Result<Hash, WitnessError> {
    step_from_witness_with_oracle(state, proof, None)
}

/// The step executor over a witness: memory only through the two proofs.
struct WitnessStep<'a> {
    s: CpuState,
    root: Hash,
    proof: &'a [u8],
    local: Option<&'a dyn PreimageOracle>,
}

impl WitnessStep<'_> {
    fn proof_at(&self, at: usize) -> ([u8; 32], [Hash; TREE_DEPTH]) {
        let mut leaf = [0u8; 32];
        leaf.copy_from_slice(&self.proof[at..at + 32]);
        let mut sib = [[0u8; 32]; TREE_DEPTH];
        for (i, s) in sib.iter_mut().enumerate() {
            s.copy_from_slice(&self.proof[at + 32 * (i + 1)..at + 32 * (i + 2)]);
        }
        (leaf, sib)
    }

    /// Reads the instruction at pc through the instruction proof.
    fn fetch(&self) -> Result<u32, WitnessError> {
        let (leaf, sib) = self.proof_at(poff::INSN_PROOF);
        if root_from_proof(self.s.pc, &leaf, &sib) != self.root {
            return Err(WitnessError::InvalidInstructionProof);
        }
        let o = (self.s.pc & 31) as usize;
        Ok(u32::from_le_bytes([
            leaf[o],
            leaf[o + 1],
            leaf[o + 2],
            leaf[o + 3],
        ]))
    }

    /// Reads the data leaf holding `addr` through the data proof.
    fn read_leaf(&self, addr: u32) -> Result<[u8; 32], WitnessError> {
        let (leaf, sib) = self.proof_at(poff::DATA_PROOF);
        if root_from_proof(addr, &leaf, &sib) != self.root {
            return Err(WitnessError::InvalidDataProof);
        }
        Ok(leaf)
    }

    /// Replaces the data leaf holding `addr` (already verified by `read_leaf`).
    fn write_leaf(&mut self, addr: u32, leaf: &[u8; 32]) {
        let (_, sib) = self.proof_at(poff::DATA_PROOF);
        self.root = root_from_proof(addr, leaf, &sib);
    }

    fn set_rd(&mut self, rd: usize, v: u32) {
        if rd != 0 {
            self.s.regs[rd] = v;
        }
    }

    fn halt(&mut self, code: u32) {
        self.s.status = status::PANICKED;
        self.s.exit_code = code;
    }

    /// Executes the step; pc and step are updated here.
    fn execute(&mut self) -> Result<(), WitnessError> {
        self.s.regs[0] = 0;
        self.s.step = self.s.step.wrapping_add(1);
        let pc = self.s.pc;
        if pc & 3 != 0 {
            self.halt(panic::MISALIGNED_FETCH);
            return Ok(());
        }
        if pc < NULL_GUARD {
            self.halt(panic::OUT_OF_RANGE);
            return Ok(());
        }
        let insn = self.fetch()?;
        let opcode = insn & 0x7f;
        let rd = ((insn >> 7) & 31) as usize;
        let funct3 = (insn >> 12) & 7;
        let rs1v = self.s.regs[((insn >> 15) & 31) as usize];
        let rs2v = self.s.regs[((insn >> 20) & 31) as usize];
        let funct7 = insn >> 25;
        let mut next = pc.wrapping_add(4);
        match opcode {
            0x37 => self.set_rd(rd, insn & 0xffff_f000), // 011_0111: LUI
            0x17 => self.set_rd(rd, pc.wrapping_add(insn & 0xffff_f000)), // 001_0111: AUIPC
            0x6f => {
                // 110_1111: JAL
                let target = pc.wrapping_add(imm_j(insn));
                if target & 3 != 0 {
                    self.halt(panic::MISALIGNED_FETCH);
                    return Ok(());
                }
                self.set_rd(rd, next);
                next = target;
            }
            0x67 => {
                // 110_0111: JALR
                if funct3 != 0 {
                    self.halt(panic::INVALID_INSTRUCTION);
                    return Ok(());
                }
                let target = rs1v.wrapping_add(imm_i(insn)) & !1;
                if target & 3 != 0 {
                    self.halt(panic::MISALIGNED_FETCH);
                    return Ok(());
                }
                self.set_rd(rd, next);
                next = target;
            }
            0x63 => {
                // 110_0011: BRANCH
                let taken = match funct3 {
                    0 => rs1v == rs2v,
                    1 => rs1v != rs2v,
                    4 => (rs1v as i32) < (rs2v as i32),
                    5 => (rs1v as i32) >= (rs2v as i32),
                    6 => rs1v < rs2v,
                    7 => rs1v >= rs2v,
                    _ => {
                        self.halt(panic::INVALID_INSTRUCTION);
                        return Ok(());
                    }
                };
                if taken {
                    let target = pc.wrapping_add(imm_b(insn));
                    if target & 3 != 0 {
                        self.halt(panic::MISALIGNED_FETCH);
                        return Ok(());
                    }
                    next = target;
                }
            }
            0x03 => {
                // 000_0011: LOAD
                let addr = rs1v.wrapping_add(imm_i(insn));
                let size: u32 = match funct3 {
                    0 | 4 => 1,
                    1 | 5 => 2,
                    2 => 4,
                    _ => {
                        self.halt(panic::INVALID_INSTRUCTION);
                        return Ok(());
                    }
                };
                if addr & (size - 1) != 0 {
                    self.halt(panic::MISALIGNED_LOAD);
                    return Ok(());
                }
                if addr < NULL_GUARD {
                    self.halt(panic::OUT_OF_RANGE);
                    return Ok(());
                }
                let leaf = self.read_leaf(addr)?;
                let o = (addr & 31) as usize;
                let mut raw = 0u32;
                for i in 0..size as usize {
                    raw |= (leaf[o + i] as u32) << (8 * i);
                }
                let v = match funct3 {
                    0 => raw as u8 as i8 as i32 as u32,
                    1 => raw as u16 as i16 as i32 as u32,
                    _ => raw,
                };
                self.set_rd(rd, v);
            }
            0x23 => {
                // 010_0011: STORE
                let addr = rs1v.wrapping_add(imm_s(insn));
                let size: u32 = match funct3 {
                    0 => 1,
                    1 => 2,
                    2 => 4,
                    _ => {
                        self.halt(panic::INVALID_INSTRUCTION);
                        return Ok(());
                    }
                };
                if addr & (size - 1) != 0 {
                    self.halt(panic::MISALIGNED_STORE);
                    return Ok(());
                }
                if addr < NULL_GUARD {
                    self.halt(panic::OUT_OF_RANGE);
                    return Ok(());
                }
                let mut leaf = self.read_leaf(addr)?;
                let o = (addr & 31) as usize;
                for i in 0..size as usize {
                    leaf[o + i] = (rs2v >> (8 * i)) as u8;
                }
                self.write_leaf(addr, &leaf);
            }
            0x13 => {
                // 001_0011: OP-IMM
                let imm = imm_i(insn);
                let v = match funct3 {
                    0 => rs1v.wrapping_add(imm),
                    2 => ((rs1v as i32) < (imm as i32)) as u32,
                    3 => (rs1v < imm) as u32,
                    4 => rs1v ^ imm,
                    6 => rs1v | imm,
                    7 => rs1v & imm,
                    1 if funct7 == 0 => rs1v << (imm & 31),
                    5 if funct7 == 0 => rs1v >> (imm & 31),
                    5 if funct7 == 0x20 => ((rs1v as i32) >> (imm & 31)) as u32,
                    _ => {
                        self.halt(panic::INVALID_INSTRUCTION);
                        return Ok(());
                    }
                };
                self.set_rd(rd, v);
            }
            0x33 => match alu_op(funct7, funct3, rs1v, rs2v) {
                // 011_0011: OP and M extension
                Some(v) => self.set_rd(rd, v),
                None => {
                    self.halt(panic::INVALID_INSTRUCTION);
                    return Ok(());
                }
            },
            0x0f => {
                // 000_1111: FENCE is a no-op
                if funct3 != 0 {
                    self.halt(panic::INVALID_INSTRUCTION);
                    return Ok(());
                }
            }
            0x73 => {
                // 111_0011: SYSTEM
                if insn == 0x0010_0073 {
                    self.halt(panic::EBREAK);
                    return Ok(());
                }
                if insn != 0x0000_0073 {
                    self.halt(panic::INVALID_INSTRUCTION);
                    return Ok(());
                }
                return self.ecall();
            }
            _ => {
                self.halt(panic::INVALID_INSTRUCTION);
                return Ok(());
            }
        }
        self.s.pc = next;
        Ok(())
    }

    fn ecall(&mut self) -> Result<(), WitnessError> {
        let (a0, a1, a2, a7) = (
            self.s.regs[10],
            self.s.regs[11],
            self.s.regs[12],
            self.s.regs[17],
        );
        match a7 {
            syscall::EXIT => {
                self.s.status = status::EXITED;
                self.s.exit_code = a0;
                return Ok(());
            }
            syscall::WRITE => self.set_rd(10, a2),
            syscall::PREIMAGE_SET_KEY | syscall::COMMIT_OUTPUT => {
                if a0 & 31 != 0 {
                    self.halt(panic::MISALIGNED_SYSCALL_BUFFER);
                    return Ok(());
                }
                if a0 < NULL_GUARD {
                    self.halt(panic::OUT_OF_RANGE);
                    return Ok(());
                }
                let leaf = self.read_leaf(a0)?;
                if a7 == syscall::PREIMAGE_SET_KEY {
                    self.s.preimage_key = leaf;
                    self.s.preimage_offset = 0;
                } else {
                    self.s.output = leaf;
                }
                self.set_rd(10, 0);
            }
            syscall::PREIMAGE_READ => {
                if a0 < NULL_GUARD {
                    self.halt(panic::OUT_OF_RANGE);
                    return Ok(());
                }
                let mut leaf = self.read_leaf(a0)?;
                let preimage = &self.proof[poff::PREIMAGE..];
                self.check_preimage(preimage)?;
                if preimage.len() as u64 + 8 > u32::MAX as u64 {
                    return Err(WitnessError::PreimageTooLarge);
                }
                let o = (a0 & 31) as usize;
                let want = (a1.min(32 - o as u32)) as usize;
                let n = stream_read(
                    preimage,
                    self.s.preimage_offset as u64,
                    &mut leaf[o..o + want],
                );
                self.write_leaf(a0, &leaf);
                self.s.preimage_offset += n as u32;
                self.set_rd(10, n as u32);
            }
            _ => {
                self.halt(panic::UNKNOWN_SYSCALL);
                return Ok(());
            }
        }
        self.s.pc = self.s.pc.wrapping_add(4);
        Ok(())
    }

    fn check_preimage(&self, preimage: &[u8]) -> Result<(), WitnessError> {
        let key = self.s.preimage_key;
        match key[0] {
            key_type::KECCAK => {
                if keccak_key(preimage) != key {
                    return Err(WitnessError::PreimageMismatch);
                }
            }
            key_type::LOCAL => {
                let oracle = self.local.ok_or(WitnessError::UnverifiableLocalPreimage)?;
                if oracle.get(key).as_deref() != Some(preimage) {
                    return Err(WitnessError::PreimageMismatch);
                }
            }
            t => return Err(WitnessError::UnsupportedKeyType(t)),
        }
        Ok(())
    }
}

/// [`step_from_witness`] with a trusted oracle for local-key preimages.
pub fn step_from_witness_with_oracle(
    state: &[u8],
    proof: &[u8],
    local: Option<&dyn PreimageOracle>,
) -> Result<Hash, WitnessError> {
    let (s, root) = CpuState::decode(state).ok_or(WitnessError::BadStateLength(state.len()))?;
    if s.status != status::RUNNING {
        // A halted state is a fixed point.
        let enc: &[u8; off::SIZE] = state
            .try_into()
            .map_err(|_| WitnessError::BadStateLength(state.len()))?;
        return Ok(state_hash(enc));
    }
    if proof.len() < poff::PREIMAGE {
        return Err(WitnessError::ProofTooShort(proof.len()));
    }
    let mut w = WitnessStep {
        s,
        root,
        proof,
        local,
    };
    w.execute()?;
    Ok(state_hash(&w.s.encode(&w.root)))
}
