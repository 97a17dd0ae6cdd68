//! The one table the Solidity twin mirrors constant for constant: the VM state
//! encoding, the memory tree geometry, the syscall numbers, the panic codes, the
//! status byte of a state hash and the preimage key types.
//!
//! The syscall numbers and key types are the guest ABI's (`oracle-guest-abi`, which
//! the guest program builds too), re-exported here so that the table stays whole.
//! What the guest reads under which local key is not the VM's business: that is
//! in the guest ABI and `oracle-vm-host`.
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

/// Syscall numbers (in a7; arguments in a0..a2; result in a0), from the guest ABI
/// (`oracle-guest-abi`): `EXIT` 93, `WRITE` 64, `PREIMAGE_SET_KEY` 0x100,
/// `PREIMAGE_READ` 0x101, `COMMIT_OUTPUT` 0x102.
pub use oracle_guest_abi::syscall;

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

/// Preimage key types (first byte of a key), as in cannon, from the guest ABI
/// (`oracle-guest-abi`): `LOCAL` 1, `KECCAK` 2.
pub use oracle_guest_abi::key_type;

#[cfg(test)]
mod tests {
    #[test]
    fn state_size_is_245() {
        assert_eq!(super::state::SIZE, 245);
        assert_eq!(super::memory::PROOF_SIZE, 896);
        assert_eq!(super::proof::PREIMAGE, 1792);
    }
}
