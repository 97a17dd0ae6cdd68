//! The one table the Solidity twin mirrors constant for constant: the VM state
//! encoding, the memory tree geometry, the syscall numbers, the panic codes and the
//! status byte of a state hash.
//!
//! All multi-byte integers in the state encoding are **big-endian** (EVM order).
//! Memory itself is little-endian, as RISC-V is.

/// Byte offsets of the encoded VM state, written as one chain so that each field
/// starts where the previous one ends (mirror these in Solidity as they are).
pub mod state {
    /// Merkle root of the whole 32-bit memory (32 bytes).
    pub const MEM_ROOT: usize = 0;
    /// Current preimage key (32 bytes), set by `PREIMAGE_SET_KEY`.
    pub const PREIMAGE_KEY: usize = MEM_ROOT + 32;
    /// Output commitment (32 bytes), set by `COMMIT_OUTPUT`; zero until then.
    pub const OUTPUT: usize = PREIMAGE_KEY + 32;
    /// Program counter (u32).
    pub const PC: usize = OUTPUT + 32;
    /// Read offset into the current preimage stream (u32).
    pub const PREIMAGE_OFFSET: usize = PC + 4;
    /// Number of executed steps (u64).
    pub const STEP: usize = PREIMAGE_OFFSET + 4;
    /// Exit code (u32): the guest's `a0` at `EXIT`, or a panic code.
    pub const EXIT_CODE: usize = STEP + 8;
    /// Run status (u8): see [`super::status`].
    pub const STATUS: usize = EXIT_CODE + 4;
    /// Registers x0..x31, 4 bytes each (x0 is encoded and always 0).
    pub const REGS: usize = STATUS + 1;
    /// Total size of the encoding in bytes.
    pub const SIZE: usize = REGS + 32 * 4;
}

/// Values of the state's STATUS byte.
pub mod status {
    /// Still running.
    pub const RUNNING: u8 = 0;
    /// Halted by the `EXIT` syscall; EXIT_CODE holds the guest's code.
    pub const EXITED: u8 = 1;
    /// Halted by undefined behaviour; EXIT_CODE holds a [`super::panic`](mod@super::panic) code.
    pub const PANICKED: u8 = 2;
}

/// The first byte of a state hash is replaced by this VM status (as in cannon), so a
/// dispute game can read the outcome from a claim without the full state.
pub mod hash_status {
    /// Exited with code 0.
    pub const VALID: u8 = 0;
    /// Exited with a non-zero code.
    pub const INVALID: u8 = 1;
    /// Panicked (undefined behaviour).
    pub const PANIC: u8 = 2;
    /// Not halted yet.
    pub const UNFINISHED: u8 = 3;
}

/// Panic codes stored in EXIT_CODE when STATUS is PANICKED.
pub mod panic {
    /// Opcode/funct combination not in RV32IM (includes CSR instructions).
    pub const INVALID_INSTRUCTION: u32 = 1;
    /// Fetch from, or jump/branch to, a pc that is not 4-aligned.
    pub const MISALIGNED_FETCH: u32 = 2;
    /// Load address not aligned to its size.
    pub const MISALIGNED_LOAD: u32 = 3;
    /// Store address not aligned to its size.
    pub const MISALIGNED_STORE: u32 = 4;
    /// Access (fetch, load, store, syscall buffer) inside the null guard page.
    pub const OUT_OF_RANGE: u32 = 5;
    /// `ecall` with an unknown syscall number in a7.
    pub const UNKNOWN_SYSCALL: u32 = 6;
    /// `ebreak`.
    pub const EBREAK: u32 = 7;
    /// `PREIMAGE_SET_KEY` / `COMMIT_OUTPUT` address not 32-byte aligned.
    pub const MISALIGNED_SYSCALL_BUFFER: u32 = 8;
}

