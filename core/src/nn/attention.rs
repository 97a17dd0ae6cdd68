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
use crate::kernels::{Exec, Simd};
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
    simd: Simd,
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
        simd: exec.simd.resolve(),
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
            crate::kernels::pool::run_parts(exec.threads, out, per * d, &|i, part| {
                query_rows(q, k, v, shape, i * per, part);
            });
            return;
        }
    }
    let _ = exec;
    query_rows(q, k, v, shape, 0, out);
}

/// Decode-step attention work (`heads · n · head_dim` score multiply-accumulates)
/// below which [`cached_heads`] stays on one thread.
pub const CACHED_PARALLEL_MIN_MACS: usize = 1 << 14;

/// The KV cache of one layer as [`cached_heads`] reads it.
#[derive(Clone, Copy)]
pub struct LayerCache<'a> {
    /// Keys: position `j`'s row at `j * stride`, KV head `g` at channels
    /// `g * head_dim ..`.
    pub keys: &'a [i32],
    /// Values, laid out as the keys.
    pub values: &'a [i32],
    /// Channels per position (`kv_heads · head_dim`).
    pub stride: usize,
    /// Positions to attend to.
    pub n: usize,
}

/// Every query head of one decode step: head `h` of `q` (channels `h·head_dim ..`)
/// attends to KV head `h / group` of `cache` ([`cached_query`]) and writes head `h`
/// of `out`. `scores` and `probs` are scratch of at least `cache.n` elements.
///
/// With `exec.threads > 1` (and the `std` feature) the heads are split over the
/// worker pool when the step is large enough; each head is computed by the same
/// code either way, so the result never depends on `exec`.
#[allow(clippy::too_many_arguments)]
pub fn cached_heads(
    exec: Exec,
    q: &[i32],
    cache: LayerCache<'_>,
    head_dim: usize,
    group: usize,
    inv_sqrt: i64,
    scores: &mut [i32],
    probs: &mut [u32],
    out: &mut [i32],
) {
    let heads = q.len() / head_dim.max(1);
    let head = |h: usize, scores: &mut [i32], probs: &mut [u32], out: &mut [i32]| {
        let at = (h / group.max(1)) * head_dim;
        cached_query(
            exec.simd,
            &q[h * head_dim..(h + 1) * head_dim],
            &cache.keys[at..],
            &cache.values[at..],
            cache.stride,
            cache.n,
            inv_sqrt,
            scores,
            probs,
            out,
        );
    };
    #[cfg(feature = "std")]
    if exec.threads > 1 && heads > 1 && heads * cache.n * head_dim >= CACHED_PARALLEL_MIN_MACS {
        let per = heads.div_ceil(exec.threads);
        let out = &mut out[..heads * head_dim];
        crate::kernels::pool::run_parts(exec.threads, out, per * head_dim, &|i, part| {
            let (mut scores, mut probs) = (vec![0i32; cache.n], vec![0u32; cache.n]);
            for (k, o) in part.chunks_exact_mut(head_dim).enumerate() {
                head(i * per + k, &mut scores, &mut probs, o);
            }
        });
        return;
    }
    for (h, o) in out[..heads * head_dim]
        .chunks_exact_mut(head_dim)
        .enumerate()
    {
        head(h, scores, probs, o);
    }
}

/// Longest head [`cached_query`] sums in an `i64` array on the stack (longer heads
/// take the `i128` path).
const CACHED_HEAD_MAX: usize = 256;

/// One query row of one head against the first `n` rows of a KV cache (a decode
/// step): `out = softmax(q·k_j · inv_sqrt) · v`, with row `j` of `keys` and `values`
/// at `j * stride` (`q.len()` channels each) and `inv_sqrt = inv_sqrt_q30(q.len())`.
/// `scores` and `probs` are scratch of at least `n` elements.
///
/// The numerics are [`attention`]'s (exact dot products, one Q16 rounding of each
/// score, [`softmax_q30`], exact `i64` sums of `p · v`), so every `simd` gives the
/// same bits; the dot products run in `i64` lanes when the head's values allow it
/// (scalar `i64` in the VM, where `i128` arithmetic is a chain of 32-bit steps).
///
/// # Panics
/// If a slice is shorter than its shape says (a caller bug, not bad input).
#[allow(clippy::too_many_arguments)]
pub fn cached_query(
    simd: Simd,
    q: &[i32],
    keys: &[i32],
    values: &[i32],
    stride: usize,
    n: usize,
    inv_sqrt: i64,
    scores: &mut [i32],
    probs: &mut [u32],
    out: &mut [i32],
) {
    let hd = q.len();
    let (scores, probs, out) = (&mut scores[..n], &mut probs[..n], &mut out[..hd]);
    if n == 0 {
        out.fill(0);
        return;
    }
    let inv_sqrt = i128::from(inv_sqrt);
    let narrow = hd <= CACHED_HEAD_MAX && cached_dots_fit_i64(q, keys, stride, n);
    let kind = match simd.resolve() {
        _ if !narrow => DotKind::Wide,
        Simd::Avx512Vnni if cfg!(target_arch = "x86_64") => DotKind::Avx512,
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => DotKind::Avx2,
        _ => DotKind::Narrow,
    };
    let score = |dot: i128| narrow_q(dot * inv_sqrt, FRAC + FRAC30);
    #[cfg(target_arch = "x86_64")]
    if kind == DotKind::Avx512 {
        let mut dots = [0i64; 64];
        for (block, chunk) in scores.chunks_mut(64).enumerate() {
            let dots = &mut dots[..chunk.len()];
            // Safety: `Avx512` is only chosen when the resolved family is AVX-512;
            // the dots fit i64 (checked above).
            unsafe {
                avx512::dots_i64(q, &keys[block * 64 * stride..], stride, dots);
                avx512::scale_scores(dots, inv_sqrt as u32, chunk);
            }
        }
        // Safety: as above.
        unsafe { avx512::softmax_q30(scores, probs) };
        let mut acc = [0i64; CACHED_HEAD_MAX];
        // Safety: as above; |p · v| <= 2^30 · 2^31 and Σ p <= 2^30 + n/2.
        unsafe { avx512::axpys_i64(&mut acc[..hd], probs, values, stride) };
        narrow_mix(&acc[..hd], out);
        return;
    }
    for (j, s) in scores.iter_mut().enumerate() {
        *s = score(dot(q, &keys[j * stride..j * stride + hd], kind));
    }
    softmax_q30(scores, probs);
    if matches!(kind, DotKind::Wide | DotKind::Narrow) {
        // |v| <= 2^31 and Σ p <= 2^30 + n/2, so each sum is below 2^62.
        for (i, o) in out.iter_mut().enumerate() {
            let mut acc: i64 = 0;
            for (j, &p) in probs.iter().enumerate() {
                acc += i64::from(p) * i64::from(values[j * stride + i]);
            }
            *o = sat_i32(round_shift(acc, FRAC30));
        }
    } else {
        let mut acc = [0i64; CACHED_HEAD_MAX];
        for (j, &p) in probs.iter().enumerate() {
            axpy(
                &mut acc[..hd],
                p,
                &values[j * stride..j * stride + hd],
                kind,
            );
        }
        narrow_mix(&acc[..hd], out);
    }
}

