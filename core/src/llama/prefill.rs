//! Prefill: the prompt's positions run together. Every weight matrix meets all
//! of them in one [`matmul`] (the weights are read once per block of positions
//! instead of once per position) and each head's causal attention over them is one
//! call. The values are those of [`LlamaState::forward`] run position by position:
//! the same integer steps on the same inputs (each position's activations keep
//! their own scale), which the tests check exactly. [`LlamaState::prefill_cache`]
//! fills the cache alone: a prompt's positions need no logits (each next token is
//! the prompt's), and the output head is a fifth of a small model's products.

use alloc::vec;
use alloc::vec::Vec;

use super::forward::{add_residual, rotate_pairs};
use super::weights::LlamaWeights;
use super::LlamaState;
use crate::error::RequestError;
use crate::fixed::{round_shift, sat_i32, FRAC};
use crate::kernels::{matmul, silu_in_place, Exec};
use crate::math::rmsnorm_q16;
use crate::nn::attention::attention_masked;
use crate::quant::quantize_activations;

impl LlamaState {
    /// Run positions `0..tokens.len()`, token `t` at position `t`, into a fresh
    /// cache: the KV cache and the logits [`LlamaState::forward`] would give one
    /// position at a time, the logits of position `t` handed to `on_logits(t, ..)`
    /// in order.
    pub fn prefill(
        &mut self,
        w: &LlamaWeights<'_>,
        exec: Exec,
        tokens: &[u32],
        mut on_logits: impl FnMut(usize, &[i32]),
    ) -> Result<(), RequestError> {
        let n = tokens.len();
        let Some(x) = self.prefill_layers(w, exec, tokens)? else {
            return Ok(());
        };
        let c = self.config;
        let dim = c.dim as usize;
        let mut xb = vec![0i32; n * dim];
        let mut xq = vec![0i16; n * dim];
        let mut shifts = vec![0u32; n];
        norm_rows(&x, &w.norm, c.norm_eps_q32, &mut xb, dim);
        quantize_rows(&xb, dim, &mut xq, &mut shifts);
        let vocab = c.vocab_size as usize;
        // Logits in blocks of positions, so that a long prompt does not hold all of
        // them at once.
        const BLOCK: usize = 16;
        let mut logits = vec![0i32; BLOCK.min(n) * vocab];
        for first in (0..n).step_by(BLOCK) {
            let m = BLOCK.min(n - first);
            matmul(
                exec,
                &w.output,
                &xq[first * dim..(first + m) * dim],
                &shifts[first..first + m],
                &mut logits[..m * vocab],
            );
            for (t, row) in logits[..m * vocab].chunks_exact(vocab).enumerate() {
                on_logits(first + t, row);
            }
        }
        Ok(())
    }

    /// [`LlamaState::prefill`] without the output head: the same KV cache, no
    /// logits.
    pub fn prefill_cache(
        &mut self,
        w: &LlamaWeights<'_>,
        exec: Exec,
        tokens: &[u32],
    ) -> Result<(), RequestError> {
        self.prefill_layers(w, exec, tokens).map(drop)
    }

