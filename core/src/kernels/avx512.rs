//! AVX-512 VNNI twins of [`super::scalar`]: `vpdpwssd` multiplies 32 pairs of
//! `i16` and adds them into 16 `i32` lanes in one instruction.
//!
//! A row runs four groups at a time. Each group's products stay in its own
//! accumulator; the four accumulators are folded so that every 128-bit part holds
//! one partial sum per group, and each partial is multiplied by its group's
//! mantissa in `i64` lanes. The mantissas of four consecutive groups are one
//! 16-byte load, and no horizontal sum is taken until the end of the row. The
//! result is the scalar kernel's: `sum_g (sum_j w_j x_j) m_g` equals the sum of the
//! partials times their mantissas, and by the bound of [`crate::quant`] every
//! partial fits `i32` and every product and sum fits `i64`.
//!
//! Q4 rows are not unpacked into element order. The activations are split once per
//! product into their even and odd elements ([`Q4Activations`]), so 32 value bytes
//! widen to 32 words whose low nibbles meet the even activations and whose high
//! nibbles meet the odd ones: two `vpdpwssd` per 64 elements, on the stored nibbles
//! `n = q + 8`. The `+ 8` is taken out per group with the group's activation sum:
//! `sum q x = sum n x - 8 sum x`, exactly.

use alloc::vec::Vec;
use core::arch::x86_64::*;

use super::x86;
use crate::quant::{mantissa, QMatrix, QType};

/// Elements one Q8 `vpdpwssd` step consumes.
const STEP: usize = 32;
/// Elements one Q4 step consumes (32 value bytes).
const Q4_STEP: usize = 64;

/// Whether `m` suits this kernel: Q8 groups of a multiple of 32 elements, Q4 groups
/// of 16 (Q4's default), 32 or a multiple of 64.
pub fn fits(m: &QMatrix<'_>) -> bool {
    let group = m.group as usize;
    match m.qtype {
        QType::Q8 => group.is_multiple_of(STEP),
        QType::Q4 => group == 16 || group == 32 || group.is_multiple_of(Q4_STEP),
    }
}

/// The activations of one product in the Q4 kernel's order: `even[t] = x[2t]`,
/// `odd[t] = x[2t + 1]` (zero past the end), and `8 * sum x` of each group.
pub struct Q4Activations {
    even: Vec<i16>,
    odd: Vec<i16>,
    eight_sums: Vec<i32>,
}

impl Q4Activations {
    /// Split `x` (the product's activations) for the Q4 rows of `m`.
    pub fn new(m: &QMatrix<'_>, x: &[i16]) -> Self {
        let half = x.len().div_ceil(2);
        let mut even = Vec::with_capacity(half);
        let mut odd = Vec::with_capacity(half);
        for pair in x.chunks(2) {
            even.push(pair[0]);
            odd.push(pair.get(1).copied().unwrap_or(0));
        }
        let eight_sums = x
            .chunks(m.group as usize)
            .map(|g| 8 * g.iter().map(|&v| i32::from(v)).sum::<i32>())
            .collect();
        Q4Activations {
            even,
            odd,
            eight_sums,
        }
    }
}

/// AVX-512 VNNI version of [`super::scalar::row_total`] for a Q8 row.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI and AVX2; `fits(m)`; `m` is Q8;
/// `r < m.rows`; `x.len() == m.cols`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2")]
pub unsafe fn row_total_q8(m: &QMatrix<'_>, r: usize, x: &[i16]) -> i64 {
    let values = m.row_values(r);
    let scales = m.row_scales(r);
    let group = m.group as usize;
    let cols = x.len();
    let full = cols / group;
    // Prefetch distance in bytes: four rows ahead, as the AVX2 kernel does.
    let ahead = 4 * m.qtype.row_bytes(m.cols);
    let mut wide = _mm512_setzero_si512();
    let mut g = 0;
    while g + 4 <= full {
        let mut acc = [_mm512_setzero_si512(); 4];
        for (k, a) in acc.iter_mut().enumerate() {
            let start = (g + k) * group;
            let mut j = start;
            while j < start + group {
                // Safety: j + 32 <= (g + 4) * group <= cols, the length of x and of
                // a Q8 row.
                unsafe {
                    // A prefetch never faults, even past the end of the tensor.
                    _mm_prefetch::<_MM_HINT_T0>(values.as_ptr().wrapping_add(j + ahead).cast());
                    let xv = _mm512_loadu_si512(x.as_ptr().add(j).cast());
                    let w = q8_step(values, j);
                    *a = _mm512_dpwssd_epi32(*a, w, xv);
                }
                j += STEP;
            }
        }
        let partials = fold4(acc);
        // Safety: the mantissas of groups g..g + 4 are bytes 4g..4g + 16 of the row's
        // scales, which hold one i32 for each of its groups (g + 4 <= full).
        let mants = unsafe { _mm_loadu_si128(scales.as_ptr().add(4 * g).cast()) };
        let mants = _mm512_broadcast_i32x4(mants);
        wide = _mm512_add_epi64(wide, scaled(partials, mants));
        g += 4;
    }
    let mut total = _mm512_reduce_add_epi64(wide);
    // The last groups (fewer than four, and a shorter final group) on AVX2.
    let mut start = g * group;
    while start < cols {
        let end = (start + group).min(cols);
        // Safety: end <= cols (see `x86::group_q8`).
        let a = unsafe { x86::group_q8(values, x, start, end) };
        total += i64::from(a) * i64::from(mantissa(scales, g));
        start = end;
        g += 1;
    }
    total
}

