//! A request's result as posted on chain: its output bytes, and their commitment
//! `keccak256(output)` (the VM's output field, and the two-phase game's `s_N`).
//!
//! A request the model rejects (a prompt longer than the context, bad parameters, a
//! model file that does not load, a non-empty input to an unconditional image
//! model, ...) has no text or image, but it still has a result, the same on every
//! host and in the VM, so that it can be served, disputed and settled like any
//! other: the **error outcome**, the empty output. No successful output is empty
//! (a text ends with a newline, an image is PNG bytes or their 32-byte hash), so the
//! contract tells the two apart by the length alone and delivers the error outcome
//! through the receiver's `aiOracleCallbackError` (`InvalidInput`).

use alloc::vec::Vec;

use crate::merkle::{keccak, Hash};

/// The posted output of a rejected request: empty.
pub const REJECTED_OUTPUT: &[u8] = &[];

/// The commitment of the error outcome, `keccak256("")`. In the two-phase game it is
/// also the decode state that a rejected request's init transition commits and that
/// every later transition keeps (a fixed point), so its chain ends in this output
/// commitment.
pub fn rejected_commitment() -> Hash {
    keccak(REJECTED_OUTPUT)
}

/// The posted output of a text request: what `oracle run` prints on stdout, the
/// prompt and its continuation followed by a newline (as llama2.c's `run` ends).
pub fn text_output(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 1);
    out.extend_from_slice(text);
    out.push(b'\n');
    out
}

/// The commitment of a posted output: `keccak256(output)`.
pub fn commitment(output: &[u8]) -> Hash {
    keccak(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_outcome_is_empty_and_no_text_output_is() {
        assert!(REJECTED_OUTPUT.is_empty());
        assert_eq!(text_output(b""), b"\n");
        assert_ne!(commitment(&text_output(b"")), rejected_commitment());
        assert_eq!(rejected_commitment(), commitment(b""));
    }
}
