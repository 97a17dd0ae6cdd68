//! What a model needs in memory to serve one request, known from its file before
//! anything big is allocated.
//!
//! Serving a model holds three things:
//! - **file**: the model file's bytes (mapped natively, fetched into the heap by the
//!   guest);
//! - **decoded**: what loading copies out of them: the `i32` tensors (norm weights,
//!   RoPE and scheduler tables, biases; counted twice to cover the `i64` frequency
//!   tables), the parsed tensor table, the tokenizer's indexes, the layer structs;
//! - **run state**: one request's activations, KV cache, sampler scratch, token
//!   lists and output. For a text model it includes the KV commitment tree of the
//!   two-phase transitions ([`crate::commit::position::KvTree`]).
//!
//! Every figure is computed in `u64` with saturating arithmetic from values the
//! file states, so no hostile header can wrap it. Loading refuses a model whose run
//! state exceeds [`MAX_RUN_STATE_BYTES`] ([`crate::llama::Model::load`], and the image
//! binders `UNet2D::from_file` (already from its config words) and
//! `StableDiffusion::from_file`; ddpm-mnist's shapes are fixed), and [`check`]
//! lets a caller hold a model to its own budget: the guest refuses a model over
//! [`GUEST_MEMORY_BUDGET`], and so does the node (a model the guest cannot run is
//! a model whose results cannot be defended).
//!
//! The figures are upper bounds of the core's live heap bytes for one request on
//! one thread (`tests/tests/footprint.rs` compares them with a counting allocator
//! on the bundled models: text within 1.3x of the measured peak, images 10x to
//! 100x, since their activations are bounded generically). Not included: the allocator's own overhead and fragmentation, the
//! stack, each extra kernel thread's row scratch (`8 · keys` bytes per attention
//! row), and what a request itself brings (the prompt: 4 bytes per prompt byte
//! while it is tokenized).

use crate::error::FormatError;
use crate::format::{Arch, DType, ModelFile, TensorInfo};
use crate::llama::config::LlamaConfig;

/// The largest run state any model may ask for, in bytes (2 GiB): loading fails
/// beyond it. Every buffer of the core must be addressable on the 32-bit guest,
/// whose whole address space is 4 GiB, and a request must not be able to ask a
/// 64-bit host for more memory than the model's weights justify by orders of
/// magnitude.
pub const MAX_RUN_STATE_BYTES: u64 = 1 << 31;

/// What the guest's heap holds for a model, in bytes (1 GiB): the fetched model
/// file plus [`Footprint::decoded`] and [`Footprint::run_state`]. The heap itself
/// runs up to `0x7000_0000`, leaving room for the allocator's slack.
pub const GUEST_MEMORY_BUDGET: u64 = 1 << 30;

/// Bytes counted per entry of the parsed tensor table (a [`TensorInfo`]).
pub const TENSOR_INFO_BYTES: u64 = 96;
/// Bytes counted per transformer block's bound weights (a
/// [`crate::llama::weights::LayerWeights`], without its norm vectors).
pub const LAYER_STRUCT_BYTES: u64 = 512;
/// Bytes counted per vocabulary entry of a text model's tokenizer (piece slice,
/// score, sorted index).
pub const TOKEN_INDEX_BYTES: u64 = 24;
/// Bytes counted per byte of an image model's CLIP tokenizer blob (its
/// vocabulary and merge maps).
pub const CLIP_TOKENIZER_FACTOR: u64 = 48;
/// Bytes added to a text request's run state for what does not scale with the
/// config (hashers, the request's parameters, small scratch).
pub const RUN_SLACK: u64 = 64 << 10;
/// Full-width activation maps an image network keeps live at its peak, beyond its
/// skip states (see [`conv_net_bytes`]).
pub const WORK_MAPS: u64 = 16;

/// The memory a model needs to serve one request (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// The model file's length.
    pub file: u64,
    /// Bytes decoded from the file at load.
    pub decoded: u64,
    /// Bytes of one request's run state.
    pub run_state: u64,
}