/// Q8 elements `j..j + 32` widened to `i16`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn q8_step(values: &[u8], j: usize) -> __m512i {
    // Safety: the caller keeps j + 32 <= values.len().
    unsafe { _mm512_cvtepi8_epi16(_mm256_loadu_si256(values.as_ptr().add(j).cast())) }
}

/// [`row_total_q8`] of row `r` against four activation vectors at once: each
/// weight step is widened once and meets all four (a convolution's pixels, a
/// prompt's tokens), so the weights are read once for four products.
///
/// # Safety
/// As [`row_total_q8`], for each of the four vectors.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2")]
pub unsafe fn row_totals_q8_x4(m: &QMatrix<'_>, r: usize, xs: [&[i16]; 4]) -> [i64; 4] {
    let values = m.row_values(r);
    let scales = m.row_scales(r);
    let group = m.group as usize;
    let cols = m.cols as usize;
    let full = cols / group;
    let mut wide = [_mm512_setzero_si512(); 4];
    let mut g = 0;
    while g + 4 <= full {
        let mut acc = [[_mm512_setzero_si512(); 4]; 4];
        for k in 0..4 {
            let start = (g + k) * group;
            let mut j = start;
            while j < start + group {
                // Safety: j + 32 <= (g + 4) * group <= cols, the length of each x and
                // of a Q8 row.
                unsafe {
                    let w = q8_step(values, j);
                    for (a, x) in acc.iter_mut().zip(&xs) {
                        let xv = _mm512_loadu_si512(x.as_ptr().add(j).cast());
                        a[k] = _mm512_dpwssd_epi32(a[k], w, xv);
                    }
                }
                j += STEP;
            }
        }
        // Safety: as in `row_total_q8`.
        let mants = unsafe { _mm_loadu_si128(scales.as_ptr().add(4 * g).cast()) };
        let mants = _mm512_broadcast_i32x4(mants);
        for (w, a) in wide.iter_mut().zip(acc) {
            *w = _mm512_add_epi64(*w, scaled(fold4(a), mants));
        }
        g += 4;
    }
    let mut totals = wide.map(|w| _mm512_reduce_add_epi64(w));
    let tail = g;
    for (t, x) in totals.iter_mut().zip(&xs) {
        let mut start = tail * group;
        let mut g = tail;
        while start < cols {
            let end = (start + group).min(cols);
            // Safety: end <= cols (see `x86::group_q8`).
            let a = unsafe { x86::group_q8(values, x, start, end) };
            *t += i64::from(a) * i64::from(mantissa(scales, g));
            start = end;
            g += 1;
        }
    }
    totals
}