/// Syscall numbers (in a7; arguments in a0..a2; result in a0). EXIT and WRITE use the
/// Linux numbers so that simple test programs run unchanged under `qemu-riscv32`.
pub mod syscall {
    /// `exit(code = a0)`: halts with STATUS = EXITED, EXIT_CODE = a0.
    pub const EXIT: u32 = 93;
    /// `write(fd = a0, buf = a1, len = a2) -> a0 = len`: debug output, no state effect
    /// other than a0 (the buffer is not read by the on-chain step).
    pub const WRITE: u32 = 64;
    /// `preimage_set_key(addr = a0)`: PREIMAGE_KEY = mem[addr..addr+32] (addr 32-aligned),
    /// PREIMAGE_OFFSET = 0, a0 = 0.
    pub const PREIMAGE_SET_KEY: u32 = 0x100;
    /// `preimage_read(dst = a0, max = a1) -> a0 = n`: copies
    /// n = min(max, 32 - dst % 32, stream_len - offset) bytes of the preimage stream
    /// (8-byte big-endian length prefix, then the preimage) into one memory leaf.
    pub const PREIMAGE_READ: u32 = 0x101;
    /// `commit_output(addr = a0)`: OUTPUT = mem[addr..addr+32] (addr 32-aligned), a0 = 0.
    pub const COMMIT_OUTPUT: u32 = 0x102;
}

/// Memory geometry: a binary Merkle tree over 32-byte leaves covering 2^32 bytes.
pub mod memory {
    /// log2 of the leaf size.
    pub const LEAF_BITS: u32 = 5;
    /// Bytes per leaf.
    pub const LEAF_SIZE: usize = 1 << LEAF_BITS;
    /// Tree depth: 32 address bits - 5 leaf bits.
    pub const TREE_DEPTH: usize = 27;
    /// One memory proof: the leaf (32 bytes) then TREE_DEPTH sibling hashes, bottom up.
    pub const PROOF_SIZE: usize = LEAF_SIZE * (1 + TREE_DEPTH);
    /// Addresses below this are the null guard page: any access panics OUT_OF_RANGE.
    pub const NULL_GUARD: u32 = 0x1000;
    /// Initial stack pointer (x2) of a freshly loaded program.
    pub const STACK_TOP: u32 = 0x7fff_f000;
}

/// Layout of the step proof (the `bytes proof` argument of `step`).
pub mod proof {
    use super::memory::PROOF_SIZE;
    /// Memory proof of the leaf holding the instruction at pc.
    pub const INSN_PROOF: usize = 0;
    /// Memory proof of the data leaf the step touches (zeros if none).
    pub const DATA_PROOF: usize = INSN_PROOF + PROOF_SIZE;
    /// The whole current preimage (only for a `PREIMAGE_READ` step), to the end.
    pub const PREIMAGE: usize = DATA_PROOF + PROOF_SIZE;
}

/// Preimage key types (first byte of a key), as in cannon.
pub mod key_type {
    /// Local key: per-dispute data supplied by the dispute game; bytes 24..32 hold the
    /// identifier (big-endian u64), bytes 1..24 are zero.
    pub const LOCAL: u8 = 1;
    /// Keccak key: keccak256(preimage) with byte 0 replaced by 2.
    pub const KECCAK: u8 = 2;
}

/// Identifiers of the local keys the guest reads (per-dispute data).
pub mod local_ident {
    /// The 32-byte model root.
    pub const MODEL_ROOT: u64 = 1;
    /// The 32-byte keccak256 of the request input bytes (itself a keccak key).
    pub const INPUT_HASH: u64 = 2;
    /// Sampling parameters (encoding defined by the guest: steps, seed, temperature).
    /// 20 bytes for a whole request; 21 bytes (the 20, then a
    /// [`super::transition`] mode byte) for one transition of the two-phase game.
    pub const SAMPLING_PARAMS: u64 = 3;
    /// The 32-byte pre-state hash `P_t` of a position or output transition (a
    /// keccak key of the 165-byte decode state, `oracle_core::commit::position`).
    pub const PRE_STATE: u64 = 4;
}

/// Transition modes of the guest (the byte after the request parameters in local
/// [`local_ident::SAMPLING_PARAMS`]); see `docs/dispute.md`.
pub mod transition {
    /// Request → `P_0`: commits the first decode state's hash.
    pub const INIT: u8 = 1;
    /// `P_t` → `P_{t+1}`: runs one position, commits the next state's hash.
    pub const POSITION: u8 = 2;
    /// `P_T` → `keccak256(text ‖ "\n")`: commits the request's output.
    pub const OUTPUT: u8 = 3;
}

#[cfg(test)]
mod tests {
    #[test]
    fn state_size_is_245() {
        assert_eq!(super::state::SIZE, 245);
        assert_eq!(super::memory::PROOF_SIZE, 896);
        assert_eq!(super::proof::PREIMAGE, 1792);
    }
}
