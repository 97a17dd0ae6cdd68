//! The guest ABI: what the oracle's guest program (`hosts/guest`) and the hosts that
//! run it (the VM `oracle-fpvm`, the request side `oracle-vm-host`, the node) agree
//! on, in one place.
//!
//! - [`syscall`]: the `ecall` numbers the VM implements;
//! - [`key_type`], [`local_key`], [`keccak_key_from_digest`]: preimage keys;
//! - [`local_ident`]: the per-dispute local data the guest reads;
//! - [`transition`]: the guest's transition modes (the two-phase game);
//! - [`exit_code`]: the guest's exit codes.
//!
//! The VM itself needs only the syscall numbers and the key types; the rest is the
//! contract between the guest and whoever serves it a request. The Solidity side
//! mirrors these values (`contracts/src/vm/RISCV.sol`: syscalls and key types;
//! `contracts/src/dispute/StateLayout.sol`: local identifiers;
//! `contracts/src/dispute/PositionGame.sol`: transition modes), and
//! `tests/solidity.rs` checks that it does.
#![no_std]

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

/// Preimage key types (first byte of a key), as in cannon.
pub mod key_type {
    /// Local key: per-dispute data supplied by the dispute game; bytes 24..32 hold the
    /// identifier (big-endian u64), bytes 1..24 are zero ([`super::local_key`]).
    pub const LOCAL: u8 = 1;
    /// Keccak key: keccak256(preimage) with byte 0 replaced by 2
    /// ([`super::keccak_key_from_digest`]).
    pub const KECCAK: u8 = 2;
}

/// The local key of identifier `ident`: `0x01 ‖ 0^23 ‖ ident` (u64 big-endian).
#[inline]
pub fn local_key(ident: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[0] = key_type::LOCAL;
    key[24..].copy_from_slice(&ident.to_be_bytes());
    key
}

/// The keccak key of a preimage whose keccak256 is `digest`: the digest with byte 0
/// replaced by 2. (This crate does not hash; the VM's `oracle_fpvm::preimage::keccak_key`
/// hashes the data first.)
#[inline]
pub fn keccak_key_from_digest(digest: &[u8; 32]) -> [u8; 32] {
    let mut key = *digest;
    key[0] = key_type::KECCAK;
    key
}

/// Identifiers of the local keys the guest reads (per-dispute data the dispute game
/// writes from the request it judges).
pub mod local_ident {
    /// The 32-byte model root.
    pub const MODEL_ROOT: u64 = 1;
    /// The 32-byte keccak256 of the request input bytes (itself a keccak key).
    pub const INPUT_HASH: u64 = 2;
    /// The request parameters (their canonical encoding,
    /// `oracle_core::RequestParams::encode`: text steps, temperature, top-p, seed, or
    /// image steps, guidance, seed): 20 bytes for a whole request; 21 bytes (the 20, then a
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

/// The guest's exit codes (the VM's EXIT_CODE when it halts with STATUS = EXITED).
///
/// A request the model rejects is not a failure: it exits [`OK`](exit_code::OK)
/// with the error outcome committed. Every other code is a run that no honest
/// dispute game sets up.
pub mod exit_code {
    /// A result: the output, or the error outcome of a rejected request.
    pub const OK: u32 = 0;
    /// Local request parameters that no game writes (not 20 or 21 bytes, an unknown
    /// transition mode).
    pub const BAD_PARAMS: u32 = 2;
    /// A malformed preimage (a stream shorter than its length prefix, a model tree
    /// node or chunk of the wrong size, a value that should be 32 bytes).
    pub const BAD_PREIMAGE: u32 = 5;
    /// A decode state that cannot be restored, or an output step on a state that is
    /// not done.
    pub const BAD_STATE: u32 = 6;
    /// A panic of the guest program (a bug).
    pub const PANIC: u32 = 101;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_their_type_byte_and_layout() {
        let l = local_key(0x0102_0304_0506_0708);
        assert_eq!(l[0], 1);
        assert!(l[1..24].iter().all(|&b| b == 0));
        assert_eq!(l[24..], [1, 2, 3, 4, 5, 6, 7, 8]);
        let k = keccak_key_from_digest(&[0xab; 32]);
        assert_eq!(k[0], 2);
        assert!(k[1..].iter().all(|&b| b == 0xab));
    }
}
