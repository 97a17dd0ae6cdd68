//! The LLaMA family (llama2.c's `run.c`, in integers): [`config`] (hyper-parameters),
//! [`weights`] (views into the model file), [`forward`] (run state and the forward
//! pass), [`prefill`] (the prompt's positions together), [`tokenizer`] (llama2.c's BPE, or byte-level BPE: [`bpe`], [`pretokenize`], [`chat`]), [`sampler`] (greedy, temperature, top-p)
//! and [`generate`](mod@generate) (the decode loop), bound together as a [`Model`].

pub mod bpe;
pub mod chat;
pub mod config;
pub mod forward;
pub mod generate;
pub mod merge;
pub mod prefill;
pub mod pretokenize;
pub mod sampler;
pub mod tokenizer;
pub mod weights;

pub use config::LlamaConfig;
pub use forward::LlamaState;
pub use generate::{generate, Generation};
pub use sampler::SamplingParams;
pub use tokenizer::{score_key, vocab_bytes, SpmVocab, TokenEntry, Tokenizer};
pub use weights::LlamaWeights;

use crate::commit::merkle;
use crate::error::{FormatError, RequestError};
use crate::footprint;
use crate::format::{Arch, ModelFile, TOKENIZER};
use crate::kernels::Exec;
use crate::model::outcome::{text_output, Outcome, Rejection};
use crate::model::request::Request;

/// A model file opened for inference: parsed, weights bound, tokenizer indexed.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    /// The parsed file.
    pub file: ModelFile<'a>,
    /// Hyper-parameters.
    pub config: LlamaConfig,
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
        Model::from_file(ModelFile::parse(bytes)?)
    }

    /// Bind a parsed model file of architecture [`Arch::Llama`]: its config, its
    /// weights, its tokenizer ([`TOKENIZER`]), in that order.
    pub fn from_file(file: ModelFile<'a>) -> Result<Model<'a>, FormatError> {
        file.expect_arch(Arch::Llama)?;
        let config = LlamaConfig::from_words(&file.config)?;
        let weights = LlamaWeights::bind(&file, config)?;
        let tokenizer = Tokenizer::parse(file.u8s(TOKENIZER)?, config.vocab_size, config.bos)?;
        let model = Model {
            file,
            config,
            weights,
            tokenizer,
        };
        footprint::check_run_state(model.footprint().run_state)?;
        Ok(model)
    }

    /// The memory this model needs to serve one request (see [`footprint`]).
    pub fn footprint(&self) -> footprint::Footprint {
        footprint::text_footprint(
            &self.file,
            &self.config,
            self.tokenizer.max_piece_len() as u64,
        )
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

    /// Run a request to its posted outcome: the text and a newline
    /// ([`text_output`]), or the error outcome.
    pub fn run(&self, exec: Exec, request: &Request<'_>, on_piece: impl FnMut(&[u8])) -> Outcome {
        match self.generate(exec, request, on_piece) {
            Ok(g) => Outcome::Text {
                output: text_output(&g.text),
                generated: u64::try_from(g.tokens.len().saturating_sub(g.prompt_tokens))
                    .unwrap_or(u64::MAX),
                logits_hash: g.logits_hash,
            },
            Err(e) => Outcome::Rejected(Rejection::Request(e)),
        }
    }
}
