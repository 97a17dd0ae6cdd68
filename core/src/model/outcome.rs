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

use crate::commit::merkle::{keccak, Hash};
use crate::diffusion::request::{posted_output, ImageRequestError};
use crate::error::{FormatError, RequestError};
use crate::kernels::Exec;
use crate::model::request::Request;
use crate::model::AnyModel;

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

/// Why a request has the error outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The model file does not load.
    #[error("the model file does not load: {0}")]
    Model(#[from] FormatError),
    /// The parameters do not fit the model's family, or the text model rejects
    /// the request (prompt too long, sampling parameters, ...).
    #[error("{0}")]
    Request(#[from] RequestError),
    /// The image model rejects the request (a prompt to an unconditional model,
    /// steps outside the schedule, ...).
    #[error("{0}")]
    Image(#[from] ImageRequestError),
}

/// What a request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A text: the prompt and its continuation, then a newline ([`text_output`]).
    Text {
        /// The posted bytes.
        output: Vec<u8>,
        /// Tokens generated after the prompt.
        generated: u64,
        /// keccak256 over the logits of every sampling position (the cross-target
        /// goldens).
        logits_hash: Hash,
    },
    /// An image: its PNG bytes (posted as is, or as their hash over the inline
    /// limit: [`posted_output`]).
    Image {
        /// The PNG.
        png: Vec<u8>,
    },
    /// The error outcome (posted as the empty output).
    Rejected(Rejection),
}

impl Outcome {
    /// The bytes posted on chain for this outcome.
    pub fn posted(&self) -> Vec<u8> {
        match self {
            Outcome::Text { output, .. } => output.clone(),
            Outcome::Image { png } => posted_output(png),
            Outcome::Rejected(_) => REJECTED_OUTPUT.to_vec(),
        }
    }

    /// The commitment of the posted bytes (the VM's output field).
    pub fn commitment(&self) -> Hash {
        commitment(&self.posted())
    }
}

/// Run a request on any model file: the one entry point of the guest, the node's
/// serving, `oracle run` and `fpvm run` (through [`AnyModel::run`]), so they all
/// post the same bytes. `params` are the canonical encoding of the request's
/// parameters ([`crate::model::request`]), read as the model's family's
/// ([`AnyModel::decode_params`]); `input` is the prompt. A text model hands each
/// printed piece to `on_piece`. A file that does not load, parameters that are
/// not the family's, or a request the model rejects give [`Outcome::Rejected`].
/// `exec` changes only the speed.
pub fn run(
    bytes: &[u8],
    exec: Exec,
    params: &[u8],
    input: &[u8],
    on_piece: impl FnMut(&[u8]),
) -> Outcome {
    let model = match AnyModel::load(bytes) {
        Ok(m) => m,
        Err(e) => return Outcome::Rejected(Rejection::Model(e)),
    };
    match model.decode_params(params) {
        Ok(params) => model.run(exec, &Request::new(input, params), on_piece),
        Err(e) => Outcome::Rejected(Rejection::Request(e)),
    }
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
