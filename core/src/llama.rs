//! The LLaMA forward pass in integers: weights borrowed from the model file, run
//! state (activations and KV cache) owned separately, one entry point
//! [`LlamaState::forward`]`(token, pos) -> logits`.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::{FormatError, RequestError};
use crate::fixed::{round_shift, sat_i32, FRAC, FRAC30};
use crate::format::{DType, LlamaConfig, ModelFile, TensorInfo};
use crate::kernels::{matvec, Exec};
use crate::math::{dot_q32, inv_sqrt_q30, narrow_q, rmsnorm_q16, silu_q16, softmax_q30};
use crate::quant::{quantize_activations, QMatrix};

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
    let t = file.tensor(name)?;
    let m = t
        .as_qmatrix()
        .ok_or_else(|| bad(t, "expected a quantized matrix"))?;
    if m.rows != rows || m.cols != cols {
        return Err(bad(t, "shape does not match the config"));
    }
    Ok(m)
}

fn fixed_vec(
    file: &ModelFile<'_>,
    name: &str,
    len: u64,
    frac: i32,
) -> Result<Vec<i32>, FormatError> {
    let t = file.tensor(name)?;
    if t.dtype != DType::I32 || t.exp != frac || u64::from(t.rows) * u64::from(t.cols) != len {
        return Err(bad(
            t,
            "expected an i32 vector of the config's length and precision",
        ));
    }
    Ok(t.to_i32_vec())
}

fn bad(t: &TensorInfo<'_>, reason: &'static str) -> FormatError {
    FormatError::BadTensor {
        name: t.name.into(),
        reason,
    }
}

