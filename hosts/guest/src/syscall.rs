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

/// The whole preimage of `key`. The VM checks a keccak key against the preimage
/// itself, so what arrives here is bound to the key.
pub fn preimage(key: &[u8; 32]) -> alloc::vec::Vec<u8> {
    let word = Word(*key);
    ecall(PREIMAGE_SET_KEY, &word as *const Word as u32, 0, 0);
    let mut scratch = Word([0; 32]);
    let mut stream = alloc::vec::Vec::new();
    loop {
        let n = ecall(PREIMAGE_READ, scratch.0.as_mut_ptr() as u32, 32, 0) as usize;
        if n == 0 {
            break;
        }
        stream.extend_from_slice(&scratch.0[..n]);
    }
    // The stream is an 8-byte big-endian length, then the preimage.
    if stream.len() < 8 {
        crate::fail(
            exit_code::BAD_PREIMAGE,
            "preimage stream shorter than its length prefix",
        );
    }
    stream.split_off(8)
}