/// [`dots_fit_i64`] for `n` cache rows of `stride`: from `max|q|` alone when even
/// the largest `i32` keys would fit (the usual case, no scan of the keys).
fn cached_dots_fit_i64(q: &[i32], keys: &[i32], stride: usize, n: usize) -> bool {
    let hd = q.len() as u128;
    let max_q = max_abs(q);
    if max_q * (1u128 << 31) * hd <= i64::MAX as u128 {
        return true;
    }
    let max_k = (0..n)
        .flat_map(|j| &keys[j * stride..j * stride + q.len()])
        .map(|v| v.unsigned_abs())
        .max()
        .unwrap_or(0);
    max_q * u128::from(max_k) * hd <= i64::MAX as u128
}

/// Whether every `q·k` of one head fits an `i64` accumulator: each product is at
/// most `max|q| · max|k|` and there are `head_dim` of them.
fn dots_fit_i64(q: &[i32], k: &[i32], head_dim: usize) -> bool {
    max_abs(q) * max_abs(k) * head_dim as u128 <= i64::MAX as u128
}

/// `max |x_i|` (0 for an empty slice).
fn max_abs(x: &[i32]) -> u128 {
    u128::from(x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0))
}

/// An output head from its `Σ p · v` sums (Q46): the core's rounding back to Q16,
/// saturated.
fn narrow_mix(acc: &[i64], out: &mut [i32]) {
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = sat_i32(round_shift(a, FRAC30));
    }
}

/// How a score's dot product is accumulated; every choice gives the same exact sum.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DotKind {
    /// `i128` ([`dot_q32`]): always exact.
    Wide,
    /// Scalar `i64`, when [`dots_fit_i64`] holds.
    Narrow,
    /// AVX2 `i64` lanes ([`x86::dot_i64`]), when [`dots_fit_i64`] holds.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 `i64` lanes, all keys of a head in one call ([`avx512::dots_i64`],
    /// [`avx512::axpys_i64`]), when [`dots_fit_i64`] holds.
    Avx512,
}

/// `q·k` exactly, accumulated as `kind` says.
#[inline]
fn dot(a: &[i32], b: &[i32], kind: DotKind) -> i128 {
    #[cfg(target_arch = "x86_64")]
    if kind == DotKind::Avx2 {
        // Safety: `Avx2` is only chosen when the resolved kernel family has AVX2.
        return i128::from(unsafe { x86::dot_i64(a, b) });
    }

    if kind == DotKind::Narrow {
        let mut acc: i64 = 0;
        for (&x, &y) in a.iter().zip(b) {
            acc += i64::from(x) * i64::from(y);
        }
        i128::from(acc)
    } else {
        dot_q32(a, b)
    }
}

