//! The integer core as a WebAssembly module (`wasm32-unknown-unknown`), for a page
//! or a script to re-run a request and compare its output with what was posted: the
//! same `oracle_core::model::outcome::run` the node and the VM guest call, on the
//! scalar kernels, so its bytes are the other targets' bytes (the golden test
//! `tests/tests/golden_wasm.rs` runs it under Node.js against the pinned goldens).
//!
//! The interface is a handful of C-ABI functions over the module's memory:
//!
//! 1. `oracle_alloc(len)` three buffers and write the model file, the request's
//!    parameter bytes (`RequestParams::encode`) and its input into them;
//! 2. `oracle_run(model, model_len, params, params_len, input, input_len)` returns
//!    the outcome's kind (1 text, 2 image, 0 rejected: the error outcome);
//! 3. `oracle_posted()` / `oracle_posted_len()` are the bytes posted on chain,
//!    `oracle_commitment()` their 32-byte commitment, `oracle_logits_hash()` the
//!    logits hash of a text outcome (zeros otherwise);
//! 4. `oracle_free(ptr, len)` each buffer.
//!
//! `oracle_model_root(model, model_len)` is the model root of a file's bytes (the
//! Merkle root over its chunks that a model is registered under): a page checks the
//! weights it fetched against the registered root before it runs them.
//! `oracle_keccak(ptr, len)` is keccak256 (a PNG posted as its hash is checked so).
//!
//! One request at a time: the results live until the next call.

use std::sync::Mutex;

use oracle_core::model::outcome::{run, Outcome};
use oracle_core::Exec;

/// What the last `oracle_run` produced.
struct Last {
    posted: Vec<u8>,
    commitment: [u8; 32],
    logits_hash: [u8; 32],
    /// The last model root or keccak asked for.
    model_root: [u8; 32],
}

static LAST: Mutex<Last> = Mutex::new(Last {
    posted: Vec::new(),
    commitment: [0; 32],
    logits_hash: [0; 32],
    model_root: [0; 32],
});

fn last() -> std::sync::MutexGuard<'static, Last> {
    LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `len` bytes of module memory for the caller to fill (null for 0 bytes).
#[no_mangle]
pub extern "C" fn oracle_alloc(len: usize) -> *mut u8 {
    if len == 0 {
        return core::ptr::null_mut();
    }
    Box::into_raw(vec![0u8; len].into_boxed_slice()).cast()
}

/// Give back a buffer from [`oracle_alloc`].
///
/// # Safety
/// `ptr` and `len` must be an [`oracle_alloc`] result and its length, freed once.
#[no_mangle]
pub unsafe extern "C" fn oracle_free(ptr: *mut u8, len: usize) {
    if !ptr.is_null() && len > 0 {
        // Safety: the caller's conditions: this is the boxed slice `oracle_alloc`
        // gave away.
        drop(unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }
}

/// A byte slice from a pointer and length given by the caller (empty for null).
///
/// # Safety
/// `ptr` must point at `len` readable bytes of module memory, or be null.
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // Safety: the caller's conditions.
        unsafe { core::slice::from_raw_parts(ptr, len) }
    }
}

/// Run one request: the model file's bytes, the request's parameter bytes and its
/// input. Returns 1 for a text, 2 for an image, 0 for the error outcome.
///
/// # Safety
/// Each pointer must point at its length of readable bytes (or be null).
#[no_mangle]
pub unsafe extern "C" fn oracle_run(
    model: *const u8,
    model_len: usize,
    params: *const u8,
    params_len: usize,
    input: *const u8,
    input_len: usize,
) -> u32 {
    // Safety: the caller's conditions.
    let (model, params, input) = unsafe {
        (
            slice(model, model_len),
            slice(params, params_len),
            slice(input, input_len),
        )
    };
    let outcome = run(model, Exec::SCALAR, params, input, |_| {});
    let kind = match &outcome {
        Outcome::Text { .. } => 1,
        Outcome::Image { .. } => 2,
        Outcome::Rejected(_) => 0,
    };
    let mut last = last();
    last.posted = outcome.posted();
    last.commitment = outcome.commitment();
    last.logits_hash = match &outcome {
        Outcome::Text { logits_hash, .. } => *logits_hash,
        _ => [0; 32],
    };
    kind
}

/// The bytes the last run would post on chain.
#[no_mangle]
pub extern "C" fn oracle_posted() -> *const u8 {
    last().posted.as_ptr()
}

/// Their length.
#[no_mangle]
pub extern "C" fn oracle_posted_len() -> usize {
    last().posted.len()
}

/// The last run's 32-byte output commitment (what the claim binds).
#[no_mangle]
pub extern "C" fn oracle_commitment() -> *const u8 {
    last().commitment.as_ptr()
}

/// The last text run's 32-byte logits hash (zeros for an image or the error
/// outcome).
#[no_mangle]
pub extern "C" fn oracle_logits_hash() -> *const u8 {
    last().logits_hash.as_ptr()
}

/// The model root of a model file's bytes; returns a pointer to its 32 bytes.
///
/// # Safety
/// `model` must point at `model_len` readable bytes (or be null).
#[no_mangle]
pub unsafe extern "C" fn oracle_model_root(model: *const u8, model_len: usize) -> *const u8 {
    // Safety: the caller's conditions.
    let model = unsafe { slice(model, model_len) };
    let mut last = last();
    last.model_root = oracle_core::commit::merkle::model_root(model);
    last.model_root.as_ptr()
}

/// keccak256 of `len` bytes at `ptr` (a page checks a PNG posted as its hash with
/// it); returns a pointer to its 32 bytes.
///
/// # Safety
/// `ptr` must point at `len` readable bytes (or be null).
#[no_mangle]
pub unsafe extern "C" fn oracle_keccak(ptr: *const u8, len: usize) -> *const u8 {
    // Safety: the caller's conditions.
    let bytes = unsafe { slice(ptr, len) };
    let mut last = last();
    last.model_root = oracle_core::commit::merkle::keccak(bytes);
    last.model_root.as_ptr()
}
