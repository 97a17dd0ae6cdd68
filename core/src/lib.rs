//! Bit-exact, integer-only inference core.
//!
//! No floating point at run time (`clippy::float_arithmetic` is denied outside
//! tests), no value arithmetic on `usize` beyond indexing, every rounding through
//! [`fixed::round_shift`], every accumulator with a stated bound. The same model,
//! input and seed give the same bytes on x86_64, aarch64 and the rv32im guest.
//!
//! Layers, lowest first: [`fixed`] and [`math`] (numerics) → [`quant`] and
//! [`kernels`] (quantized matrix-vector products) → [`format`](mod@format) and [`merkle`] (the
//! model file and its commitment) → [`tokenizer`], [`sampler`], [`llama`],
//! [`generate`](mod@generate).
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(clippy::float_arithmetic)]

extern crate alloc;

pub mod clip;
pub mod diffusion;
pub mod error;
pub mod fixed;
pub mod footprint;
pub mod format;
pub mod generate;
pub mod image_format;
pub mod image_request;
pub mod kernels;
pub mod llama;
pub mod math;
pub mod merkle;
pub mod nn;
pub mod outcome;
pub mod position;
pub mod quant;
pub mod sampler;
mod tensor_table;
pub mod tokenizer;

pub use error::{FormatError, RequestError};
pub use format::{LlamaConfig, ModelFile};
pub use generate::{generate, Generation, Request};
pub use kernels::Exec;
pub use llama::{LlamaState, LlamaWeights};
pub use sampler::SamplingParams;
pub use tokenizer::Tokenizer;

/// A model file opened for inference: parsed, weights bound, tokenizer indexed.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    /// The parsed file.
    pub file: ModelFile<'a>,
    /// Bound weights.
    pub weights: LlamaWeights<'a>,
    /// The vocabulary.
    pub tokenizer: Tokenizer<'a>,
}

impl<'a> Model<'a> {
    /// Parse and bind a model file's bytes. Fails (never panics) on a malformed
    /// file and on one whose run state would exceed
    /// [`footprint::MAX_RUN_STATE_BYTES`]; allocates no run state.
    pub fn load(bytes: &'a [u8]) -> Result<Model<'a>, FormatError> {
        let file = ModelFile::parse(bytes)?;
        let weights = LlamaWeights::from_file(&file)?;
        let tokenizer = Tokenizer::parse(file.tokenizer, file.config.vocab_size, file.config.bos)?;
        let model = Model {
            file,
            weights,
            tokenizer,
        };
        footprint::check_run_state(model.footprint().run_state)?;
        Ok(model)
    }

    /// The memory this model needs to serve one request (see [`footprint`]).
    pub fn footprint(&self) -> footprint::Footprint {
        footprint::text_footprint(&self.file, self.tokenizer.max_piece_len() as u64)
    }

    /// Parse, and first check the bytes against an expected model root.
    pub fn load_verified(
        bytes: &'a [u8],
        expected_root: &merkle::Hash,
    ) -> Result<Model<'a>, FormatError> {
        let actual = merkle::model_root(bytes);
        if &actual != expected_root {
            return Err(FormatError::RootMismatch {
                expected: merkle::to_hex(expected_root),
                actual: merkle::to_hex(&actual),
            });
        }
        Model::load(bytes)
    }

    /// Run a text-generation request.
    pub fn generate(
        &self,
        exec: Exec,
        request: &Request<'_>,
        on_piece: impl FnMut(&[u8]),
    ) -> Result<Generation, RequestError> {
        generate::generate(&self.weights, &self.tokenizer, exec, request, on_piece)
    }
}
