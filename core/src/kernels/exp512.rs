//! AVX-512 twins of the integer exponential ([`crate::math::exp_q30`]) and of SiLU
//! ([`crate::math::silu_q16`]): the same integer steps, eight lanes at a time.

use core::arch::x86_64::*;

use crate::fixed::{round_shift as round_shift_i64, sat_i32, FRAC30};
use crate::math::{EXP2_COEFFS_Q30, LOG2_E_Q30};

/// `round_shift(x, s)` per lane for `0 <= s <= 40` (`s - 1` wraps for `s = 0`,
/// and a shift by 64 or more of a non-negative value is 0, as wanted).
#[inline]
#[target_feature(enable = "avx512f")]
fn round_shift(x: __m512i, s: __m512i) -> __m512i {
    let half = _mm512_srav_epi64(x, _mm512_sub_epi64(s, _mm512_set1_epi64(1)));
    _mm512_add_epi64(
        _mm512_srav_epi64(x, s),
        _mm512_and_si512(half, _mm512_set1_epi64(1)),
    )
}

/// [`crate::math::exp_q30`] of eight inputs `x <= 0` (`i32` values in `i64`
/// lanes).
///
/// # Safety
/// The CPU must support AVX-512 F and DQ (a safe call needs a caller with these
/// target features).
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
pub fn exp_q30(x: __m512i) -> __m512i {
    // x and log2(e) fit 32 bits (signed), and every Horner step multiplies an
    // accumulator in [0, 2^31) by a fraction in [0, 2^30): 32 x 32 -> 64-bit
    // products (`vpmuldq`, `vpmuludq`), exact like the scalar i64 products.
    let x = _mm512_min_epi64(x, _mm512_setzero_si512());
    let y = _mm512_mul_epi32(x, _mm512_set1_epi64(LOG2_E_Q30));
    let int_part = _mm512_srai_epi64::<46>(y);
    let shift = _mm512_sub_epi64(_mm512_setzero_si512(), int_part);
    let frac = _mm512_srai_epi64::<16>(_mm512_sub_epi64(y, _mm512_slli_epi64::<46>(int_part)));
    let mut acc = _mm512_set1_epi64(EXP2_COEFFS_Q30[10]);
    for &c in EXP2_COEFFS_Q30[..10].iter().rev() {
        // round_shift(p, 30) of a non-negative p below 2^61: (p + 2^29) >> 30.
        let p = _mm512_mul_epu32(acc, frac);
        let rounded = _mm512_srli_epi64::<30>(_mm512_add_epi64(p, _mm512_set1_epi64(1 << 29)));
        acc = _mm512_add_epi64(_mm512_set1_epi64(c), rounded);
    }
    let live = _mm512_cmple_epi64_mask(shift, _mm512_set1_epi64(40));
    _mm512_maskz_mov_epi64(live, round_shift(acc, shift))
}

/// [`crate::math::silu_q16`] of every element, the exponentials eight at a time (the
/// sigmoid's division and the product stay scalar, as in the reference).
///
/// # Safety
/// The CPU must support AVX-512 F, VL and DQ.
#[target_feature(enable = "avx512f,avx512vl,avx512dq")]
pub unsafe fn silu_q16_in_place(xs: &mut [i32]) {
    for chunk in xs.chunks_mut(8) {
        let n = chunk.len();
        let mask: __mmask8 = if n == 8 { !0 } else { (1 << n) - 1 };
        // Safety: the mask reads the chunk's n elements.
        let x = unsafe { _mm256_maskz_loadu_epi32(mask, chunk.as_ptr()) };
        let neg_abs = _mm512_sub_epi64(
            _mm512_setzero_si512(),
            _mm512_abs_epi64(_mm512_cvtepi32_epi64(x)),
        );
        let mut e = [0i64; 8];
        // Safety: `e` is 64 bytes, one unaligned store.
        unsafe { _mm512_storeu_si512(e.as_mut_ptr().cast(), exp_q30(neg_abs)) };
        for (v, &e) in chunk.iter_mut().zip(&e) {
            // sigmoid_q30, with e = exp(-|x|) in [0, 2^30].
            let e = e as u64;
            let den = (1u64 << FRAC30) + e;
            let num = if *v >= 0 { 1u64 << 60 } else { e << FRAC30 };
            let s = ((num + den / 2) / den) as u32;
            *v = sat_i32(round_shift_i64(i64::from(*v) * i64::from(s), FRAC30));
        }
    }
}
