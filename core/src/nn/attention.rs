//! Scaled dot-product attention over heads, in integers:
//! `out = softmax(q kᵀ / sqrt(head_dim)) v` per head, optionally causal (CLIP).
//!
//! Layout: `q` is `[lq × heads·head_dim]`, `k` and `v` are `[lk × heads·head_dim]`,
//! `out` is `[lq × heads·head_dim]`, all Q16 row-major; head `h` is columns
//! `h·head_dim .. (h+1)·head_dim` of every row (diffusers' and CLIP's head split).
//!
//! Numerics and bounds, per query row and head:
//! - score `s_j = q·k_j` exactly in `i128` (each product below `2^62`, so any
//!   `head_dim < 2^64` fits), times `1/sqrt(head_dim)` in Q30 ([`inv_sqrt_q30`],
//!   rounded to nearest), narrowed to Q16 with the core's rounding and saturation;
//! - probabilities by [`softmax_q30`] (max subtracted first);
//! - `out_i = Σ_j p_j v_ji` in `i64`: `|v| <= 2^31` and `Σ p_j <= 2^30 + lk/2`, so
//!   the sum stays below `2^62` for `lk < 2^30`; one rounding back to Q16.
//!
//! Error against `f64` with the same Q16 inputs (property test in
//! `core/tests/attention_vs_f64.rs`): the probabilities are within a few units of
//! Q30 plus the Q16 rounding of the scores, so an output is within about
//! `1 + lk · max|v| · 2^-16` Q16 units (typically 1–2 units).

use alloc::vec;

use crate::fixed::{round_shift, sat_i32, FRAC, FRAC30};
use crate::kernels::Exec;
use crate::math::{dot_q32, inv_sqrt_q30, narrow_q, softmax_q30};

/// `softmax(q kᵀ / sqrt(head_dim)) v` per head, every query seeing every key.
///
/// With `exec.threads > 1` (and the `std` feature) large products split their
/// query rows over the worker pool; each row is computed by the same code either
/// way, so the result never depends on `exec`.
///
/// # Panics
/// If a slice is shorter than its shape says (a caller bug, not bad input).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    exec: Exec,
    q: &[i32],
    k: &[i32],
    v: &[i32],
    lq: usize,
    lk: usize,
    heads: usize,
    head_dim: usize,
    out: &mut [i32],
) {
    attention_masked(exec, q, k, v, lq, lk, heads, head_dim, false, out);
}

/// Products below this many score multiply-accumulates (`lq · lk · dim`) stay on
/// one thread.
pub const PARALLEL_MIN_MACS: u64 = 1 << 18;

/// The shapes of one attention call.
#[derive(Clone, Copy)]
struct Shape {
    lk: usize,
    heads: usize,
    head_dim: usize,
    causal: bool,
}

/// [`attention`] with a causal mask when `causal`: query `i` sees keys
/// `0..=min(i, lk - 1)` (CLIP's text encoder).
///
/// # Panics
/// If a slice is shorter than its shape says (a caller bug, not bad input).
#[allow(clippy::too_many_arguments)]
pub fn attention_masked(
    exec: Exec,
    q: &[i32],
    k: &[i32],
    v: &[i32],
    lq: usize,
    lk: usize,
    heads: usize,
    head_dim: usize,
    causal: bool,
    out: &mut [i32],
) {
    let d = heads * head_dim;
    assert!(
        q.len() >= lq * d && k.len() >= lk * d && v.len() >= lk * d && out.len() >= lq * d,
        "attention: slices shorter than [{lq}|{lk} × {d}]"
    );
    if lk == 0 || d == 0 {
        out[..lq * d].fill(0);
        return;
    }
    let shape = Shape {
        lk,
        heads,
        head_dim,
        causal,
    };
    let out = &mut out[..lq * d];
    #[cfg(feature = "std")]
    {
        let macs = lq as u64 * lk as u64 * d as u64;
        if exec.threads > 1 && lq > 1 && macs >= PARALLEL_MIN_MACS {
            let per = lq.div_ceil(exec.threads);
            let chunks: std::vec::Vec<std::sync::Mutex<&mut [i32]>> =
                out.chunks_mut(per * d).map(std::sync::Mutex::new).collect();
            crate::kernels::pool::run(exec.threads, chunks.len(), &|i| {
                let mut chunk = chunks[i]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                query_rows(q, k, v, shape, i * per, &mut chunk);
            });
            return;
        }
    }
    let _ = exec;
    query_rows(q, k, v, shape, 0, out);
}

/// Whether every `q·k` of one head fits an `i64` accumulator: each product is at
/// most `max|q| · max|k|` and there are `head_dim` of them.
fn dots_fit_i64(q: &[i32], k: &[i32], head_dim: usize) -> bool {
    let max = |x: &[i32]| u128::from(x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0));
    max(q) * max(k) * head_dim as u128 <= i64::MAX as u128
}

/// `q·k` exactly: in `i64` when [`dots_fit_i64`] said so (the same value, faster),
/// else in `i128` via [`dot_q32`].
#[inline]
fn dot(a: &[i32], b: &[i32], narrow: bool) -> i128 {
    if narrow {
        let mut acc: i64 = 0;
        for (&x, &y) in a.iter().zip(b) {
            acc += i64::from(x) * i64::from(y);
        }
        i128::from(acc)
    } else {
        dot_q32(a, b)
    }
}

/// Query rows `first .. first + out.len() / dim` of the attention.
///
/// The sums are exact integers, so the order of the loops (keys outer, channels
/// inner for `p · v`) and the width of the score accumulator change nothing.
fn query_rows(q: &[i32], k: &[i32], v: &[i32], s: Shape, first: usize, out: &mut [i32]) {
    let (lk, heads, head_dim) = (s.lk, s.heads, s.head_dim);
    let d = heads * head_dim;
    let rows = out.len() / d;
    let narrow = dots_fit_i64(&q[first * d..(first + rows) * d], &k[..lk * d], head_dim);
    let inv_sqrt = i128::from(inv_sqrt_q30(head_dim as u32));
    let mut scores = vec![0i32; lk];
    let mut probs = vec![0u32; lk];
    let mut acc = vec![0i64; head_dim];
    for (r, orow) in out.chunks_exact_mut(d).enumerate() {
        let i = first + r;
        let seen = if s.causal { (i + 1).min(lk) } else { lk };
        for h in 0..heads {
            let cols = h * head_dim..(h + 1) * head_dim;
            let qi = &q[i * d..(i + 1) * d][cols.clone()];
            for (j, s) in scores[..seen].iter_mut().enumerate() {
                let dot = dot(qi, &k[j * d..(j + 1) * d][cols.clone()], narrow);
                // Q32 · Q30 -> Q16; |dot| < head_dim · 2^62 and the factor is at
                // most 2^30, so the product fits i128 for head_dim < 2^35.
                *s = narrow_q(dot * inv_sqrt, FRAC + FRAC30);
            }
            softmax_q30(&scores[..seen], &mut probs[..seen]);
            // |p · v| <= 2^30 · 2^31 per term; Σ p <= 2^30 + seen/2, so each sum
            // is below 2^62 for seen < 2^30.
            acc.fill(0);
            for (j, &p) in probs[..seen].iter().enumerate() {
                let p = i64::from(p);
                for (a, &vv) in acc.iter_mut().zip(&v[j * d..(j + 1) * d][cols.clone()]) {
                    *a += p * i64::from(vv);
                }
            }
            for (ov, &a) in orow[cols].iter_mut().zip(&acc) {
                *ov = sat_i32(round_shift(a, FRAC30));
            }
        }
    }
}