/// `acc += p · v` in `i64` (the caller's bound keeps every sum exact); the AVX2
/// twin when `kind` is `Avx2`.
#[inline]
fn axpy(acc: &mut [i64], p: u32, v: &[i32], kind: DotKind) {
    #[cfg(target_arch = "x86_64")]
    if kind == DotKind::Avx2 {
        // Safety: `Avx2` is only chosen when the resolved kernel family has AVX2.
        unsafe { x86::axpy_i64(acc, p, v) };
        return;
    }

    let _ = kind;
    let p = i64::from(p);
    for (a, &vv) in acc.iter_mut().zip(v) {
        *a += p * i64::from(vv);
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
    let kind = if !dots_fit_i64(&q[first * d..(first + rows) * d], &k[..lk * d], head_dim) {
        DotKind::Wide
    } else {
        match s.simd {
            Simd::Avx512Vnni if cfg!(target_arch = "x86_64") => DotKind::Avx512,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => DotKind::Avx2,
            _ => DotKind::Narrow,
        }
    };
    let inv_sqrt = i128::from(inv_sqrt_q30(head_dim as u32));
    let mut scores = vec![0i32; lk];
    let mut probs = vec![0u32; lk];
    let mut acc = vec![0i64; head_dim];
    #[cfg(target_arch = "x86_64")]
    let mut dots = vec![0i64; if kind == DotKind::Avx512 { lk } else { 0 }];
    // Heads outer, queries inner, each head's keys and values packed contiguously:
    // one head's keys stay in cache across the queries (all heads' would not).
    let mut kh = vec![0i32; lk * head_dim];
    let mut vh = vec![0i32; lk * head_dim];
    for h in 0..heads {
        let cols = h * head_dim..(h + 1) * head_dim;
        for (j, (kr, vr)) in kh
            .chunks_exact_mut(head_dim)
            .zip(vh.chunks_exact_mut(head_dim))
            .enumerate()
        {
            kr.copy_from_slice(&k[j * d..(j + 1) * d][cols.clone()]);
            vr.copy_from_slice(&v[j * d..(j + 1) * d][cols.clone()]);
        }
        for (r, orow) in out.chunks_exact_mut(d).enumerate() {
            let i = first + r;
            let seen = if s.causal { (i + 1).min(lk) } else { lk };
            let qi = &q[i * d..(i + 1) * d][cols.clone()];
            #[cfg(target_arch = "x86_64")]
            if kind == DotKind::Avx512 {
                // Safety: `Avx512` is only chosen when the resolved family is AVX-512.
                unsafe {
                    avx512::dots_i64(qi, &kh, head_dim, &mut dots[..seen]);
                    avx512::scale_scores(&dots[..seen], inv_sqrt as u32, &mut scores[..seen]);
                }
            }
            if kind != DotKind::Avx512 {
                for (s, kr) in scores[..seen].iter_mut().zip(kh.chunks_exact(head_dim)) {
                    let dot = dot(qi, kr, kind);
                    // Q32 · Q30 -> Q16; |dot| < head_dim · 2^62 and the factor is at
                    // most 2^30, so the product fits i128 for head_dim < 2^35.
                    *s = narrow_q(dot * inv_sqrt, FRAC + FRAC30);
                }
            }
            #[cfg(target_arch = "x86_64")]
            if kind == DotKind::Avx512 {
                // Safety: as above.
                unsafe { avx512::softmax_q30(&scores[..seen], &mut probs[..seen]) };
            }
            if kind != DotKind::Avx512 {
                softmax_q30(&scores[..seen], &mut probs[..seen]);
            }
            // |p · v| <= 2^30 · 2^31 per term; Σ p <= 2^30 + seen/2, so each sum
            // is below 2^62 for seen < 2^30.
            acc.fill(0);
            #[cfg(target_arch = "x86_64")]
            if kind == DotKind::Avx512 {
                // Safety: as above.
                unsafe { avx512::axpys_i64(&mut acc, &probs[..seen], &vh, head_dim) };
            }
            if kind != DotKind::Avx512 {
                for (&p, vr) in probs[..seen].iter().zip(vh.chunks_exact(head_dim)) {
                    axpy(&mut acc, p, vr, kind);
                }
            }
            narrow_mix(&acc, &mut orow[cols.clone()]);
        }
    }
}

/// Corrections the AVX-512 softmax's normalisation applies after its estimate
/// (the estimate is at most three below; property-tested in [`normalizer_estimate`]'s
/// test over the whole range).
#[cfg(target_arch = "x86_64")]
const NORMALIZER_CORRECTIONS: usize = 4;

/// The shifts and reciprocal of the AVX-512 softmax's normalisation for `sum` in
/// `[2^30, 2^62)`: `(right, left, recip)` with `top = sum >> right << left` in
/// `[2^31, 2^32)` and `recip = floor(2^63 / (top + 1))`.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn normalizer_parts(sum: u64) -> (u32, u32, u64) {
    let bits = u64::BITS - sum.leading_zeros();
    let (right, left) = if bits > 32 {
        (bits - 32, 0)
    } else {
        (0, 32 - bits)
    };
    let top = sum >> right << left;
    (right, left, (1u64 << 63) / (top + 1))
}

/// The AVX-512 normalisation's estimate of `floor(num / sum)`, computed as its lanes
/// compute it (for the test of its error).
#[cfg(test)]
fn normalizer_estimate(num: u64, sum: u64) -> u64 {
    let (right, left, recip) = normalizer_parts(sum);
    let top = num >> right << left;
    ((top >> 32) * recip + (((top & 0xFFFF_FFFF) * recip) >> 32)) >> 31
}

