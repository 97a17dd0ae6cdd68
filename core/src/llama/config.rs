//! Hyper-parameters of a LLaMA-family model (llama2.c's `Config`), as stored in
//! the model file.

use crate::error::FormatError;
use crate::format::CONFIG_LEN;
use crate::quant::MAX_COLS;
use crate::tensor_table::u32_at;

/// Hyper-parameters of a LLaMA-family model, as stored in the file.
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

    pub(crate) fn to_bytes(self) -> [u8; CONFIG_LEN] {
        let fields = [
            self.dim,
            self.hidden_dim,
            self.n_layers,
            self.n_heads,
            self.n_kv_heads,
            self.vocab_size,
            self.seq_len,
            u32::from(self.shared_classifier),
            self.norm_eps_q32,
            self.bos,
            self.eos,
        ];
        let mut out = [0u8; CONFIG_LEN];
        for (i, f) in fields.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&f.to_le_bytes());
        }
        out
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Result<LlamaConfig, FormatError> {
        let f = |i: usize| u32_at(b, i * 4).ok_or(FormatError::SectionOutOfBounds("config"));
        let flags = f(7)?;
        if flags > 1 {
            return Err(FormatError::BadConfig("unknown flags"));
        }
        let cfg = LlamaConfig {
            dim: f(0)?,
            hidden_dim: f(1)?,
            n_layers: f(2)?,
            n_heads: f(3)?,
            n_kv_heads: f(4)?,
            vocab_size: f(5)?,
            seq_len: f(6)?,
            shared_classifier: flags & 1 == 1,
            norm_eps_q32: f(8)?,
            bos: f(9)?,
            eos: f(10)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