impl Footprint {
    /// Everything: file, decoded copies and run state (saturating).
    pub fn total(&self) -> u64 {
        self.file
            .saturating_add(self.decoded)
            .saturating_add(self.run_state)
    }

    /// Whether the model fits `budget` bytes.
    pub fn fits(&self, budget: u64) -> bool {
        self.total() <= budget
    }
}

/// Why [`check`] refused a model file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The file does not load.
    #[error("not a loadable model file: {0}")]
    Format(#[from] FormatError),
    /// The file loads but needs more memory than the budget.
    #[error("needs {needed} bytes to serve a request (file {file}, decoded {decoded}, run state {run_state}), over the budget of {budget}")]
    OverBudget {
        /// [`Footprint::total`].
        needed: u64,
        /// [`Footprint::file`].
        file: u64,
        /// [`Footprint::decoded`].
        decoded: u64,
        /// [`Footprint::run_state`].
        run_state: u64,
        /// The budget it was held to.
        budget: u64,
    },
}

/// A sum of products in `u64` that saturates instead of wrapping.
#[derive(Debug, Clone, Copy, Default)]
struct Bytes(u64);

impl Bytes {
    /// Add the product of `factors`.
    fn add(self, factors: &[u64]) -> Bytes {
        let p = factors.iter().fold(1u64, |a, &f| a.saturating_mul(f));
        Bytes(self.0.saturating_add(p))
    }
}

/// The run state of one text request of a model with `c` whose longest
/// tokenizer piece is `max_piece` bytes: activations `(16·dim + 8·hidden +
/// 2·max(dim, hidden) + 8·seq_len + 4·vocab)`, the KV cache
/// `(2, n_layers, seq_len, kv_dim)` of `i32`, the sampler's `12·vocab`, the token
/// lists (`32 · (seq_len + 1)`), the printed text (at most `seq_len · max_piece`),
/// the two-phase KV tree (`n_layers · 2 · cap` hashes, `cap =
/// seq_len.next_power_of_two()`) and [`RUN_SLACK`].
pub fn llama_run_state(c: &LlamaConfig, max_piece: u64) -> u64 {
    let (dim, hidden, layers) = (
        u64::from(c.dim),
        u64::from(c.hidden_dim),
        u64::from(c.n_layers),
    );
    let (vocab, seq) = (u64::from(c.vocab_size), u64::from(c.seq_len));
    let kv_dim = c.dim.checked_div(c.n_heads).map_or(dim, |hs| {
        u64::from(hs).saturating_mul(u64::from(c.n_kv_heads))
    });
    let cap = seq.max(1).checked_next_power_of_two().unwrap_or(u64::MAX);
    Bytes::default()
        .add(&[16, dim])
        .add(&[8, hidden])
        .add(&[2, dim.max(hidden)])
        .add(&[8, seq])
        .add(&[4, vocab])
        .add(&[8, layers, seq, kv_dim])
        .add(&[12, vocab])
        .add(&[32, seq.saturating_add(1)])
        .add(&[RUN_SLACK])
        .add(&[seq, max_piece.saturating_add(1)])
        .add(&[64, layers, cap])
        .0
}