/// The AVX2 twin of the scalar `i64` dot product.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// `Σ a_i · b_i` in `i64` lanes: `vpmuldq` multiplies the even 32-bit lanes,
    /// a 32-bit shift brings the odd ones down for a second `vpmuldq`. The caller
    /// guarantees `Σ |a_i · b_i| <= i64::MAX`, so every lane's partial sum and the
    /// total are exact: the same value as the scalar loop.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_i64(a: &[i32], b: &[i32]) -> i64 {
        let n = a.len().min(b.len());
        let mut even = _mm256_setzero_si256();
        let mut odd = _mm256_setzero_si256();
        let mut i = 0;
        while i + 8 <= n {
            // Safety: `i + 8 <= n` keeps both 8-lane loads inside the slices.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_si256(a.as_ptr().add(i).cast::<__m256i>()),
                    _mm256_loadu_si256(b.as_ptr().add(i).cast::<__m256i>()),
                )
            };
            even = _mm256_add_epi64(even, _mm256_mul_epi32(x, y));
            let (xo, yo) = (_mm256_srli_epi64::<32>(x), _mm256_srli_epi64::<32>(y));
            odd = _mm256_add_epi64(odd, _mm256_mul_epi32(xo, yo));
            i += 8;
        }
        let mut lanes = [0i64; 4];
        // Safety: `lanes` is 32 bytes, one unaligned store.
        unsafe {
            _mm256_storeu_si256(
                lanes.as_mut_ptr().cast::<__m256i>(),
                _mm256_add_epi64(even, odd),
            )
        };
        let mut total = lanes.iter().sum::<i64>();
        for j in i..n {
            total += i64::from(a[j]) * i64::from(b[j]);
        }
        total
    }

    /// `acc[c] += p · v[c]` in `i64` lanes, four channels per `vpmuldq` (`p <=
    /// 2^30` is a valid signed 32-bit factor). The same sums as the scalar loop.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn axpy_i64(acc: &mut [i64], p: u32, v: &[i32]) {
        let n = acc.len().min(v.len());
        let pv = _mm256_set1_epi64x(i64::from(p));
        let mut i = 0;
        while i + 4 <= n {
            // Safety: `i + 4 <= n` keeps the 4-lane load of `v` and the 4-lane
            // load and store of `acc` inside the slices.
            unsafe {
                let x = _mm256_cvtepi32_epi64(_mm_loadu_si128(v.as_ptr().add(i).cast::<__m128i>()));
                let at = acc.as_mut_ptr().add(i).cast::<__m256i>();
                let sum = _mm256_add_epi64(_mm256_loadu_si256(at), _mm256_mul_epi32(x, pv));
                _mm256_storeu_si256(at, sum);
            }
            i += 4;
        }
        for j in i..n {
            acc[j] += i64::from(p) * i64::from(v[j]);
        }
    }
}