/// AVX-512 VNNI version of [`super::scalar::row_total`] for a Q4 row; `acts` are
/// `x` split by [`Q4Activations::new`].
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI and AVX2; `fits(m)`; `m` is Q4;
/// `r < m.rows`; `x.len() == m.cols`; `acts` was made from `m` and `x`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2")]
pub unsafe fn row_total_q4(m: &QMatrix<'_>, r: usize, x: &[i16], acts: &Q4Activations) -> i64 {
    let values = m.row_values(r);
    let scales = m.row_scales(r);
    let group = m.group as usize;
    let cols = x.len();
    let full = cols / group;
    // Four accumulators per block: one group each (groups of 64k), two groups each,
    // one per 256-bit half (groups of 32), or four, one per 128-bit part (groups of
    // 16).
    let pairs = group == 32;
    let quads = group == 16;
    let per_block = match group {
        16 => 16,
        32 => 8,
        _ => 4,
    };
    let span = if pairs || quads { Q4_STEP } else { group };
    // Lane 4p + k of the folded partials belongs to group 2k + p / 2 of the block
    // (pairs); the correction `8 sum x` goes once per group: lanes k and 8 + k.
    let pair_lanes = _mm512_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6, 1, 3, 5, 7, 1, 3, 5, 7);
    // Quads: lane 4p + k belongs to group 4k + p, one lane per group.
    let quad_lanes = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let low_nibbles = _mm512_set1_epi16(0x0F);
    let ahead = 4 * m.qtype.row_bytes(m.cols);
    let mut wide = _mm512_setzero_si512();
    let mut g = 0;
    while g + per_block <= full {
        let mut acc = [_mm512_setzero_si512(); 4];
        for (k, a) in acc.iter_mut().enumerate() {
            let start = g * group + k * span;
            let mut j = start;
            while j < start + span {
                // Safety: j + 64 <= (g + per_block) * group <= cols: the row holds
                // bytes j/2 .. j/2 + 32 and `even`/`odd` hold ceil(cols / 2) words.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(values.as_ptr().wrapping_add(j / 2 + ahead).cast());
                    let bytes = _mm256_loadu_si256(values.as_ptr().add(j / 2).cast());
                    let words = _mm512_cvtepu8_epi16(bytes);
                    let lo = _mm512_and_si512(words, low_nibbles);
                    let hi = _mm512_srli_epi16(words, 4);
                    let xe = _mm512_loadu_si512(acts.even.as_ptr().add(j / 2).cast());
                    let xo = _mm512_loadu_si512(acts.odd.as_ptr().add(j / 2).cast());
                    *a = _mm512_dpwssd_epi32(*a, lo, xe);
                    *a = _mm512_dpwssd_epi32(*a, hi, xo);
                }
                j += Q4_STEP;
            }
        }
        let partials = fold4(acc);
        // Safety: groups g..g + per_block <= full have mantissas in `scales` (4
        // bytes each) and sums in `eight_sums`.
        let (mants, eights) = unsafe {
            if quads {
                let mants = _mm512_loadu_si512(scales.as_ptr().add(4 * g).cast());
                let eights = _mm512_loadu_si512(acts.eight_sums.as_ptr().add(g).cast());
                (
                    _mm512_permutexvar_epi32(quad_lanes, mants),
                    _mm512_permutexvar_epi32(quad_lanes, eights),
                )
            } else if pairs {
                let mants =
                    _mm512_castsi256_si512(_mm256_loadu_si256(scales.as_ptr().add(4 * g).cast()));
                let eights = _mm512_castsi256_si512(_mm256_loadu_si256(
                    acts.eight_sums.as_ptr().add(g).cast(),
                ));
                (
                    _mm512_permutexvar_epi32(pair_lanes, mants),
                    _mm512_maskz_permutexvar_epi32(0x0F0F, pair_lanes, eights),
                )
            } else {
                let mants = _mm_loadu_si128(scales.as_ptr().add(4 * g).cast());
                let eights = _mm_loadu_si128(acts.eight_sums.as_ptr().add(g).cast());
                (
                    _mm512_broadcast_i32x4(mants),
                    _mm512_zextsi128_si512(eights),
                )
            }
        };
        let partials = _mm512_sub_epi32(partials, eights);
        wide = _mm512_add_epi64(wide, scaled(partials, mants));
        g += per_block;
    }
    let mut total = _mm512_reduce_add_epi64(wide);
    let mut start = g * group;
    while start < cols {
        let end = (start + group).min(cols);
        // Safety: end <= cols (see `x86::group_q4`).
        let a = unsafe { x86::group_q4(values, x, start, end) };
        total += i64::from(a) * i64::from(mantissa(scales, g));
        start = end;
        g += 1;
    }
    total
}

/// `sum_i partials_i * mants_i` per pair of `i32` lanes, in `i64` lanes.
#[target_feature(enable = "avx512f")]
fn scaled(partials: __m512i, mants: __m512i) -> __m512i {
    let even = _mm512_mul_epi32(partials, mants);
    let odd = _mm512_mul_epi32(
        _mm512_srli_epi64(partials, 32),
        _mm512_srli_epi64(mants, 32),
    );
    _mm512_add_epi64(even, odd)
}

/// Four accumulators of 16 lanes folded into one: lane `4p + k` holds the sum of
/// lanes `4p..4p + 4` of `acc[k]` (each 128-bit part `p` carries one partial per
/// accumulator).
#[target_feature(enable = "avx512f")]
fn fold4(acc: [__m512i; 4]) -> __m512i {
    let [a0, a1, a2, a3] = acc;
    let t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
    let t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
    _mm512_add_epi32(
        _mm512_unpacklo_epi64(t01, t23),
        _mm512_unpackhi_epi64(t01, t23),
    )
}
