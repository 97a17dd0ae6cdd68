//! The fast interpreter: executes rv32im one instruction per step, no hashing.
//!
//! Semantics (shared with [`crate::witness`], the reference for the Solidity step):
//! - A halted state is a fixed point: [`Vm::step`] on it changes nothing, the step
//!   counter included. So "the state at step N" for N past the halt is the halted
//!   state, whose STEP field says when it halted.
//! - Every executed instruction increments STEP, including the one that halts (EXIT
//!   or a panic). A halting instruction leaves pc and registers unchanged.
//! - Undefined behaviour halts with STATUS = PANICKED and a [`panic`](mod@crate::layout::panic) code:
//!   invalid instruction, misaligned pc / jump or branch target, misaligned load or
//!   store (checked before the range), any access below the null guard page, an
//!   unknown syscall, `ebreak`.
//! - `fence` (funct3 0) is a no-op; every other MISC-MEM/SYSTEM encoding (CSRs,
//!   `fence.i`) is an invalid instruction.

use crate::elf::{Elf, ElfError};
use crate::hash::Hash;
use crate::layout::memory::{NULL_GUARD, STACK_TOP};
use crate::layout::{panic, state as off, status, syscall};
use crate::memory::{Memory, PAGE_SIZE};
use crate::preimage::{stream_len, stream_read, PreimageOracle};
use crate::state::{state_hash, CpuState};
use std::io::Write;
use std::sync::Arc;
use thiserror::Error;

/// A host-side failure that stops execution without changing the VM state (the
/// state stays valid; retry after fixing the host).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VmError {
    /// The guest asked for a preimage the oracle does not have.
    #[error("preimage oracle has no preimage for key 0x{}", hex::encode(.0))]
    MissingPreimage([u8; 32]),
    /// A preimage whose stream does not fit 32-bit offsets.
    #[error("preimage of {0} bytes exceeds the 4 GiB stream limit")]
    PreimageTooLarge(u64),
}

/// Shared preimage oracle handle.
pub type SharedOracle = Arc<dyn PreimageOracle + Send + Sync>;

/// Where the guest's debug `write`s go.
#[derive(Debug, Default)]
pub enum DebugSink {
    /// Discard.
    #[default]
    Discard,
    /// Append to a buffer.
    Buffer(Vec<u8>),
    /// Write to the process's stdout (fd 2 to its stderr).
    Stdout,
}

/// Most bytes of one debug `write` the host copies out (the guest still gets `len`).
pub const MAX_DEBUG_WRITE: u32 = 1 << 20;

/// A running VM: CPU state, memory, preimage oracle and debug sink.
pub struct Vm {
    /// Registers, pc, step, status, preimage and output fields.
    pub cpu: CpuState,
    /// Memory.
    pub mem: Memory,
    oracle: SharedOracle,
    /// Cached stream source for `cpu.preimage_key`.
    cached: Option<([u8; 32], Vec<u8>)>,
    /// Debug output destination.
    pub debug: DebugSink,
}

/// Outcome of [`Vm::run`] and [`Vm::run_with_budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The VM halted (exited or panicked).
    Halted,
    /// The step limit of [`Vm::run`] was reached first.
    StepLimit,
    /// A budget of [`Vm::run_with_budget`] ran out first. The VM is at a valid
    /// state (after its last whole step), so a caller with a larger budget may
    /// resume it.
    BudgetExceeded(Limit),
}

/// Which budget of a run ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Budget::steps`].
    Steps,
    /// [`Budget::memory`].
    Memory,
}

/// What one run may use of the host: steps and guest memory.
///
/// Host memory follows guest memory: the VM holds each page the guest has
/// written (4 KiB) plus its share of the page table and the Merkle maps, about
/// 1.05 host bytes per guest byte (see `hosts/fpvm/README.md`), and a fixed
/// 9 MiB of (lazily touched) page table. So a memory budget of `m` bytes keeps
/// the VM's host memory under about `1.05 · m + 9 MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most steps this run may execute (counted from the VM's current step).
    pub steps: u64,
    /// Most bytes of guest memory the VM may hold: resident pages (written at
    /// least once, the loaded image included) times 4 KiB. The step that writes
    /// a page past the budget completes; the run stops after it.
    pub memory: u64,
}

impl Budget {
    /// No step limit and the whole 32-bit address space.
    pub const UNLIMITED: Budget = Budget {
        steps: u64::MAX,
        memory: 1 << 32,
    };
}

