//! The reference kernels: one element at a time, in row order. Also what the
//! guest runs in the VM (rv32im has no SIMD), so the loops are written for a
//! simple core's codegen: Q8 and Q4 have their own inner loops over zipped slices
//! (no bounds checks, no per-element type dispatch), Q4 one byte (two weights) at
//! a time.

use crate::quant::{mantissa, QMatrix, QType};

/// `sum_g (sum_{j in g} w_j * x_j) * m_g` for row `r` (exact; see the bound in
/// [`crate::quant`]).
pub fn row_total(m: &QMatrix<'_>, r: usize, x: &[i16]) -> i64 {
    let values = m.row_values(r);
    let scales = m.row_scales(r);
    let group = m.group as usize;
    let mut total: i64 = 0;
    for (g, xs) in x.chunks(group).enumerate() {
        let acc = match m.qtype {
            QType::Q8 => group_sum_q8(&values[g * group..], xs),
            // Q4 groups are even, so each starts on a byte.
            QType::Q4 => group_sum_q4(&values[g * group / 2..], xs),
        };
        total += i64::from(acc) * i64::from(mantissa(scales, g));
    }
    total
}

/// `sum_j w_j * x_j` over `xs` and the int8 weights starting at `ws[0]`.
#[inline(always)]
fn group_sum_q8(ws: &[u8], xs: &[i16]) -> i32 {
    let mut acc: i32 = 0;
    for (&w, &x) in ws.iter().zip(xs) {
        acc += i32::from(w as i8) * i32::from(x);
    }
    acc
}

/// `sum_j w_j * x_j` over `xs` and the int4 weights packed from `bytes[0]` (low
/// nibble first, each stored `+8`).
#[inline(always)]
fn group_sum_q4(bytes: &[u8], xs: &[i16]) -> i32 {
    let pairs = xs.chunks_exact(2);
    let odd = pairs.remainder();
    let mut acc: i32 = 0;
    for (&b, pair) in bytes.iter().zip(pairs) {
        acc += (i32::from(b & 0x0F) - 8) * i32::from(pair[0]);
        acc += (i32::from(b >> 4) - 8) * i32::from(pair[1]);
    }
    if let [x] = odd {
        acc += (i32::from(bytes[xs.len() / 2] & 0x0F) - 8) * i32::from(*x);
    }
    acc
}
