//! The LLaMA weights, borrowed from the model file: quantized matrices as views of
//! its bytes, norm vectors and the RoPE table decoded (llama2.c's
//! `TransformerWeights`). Every shape is checked against the config when bound.

use alloc::format;
use alloc::vec::Vec;

use super::config::LlamaConfig;
use crate::error::FormatError;
use crate::fixed::{FRAC, FRAC30};
use crate::format::ModelFile;
use crate::quant::QMatrix;

/// Weights of one transformer block.
#[derive(Debug, Clone)]
pub struct LayerWeights<'a> {
    /// Attention RMSNorm weight, Q16: `(dim)`.
    pub attention_norm: Vec<i32>,
    /// `wq: (n_heads * head_size, dim)`.
    pub wq: QMatrix<'a>,
    /// `wk: (n_kv_heads * head_size, dim)`.
    pub wk: QMatrix<'a>,
    /// `wv: (n_kv_heads * head_size, dim)`.
    pub wv: QMatrix<'a>,
    /// `wo: (dim, n_heads * head_size)`.
    pub wo: QMatrix<'a>,
    /// FFN RMSNorm weight, Q16: `(dim)`.
    pub ffn_norm: Vec<i32>,
    /// Gate `w1: (hidden_dim, dim)`.
    pub w1: QMatrix<'a>,
    /// Down `w2: (dim, hidden_dim)`.
    pub w2: QMatrix<'a>,
    /// Up `w3: (hidden_dim, dim)`.
    pub w3: QMatrix<'a>,
    /// Qwen2's attention biases, Q16, added to the q/k/v projections (before
    /// RoPE): `bq: (dim)`, `bk`, `bv: (kv_dim)`; `None` in a LLaMA.
    pub qkv_bias: Option<QkvBias>,
}

/// The biases of the query, key and value projections, Q16.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QkvBias {
    /// `(n_heads * head_size)`.
    pub q: Vec<i32>,
    /// `(n_kv_heads * head_size)`.
    pub k: Vec<i32>,
    /// `(n_kv_heads * head_size)`.
    pub v: Vec<i32>,
}

impl QkvBias {
    /// Adds the biases to projections `q`, `k` and `v` (one position's, or each
    /// row of several positions').
    pub fn add_to(&self, q: &mut [i32], k: &mut [i32], v: &mut [i32]) {
        add_bias(q, &self.q);
        add_bias(k, &self.k);
        add_bias(v, &self.v);
    }
}

/// Adds `bias` to each `bias.len()`-wide row of `rows` (saturating: a hostile
/// file's bias must not wrap differently across hosts, and cannot panic).
fn add_bias(rows: &mut [i32], bias: &[i32]) {
    if bias.is_empty() {
        return;
    }
    for row in rows.chunks_exact_mut(bias.len()) {
        for (x, &b) in row.iter_mut().zip(bias) {
            *x = x.saturating_add(b);
        }
    }
}

/// All weights of a model, borrowed from its file (norm vectors decoded).
#[derive(Debug, Clone)]
pub struct LlamaWeights<'a> {
    /// Hyper-parameters.
    pub config: LlamaConfig,
    /// Token embedding `(vocab_size, dim)`.
    pub tok_embeddings: QMatrix<'a>,
    /// Transformer blocks.
    pub layers: Vec<LayerWeights<'a>>,
    /// Final RMSNorm weight, Q16: `(dim)`.
    pub norm: Vec<i32>,
    /// Classifier `(vocab_size, dim)` (the embedding when shared).
    pub output: QMatrix<'a>,
    /// RoPE table, Q30: `(seq_len, head_size / 2, 2)` as `[cos, sin]` pairs.
    pub rope: Vec<i32>,
}

fn matrix<'a>(
    file: &ModelFile<'a>,
    name: &str,
    rows: u32,
    cols: u32,
) -> Result<QMatrix<'a>, FormatError> {
    file.qmatrix(name, rows as usize, cols as usize)
}

impl<'a> LlamaWeights<'a> {
    /// Bind the tensors of a parsed file, checking every shape against its
    /// config `c`.
    pub fn bind(file: &ModelFile<'a>, c: LlamaConfig) -> Result<LlamaWeights<'a>, FormatError> {
        let (dim, hidden, kv_dim) = (c.dim, c.hidden_dim, c.kv_dim());
        let mut layers = Vec::with_capacity(c.n_layers as usize);
        for l in 0..c.n_layers {
            let n = |s: &str| format!("layers.{l}.{s}");
            layers.push(LayerWeights {
                attention_norm: file.i32s(&n("attention_norm"), dim.into(), FRAC as i32)?,
                wq: matrix(file, &n("attention.wq"), dim, dim)?,
                wk: matrix(file, &n("attention.wk"), kv_dim, dim)?,
                wv: matrix(file, &n("attention.wv"), kv_dim, dim)?,
                wo: matrix(file, &n("attention.wo"), dim, dim)?,
                ffn_norm: file.i32s(&n("ffn_norm"), dim.into(), FRAC as i32)?,
                w1: matrix(file, &n("feed_forward.w1"), hidden, dim)?,
                w2: matrix(file, &n("feed_forward.w2"), dim, hidden)?,
                w3: matrix(file, &n("feed_forward.w3"), hidden, dim)?,
                qkv_bias: if file.tensor(&n("attention.bq")).is_ok() {
                    Some(QkvBias {
                        q: file.i32s(&n("attention.bq"), dim.into(), FRAC as i32)?,
                        k: file.i32s(&n("attention.bk"), kv_dim.into(), FRAC as i32)?,
                        v: file.i32s(&n("attention.bv"), kv_dim.into(), FRAC as i32)?,
                    })
                } else {
                    None
                },
            });
        }
        let tok_embeddings = matrix(file, "tok_embeddings", c.vocab_size, dim)?;
        let output = if c.shared_classifier {
            tok_embeddings
        } else {
            matrix(file, "output", c.vocab_size, dim)?
        };
        Ok(LlamaWeights {
            config: c,
            tok_embeddings,
            layers,
            norm: file.i32s("norm", dim.into(), FRAC as i32)?,
            output,
            // (seq_len, head_size / 2, 2): at most 2^20 · 2^16 entries, in u64.
            rope: file.i32s(
                "rope",
                u64::from(c.seq_len) * u64::from(c.head_size()),
                FRAC30 as i32,
            )?,
        })
    }
}
