//! An AVX-512 VNNI matrix product for many activation vectors at once (a prompt's
//! positions, a convolution's pixels): sixteen vectors are packed column pair by
//! column pair, so that one `vpdpwssd` multiplies a broadcast pair of weights by
//! the same pair of columns of all sixteen vectors, each lane accumulating one
//! vector's exact group sum. A group's sums are scaled by its mantissa lane-wise
//! in `i64`, so nothing is summed horizontally, and eight rows share every load of
//! the packed activations.
//!
//! The values are the scalar kernel's: each lane sums exactly the products of one
//! group of one vector (the bound of [`crate::quant`] keeps it in `i32`), and the
//! scaled sums are exact in `i64`. Groups must have an even size, so that a column
//! pair never straddles two groups.

use alloc::vec;
use alloc::vec::Vec;
use core::arch::x86_64::*;

use crate::quant::{mantissa, QMatrix, QType};

/// Vectors per packed block.
pub const VECTORS: usize = 16;
/// Rows computed together: each row's accumulator is its own dependency chain;
/// eight chains hide more of `vpdpwssd`'s latency than four (prefill ~5% faster).
pub const ROWS: usize = 8;

/// Whether `m` suits this kernel (an even group size).
pub fn fits(m: &QMatrix<'_>) -> bool {
    m.group.is_multiple_of(2)
}

/// Sixteen vectors of `cols` activations packed for [`rows_totals`]: lane `v` of
/// column pair `i` holds `(x_v[2i], x_v[2i + 1])` as one `i32` (0 past the end).
pub fn pack(block: &[i16], cols: usize) -> Vec<i32> {
    let pairs = cols.div_ceil(2);
    let mut out = vec![0i32; pairs * VECTORS];
    for (v, x) in block.chunks_exact(cols).take(VECTORS).enumerate() {
        for (i, pair) in x.chunks(2).enumerate() {
            let lo = pair[0] as u16 as u32;
            let hi = pair.get(1).map_or(0, |&h| h as u16 as u32);
            out[i * VECTORS + v] = ((hi << 16) | lo) as i32;
        }
    }
    out
}

/// Row `r`'s weights as `i16`, padded with a zero to an even length.
pub fn widen_row(m: &QMatrix<'_>, r: usize, out: &mut [i16]) {
    let values = m.row_values(r);
    let cols = (m.cols as usize).min(out.len());
    let (body, pad) = out.split_at_mut(cols);
    match m.qtype {
        QType::Q8 => {
            for (w, &v) in body.iter_mut().zip(values) {
                *w = i16::from(v as i8);
            }
        }
        QType::Q4 => {
            for (pair, &b) in body.chunks_mut(2).zip(values) {
                pair[0] = i16::from(b & 0x0F) - 8;
                if let Some(hi) = pair.get_mut(1) {
                    *hi = i16::from(b >> 4) - 8;
                }
            }
        }
    }
    pad.fill(0);
}

/// The totals of rows `r..r + n` (`n <= ROWS`, fewer at the end of the matrix)
/// against one packed block: `out[k][v]` for row `r + k` and vector `v`. `wide`
/// holds the rows' weights from [`widen_row`], each `cols.div_ceil(2) * 2` long.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI; `fits(m)`; `1 <= n <= ROWS`, rows
/// `r..r + n` exist; `packed` is a block from [`pack`] for `m.cols` columns.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
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
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
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
    let mut even = [_mm512_setzero_si512(); N];
    let mut odd = [_mm512_setzero_si512(); N];
    let mut start = 0;
    let mut g = 0;
    while start < cols {
        let end = (start + group).min(cols);
        let mut acc = [_mm512_setzero_si512(); N];
        for i in start / 2..end.div_ceil(2) {
            // Safety: pair i < cols.div_ceil(2): the packed block holds 16 lanes for
            // it, and each widened row holds `width` >= 2i + 2 weights.
            let xv = unsafe { _mm512_loadu_si512(packed.as_ptr().add(i * VECTORS).cast()) };
            for k in 0..N {
                // Safety: as above.
                let pair = unsafe { rows[k].as_ptr().add(2 * i).cast::<i32>().read_unaligned() };
                acc[k] = _mm512_dpwssd_epi32(acc[k], _mm512_set1_epi32(pair), xv);
            }
        }
        for k in 0..N {
            let mant = _mm512_set1_epi32(mantissa(scales[k], g));
            even[k] = _mm512_add_epi64(even[k], _mm512_mul_epi32(acc[k], mant));
            odd[k] = _mm512_add_epi64(
                odd[k],
                _mm512_mul_epi32(_mm512_srli_epi64::<32>(acc[k]), mant),
            );
        }
        start = end;
        g += 1;
    }
    for k in 0..N {
        let mut e = [0i64; 8];
        let mut o = [0i64; 8];
        // Safety: each array is 64 bytes, one unaligned store.
        unsafe {
            _mm512_storeu_si512(e.as_mut_ptr().cast(), even[k]);
            _mm512_storeu_si512(o.as_mut_ptr().cast(), odd[k]);
        }
        for i in 0..8 {
            out[k][2 * i] = e[i];
            out[k][2 * i + 1] = o[i];
        }
    }
}