/// Decodes the I-type immediate.
#[inline(always)]
pub fn imm_i(insn: u32) -> u32 {
    ((insn as i32) >> 20) as u32
}

/// Decodes the S-type immediate.
#[inline(always)]
pub fn imm_s(insn: u32) -> u32 {
    (((insn as i32) >> 25) << 5) as u32 | ((insn >> 7) & 0x1f)
}

/// Decodes the B-type immediate.
#[inline(always)]
pub fn imm_b(insn: u32) -> u32 {
    ((((insn as i32) >> 31) << 12) as u32)
        | ((insn << 4) & 0x800)
        | ((insn >> 20) & 0x7e0)
        | ((insn >> 7) & 0x1e)
}

/// Decodes the J-type immediate.
#[inline(always)]
pub fn imm_j(insn: u32) -> u32 {
    ((((insn as i32) >> 31) << 20) as u32)
        | (insn & 0xff000)
        | ((insn >> 9) & 0x800)
        | ((insn >> 20) & 0x7fe)
}

/// The M-extension and base ALU, shared by the fast VM and the witness step.
/// `funct7`/`funct3` as in the OP opcode; `None` for an invalid combination.
#[inline(always)]
pub fn alu_op(funct7: u32, funct3: u32, a: u32, b: u32) -> Option<u32> {
    Some(match (funct7, funct3) {
        (0x00, 0) => a.wrapping_add(b),
        (0x20, 0) => a.wrapping_sub(b),
        (0x00, 1) => a << (b & 31),
        (0x00, 2) => ((a as i32) < (b as i32)) as u32,
        (0x00, 3) => (a < b) as u32,
        (0x00, 4) => a ^ b,
        (0x00, 5) => a >> (b & 31),
        (0x20, 5) => ((a as i32) >> (b & 31)) as u32,
        (0x00, 6) => a | b,
        (0x00, 7) => a & b,
        (0x01, 0) => a.wrapping_mul(b),
        (0x01, 1) => (((a as i32 as i64) * (b as i32 as i64)) >> 32) as u32,
        (0x01, 2) => (((a as i32 as i64) * (b as u64 as i64)) >> 32) as u32,
        (0x01, 3) => (((a as u64) * (b as u64)) >> 32) as u32,
        (0x01, 4) => {
            if b == 0 {
                u32::MAX
            } else {
                (a as i32).wrapping_div(b as i32) as u32
            }
        }
        (0x01, 5) => a.checked_div(b).unwrap_or(u32::MAX),
        (0x01, 6) => {
            if b == 0 {
                a
            } else {
                (a as i32).wrapping_rem(b as i32) as u32
            }
        }
        (0x01, 7) => a.checked_rem(b).unwrap_or(a),
        _ => return None,
    })
}

impl Vm {
    /// A VM with empty memory at pc 0 (for tests and restores).
    pub fn new(cpu: CpuState, mem: Memory, oracle: SharedOracle) -> Self {
        Vm {
            cpu,
            mem,
            oracle,
            cached: None,
            debug: DebugSink::Discard,
        }
    }

    /// The absolute prestate of an ELF program: its image loaded, pc = entry,
    /// sp = [`STACK_TOP`], every other register and field zero.
    pub fn from_elf(file: &[u8], oracle: SharedOracle) -> Result<Self, ElfError> {
        let elf = Elf::parse(file)?;
        let mut mem = Memory::new();
        elf.load_into(&mut mem);
        let mut cpu = CpuState {
            pc: elf.entry,
            ..Default::default()
        };
        cpu.regs[2] = STACK_TOP;
        Ok(Vm::new(cpu, mem, oracle))
    }

    /// The preimage oracle.
    pub fn oracle(&self) -> &SharedOracle {
        &self.oracle
    }

    /// Whether the VM has halted.
    pub fn halted(&self) -> bool {
        self.cpu.halted()
    }

    /// The state encoding (computes the memory root).
    pub fn encode_state(&mut self) -> [u8; off::SIZE] {
        let root = self.mem.root();
        self.cpu.encode(&root)
    }

    /// The state hash (computes the memory root).
    pub fn state_hash(&mut self) -> Hash {
        state_hash(&self.encode_state())
    }

    /// Debug output collected so far (with [`DebugSink::Buffer`]).
    pub fn debug_output(&self) -> &[u8] {
        match &self.debug {
            DebugSink::Buffer(b) => b,
            _ => &[],
        }
    }

