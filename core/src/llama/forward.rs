//! The LLaMA forward pass in integers: weights borrowed from the model file
//! ([`super::weights`]), run state (activations and KV cache) owned separately, one
//! entry point [`LlamaState::forward`]`(token, pos) -> logits`, and
//! [`LlamaState::advance`] for a position whose logits nobody reads (a prompt
//! position: its next token is the prompt's).

use alloc::vec;
use alloc::vec::Vec;

use super::config::LlamaConfig;
use super::weights::LlamaWeights;
use crate::error::RequestError;
use crate::fixed::{round_shift, sat_i32, FRAC, FRAC30};
use crate::kernels::{matvec, silu_in_place, Exec};
use crate::math::{inv_sqrt_q30, rmsnorm_q16};
use crate::nn::attention::{cached_heads, LayerCache};
use crate::quant::quantize_activations;

/// Activations and KV cache of one sequence.
#[derive(Debug, Clone)]
pub struct LlamaState {
    pub(super) config: LlamaConfig,
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
    pub(super) key_cache: Vec<i32>,
    /// `(n_layers, seq_len, kv_dim)`.
    pub(super) value_cache: Vec<i32>,
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
        self.advance(w, exec, token, pos)?;
        let c = self.config;
        let dim = c.dim as usize;
        rmsnorm_q16(&self.x, &w.norm, c.norm_eps_q32, &mut self.xb);
        let shift = quantize_activations(&self.xb, &mut self.xq[..dim]);
        matvec(exec, &w.output, &self.xq[..dim], shift, &mut self.logits);
        Ok(&self.logits)
    }

    /// [`LlamaState::forward`] without the output head: feed `token` at `pos` and
    /// write its KV rows (the same cache state), computing no logits.
    pub fn advance(
        &mut self,
        w: &LlamaWeights<'_>,
        exec: Exec,
        token: u32,
        pos: u32,
    ) -> Result<(), RequestError> {
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
            if let Some(b) = &lw.qkv_bias {
                b.add_to(
                    &mut self.q,
                    &mut self.key_cache[cache_at..cache_at + kv_dim],
                    &mut self.value_cache[cache_at..cache_at + kv_dim],
                );
            }

            let rope = &w.rope[pos * hs..(pos + 1) * hs];
            rotate_pairs(&mut self.q, rope, hs);
            rotate_pairs(&mut self.key_cache[cache_at..cache_at + kv_dim], rope, hs);

            let layer = l * seq * kv_dim..(l + 1) * seq * kv_dim;
            let cache = LayerCache {
                keys: &self.key_cache[layer.clone()],
                values: &self.value_cache[layer],
                stride: kv_dim,
                n: pos + 1,
            };
            cached_heads(
                exec,
                &self.q,
                cache,
                hs,
                kv_mul,
                self.inv_sqrt_head,
                &mut self.att,
                &mut self.probs,
                &mut self.xb,
            );
            let shift = quantize_activations(&self.xb, &mut self.xq[..dim]);
            matvec(exec, &lw.wo, &self.xq[..dim], shift, &mut self.xb2);
            add_residual(&mut self.x, &self.xb2);

            // Feed-forward (SwiGLU).
            rmsnorm_q16(&self.x, &lw.ffn_norm, c.norm_eps_q32, &mut self.xb);
            let shift = quantize_activations(&self.xb, &mut self.xq[..dim]);
            matvec(exec, &lw.w1, &self.xq[..dim], shift, &mut self.hb);
            matvec(exec, &lw.w3, &self.xq[..dim], shift, &mut self.hb2);
            silu_in_place(exec, &mut self.hb);
            for (g, &u) in self.hb.iter_mut().zip(&self.hb2) {
                *g = sat_i32(round_shift(i64::from(*g) * i64::from(u), FRAC));
            }
            let shift = quantize_activations(&self.hb, &mut self.xq[..hidden]);
            matvec(exec, &lw.w2, &self.xq[..hidden], shift, &mut self.xb);
            add_residual(&mut self.x, &self.xb);
        }
        Ok(())
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

pub(super) fn add_residual(x: &mut [i32], y: &[i32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a = a.saturating_add(b);
    }
}
