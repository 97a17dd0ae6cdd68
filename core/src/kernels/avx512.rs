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

use core::arch::x86_64::*;

use super::x86;
use crate::quant::{mantissa, QMatrix, QType};

/// Elements one `vpdpwssd` step consumes.
const STEP: usize = 32;

/// Whether `m` suits this kernel: its group size is a whole number of steps.
pub fn fits(m: &QMatrix<'_>) -> bool {
    (m.group as usize).is_multiple_of(STEP)
}

/// AVX-512 VNNI version of [`super::scalar::row_total`].
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI and AVX2; `fits(m)`; `r < m.rows`;
/// `x.len() == m.cols`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2")]
pub unsafe fn row_total(m: &QMatrix<'_>, r: usize, x: &[i16]) -> i64 {
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
                // a Q8 row (a Q4 row holds cols / 2 bytes, of which j/2 + 16 are read).
                unsafe {
                    // A prefetch never faults, even past the end of the tensor.
                    _mm_prefetch::<_MM_HINT_T0>(values.as_ptr().wrapping_add(j + ahead).cast());
                    let xv = _mm512_loadu_si512(x.as_ptr().add(j).cast());
                    let w = match m.qtype {
                        QType::Q8 => q8_step(values, j),
                        QType::Q4 => q4_step(values, j),
                    };
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
        let even = _mm512_mul_epi32(partials, mants);
        let odd = _mm512_mul_epi32(
            _mm512_srli_epi64(partials, 32),
            _mm512_srli_epi64(mants, 32),
        );
        wide = _mm512_add_epi64(wide, _mm512_add_epi64(even, odd));
        g += 4;
    }
    let mut total = _mm512_reduce_add_epi64(wide);
    // The last groups (fewer than four, and a shorter final group) on AVX2.
    let mut start = g * group;
    while start < cols {
        let end = (start + group).min(cols);
        // Safety: end <= cols (see `x86::group_q8` and `x86::group_q4`).
        let a = unsafe {
            match m.qtype {
                QType::Q8 => x86::group_q8(values, x, start, end),
                QType::Q4 => x86::group_q4(values, x, start, end),
            }
        };
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

/// Q4 elements `j..j + 32` (`j` even: bytes `j/2..j/2 + 16`) as `i16` in `[-8, 7]`.
#[target_feature(enable = "avx512f,avx512bw,avx2")]
unsafe fn q4_step(values: &[u8], j: usize) -> __m512i {
    // Safety: the caller keeps j/2 + 16 <= values.len().
    let b = unsafe { _mm_loadu_si128(values.as_ptr().add(j / 2).cast()) };
    let low = _mm_set1_epi8(0x0F);
    let lo = _mm_and_si128(b, low);
    let hi = _mm_and_si128(_mm_srli_epi16(b, 4), low);
    let pairs = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    _mm512_cvtepi8_epi16(_mm256_sub_epi8(pairs, _mm256_set1_epi8(8)))
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