/// The AVX-512 twins of the scalar `i64` dot product and `p · v` update: 16 (dot)
/// or 8 (update) elements per step, the tail under a lane mask.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use core::arch::x86_64::*;

    use crate::fixed::{FRAC, FRAC30};
    use crate::kernels::exp512::exp_q30;

    /// [`crate::math::softmax_q30`], with the exponentials eight at a time in `i64`
    /// lanes: the same integer steps as [`crate::math::exp_q30`] (every product is
    /// exact; the rounding shifts are the same), so the same probabilities.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, VL and DQ.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq")]
    pub unsafe fn softmax_q30(scores: &[i32], out: &mut [u32]) {
        let n = scores.len().min(out.len());
        let Some(&max) = scores[..n].iter().max() else {
            return;
        };
        let max = _mm512_set1_epi64(i64::from(max));
        let floor = _mm512_set1_epi64(i64::from(i32::MIN));
        let mut sum = _mm512_setzero_si512();
        let mut i = 0;
        while i < n {
            let left = n - i;
            let mask: __mmask8 = if left >= 8 { !0 } else { (1 << left) - 1 };
            // Safety: the mask reads elements i .. min(i + 8, n) of `scores`.
            let s = unsafe { _mm256_maskz_loadu_epi32(mask, scores.as_ptr().add(i)) };
            let d = _mm512_max_epi64(_mm512_sub_epi64(_mm512_cvtepi32_epi64(s), max), floor);
            let e = _mm512_maskz_mov_epi64(mask, exp_q30(d));
            sum = _mm512_add_epi64(sum, e);
            // Safety: the mask writes elements i .. min(i + 8, n) of `out`.
            unsafe {
                _mm256_mask_storeu_epi32(
                    out.as_mut_ptr().add(i).cast(),
                    mask,
                    _mm512_cvtepi64_epi32(e),
                )
            };
            i += 8;
        }
        // The sum is at least 2^30 (the maximum's term) and below n·2^30 + 1.
        let sum = _mm512_reduce_add_epi64(sum) as u64;
        let norm = Normalizer::new(sum);
        let mut i = 0;
        while i < n {
            let left = n - i;
            let mask: __mmask8 = if left >= 8 { !0 } else { (1 << left) - 1 };
            // Safety: the mask reads and writes elements i .. min(i + 8, n) of `out`.
            unsafe {
                let e = _mm512_cvtepu32_epi64(_mm256_maskz_loadu_epi32(
                    mask,
                    out.as_ptr().add(i).cast(),
                ));
                let p = norm.probabilities(e);
                _mm256_mask_storeu_epi32(
                    out.as_mut_ptr().add(i).cast(),
                    mask,
                    _mm512_cvtepi64_epi32(p),
                );
            }
            i += 8;
        }
    }

    /// `floor((e · 2^30 + floor(sum / 2)) / sum)` for eight exponentials `e <= 2^30`
    /// in `u64` lanes and one `sum` in `[2^30, 2^62)` ([`crate::math::softmax_q30`]'s
    /// normalisation, a zero staying zero), without a division per lane: an
    /// estimate from a 32-bit reciprocal of the sum's top 32 bits, at most three
    /// below the quotient ([`normalizer_estimate`]), then corrected exactly.
    pub(super) struct Normalizer {
        sum: __m512i,
        half: __m512i,
        /// The sum's top 32 bits are `sum >> right << left` (one shift is zero).
        right: __m128i,
        left: __m128i,
        /// `floor(2^63 / (top + 1))`, in `[2^31, 2^32)`.
        recip: __m512i,
    }

    impl Normalizer {
        #[target_feature(enable = "avx512f")]
        pub(super) fn new(sum: u64) -> Normalizer {
            let (right, left, recip) = super::normalizer_parts(sum);
            Normalizer {
                sum: _mm512_set1_epi64(sum as i64),
                half: _mm512_set1_epi64((sum / 2) as i64),
                right: _mm_cvtsi64_si128(i64::from(right)),
                left: _mm_cvtsi64_si128(i64::from(left)),
                recip: _mm512_set1_epi64(recip as i64),
            }
        }

        /// The probabilities of eight exponentials.
        #[target_feature(enable = "avx512f,avx512dq")]
        pub(super) fn probabilities(&self, e: __m512i) -> __m512i {
            let num = _mm512_add_epi64(_mm512_slli_epi64::<30>(e), self.half);
            let top = _mm512_sll_epi64(_mm512_srl_epi64(num, self.right), self.left);
            // floor(top · recip / 2^63) from two 32 × 32-bit products.
            let high = _mm512_mul_epu32(_mm512_srli_epi64::<32>(top), self.recip);
            let low = _mm512_srli_epi64::<32>(_mm512_mul_epu32(top, self.recip));
            let mut q = _mm512_srli_epi64::<31>(_mm512_add_epi64(high, low));
            // q <= the quotient, so q · sum <= num fits; add back what is left.
            let mut rest = _mm512_sub_epi64(num, _mm512_mullo_epi64(q, self.sum));
            let one = _mm512_set1_epi64(1);
            for _ in 0..super::NORMALIZER_CORRECTIONS {
                let more = _mm512_cmpge_epu64_mask(rest, self.sum);
                q = _mm512_mask_add_epi64(q, more, q, one);
                rest = _mm512_mask_sub_epi64(rest, more, rest, self.sum);
            }
            q
        }
    }

    /// `scores[j] = narrow_q(dots[j] · inv_sqrt, FRAC + FRAC30)` eight at a time: the
    /// product split at the dot's 32nd bit (`inv_sqrt <= 2^30`, so each part fits
    /// an `i64` lane), the core's rounding, then saturation to `i32`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn scale_scores(dots: &[i64], inv_sqrt: u32, scores: &mut [i32]) {
        debug_assert!(inv_sqrt <= 1 << 30);
        let n = dots.len().min(scores.len());
        let inv = _mm512_set1_epi64(i64::from(inv_sqrt));
        let half = _mm512_set1_epi64(1 << (FRAC + FRAC30 - 1));
        let mut i = 0;
        while i < n {
            let left = n - i;
            let mask: __mmask8 = if left >= 8 { !0 } else { (1 << left) - 1 };
            // Safety: the mask reads elements i .. min(i + 8, n) of `dots`.
            let d = unsafe { _mm512_maskz_loadu_epi64(mask, dots.as_ptr().add(i)) };
            // d · inv + 2^45 = high · 2^32 + low with high = (d >> 32) · inv (signed,
            // below 2^61) and low = (d mod 2^32) · inv + 2^45 (below 2^63).
            let high = _mm512_mul_epi32(_mm512_srai_epi64::<32>(d), inv);
            let low = _mm512_add_epi64(_mm512_mul_epu32(d, inv), half);
            let x = _mm512_srai_epi64::<{ FRAC + FRAC30 - 32 }>(_mm512_add_epi64(
                high,
                _mm512_srli_epi64::<32>(low),
            ));
            // Safety: the mask writes elements i .. min(i + 8, n) of `scores`.
            unsafe {
                _mm512_mask_cvtsepi64_storeu_epi32(scores.as_mut_ptr().add(i).cast(), mask, x)
            };
            i += 8;
        }
    }

    /// `dots[j] = q · k[j·stride .. j·stride + q.len()]` for every key `j` (one call
    /// per head, so the per-key work stays inside one function).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F; the caller guarantees each dot's bound
    /// ([`super::dots_fit_i64`]).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dots_i64(q: &[i32], k: &[i32], stride: usize, dots: &mut [i64]) {
        // Safety (all arms): the caller's CPU check.
        unsafe {
            match q.len().div_ceil(16) {
                1 => dots_n::<1>(q, k, stride, dots),
                2 => dots_n::<2>(q, k, stride, dots),
                3 => dots_n::<3>(q, k, stride, dots),
                4 => dots_n::<4>(q, k, stride, dots),
                _ => {
                    let hd = q.len();
                    for (j, dot) in dots.iter_mut().enumerate() {
                        *dot = dot_i64(q, &k[j * stride..j * stride + hd]);
                    }
                }
            }
        }
    }

    /// [`dots_i64`] for heads of at most `16 N` channels: the query stays in
    /// registers, and eight keys' lane sums are reduced together.
    #[target_feature(enable = "avx512f")]
    unsafe fn dots_n<const N: usize>(q: &[i32], k: &[i32], stride: usize, dots: &mut [i64]) {
        let hd = q.len();
        let masks: [__mmask16; N] = core::array::from_fn(|c| {
            let left = hd.saturating_sub(16 * c);
            if left >= 16 {
                !0
            } else {
                (1 << left) - 1
            }
        });
        // Safety: each masked load reads channels 16c .. min(16c + 16, hd) of q.
        let qe: [__m512i; N] = core::array::from_fn(|c| unsafe {
            _mm512_maskz_loadu_epi32(masks[c], q.as_ptr().add(16 * c))
        });
        let qo: [__m512i; N] = core::array::from_fn(|c| _mm512_srli_epi64::<32>(qe[c]));
        let lanes = |j: usize| -> __m512i {
            let row = &k[j * stride..j * stride + hd];
            let mut sum = _mm512_setzero_si512();
            for c in 0..N {
                // Safety: the mask reads channels 16c .. min(16c + 16, hd) of the row.
                let x = unsafe { _mm512_maskz_loadu_epi32(masks[c], row.as_ptr().add(16 * c)) };
                let even = _mm512_mul_epi32(x, qe[c]);
                let odd = _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), qo[c]);
                sum = _mm512_add_epi64(sum, _mm512_add_epi64(even, odd));
            }
            sum
        };
        let mut j = 0;
        while j + 8 <= dots.len() {
            let s: [__m512i; 8] = core::array::from_fn(|i| lanes(j + i));
            let pair = |a: __m512i, b: __m512i| {
                _mm512_add_epi64(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
            };
            let halves = |a: __m512i, b: __m512i| {
                _mm512_add_epi64(
                    _mm512_shuffle_i64x2::<0x88>(a, b),
                    _mm512_shuffle_i64x2::<0xDD>(a, b),
                )
            };
            // Lane i of the result is the sum of all lanes of s[i].
            let sums = halves(
                halves(pair(s[0], s[1]), pair(s[2], s[3])),
                halves(pair(s[4], s[5]), pair(s[6], s[7])),
            );
            // Safety: dots[j .. j + 8] is inside `dots`.
            unsafe { _mm512_storeu_si512(dots.as_mut_ptr().add(j).cast(), sums) };
            j += 8;
        }
        for (i, dot) in dots.iter_mut().enumerate().skip(j) {
            *dot = _mm512_reduce_add_epi64(lanes(i));
        }
    }

    /// `acc += Σ_j probs[j] · v[j·stride .. j·stride + acc.len()]` (a zero
    /// probability adds nothing and is skipped).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and VL; the caller guarantees the sums' bound.
    #[target_feature(enable = "avx512f,avx512vl")]
    pub unsafe fn axpys_i64(acc: &mut [i64], probs: &[u32], v: &[i32], stride: usize) {
        // Safety (all arms): the caller's CPU check.
        unsafe {
            match acc.len().div_ceil(8) {
                1 => axpys_n::<1>(acc, probs, v, stride),
                2 => axpys_n::<2>(acc, probs, v, stride),
                3 => axpys_n::<3>(acc, probs, v, stride),
                4 => axpys_n::<4>(acc, probs, v, stride),
                5 => axpys_n::<5>(acc, probs, v, stride),
                6 => axpys_n::<6>(acc, probs, v, stride),
                7 => axpys_n::<7>(acc, probs, v, stride),
                8 => axpys_n::<8>(acc, probs, v, stride),
                _ => {
                    let hd = acc.len();
                    for (j, &p) in probs.iter().enumerate().filter(|(_, p)| **p != 0) {
                        axpy_i64(acc, p, &v[j * stride..j * stride + hd]);
                    }
                }
            }
        }
    }

    /// [`axpys_i64`] for heads of at most `8 N` channels, the sums in registers.
    #[target_feature(enable = "avx512f,avx512vl")]
    unsafe fn axpys_n<const N: usize>(acc: &mut [i64], probs: &[u32], v: &[i32], stride: usize) {
        let hd = acc.len();
        let masks: [__mmask8; N] = core::array::from_fn(|c| {
            let left = hd.saturating_sub(8 * c);
            if left >= 8 {
                !0
            } else {
                (1 << left) - 1
            }
        });
        // Safety: each masked access touches channels 8c .. min(8c + 8, hd) of acc.
        let mut sums: [__m512i; N] = core::array::from_fn(|c| unsafe {
            _mm512_maskz_loadu_epi64(masks[c], acc.as_ptr().add(8 * c))
        });
        for (j, &p) in probs.iter().enumerate() {
            if p == 0 {
                continue;
            }
            let pv = _mm512_set1_epi64(i64::from(p));
            let row = &v[j * stride..j * stride + hd];
            for c in 0..N {
                // Safety: the mask reads channels 8c .. min(8c + 8, hd) of the row.
                let x = unsafe { _mm256_maskz_loadu_epi32(masks[c], row.as_ptr().add(8 * c)) };
                sums[c] = _mm512_add_epi64(sums[c], _mm512_mul_epi32(_mm512_cvtepi32_epi64(x), pv));
            }
        }
        for c in 0..N {
            // Safety: as for the loads.
            unsafe { _mm512_mask_storeu_epi64(acc.as_mut_ptr().add(8 * c), masks[c], sums[c]) };
        }
    }

    /// `Σ a_i · b_i` in `i64` lanes (`vpmuldq` on the even and on the shifted odd
    /// 32-bit lanes). The caller guarantees `Σ |a_i · b_i| <= i64::MAX`, so every
    /// partial sum is exact: the scalar loop's value.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_i64(a: &[i32], b: &[i32]) -> i64 {
        let n = a.len().min(b.len());
        let mut sum = _mm512_setzero_si512();
        let mut i = 0;
        while i < n {
            let left = n - i;
            let mask: __mmask16 = if left >= 16 { !0 } else { (1 << left) - 1 };
            // Safety: the mask loads only elements i .. min(i + 16, n), inside both.
            let (x, y) = unsafe {
                (
                    _mm512_maskz_loadu_epi32(mask, a.as_ptr().add(i)),
                    _mm512_maskz_loadu_epi32(mask, b.as_ptr().add(i)),
                )
            };
            let even = _mm512_mul_epi32(x, y);
            let odd = _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), _mm512_srli_epi64::<32>(y));
            sum = _mm512_add_epi64(sum, _mm512_add_epi64(even, odd));
            i += 16;
        }
        _mm512_reduce_add_epi64(sum)
    }

    /// `acc[c] += p · v[c]` in `i64` lanes, eight channels per `vpmuldq` (`p <=
    /// 2^30` is a valid signed 32-bit factor). The same sums as the scalar loop.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and VL.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    unsafe fn axpy_i64(acc: &mut [i64], p: u32, v: &[i32]) {
        let n = acc.len().min(v.len());
        let pv = _mm512_set1_epi64(i64::from(p));
        let mut i = 0;
        while i < n {
            let left = n - i;
            let mask: __mmask8 = if left >= 8 { !0 } else { (1 << left) - 1 };
            // Safety: the mask reads and writes only elements i .. min(i + 8, n) of
            // `v` and `acc`.
            unsafe {
                let x = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(mask, v.as_ptr().add(i)));
                let at = acc.as_mut_ptr().add(i);
                let sum =
                    _mm512_add_epi64(_mm512_maskz_loadu_epi64(mask, at), _mm512_mul_epi32(x, pv));
                _mm512_mask_storeu_epi64(at, mask, sum);
            }
            i += 8;
        }
    }
}

