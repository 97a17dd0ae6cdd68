//! Typed errors of the core. Nothing in the core panics on input bytes.

use alloc::string::String;

use crate::format::Arch;

/// Why a model file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Shorter than the fixed header.
    #[error("file is {0} bytes, shorter than the 64-byte header")]
    TooShort(usize),
    /// The first eight bytes are not the model magic.
    #[error("not an oracle model file (bad magic)")]
    BadMagic,
    /// A version this build does not read.
    #[error("unsupported model file version {0} (this build reads version {1})")]
    UnsupportedVersion(u32, u32),
    /// An architecture this build does not run.
    #[error("unsupported architecture id {0}")]
    UnsupportedArch(u32),
    /// The file holds a model of another architecture than the loader's.
    #[error("the file holds a {} model, not a {} model", .found.name(), .expected.name())]
    WrongArch {
        /// The loader's architecture.
        expected: Arch,
        /// The file's.
        found: Arch,
    },
    /// The header's length field disagrees with the data: truncated or extended.
    #[error("file length {actual} does not match the header's {expected} (truncated or corrupt)")]
    LengthMismatch {
        /// Length the header declares.
        expected: u64,
        /// Length of the bytes given.
        actual: u64,
    },
    /// A section points outside the file or overlaps the header.
    #[error("{0} section lies outside the file")]
    SectionOutOfBounds(&'static str),
    /// The configuration values are inconsistent or out of range.
    #[error("bad config: {0}")]
    BadConfig(&'static str),
    /// The tokenizer section is malformed.
    #[error("bad tokenizer: {0}")]
    BadTokenizer(&'static str),
    /// A tensor entry is malformed.
    #[error("tensor {name:?}: {reason}")]
    BadTensor {
        /// Tensor name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A tensor the architecture needs is absent.
    #[error("missing tensor {0:?}")]
    MissingTensor(String),
    /// The model's root differs from the expected (registered) one.
    #[error("model root mismatch: expected {expected}, file has {actual}")]
    RootMismatch {
        /// Root the caller expected, hex.
        expected: String,
        /// Root computed over the file, hex.
        actual: String,
    },
}

/// Why an inference request was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The prompt's tokens do not fit the context.
    #[error("prompt is {tokens} tokens but the context holds {seq_len}")]
    PromptTooLong {
        /// Tokens of the encoded prompt (with BOS).
        tokens: usize,
        /// Model context length.
        seq_len: usize,
    },
    /// The prompt has more bytes than the context could hold however it tokenizes
    /// (refused before tokenizing).
    #[error(
        "prompt is {bytes} bytes, more than the {max_bytes} a {seq_len}-token context can hold"
    )]
    PromptTooLarge {
        /// Bytes of the prompt.
        bytes: u64,
        /// The most bytes `seq_len - 1` tokens can cover.
        max_bytes: u64,
        /// Model context length.
        seq_len: u32,
    },
    /// Parameters of another family than the model's, parameters that are not
    /// the canonical encoding, or noise given to a model that takes none.
    #[error("bad request parameters: {0}")]
    Params(&'static str),
    /// A sampling parameter out of range.
    #[error("bad sampling parameter: {0}")]
    BadSampling(&'static str),
    /// Zero steps requested.
    #[error("steps must be at least 1")]
    ZeroSteps,
    /// A chat request to a model whose vocabulary has no chat template.
    #[error("the model has no chat template")]
    NoChatTemplate,
    /// A token id outside the vocabulary.
    #[error("token id {0} is outside the vocabulary")]
    TokenOutOfRange(u32),
    /// A position outside the context.
    #[error("position {0} is outside the context")]
    PositionOutOfRange(u32),
}