    /// The layers of positions `0..tokens.len()` into a fresh cache; returns the
    /// residual stream after the last layer (`None` for no tokens).
    fn prefill_layers(
        &mut self,
        w: &LlamaWeights<'_>,
        exec: Exec,
        tokens: &[u32],
    ) -> Result<Option<Vec<i32>>, RequestError> {
        let c = self.config;
        let n = tokens.len();
        if n > c.seq_len as usize {
            return Err(RequestError::PositionOutOfRange(c.seq_len));
        }
        if let Some(&t) = tokens.iter().find(|&&t| t >= c.vocab_size) {
            return Err(RequestError::TokenOutOfRange(t));
        }
        if n == 0 {
            return Ok(None);
        }
        let (dim, hidden) = (c.dim as usize, c.hidden_dim as usize);
        let hs = c.head_size() as usize;
        let kv_dim = c.kv_dim() as usize;
        let kv_mul = (c.n_heads / c.n_kv_heads) as usize;
        let seq = c.seq_len as usize;

        let mut x = vec![0i32; n * dim];
        for (row, &token) in x.chunks_exact_mut(dim).zip(tokens) {
            w.tok_embeddings.dequantize_row(token as usize, row);
        }
        let mut xb = vec![0i32; n * dim];
        let mut xb2 = vec![0i32; n * dim];
        let mut q = vec![0i32; n * dim];
        let mut hb = vec![0i32; n * hidden];
        let mut hb2 = vec![0i32; n * hidden];
        let mut xq = vec![0i16; n * dim.max(hidden)];
        let mut shifts = vec![0u32; n];
        let (mut qh, mut kh, mut vh, mut oh) = (
            vec![0i32; n * hs],
            vec![0i32; n * hs],
            vec![0i32; n * hs],
            vec![0i32; n * hs],
        );

        for (l, lw) in w.layers.iter().enumerate() {
            // Attention.
            norm_rows(&x, &lw.attention_norm, c.norm_eps_q32, &mut xb, dim);
            quantize_rows(&xb, dim, &mut xq, &mut shifts);
            let xs = &xq[..n * dim];
            let base = l * seq * kv_dim;
            let cache = base..base + n * kv_dim;
            matmul(exec, &lw.wq, xs, &shifts, &mut q);
            matmul(
                exec,
                &lw.wk,
                xs,
                &shifts,
                &mut self.key_cache[cache.clone()],
            );
            matmul(
                exec,
                &lw.wv,
                xs,
                &shifts,
                &mut self.value_cache[cache.clone()],
            );
            if let Some(b) = &lw.qkv_bias {
                b.add_to(
                    &mut q,
                    &mut self.key_cache[cache.clone()],
                    &mut self.value_cache[cache.clone()],
                );
            }
            for t in 0..n {
                let rope = &w.rope[t * hs..(t + 1) * hs];
                rotate_pairs(&mut q[t * dim..(t + 1) * dim], rope, hs);
                let at = base + t * kv_dim;
                rotate_pairs(&mut self.key_cache[at..at + kv_dim], rope, hs);
            }
            for g in 0..c.n_kv_heads as usize {
                let keys = &self.key_cache[cache.clone()];
                let values = &self.value_cache[cache.clone()];
                gather(keys, kv_dim, g * hs, &mut kh);
                gather(values, kv_dim, g * hs, &mut vh);
                for h in g * kv_mul..(g + 1) * kv_mul {
                    gather(&q, dim, h * hs, &mut qh);
                    attention_masked(exec, &qh, &kh, &vh, n, n, 1, hs, true, &mut oh);
                    for (row, o) in xb.chunks_exact_mut(dim).zip(oh.chunks_exact(hs)) {
                        row[h * hs..(h + 1) * hs].copy_from_slice(o);
                    }
                }
            }
            quantize_rows(&xb, dim, &mut xq, &mut shifts);
            matmul(exec, &lw.wo, &xq[..n * dim], &shifts, &mut xb2);
            add_residual(&mut x, &xb2);

            // Feed-forward (SwiGLU).
            norm_rows(&x, &lw.ffn_norm, c.norm_eps_q32, &mut xb, dim);
            quantize_rows(&xb, dim, &mut xq, &mut shifts);
            matmul(exec, &lw.w1, &xq[..n * dim], &shifts, &mut hb);
            matmul(exec, &lw.w3, &xq[..n * dim], &shifts, &mut hb2);
            silu_in_place(exec, &mut hb);
            for (g, &u) in hb.iter_mut().zip(&hb2) {
                *g = sat_i32(round_shift(i64::from(*g) * i64::from(u), FRAC));
            }
            quantize_rows(&hb, hidden, &mut xq, &mut shifts);
            matmul(exec, &lw.w2, &xq[..n * hidden], &shifts, &mut xb);
            add_residual(&mut x, &xb);
        }

        Ok(Some(x))
    }
}

/// RMSNorm of each `width`-long row of `x` into `out`.
fn norm_rows(x: &[i32], weight: &[i32], eps_q32: u32, out: &mut [i32], width: usize) {
    for (row, o) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        rmsnorm_q16(row, weight, eps_q32, o);
    }
}

/// Each `width`-long row of `x` as `i16` activations with its own scale.
fn quantize_rows(x: &[i32], width: usize, xq: &mut [i16], shifts: &mut [u32]) {
    for ((row, q), s) in x
        .chunks_exact(width)
        .zip(xq.chunks_exact_mut(width))
        .zip(shifts.iter_mut())
    {
        *s = quantize_activations(row, q);
    }
}

/// Columns `first..first + width` of every `stride`-long row of `src`, packed into
/// `out` (`width = out.len() / rows`).
fn gather(src: &[i32], stride: usize, first: usize, out: &mut [i32]) {
    let rows = src.len() / stride;
    let width = out.len() / rows.max(1);
    for (o, row) in out.chunks_exact_mut(width).zip(src.chunks_exact(stride)) {
        o.copy_from_slice(&row[first..first + width]);
    }
}
