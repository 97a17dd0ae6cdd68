//! The fault-proof VM's system calls (`ecall`, number in a7; see hosts/fpvm/README.md;
//! the numbers are the guest ABI's, `oracle_guest_abi::syscall`).

use core::arch::asm;
use oracle_guest_abi::exit_code;
use oracle_guest_abi::syscall::{COMMIT_OUTPUT, EXIT, PREIMAGE_READ, PREIMAGE_SET_KEY, WRITE};

/// 32 bytes at a 32-aligned address, as the key and output syscalls require.
#[repr(C, align(32))]
pub struct Word(pub [u8; 32]);

#[inline(always)]
fn ecall(n: u32, a0: u32, a1: u32, a2: u32) -> u32 {
    let ret;
    // Safety: the VM's ecall reads a0..a2 and a7, writes a0 and touches no other
    // register; memory it writes is the buffer we pass (valid and owned by caller).
    unsafe {
        asm!("ecall", inlateout("a0") a0 => ret, in("a1") a1, in("a2") a2, in("a7") n, options(nostack));
    }
    ret
}

/// Halt with `code`.
pub fn exit(code: u32) -> ! {
    ecall(EXIT, code, 0, 0);
    // The VM never returns from EXIT; spin defensively.
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Debug output (`fd` 1 = the generated text, 2 = messages).
pub fn write(fd: u32, bytes: &[u8]) {
    ecall(WRITE, fd, bytes.as_ptr() as u32, bytes.len() as u32);
}

/// Commit the 32-byte output commitment into the VM state.
pub fn commit_output(hash: &[u8; 32]) {
    let word = Word(*hash);
    ecall(COMMIT_OUTPUT, &word as *const Word as u32, 0, 0);
}

/// Why a preimage read fails when the stream ends before its stated length.
const EARLY_END: &str = "preimage stream ended early";

/// Select `key`'s preimage and read its 8-byte big-endian length prefix.
fn open_preimage(key: &[u8; 32]) -> usize {
    let word = Word(*key);
    ecall(PREIMAGE_SET_KEY, &word as *const Word as u32, 0, 0);
    let mut prefix = Word([0; 32]);
    read_into(
        prefix.0.as_mut_ptr(),
        8,
        "preimage stream shorter than its length prefix",
    );
    let mut len = [0u8; 8];
    len.copy_from_slice(&prefix.0[..8]);
    match usize::try_from(u64::from_be_bytes(len)) {
        Ok(len) => len,
        Err(_) => crate::fail(exit_code::BAD_PREIMAGE, "preimage longer than memory"),
    }
}

/// Fill `len` bytes at `out` from the open preimage's stream; a stream that ends
/// first fails with `short`. The VM writes at most up to the next 32-byte boundary
/// of the destination per read, so after the first read every read moves a whole
/// aligned 32 bytes straight into place (no staging copy).
fn read_into(out: *mut u8, len: usize, short: &str) {
    let mut got = 0;
    while got < len {
        let want = (len - got).min(32) as u32;
        // Safety of the pointer arithmetic: `got < len`, inside the caller's buffer.
        let n = ecall(PREIMAGE_READ, out.wrapping_add(got) as u32, want, 0);
        if n == 0 {
            crate::fail(exit_code::BAD_PREIMAGE, short);
        }
        got += n as usize;
    }
}

/// The whole preimage of `key`. The VM checks a keccak key against the preimage
/// itself, so what arrives here is bound to the key.
pub fn preimage(key: &[u8; 32]) -> alloc::vec::Vec<u8> {
    let len = open_preimage(key);
    let mut out = alloc::vec::Vec::with_capacity(len);
    read_into(out.as_mut_ptr(), len, EARLY_END);
    // Safety: `read_into` wrote all `len` bytes of the capacity (or exited).
    unsafe { out.set_len(len) };
    out
}

/// Read the preimage of `key` into `out`, which must be exactly its length;
/// returns false (reading nothing) if the lengths differ.
pub fn preimage_into(key: &[u8; 32], out: &mut [u8]) -> bool {
    if open_preimage(key) != out.len() {
        return false;
    }
    read_into(out.as_mut_ptr(), out.len(), EARLY_END);
    true
}