/// The bytes loading decodes from a parsed file's tensors: twice the `i32`
/// tensors (some become `i64` tables) and the parsed table itself.
fn decoded_tensors(tensors: &[TensorInfo<'_>]) -> Bytes {
    tensors.iter().fold(Bytes::default(), |b, t| {
        let copies = if t.dtype == DType::I32 { 2 } else { 0 };
        b.add(&[copies, t.data.len() as u64])
            .add(&[TENSOR_INFO_BYTES])
    })
}

/// The footprint of a parsed text model of config `c` whose tokenizer's longest
/// piece is `max_piece` bytes.
pub fn text_footprint(file: &ModelFile<'_>, c: &LlamaConfig, max_piece: u64) -> Footprint {
    let decoded = decoded_tensors(&file.tensors)
        .add(&[LAYER_STRUCT_BYTES, c.n_layers.into()])
        .add(&[TOKEN_INDEX_BYTES, c.vocab_size.into()]);
    Footprint {
        file: file.bytes.len() as u64,
        decoded: decoded.0,
        run_state: llama_run_state(c, max_piece),
    }
}

/// The widest map an image network computes, in channels: twice the most rows
/// (output features) of any quantized tensor of the file (a skip concatenation
/// doubles a map's channels), and at least `floor` (its input channels).
pub fn image_width(file: &ModelFile<'_>, floor: u64) -> u64 {
    let rows = file
        .tensors
        .iter()
        .filter(|t| matches!(t.dtype, DType::Quant(_)))
        .map(|t| u64::from(t.rows))
        .max()
        .unwrap_or(0);
    rows.saturating_mul(2).max(floor)
}

/// The activations of a convolutional network over `side × side` maps of at most
/// `width` channels that keeps `skips` skip states: `(skips + WORK_MAPS)` maps of
/// `width · side²` `i32` each (the attentions' row scratch, `8 · side²` per row,
/// fits in the same count).
pub fn conv_net_bytes(width: u64, side: u64, skips: u64) -> u64 {
    Bytes::default()
        .add(&[skips.saturating_add(WORK_MAPS), width, side, side, 4])
        .0
}

/// The footprint of a parsed image model file whose networks' run state is
/// `run_state` (the binders compute it: see [`crate::diffusion`]).
pub fn image_footprint(file: &ModelFile<'_>, run_state: u64, extra_decoded: u64) -> Footprint {
    let decoded = decoded_tensors(&file.tensors).add(&[extra_decoded]);
    Footprint {
        file: file.bytes.len() as u64,
        decoded: decoded.0,
        run_state,
    }
}

/// `BadConfig` when `run_state` exceeds [`MAX_RUN_STATE_BYTES`].
pub fn check_run_state(run_state: u64) -> Result<(), FormatError> {
    if run_state > MAX_RUN_STATE_BYTES {
        return Err(FormatError::BadConfig(
            "the run state of a request would exceed 2 GiB",
        ));
    }
    Ok(())
}

/// The footprint of any model file, loading it fully (so every check of loading
/// applies) but allocating no run state.
pub fn of_model(bytes: &[u8]) -> Result<(Arch, Footprint), FormatError> {
    let (model, fp) = crate::model::AnyModel::load_with_footprint(bytes)?;
    Ok((model.arch(), fp))
}

/// Load `bytes` as a model file (any architecture) and hold it to `budget` bytes:
/// the per-file check of a node's `--models` folder and of the guest. Never
/// panics and allocates no run state.
pub fn check(bytes: &[u8], budget: u64) -> Result<(Arch, Footprint), CheckError> {
    let (arch, fp) = of_model(bytes)?;
    if !fp.fits(budget) {
        return Err(CheckError::OverBudget {
            needed: fp.total(),
            file: fp.file,
            decoded: fp.decoded,
            run_state: fp.run_state,
            budget,
        });
    }
    Ok((arch, fp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_stay_within_the_counted_bytes() {
        assert!(core::mem::size_of::<TensorInfo<'_>>() as u64 <= TENSOR_INFO_BYTES);
        assert!(
            core::mem::size_of::<crate::llama::weights::LayerWeights<'_>>() as u64
                <= LAYER_STRUCT_BYTES
        );
        assert!(core::mem::size_of::<&[u8]>() as u64 + 8 <= TOKEN_INDEX_BYTES);
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let c = LlamaConfig {
            dim: u32::MAX,
            hidden_dim: u32::MAX,
            n_layers: u32::MAX,
            n_heads: 1,
            n_kv_heads: u32::MAX,
            vocab_size: u32::MAX,
            seq_len: u32::MAX,
            shared_classifier: true,
            norm_eps_q32: 0,
            bos: 0,
            eos: 0,
        };
        assert_eq!(llama_run_state(&c, u64::MAX), u64::MAX);
        assert_eq!(conv_net_bytes(u64::MAX, u64::MAX, u64::MAX), u64::MAX);
    }
}
