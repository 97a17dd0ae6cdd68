//! The oracle's guest program: the integer inference core as an rv32im program run
//! by the fault-proof VM.
//!
//! 1. Read the local data the dispute game provides: the model root (local 1), the
//!    input hash (local 2) and the request parameters (local 3, see
//!    `oracle_core::generate::Request::encode_params`).
//! 2. Fetch the input bytes by their keccak hash.
//! 3. Fetch the model by walking its Merkle tree from the root: the 40-byte head
//!    `treeRoot || len`, the 64-byte inner nodes, the 4096-byte chunks. Every
//!    preimage is fetched under the keccak key of the hash one level up, and the VM
//!    rejects a preimage that does not hash to its key, so every chunk is checked
//!    against the model root (no prover can feed other weights).
//! 4. Run the request exactly as `oracle run` does, write the text to fd 1, commit
//!    keccak256(text) as the output, write `logits 0x<keccak of all logits>` to
//!    fd 2 (for the cross-target golden tests) and exit 0.
//!
//! Exit codes: 0 success; 2 bad request parameters; 3 the model file does not load;
//! 4 the request is rejected (e.g. prompt too long); 5 a malformed preimage; 101 a
//! panic (a bug).
#![no_std]
#![no_main]

extern crate alloc;

mod heap;
mod syscall;

use alloc::vec;
use alloc::vec::Vec;
use oracle_core::merkle::{chunk_count, Hash, CHUNK_SIZE};
use oracle_core::{Exec, Model, Request};
use sha3::{Digest, Keccak256};

const HEX: &[u8; 16] = b"0123456789abcdef";

#[global_allocator]
static HEAP: heap::Bump = heap::Bump::new();

/// Exit code: bad request parameters.
pub const EXIT_BAD_PARAMS: u32 = 2;
/// Exit code: the model does not load.
pub const EXIT_BAD_MODEL: u32 = 3;
/// Exit code: the request is rejected.
pub const EXIT_BAD_REQUEST: u32 = 4;
/// Exit code: a malformed preimage.
pub const EXIT_BAD_PREIMAGE: u32 = 5;

/// Report on fd 2 and exit with `code`.
pub fn fail(code: u32, message: &str) -> ! {
    syscall::write(2, message.as_bytes());
    syscall::exit(code)
}

fn hash32(bytes: &[u8]) -> Hash {
    match bytes.try_into() {
        Ok(h) => h,
        Err(_) => fail(EXIT_BAD_PREIMAGE, "expected a 32-byte value"),
    }
}

/// Fill `out` (whole chunks, `first` onwards) from the subtree `node` of `height`.
fn fetch_subtree(node: &Hash, height: u32, first: usize, n_chunks: usize, out: &mut [u8]) {
    if first >= n_chunks {
        return;
    }
    let pre = syscall::preimage(&syscall::keccak_key(node));
    if height == 0 {
        if pre.len() != CHUNK_SIZE {
            fail(EXIT_BAD_PREIMAGE, "model chunk of the wrong size");
        }
        let at = first * CHUNK_SIZE;
        out[at..at + CHUNK_SIZE].copy_from_slice(&pre);
        return;
    }
    if pre.len() != 64 {
        fail(EXIT_BAD_PREIMAGE, "model tree node of the wrong size");
    }
    let half = 1usize << (height - 1);
    fetch_subtree(&hash32(&pre[..32]), height - 1, first, n_chunks, out);
    fetch_subtree(&hash32(&pre[32..]), height - 1, first + half, n_chunks, out);
}

/// The model file committed to by `root`.
fn fetch_model(root: &Hash) -> Vec<u8> {
    let head = syscall::preimage(&syscall::keccak_key(root));
    if head.len() != 40 {
        fail(EXIT_BAD_PREIMAGE, "model root preimage is not 40 bytes");
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[32..40]);
    let len = u64::from_be_bytes(len);
    if len > 0x4000_0000 {
        fail(EXIT_BAD_MODEL, "model larger than the VM's heap");
    }
    let len = len as usize;
    let n = chunk_count(len);
    let height = n.next_power_of_two().trailing_zeros();
    let mut data = vec![0u8; n * CHUNK_SIZE];
    fetch_subtree(&hash32(&head[..32]), height, 0, n, &mut data);
    data.truncate(len);
    data
}

#[no_mangle]
extern "C" fn _start() -> ! {
    let model_root = hash32(&syscall::preimage(&syscall::local_key(1)));
    let input_hash = hash32(&syscall::preimage(&syscall::local_key(2)));
    let params = syscall::preimage(&syscall::local_key(3));
    let input = syscall::preimage(&syscall::keccak_key(&input_hash));
    let Some(request) = Request::decode_params(&params, &input) else {
        fail(EXIT_BAD_PARAMS, "request parameters are not 20 bytes")
    };
    let bytes = fetch_model(&model_root);
    let model = match Model::load(&bytes) {
        Ok(m) => m,
        Err(_) => fail(EXIT_BAD_MODEL, "the model file does not load"),
    };
    let generation = match model.generate(Exec::SCALAR, &request, |_| {}) {
        Ok(g) => g,
        Err(_) => fail(EXIT_BAD_REQUEST, "the request was rejected"),
    };
    let mut text = generation.text.clone();
    text.push(b'\n');
    syscall::write(1, &text);
    let digest: Hash = Keccak256::digest(&text).into();
    syscall::commit_output(&digest);
    // For the cross-target golden tests: the hash of every logits vector, on fd 2.
    let mut line = Vec::with_capacity(76);
    line.extend_from_slice(b"logits 0x");
    for b in generation.logits_hash {
        line.push(HEX[usize::from(b >> 4)]);
        line.push(HEX[usize::from(b & 15)]);
    }
    line.push(b'\n');
    syscall::write(2, &line);
    syscall::exit(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    fail(101, "guest panic")
}
