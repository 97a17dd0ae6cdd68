//! The driver shared by the x86 GEMM kernels ([`super::gemm512`] for AVX-512 VNNI,
//! [`super::gemm256`] for AVX2): blocks of `V` activation vectors are packed column
//! pair by column pair (lane `v` of pair `i` holds `(x_v[2i], x_v[2i + 1])`), the
//! weights of `R` rows are widened to `i16` once, and a kernel multiplies each
//! broadcast weight pair by the same pair of columns of all `V` vectors, each lane
//! accumulating one vector's exact group sum, scaled by its mantissa lane-wise in
//! `i64`. The weights are read once per block of vectors instead of once per vector,
//! which is what makes a prompt's positions (or a convolution's pixels) cheaper
//! together than one by one.
//!
//! The values are the scalar kernel's: each lane sums exactly the products of one
//! group of one vector (the bound of [`crate::quant`] keeps it in `i32`), and the
//! scaled sums are exact in `i64`. Groups must have an even size, so that a column
//! pair never straddles two groups.

use alloc::vec;
use alloc::vec::Vec;

use crate::quant::{finish_row, QMatrix, QType};

/// A GEMM kernel: the totals of rows `r..r + n` (`1 <= n <= R`) against one packed
/// block, `out[k][v]` for row `r + k` and vector `v`; `wide` holds the rows' weights
/// from [`widen_row`], each `m.cols.div_ceil(2) * 2` long.
pub type RowsTotals<const V: usize, const R: usize> =
    unsafe fn(&QMatrix<'_>, usize, usize, &[i16], &[i32], &mut [[i64; V]; R]);

/// Whether `m` suits the GEMM kernels (an even group size).
pub fn fits(m: &QMatrix<'_>) -> bool {
    m.group.is_multiple_of(2)
}

/// `V` vectors of `cols` activations packed for a kernel: lane `v` of column pair
/// `i` holds `(x_v[2i], x_v[2i + 1])` as one `i32` (0 past the end).
pub fn pack<const V: usize>(block: &[i16], cols: usize) -> Vec<i32> {
    let pairs = cols.div_ceil(2);
    let mut out = vec![0i32; pairs * V];
    for (v, x) in block.chunks_exact(cols).take(V).enumerate() {
        for (i, pair) in x.chunks(2).enumerate() {
            let lo = pair[0] as u16 as u32;
            let hi = pair.get(1).map_or(0, |&h| h as u16 as u32);
            out[i * V + v] = ((hi << 16) | lo) as i32;
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

/// The leading whole blocks of `V` vectors of `xs` (each `m.cols` long, with its
/// scale exponent in `shifts`) through `kernel`, `R` rows at a time, into `out`
/// (`out[v·rows + r]`); returns how many vectors it did (0 unless [`fits`]).
///
/// # Safety
/// `kernel` must be callable on this CPU for `m` (its features present).
pub unsafe fn blocks<const V: usize, const R: usize>(
    kernel: RowsTotals<V, R>,
    m: &QMatrix<'_>,
    xs: &[i16],
    shifts: &[u32],
    out: &mut [i32],
) -> usize {
    let (rows, cols) = (m.rows as usize, m.cols as usize);
    if !fits(m) || shifts.len() < V || cols == 0 {
        return 0;
    }
    let blocks = shifts.len() / V;
    let packed: Vec<Vec<i32>> = xs
        .chunks_exact(V * cols)
        .take(blocks)
        .map(|block| pack::<V>(block, cols))
        .collect();
    let width = cols.div_ceil(2) * 2;
    let mut wide = vec![0i16; R * width];
    let mut totals = [[0i64; V]; R];
    for r in (0..rows).step_by(R) {
        let n = R.min(rows - r);
        for (k, w) in wide.chunks_exact_mut(width).take(n).enumerate() {
            widen_row(m, r + k, w);
        }
        for (b, p) in packed.iter().enumerate() {
            // Safety: the caller vouches for the CPU; `fits` checked the group
            // size; `1 <= n <= R`, rows `r..r + n` exist and `p` packs `cols`
            // columns of `V` vectors.
            unsafe { kernel(m, r, n, &wide, p, &mut totals) };
            for (k, row) in totals.iter().take(n).enumerate() {
                for (t, &total) in row.iter().enumerate() {
                    let v = b * V + t;
                    out[v * rows + r + k] = finish_row(total, m.exp, shifts[v]);
                }
            }
        }
    }
    blocks * V
}