impl<'a> LlamaWeights<'a> {
    /// Bind the tensors of a parsed file, checking every shape against the config.
    pub fn from_file(file: &ModelFile<'a>) -> Result<LlamaWeights<'a>, FormatError> {
        let c = file.config;
        let (dim, hidden, kv_dim) = (c.dim, c.hidden_dim, c.kv_dim());
        let mut layers = Vec::with_capacity(c.n_layers as usize);
        for l in 0..c.n_layers {
            let n = |s: &str| format!("layers.{l}.{s}");
            layers.push(LayerWeights {
                attention_norm: fixed_vec(file, &n("attention_norm"), dim.into(), FRAC as i32)?,
                wq: matrix(file, &n("attention.wq"), dim, dim)?,
                wk: matrix(file, &n("attention.wk"), kv_dim, dim)?,
                wv: matrix(file, &n("attention.wv"), kv_dim, dim)?,
                wo: matrix(file, &n("attention.wo"), dim, dim)?,
                ffn_norm: fixed_vec(file, &n("ffn_norm"), dim.into(), FRAC as i32)?,
                w1: matrix(file, &n("feed_forward.w1"), hidden, dim)?,
                w2: matrix(file, &n("feed_forward.w2"), dim, hidden)?,
                w3: matrix(file, &n("feed_forward.w3"), hidden, dim)?,
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
            norm: fixed_vec(file, "norm", dim.into(), FRAC as i32)?,
            output,
            // (seq_len, head_size / 2, 2): at most 2^20 · 2^16 entries, in u64.
            rope: fixed_vec(
                file,
                "rope",
                u64::from(c.seq_len) * u64::from(c.head_size()),
                FRAC30 as i32,
            )?,
        })
    }
}

/// Activations and KV cache of one sequence.
#[derive(Debug, Clone)]
pub struct LlamaState {
    config: LlamaConfig,
    /// Residual stream `(dim)`.
    x: Vec<i32>,
    /// Normalized input / attention output `(dim)`.
    xb: Vec<i32>,
    /// Projection output `(dim)`.
    xb2: Vec<i32>,
    /// FFN gate `(hidden_dim)`.
    hb: Vec<i32>,
    /// FFN up `(hidden_dim)`.
    hb2: Vec<i32>,
    /// Query `(dim)`.
    q: Vec<i32>,
    /// Scores of one head `(seq_len)`.
    att: Vec<i32>,
    /// Probabilities of one head `(seq_len)`, Q30.
    probs: Vec<u32>,
    /// `i16` form of the current matmul input `(max(dim, hidden_dim))`.
    xq: Vec<i16>,
    /// Output logits `(vocab_size)`.
    logits: Vec<i32>,
    /// `(n_layers, seq_len, kv_dim)`.
    key_cache: Vec<i32>,
    /// `(n_layers, seq_len, kv_dim)`.
    value_cache: Vec<i32>,
    /// `1 / sqrt(head_size)` in Q30.
    inv_sqrt_head: i64,
}

impl LlamaState {
    /// Fresh state for a model with `config`.
    pub fn new(config: &LlamaConfig) -> LlamaState {
        let c = *config;
        let (dim, hidden, seq) = (c.dim as usize, c.hidden_dim as usize, c.seq_len as usize);
        let cache = c.n_layers as usize * seq * c.kv_dim() as usize;
        LlamaState {
            config: c,
            x: vec![0; dim],
            xb: vec![0; dim],
            xb2: vec![0; dim],
            hb: vec![0; hidden],
            hb2: vec![0; hidden],
            q: vec![0; dim],
            att: vec![0; seq],
            probs: vec![0; seq],
            xq: vec![0; dim.max(hidden)],
            logits: vec![0; c.vocab_size as usize],
            key_cache: vec![0; cache],
            value_cache: vec![0; cache],
            inv_sqrt_head: i64::from(inv_sqrt_q30(c.head_size())),
        }
    }

    /// The KV cache `(keys, values)`, each `(n_layers, seq_len, kv_dim)`.
    pub fn kv_cache(&self) -> (&[i32], &[i32]) {
        (&self.key_cache, &self.value_cache)
    }

    /// The cached key and value rows of `layer` at `pos`, each `(kv_dim)`; `None`
    /// outside the cache.
    pub fn kv_row(&self, layer: u32, pos: u32) -> Option<(&[i32], &[i32])> {
        let at = self.kv_offset(layer, pos)?;
        let kv_dim = self.config.kv_dim() as usize;
        Some((
            &self.key_cache[at..at + kv_dim],
            &self.value_cache[at..at + kv_dim],
        ))
    }

    /// The key and value rows of `layer` at `pos`, writable (to restore a cache
    /// from a checkpoint); `None` outside the cache.
    pub fn kv_row_mut(&mut self, layer: u32, pos: u32) -> Option<(&mut [i32], &mut [i32])> {
        let at = self.kv_offset(layer, pos)?;
        let kv_dim = self.config.kv_dim() as usize;
        Some((
            &mut self.key_cache[at..at + kv_dim],
            &mut self.value_cache[at..at + kv_dim],
        ))
    }

    /// Offset of row (`layer`, `pos`) in the caches.
    fn kv_offset(&self, layer: u32, pos: u32) -> Option<usize> {
        let c = self.config;
        if layer >= c.n_layers || pos >= c.seq_len {
            return None;
        }
        Some((layer as usize * c.seq_len as usize + pos as usize) * c.kv_dim() as usize)
    }

    /// Run one position: feed `token` at `pos`, return the Q16 logits of the next
    /// token.
    pub fn forward(
        &mut self,
        w: &LlamaWeights<'_>,
        exec: Exec,
        token: u32,
        pos: u32,
    ) -> Result<&[i32], RequestError> {
        let c = self.config;
        if token >= c.vocab_size {
            return Err(RequestError::TokenOutOfRange(token));
        }
        if pos >= c.seq_len {
            return Err(RequestError::PositionOutOfRange(pos));
        }
        let (dim, hidden) = (c.dim as usize, c.hidden_dim as usize);
        let hs = c.head_size() as usize;
        let kv_dim = c.kv_dim() as usize;
        let kv_mul = (c.n_heads / c.n_kv_heads) as usize;
        let pos = pos as usize;
        let seq = c.seq_len as usize;

        w.tok_embeddings.dequantize_row(token as usize, &mut self.x);

        for (l, lw) in w.layers.iter().enumerate() {
            // Attention.
            rmsnorm_q16(&self.x, &lw.attention_norm, c.norm_eps_q32, &mut self.xb);
            let shift = quantize_activations(&self.xb, &mut self.xq[..dim]);
            let xq = &self.xq[..dim];
            let cache_at = (l * seq + pos) * kv_dim;
            matvec(exec, &lw.wq, xq, shift, &mut self.q);
            matvec(
                exec,
                &lw.wk,
                xq,
                shift,
                &mut self.key_cache[cache_at..cache_at + kv_dim],
            );
            matvec(
                exec,
                &lw.wv,
                xq,
                shift,
                &mut self.value_cache[cache_at..cache_at + kv_dim],
            );

            let rope = &w.rope[pos * hs..(pos + 1) * hs];
            rotate_pairs(&mut self.q, rope, hs);
            rotate_pairs(&mut self.key_cache[cache_at..cache_at + kv_dim], rope, hs);

            for h in 0..c.n_heads as usize {
                let q = &self.q[h * hs..(h + 1) * hs];
                let kv_off = (h / kv_mul) * hs;
                let layer_base = l * seq * kv_dim;
                for t in 0..=pos {
                    let at = layer_base + t * kv_dim + kv_off;
                    let dot = dot_q32(q, &self.key_cache[at..at + hs]);
                    // Q32 * Q30 -> Q16; |dot| < hs * 2^62, times 2^30 fits i128.
                    self.att[t] = narrow_q(dot * i128::from(self.inv_sqrt_head), FRAC + FRAC30);
                }
                softmax_q30(&self.att[..=pos], &mut self.probs[..=pos]);
                let out = &mut self.xb[h * hs..(h + 1) * hs];
                for (i, o) in out.iter_mut().enumerate() {
                    // |v| <= 2^31 and sum(p) <= 2^30 + seq_len, so the sum is
                    // below 2^62.
                    let mut acc: i64 = 0;
                    for t in 0..=pos {
                        let v = self.value_cache[layer_base + t * kv_dim + kv_off + i];
                        acc += i64::from(self.probs[t]) * i64::from(v);
                    }
                    *o = sat_i32(round_shift(acc, FRAC30));
                }
            }
            let shift = quantize_activations(&self.xb, &mut self.xq[..dim]);
            matvec(exec, &lw.wo, &self.xq[..dim], shift, &mut self.xb2);
            add_residual(&mut self.x, &self.xb2);

            // Feed-forward (SwiGLU).
            rmsnorm_q16(&self.x, &lw.ffn_norm, c.norm_eps_q32, &mut self.xb);
            let shift = quantize_activations(&self.xb, &mut self.xq[..dim]);
            matvec(exec, &lw.w1, &self.xq[..dim], shift, &mut self.hb);
            matvec(exec, &lw.w3, &self.xq[..dim], shift, &mut self.hb2);
            for (g, &u) in self.hb.iter_mut().zip(&self.hb2) {
                *g = sat_i32(round_shift(i64::from(silu_q16(*g)) * i64::from(u), FRAC));
            }
            let shift = quantize_activations(&self.hb, &mut self.xq[..hidden]);
            matvec(exec, &lw.w2, &self.xq[..hidden], shift, &mut self.xb);
            add_residual(&mut self.x, &self.xb);
        }

        rmsnorm_q16(&self.x, &w.norm, c.norm_eps_q32, &mut self.xb);
        let shift = quantize_activations(&self.xb, &mut self.xq[..dim]);
        matvec(exec, &w.output, &self.xq[..dim], shift, &mut self.logits);
        Ok(&self.logits)
    }
}

/// Rotate adjacent pairs `(2i, 2i+1)` of every head by the position's angles
/// (`rope` holds `[cos, sin]` in Q30 for each pair of one head). Within one Q16
/// unit of the exact rotation by the same table entries.
pub fn rotate_pairs(v: &mut [i32], rope: &[i32], hs: usize) {
    for head in v.chunks_exact_mut(hs) {
        for (pair, cs) in head.chunks_exact_mut(2).zip(rope.chunks_exact(2)) {
            let (x0, x1) = (i64::from(pair[0]), i64::from(pair[1]));
            let (cos, sin) = (i64::from(cs[0]), i64::from(cs[1]));
            // |x * c| <= 2^31 * 2^30; the difference of two is below 2^62.
            pair[0] = sat_i32(round_shift(x0 * cos - x1 * sin, FRAC30));
            pair[1] = sat_i32(round_shift(x0 * sin + x1 * cos, FRAC30));
        }
    }
}

fn add_residual(x: &mut [i32], y: &[i32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a = a.saturating_add(b);
    }
}