#[cfg(all(test, target_arch = "x86_64", feature = "std"))]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Whether this CPU runs the AVX-512 twins (printed by the tests that use them).
    fn avx512() -> bool {
        static SAID: std::sync::Once = std::sync::Once::new();
        let on = Simd::Avx512Vnni.supported();
        SAID.call_once(|| {
            std::println!(
                "attention AVX-512 twins {}",
                if on {
                    "run"
                } else {
                    "NOT RUN: this CPU lacks AVX-512"
                }
            )
        });
        on
    }

    /// [`cached_query`] as the decode step computed it before it had kernels: `i128`
    /// dots, channels outer.
    fn cached_query_reference(
        q: &[i32],
        keys: &[i32],
        values: &[i32],
        stride: usize,
        n: usize,
    ) -> Vec<i32> {
        let hd = q.len();
        let inv_sqrt = i128::from(inv_sqrt_q30(hd as u32));
        let scores: Vec<i32> = (0..n)
            .map(|j| {
                narrow_q(
                    dot_q32(q, &keys[j * stride..j * stride + hd]) * inv_sqrt,
                    FRAC + FRAC30,
                )
            })
            .collect();
        let mut probs = vec![0u32; n];
        softmax_q30(&scores, &mut probs);
        (0..hd)
            .map(|i| {
                let acc: i64 = (0..n)
                    .map(|j| i64::from(probs[j]) * i64::from(values[j * stride + i]))
                    .sum();
                sat_i32(round_shift(acc, FRAC30))
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Every kernel family's decode-step attention equals the `i128` reference,
        /// on small values (i64 lanes), large ones (the key scan) and extreme ones
        /// (the `i128` path), heads of any length, caches past one block of 64 keys.
        #[test]
        fn cached_query_equals_the_reference_for_every_family(
            hd in 1usize..80,
            n in 1usize..150,
            extra in 0usize..5,
            q_shift in 0u32..31,
            k_shift in 0u32..31,
            seed in any::<u64>(),
        ) {
            let stride = hd + extra;
            let mut s = seed | 1;
            let mut next = move |shift: u32| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s as i32) >> shift
            };
            let q: Vec<i32> = (0..hd).map(|_| next(q_shift)).collect();
            let keys: Vec<i32> = (0..n * stride).map(|_| next(k_shift)).collect();
            let values: Vec<i32> = (0..n * stride).map(|_| next(8)).collect();
            let want = cached_query_reference(&q, &keys, &values, stride, n);
            let inv_sqrt = i64::from(inv_sqrt_q30(hd as u32));
            for simd in Simd::available() {
                let (mut scores, mut probs, mut out) = (vec![9; n], vec![9; n], vec![9; hd]);
                cached_query(simd, &q, &keys, &values, stride, n, inv_sqrt, &mut scores, &mut probs, &mut out);
                prop_assert_eq!(&out, &want, "kernel {}", simd.name());
            }
        }

        /// All heads of a decode step, split over threads or not, equal each head's
        /// [`cached_query`] on one thread (grouped KV heads, long caches).
        #[test]
        fn cached_heads_on_threads_equal_one_head_at_a_time(
            kv_heads in 1usize..4,
            group in 1usize..4,
            hd in 1usize..70,
            n in 1usize..300,
            seed in any::<u64>(),
        ) {
            let heads = kv_heads * group;
            let stride = kv_heads * hd;
            let mut s = seed | 1;
            let mut next = move || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s as i32) >> 10
            };
            let q: Vec<i32> = (0..heads * hd).map(|_| next()).collect();
            let keys: Vec<i32> = (0..n * stride).map(|_| next()).collect();
            let values: Vec<i32> = (0..n * stride).map(|_| next()).collect();
            let inv_sqrt = i64::from(inv_sqrt_q30(hd as u32));
            let (mut scores, mut probs) = (vec![0; n], vec![0; n]);
            let mut want = vec![0; heads * hd];
            for (h, o) in want.chunks_exact_mut(hd).enumerate() {
                let at = (h / group) * hd;
                cached_query(Simd::Off, &q[h * hd..(h + 1) * hd], &keys[at..], &values[at..], stride, n, inv_sqrt, &mut scores, &mut probs, o);
            }
            let cache = LayerCache { keys: &keys, values: &values, stride, n };
            for threads in [1, 2, 3] {
                let mut got = vec![7; heads * hd];
                cached_heads(Exec::best(threads), &q, cache, hd, group, inv_sqrt, &mut scores, &mut probs, &mut got);
                prop_assert_eq!(&got, &want, "{} threads", threads);
            }
        }

        /// The AVX-512 normalisation's estimate is never above the quotient and at
        /// most three below it, over sums of 1 to 2^32 keys' worth and every
        /// exponential, the edges of each shift included: so its corrections
        /// always end on the exact quotient.
        #[test]
        fn the_softmax_normalizer_estimate_is_at_most_three_low(
            sum_bits in 31u32..63,
            sum_low in any::<u64>(),
            e in 0u64..=(1 << 30),
            edge in 0usize..6,
        ) {
            let lo = 1u64 << (sum_bits - 1);
            let sum = match edge {
                0 => lo,
                1 => (1u64 << sum_bits) - 1,
                _ => lo + sum_low % lo,
            }
            .clamp(1 << 30, (1 << 62) - 1);
            for e in [e, 0, 1, 1 << 30, (1 << 30) - 1] {
                let num = (e << 30) + sum / 2;
                let (q, est) = (num / sum, normalizer_estimate(num, sum));
                prop_assert!(est <= q && q - est <= 3, "sum {} e {}: q {} estimate {}", sum, e, q, est);
            }
        }

        /// The AVX-512 score scaling equals `narrow_q` on any `i64` dot (the
        /// saturation edges included) and any factor up to 2^30.
        #[test]
        fn avx512_scale_scores_equals_narrow_q(
            dots in proptest::collection::vec(any::<i64>(), 1..20),
            shift in 0u32..64,
            inv in 0u32..=(1 << 30),
        ) {
            if avx512() {
                let mut dots: Vec<i64> = dots.iter().map(|&d| d >> shift).collect();
                dots.extend([i64::MAX, i64::MIN, 0, -1, 1 << 46, -(1 << 45)]);
                for inv in [inv, 1 << 30, 0, 1] {
                    let mut got = vec![7i32; dots.len()];
                    // Safety: the CPU has AVX-512 (checked above).
                    unsafe { avx512::scale_scores(&dots, inv, &mut got) };
                    for (&g, &d) in got.iter().zip(&dots) {
                        prop_assert_eq!(g, narrow_q(i128::from(d) * i128::from(inv), FRAC + FRAC30), "dot {} inv {}", d, inv);
                    }
                }
            }
        }

        /// The AVX-512 softmax's normalisation equals the division on sums of any
        /// size (8 lanes at a time).
        #[test]
        fn avx512_softmax_normalisation_equals_division(
            sum in (1u64 << 30)..(1 << 62),
            es in proptest::collection::vec(0u64..=(1 << 30), 8),
        ) {
            if avx512() {
                let mut got = [0i64; 8];
                // Safety: the CPU has AVX-512 (checked above); `got` is 64 bytes.
                unsafe {
                    use core::arch::x86_64::*;
                    let norm = avx512::Normalizer::new(sum);
                    let e = _mm512_loadu_si512(es.as_ptr().cast());
                    _mm512_storeu_si512(got.as_mut_ptr().cast(), norm.probabilities(e));
                }
                for (g, &e) in got.iter().zip(&es) {
                    prop_assert_eq!(*g as u64, ((e << 30) + sum / 2) / sum);
                }
            }
        }

        /// The AVX-512 softmax gives the scalar one's probabilities, extremes included.
        #[test]
        fn avx512_softmax_equals_scalar(
            raw in proptest::collection::vec(any::<i32>(), 1..70),
            spread in 0u32..32,
            extremes in any::<bool>(),
        ) {
            let mut scores: Vec<i32> = raw.iter().map(|&v| v >> spread).collect();
            if extremes {
                scores[0] = i32::MAX;
                let last = scores.len() - 1;
                scores[last] = i32::MIN;
            }
            let mut want = vec![0u32; scores.len()];
            softmax_q30(&scores, &mut want);
            if avx512() {
                let mut got = vec![7u32; scores.len()];
                // Safety: the CPU has AVX-512 (checked above).
                unsafe { avx512::softmax_q30(&scores, &mut got) };
                prop_assert_eq!(got, want);
            }
        }
    }
}