    /// Runs until halt, until `budget.steps` more steps ran, or until the guest
    /// holds more than `budget.memory` bytes of pages, whichever comes first.
    /// Checking the memory costs one comparison per step.
    pub fn run_with_budget(&mut self, budget: &Budget) -> Result<RunOutcome, VmError> {
        let max_pages = budget.memory / PAGE_SIZE as u64;
        let over = |vm: &Vm| vm.mem.page_count() as u64 > max_pages;
        if over(self) {
            return Ok(RunOutcome::BudgetExceeded(Limit::Memory));
        }
        let end = self.cpu.step.saturating_add(budget.steps);
        while self.cpu.step < end {
            if self.cpu.status != status::RUNNING {
                return Ok(RunOutcome::Halted);
            }
            self.step()?;
            if over(self) {
                return Ok(RunOutcome::BudgetExceeded(Limit::Memory));
            }
        }
        Ok(if self.halted() {
            RunOutcome::Halted
        } else {
            RunOutcome::BudgetExceeded(Limit::Steps)
        })
    }

    /// Runs until halt or until `cpu.step` reaches `max_step` (no memory limit
    /// beyond the 4 GiB address space; see [`Vm::run_with_budget`]).
    pub fn run(&mut self, max_step: u64) -> Result<RunOutcome, VmError> {
        while self.cpu.step < max_step {
            if self.cpu.status != status::RUNNING {
                return Ok(RunOutcome::Halted);
            }
            self.step()?;
        }
        Ok(if self.halted() {
            RunOutcome::Halted
        } else {
            RunOutcome::StepLimit
        })
    }

    #[cold]
    fn halt_panic(&mut self, code: u32) {
        self.cpu.status = status::PANICKED;
        self.cpu.exit_code = code;
    }

    #[inline(always)]
    fn set_rd(&mut self, rd: usize, v: u32) {
        self.cpu.regs[rd] = v;
        self.cpu.regs[0] = 0;
    }

    /// The preimage stream source for the current key, fetched once per key.
    fn current_preimage(&mut self) -> Result<&[u8], VmError> {
        let key = self.cpu.preimage_key;
        if self.cached.as_ref().map(|c| c.0) != Some(key) {
            let data = self.oracle.get(key).ok_or(VmError::MissingPreimage(key))?;
            if stream_len(&data) > u32::MAX as u64 {
                return Err(VmError::PreimageTooLarge(data.len() as u64));
            }
            self.cached = Some((key, data));
        }
        Ok(self.cached.as_ref().map(|c| c.1.as_slice()).unwrap_or(&[]))
    }

