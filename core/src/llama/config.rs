//! Hyper-parameters of a LLaMA-family model (llama2.c's `Config`), as stored in
//! the model file.

use alloc::vec::Vec;

use crate::error::FormatError;
use crate::format::{ConfigReader, ConfigWriter};
use crate::quant::MAX_COLS;

/// Hyper-parameters of a LLaMA-family model, as stored in the file's config
/// ([`LlamaConfig::to_words`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlamaConfig {
    /// Residual stream width.
    pub dim: u32,
    /// FFN hidden width.
    pub hidden_dim: u32,
    /// Transformer blocks.
    pub n_layers: u32,
    /// Query heads.
    pub n_heads: u32,
    /// Key/value heads.
    pub n_kv_heads: u32,
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Context length.
    pub seq_len: u32,
    /// Classifier shared with the token embedding.
    pub shared_classifier: bool,
    /// RMSNorm epsilon in Q32.
    pub norm_eps_q32: u32,
    /// Beginning-of-sequence token.
    pub bos: u32,
    /// End-of-sequence token.
    pub eos: u32,
}

impl LlamaConfig {
    /// Width of one head.
    pub fn head_size(&self) -> u32 {
        self.dim / self.n_heads
    }

    /// Width of the key/value projections.
    pub fn kv_dim(&self) -> u32 {
        self.head_size() * self.n_kv_heads
    }

    /// Check ranges and divisibility; every later index computation relies on it.
    pub fn validate(&self) -> Result<(), FormatError> {
        let bad = FormatError::BadConfig;
        if self.dim == 0 || self.hidden_dim == 0 || self.n_layers == 0 || self.n_heads == 0 {
            return Err(bad("zero dimension"));
        }
        if self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(bad("n_heads must be a multiple of n_kv_heads"));
        }
        if !self.dim.is_multiple_of(self.n_heads) || !self.head_size().is_multiple_of(2) {
            return Err(bad("dim must split into heads of even size"));
        }
        if self.dim > MAX_COLS || self.hidden_dim > MAX_COLS {
            return Err(bad("dim and hidden_dim are limited to 65536"));
        }
        if self.vocab_size < 3 || self.vocab_size > 1 << 20 || self.n_layers > 1024 {
            return Err(bad("vocab_size or n_layers out of range"));
        }
        if self.seq_len == 0 || self.seq_len > 1 << 20 {
            return Err(bad("seq_len out of range"));
        }
        if self.bos >= self.vocab_size || self.eos >= self.vocab_size {
            return Err(bad("bos/eos outside the vocabulary"));
        }
        crate::footprint::check_run_state(crate::footprint::llama_run_state(self, 0))
    }

    /// The config's words in the model file, in field order: dim, hidden_dim,
    /// n_layers, n_heads, n_kv_heads, vocab_size, seq_len, shared_classifier
    /// (0/1), norm_eps_q32, bos, eos.
    pub fn to_words(&self) -> Vec<u32> {
        ConfigWriter::new()
            .u32(self.dim)
            .u32(self.hidden_dim)
            .u32(self.n_layers)
            .u32(self.n_heads)
            .u32(self.n_kv_heads)
            .u32(self.vocab_size)
            .u32(self.seq_len)
            .flag(self.shared_classifier)
            .u32(self.norm_eps_q32)
            .u32(self.bos)
            .u32(self.eos)
            .finish()
    }

    /// Read [`LlamaConfig::to_words`] back (every word used) and
    /// [`validate`](LlamaConfig::validate) it.
    pub fn from_words(words: &[u32]) -> Result<LlamaConfig, FormatError> {
        let mut r = ConfigReader::new(words);
        let cfg = LlamaConfig {
            dim: r.u32()?,
            hidden_dim: r.u32()?,
            n_layers: r.u32()?,
            n_heads: r.u32()?,
            n_kv_heads: r.u32()?,
            vocab_size: r.u32()?,
            seq_len: r.u32()?,
            shared_classifier: r.flag()?,
            norm_eps_q32: r.u32()?,
            bos: r.u32()?,
            eos: r.u32()?,
        };
        r.finish()?;
        cfg.validate()?;
        Ok(cfg)
    }
}
