//! The AVX2 GEMM kernel ([`super::gemm`] describes the layout): eight vectors per
//! packed block, one per `i32` lane of a 256-bit register; `vpmaddwd` multiplies a
//! broadcast pair of weights by the same pair of columns of all eight, and eight
//! rows share every load of the packed activations. The AVX2 twin of
//! [`super::gemm512`], for machines without AVX-512: the same exact sums.

use core::arch::x86_64::*;

use crate::quant::{mantissa, QMatrix};

/// Vectors per packed block.
pub const VECTORS: usize = 8;
/// Rows computed together (each row's accumulator is its own dependency chain).
pub const ROWS: usize = 8;

/// The totals of rows `r..r + n` against one packed block ([`super::gemm::RowsTotals`]).
///
/// # Safety
/// The CPU must support AVX2; `m`'s group size is even; `1 <= n <= ROWS`, rows
/// `r..r + n` exist; `packed` is a block from [`super::gemm::pack`] for `m.cols`
/// columns and `wide` holds the rows' widened weights.
#[target_feature(enable = "avx2")]
pub unsafe fn rows_totals(
    m: &QMatrix<'_>,
    r: usize,
    n: usize,
    wide: &[i16],
    packed: &[i32],
    out: &mut [[i64; VECTORS]; ROWS],
) {
    // Safety (all arms): the caller's conditions.
    unsafe {
        match n {
            1 => rows_totals_n::<1>(m, r, wide, packed, out),
            2 => rows_totals_n::<2>(m, r, wide, packed, out),
            3 => rows_totals_n::<3>(m, r, wide, packed, out),
            4 => rows_totals_n::<4>(m, r, wide, packed, out),
            5 => rows_totals_n::<5>(m, r, wide, packed, out),
            6 => rows_totals_n::<6>(m, r, wide, packed, out),
            7 => rows_totals_n::<7>(m, r, wide, packed, out),
            _ => rows_totals_n::<ROWS>(m, r, wide, packed, out),
        }
    }
}

/// [`rows_totals`] for exactly `N` rows.
#[target_feature(enable = "avx2")]
unsafe fn rows_totals_n<const N: usize>(
    m: &QMatrix<'_>,
    r: usize,
    wide: &[i16],
    packed: &[i32],
    out: &mut [[i64; VECTORS]; ROWS],
) {
    let cols = m.cols as usize;
    let group = m.group as usize;
    let width = cols.div_ceil(2) * 2;
    let scales: [&[u8]; N] = core::array::from_fn(|k| m.row_scales(r + k));
    let rows: [&[i16]; N] = core::array::from_fn(|k| &wide[k * width..(k + 1) * width]);
    let mut even = [_mm256_setzero_si256(); N];
    let mut odd = [_mm256_setzero_si256(); N];
    let mut start = 0;
    let mut g = 0;
    while start < cols {
        let end = (start + group).min(cols);
        let mut acc = [_mm256_setzero_si256(); N];
        for i in start / 2..end.div_ceil(2) {
            // Safety: pair i < cols.div_ceil(2): the packed block holds 8 lanes for
            // it, and each widened row holds `width` >= 2i + 2 weights.
            let xv = unsafe { _mm256_loadu_si256(packed.as_ptr().add(i * VECTORS).cast()) };
            for k in 0..N {
                // Safety: as above.
                let pair = unsafe { rows[k].as_ptr().add(2 * i).cast::<i32>().read_unaligned() };
                acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(_mm256_set1_epi32(pair), xv));
            }
        }
        for k in 0..N {
            let mant = _mm256_set1_epi32(mantissa(scales[k], g));
            even[k] = _mm256_add_epi64(even[k], _mm256_mul_epi32(acc[k], mant));
            odd[k] = _mm256_add_epi64(
                odd[k],
                _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc[k]), mant),
            );
        }
        start = end;
        g += 1;
    }
    for k in 0..N {
        let mut e = [0i64; 4];
        let mut o = [0i64; 4];
        // Safety: each array is 32 bytes, one unaligned store.
        unsafe {
            _mm256_storeu_si256(e.as_mut_ptr().cast(), even[k]);
            _mm256_storeu_si256(o.as_mut_ptr().cast(), odd[k]);
        }
        for i in 0..4 {
            out[k][2 * i] = e[i];
            out[k][2 * i + 1] = o[i];
        }
    }
}