    /// Executes one instruction (no-op once halted).
    #[inline]
    pub fn step(&mut self) -> Result<(), VmError> {
        if self.cpu.status != status::RUNNING {
            return Ok(());
        }
        let pc = self.cpu.pc;
        if pc & 3 != 0 {
            self.cpu.step = self.cpu.step.wrapping_add(1);
            self.halt_panic(panic::MISALIGNED_FETCH);
            return Ok(());
        }
        if pc < NULL_GUARD {
            self.cpu.step = self.cpu.step.wrapping_add(1);
            self.halt_panic(panic::OUT_OF_RANGE);
            return Ok(());
        }
        let insn = self.mem.load_u32(pc);
        let opcode = insn & 0x7f;
        let rd = ((insn >> 7) & 31) as usize;
        let funct3 = (insn >> 12) & 7;
        let rs1 = ((insn >> 15) & 31) as usize;
        let rs2 = ((insn >> 20) & 31) as usize;
        let mut next = pc.wrapping_add(4);
        match opcode {
            0x37 => {
                // 011_0111: LUI
                self.set_rd(rd, insn & 0xffff_f000);
            }
            0x17 => {
                // 001_0111: AUIPC
                self.set_rd(rd, pc.wrapping_add(insn & 0xffff_f000));
            }
            0x6f => {
                // 110_1111: JAL
                let target = pc.wrapping_add(imm_j(insn));
                if target & 3 != 0 {
                    return self.panic_step(panic::MISALIGNED_FETCH);
                }
                self.set_rd(rd, next);
                next = target;
            }
            0x67 => {
                // 110_0111: JALR
                if funct3 != 0 {
                    return self.panic_step(panic::INVALID_INSTRUCTION);
                }
                let target = self.cpu.regs[rs1].wrapping_add(imm_i(insn)) & !1;
                if target & 3 != 0 {
                    return self.panic_step(panic::MISALIGNED_FETCH);
                }
                self.set_rd(rd, next);
                next = target;
            }
            0x63 => {
                // 110_0011: BRANCH
                let (a, b) = (self.cpu.regs[rs1], self.cpu.regs[rs2]);
                let taken = match funct3 {
                    0 => a == b,
                    1 => a != b,
                    4 => (a as i32) < (b as i32),
                    5 => (a as i32) >= (b as i32),
                    6 => a < b,
                    7 => a >= b,
                    _ => return self.panic_step(panic::INVALID_INSTRUCTION),
                };
                if taken {
                    let target = pc.wrapping_add(imm_b(insn));
                    if target & 3 != 0 {
                        return self.panic_step(panic::MISALIGNED_FETCH);
                    }
                    next = target;
                }
            }
            0x03 => {
                // 000_0011: LOAD
                let addr = self.cpu.regs[rs1].wrapping_add(imm_i(insn));
                let size_mask = match funct3 {
                    0 | 4 => 0,
                    1 | 5 => 1,
                    2 => 3,
                    _ => return self.panic_step(panic::INVALID_INSTRUCTION),
                };
                if addr & size_mask != 0 {
                    return self.panic_step(panic::MISALIGNED_LOAD);
                }
                if addr < NULL_GUARD {
                    return self.panic_step(panic::OUT_OF_RANGE);
                }
                let v = match funct3 {
                    0 => self.mem.load_u8(addr) as i8 as i32 as u32,
                    1 => self.mem.load_u16(addr) as i16 as i32 as u32,
                    2 => self.mem.load_u32(addr),
                    4 => self.mem.load_u8(addr) as u32,
                    _ => self.mem.load_u16(addr) as u32,
                };
                self.set_rd(rd, v);
            }
            0x23 => {
                // 010_0011: STORE
                let addr = self.cpu.regs[rs1].wrapping_add(imm_s(insn));
                let size_mask = match funct3 {
                    0 => 0,
                    1 => 1,
                    2 => 3,
                    _ => return self.panic_step(panic::INVALID_INSTRUCTION),
                };
                if addr & size_mask != 0 {
                    return self.panic_step(panic::MISALIGNED_STORE);
                }
                if addr < NULL_GUARD {
                    return self.panic_step(panic::OUT_OF_RANGE);
                }
                let v = self.cpu.regs[rs2];
                match funct3 {
                    0 => self.mem.store_u8(addr, v as u8),
                    1 => self.mem.store_u16(addr, v as u16),
                    _ => self.mem.store_u32(addr, v),
                }
            }
            0x13 => {
                // 001_0011: OP-IMM
                let a = self.cpu.regs[rs1];
                let imm = imm_i(insn);
                let funct7 = insn >> 25;
                let v = match funct3 {
                    0 => a.wrapping_add(imm),
                    2 => ((a as i32) < (imm as i32)) as u32,
                    3 => (a < imm) as u32,
                    4 => a ^ imm,
                    6 => a | imm,
                    7 => a & imm,
                    1 if funct7 == 0 => a << (imm & 31),
                    5 if funct7 == 0 => a >> (imm & 31),
                    5 if funct7 == 0x20 => ((a as i32) >> (imm & 31)) as u32,
                    _ => return self.panic_step(panic::INVALID_INSTRUCTION),
                };
                self.set_rd(rd, v);
            }
            0x33 => {
                // 011_0011: OP (register ALU, M extension)
                let (a, b) = (self.cpu.regs[rs1], self.cpu.regs[rs2]);
                match alu_op(insn >> 25, funct3, a, b) {
                    Some(v) => self.set_rd(rd, v),
                    None => return self.panic_step(panic::INVALID_INSTRUCTION),
                }
            }
            0x0f => {
                // 000_1111: MISC-MEM: FENCE is a no-op
                if funct3 != 0 {
                    return self.panic_step(panic::INVALID_INSTRUCTION);
                }
            }
            0x73 => {
                // 111_0011: SYSTEM
                match insn {
                    0x0000_0073 => return self.ecall(),
                    0x0010_0073 => return self.panic_step(panic::EBREAK),
                    _ => return self.panic_step(panic::INVALID_INSTRUCTION),
                }
            }
            _ => return self.panic_step(panic::INVALID_INSTRUCTION),
        }
        self.cpu.pc = next;
        self.cpu.step = self.cpu.step.wrapping_add(1);
        Ok(())
    }

    #[cold]
    fn panic_step(&mut self, code: u32) -> Result<(), VmError> {
        self.cpu.step = self.cpu.step.wrapping_add(1);
        self.halt_panic(code);
        Ok(())
    }

    fn ecall(&mut self) -> Result<(), VmError> {
        let regs = self.cpu.regs;
        let (a0, a1, a2, a7) = (regs[10], regs[11], regs[12], regs[17]);
        match a7 {
            syscall::EXIT => {
                self.cpu.step = self.cpu.step.wrapping_add(1);
                self.cpu.status = status::EXITED;
                self.cpu.exit_code = a0;
                return Ok(());
            }
            syscall::WRITE => {
                self.debug_write(a0, a1, a2);
                self.set_rd(10, a2);
            }
            syscall::PREIMAGE_SET_KEY | syscall::COMMIT_OUTPUT => {
                if a0 & 31 != 0 {
                    return self.panic_step(panic::MISALIGNED_SYSCALL_BUFFER);
                }
                if a0 < NULL_GUARD {
                    return self.panic_step(panic::OUT_OF_RANGE);
                }
                let leaf = self.mem.leaf(a0);
                if a7 == syscall::PREIMAGE_SET_KEY {
                    self.cpu.preimage_key = leaf;
                    self.cpu.preimage_offset = 0;
                } else {
                    self.cpu.output = leaf;
                }
                self.set_rd(10, 0);
            }
            syscall::PREIMAGE_READ => {
                if a0 < NULL_GUARD {
                    return self.panic_step(panic::OUT_OF_RANGE);
                }
                let room = 32 - (a0 & 31);
                let want = a1.min(room) as usize;
                let offset = self.cpu.preimage_offset;
                let mut buf = [0u8; 32];
                let n = stream_read(self.current_preimage()?, offset as u64, &mut buf[..want]);
                self.mem.write_bytes(a0, &buf[..n]);
                self.cpu.preimage_offset = offset + n as u32;
                self.set_rd(10, n as u32);
            }
            _ => return self.panic_step(panic::UNKNOWN_SYSCALL),
        }
        self.cpu.pc = self.cpu.pc.wrapping_add(4);
        self.cpu.step = self.cpu.step.wrapping_add(1);
        Ok(())
    }

    fn debug_write(&mut self, fd: u32, buf: u32, len: u32) {
        if matches!(self.debug, DebugSink::Discard) {
            return;
        }
        let mut bytes = vec![0u8; len.min(MAX_DEBUG_WRITE) as usize];
        self.mem.read_bytes(buf, &mut bytes);
        match &mut self.debug {
            DebugSink::Buffer(b) => b.extend_from_slice(&bytes),
            DebugSink::Stdout => {
                // Debug output is best effort: a closed stream must not stop the VM.
                if fd == 2 {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(&bytes).and_then(|_| err.flush());
                } else {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&bytes).and_then(|_| out.flush());
                }
            }
            DebugSink::Discard => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediates() {
        // beq x0, x0, -4096 => imm[12]=1, rest 0: 0x80000063
        assert_eq!(imm_b(0x8000_0063) as i32, -4096);
        // jal x0, -2^20: 0x80000 06f
        assert_eq!(imm_j(0x8000_006f) as i32, -(1 << 20));
        // jal x0, 2^20-2: imm bits all one except sign
        assert_eq!(imm_j(0x7fff_f06f) as i32, (1 << 20) - 2);
        assert_eq!(imm_s(0xfe00_0fa3) as i32, -1);
        assert_eq!(imm_i(0x8000_0013) as i32, -2048);
    }

    #[test]
    fn missing_preimage_is_a_host_error_that_changes_nothing() {
        let mut mem = Memory::new();
        // li a7, 0x101; li a0, 0x2000; li a1, 8; ecall
        for (i, w) in [0x1010_0893u32, 0x0000_2537, 0x0080_0593, 0x0000_0073]
            .iter()
            .enumerate()
        {
            mem.store_u32(0x1_0000 + 4 * i as u32, *w);
        }
        let cpu = CpuState {
            pc: 0x1_0000,
            ..Default::default()
        };
        let mut vm = Vm::new(cpu, mem, Arc::new(crate::preimage::InMemoryOracle::new()));
        vm.run(3).unwrap();
        assert_eq!(vm.cpu.regs[17], 0x101);
        let before = vm.state_hash();
        assert_eq!(vm.step(), Err(VmError::MissingPreimage([0; 32])));
        assert_eq!(vm.state_hash(), before);
        assert_eq!(vm.cpu.step, 3);
    }

    /// A VM running `lui a0, 0x10000; lui t0, 1; loop: sw a0, 0(a0); add a0, a0,
    /// t0; j loop`: one new page every three steps.
    fn page_toucher() -> Vm {
        let mut mem = Memory::new();
        let code = [
            0x1000_0537u32,
            0x0000_12b7,
            0x00a5_2023,
            0x0055_0533,
            0xff9f_f06f,
        ];
        for (i, w) in code.iter().enumerate() {
            mem.store_u32(0x1_0000 + 4 * i as u32, *w);
        }
        let cpu = CpuState {
            pc: 0x1_0000,
            ..Default::default()
        };
        Vm::new(cpu, mem, Arc::new(crate::preimage::InMemoryOracle::new()))
    }

    #[test]
    fn a_memory_budget_stops_the_run_one_page_past_it() {
        let mut vm = page_toucher();
        let budget = Budget {
            steps: u64::MAX,
            memory: 1 << 20,
        };
        let out = vm.run_with_budget(&budget).unwrap();
        assert_eq!(out, RunOutcome::BudgetExceeded(Limit::Memory));
        // 256 pages allowed: the code page and 255 stored ones, then one more.
        assert_eq!(vm.mem.page_count(), 257);
        assert_eq!(vm.mem.resident_bytes(), 257 * 4096);
        assert!(!vm.halted());
        // Resuming with a larger budget continues exactly where it stopped.
        let mut plain = page_toucher();
        let at = vm.cpu.step;
        plain.run(at).unwrap();
        assert_eq!(plain.state_hash(), vm.state_hash());
        let more = Budget {
            steps: 30,
            memory: 2 << 20,
        };
        assert_eq!(
            vm.run_with_budget(&more).unwrap(),
            RunOutcome::BudgetExceeded(Limit::Steps)
        );
        plain.run(at + 30).unwrap();
        assert_eq!(plain.state_hash(), vm.state_hash());
        // A VM already over the budget does not step at all.
        let step = vm.cpu.step;
        assert_eq!(
            vm.run_with_budget(&budget).unwrap(),
            RunOutcome::BudgetExceeded(Limit::Memory)
        );
        assert_eq!(vm.cpu.step, step);
    }

    #[test]
    fn a_step_budget_counts_from_the_current_step_and_halting_wins() {
        let mut vm = page_toucher();
        let b = Budget {
            steps: 10,
            memory: Budget::UNLIMITED.memory,
        };
        assert_eq!(
            vm.run_with_budget(&b).unwrap(),
            RunOutcome::BudgetExceeded(Limit::Steps)
        );
        assert_eq!(vm.cpu.step, 10);
        vm.run_with_budget(&b).unwrap();
        assert_eq!(vm.cpu.step, 20);
        // Near the top of the address space the loop wraps to address 0 and
        // panics: the halt ends an unlimited run.
        vm.cpu.regs[10] = 0xffff_0000;
        let out = vm.run_with_budget(&Budget::UNLIMITED).unwrap();
        assert_eq!(out, RunOutcome::Halted);
        assert_eq!(vm.cpu.exit_code, panic::OUT_OF_RANGE);
    }

    #[test]
    fn div_edge_cases() {
        assert_eq!(alu_op(1, 4, 7, 0), Some(u32::MAX));
        assert_eq!(alu_op(1, 4, 0x8000_0000, u32::MAX), Some(0x8000_0000));
        assert_eq!(alu_op(1, 6, 0x8000_0000, u32::MAX), Some(0));
        assert_eq!(alu_op(1, 6, 7, 0), Some(7));
        assert_eq!(alu_op(1, 5, 7, 0), Some(u32::MAX));
        assert_eq!(alu_op(1, 7, 7, 0), Some(7));
        assert_eq!(alu_op(1, 2, u32::MAX, u32::MAX), Some(u32::MAX));
        assert_eq!(alu_op(1, 3, u32::MAX, u32::MAX), Some(0xffff_fffe));
        assert_eq!(alu_op(2, 0, 1, 1), None);
    }
}
