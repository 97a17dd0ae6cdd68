//! The reference kernels: one element at a time, in row order. Also what the
//! guest runs in the VM (rv32im has no SIMD), so the loops are written for a
//! simple core's codegen: Q8 and Q4 have their own inner loops over zipped slices
//! (no bounds checks, no per-element type dispatch), eight weights per iteration.

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

/// `sum_j w_j * x_j` over `xs` and the int8 weights starting at `ws[0]`, eight at a
/// time (on rv32im each product is then a byte load, a half-word load, a multiply
/// and an add, with the loop's bookkeeping shared by eight).
#[inline(always)]
fn group_sum_q8(ws: &[u8], xs: &[i16]) -> i32 {
    let ws = &ws[..xs.len()];
    let (w8, x8) = (ws.chunks_exact(8), xs.chunks_exact(8));
    let (w_rest, x_rest) = (w8.remainder(), x8.remainder());
    let mut acc: i32 = 0;
    for (w, x) in w8.zip(x8) {
        let p = |i: usize| i32::from(w[i] as i8) * i32::from(x[i]);
        acc += p(0) + p(1) + p(2) + p(3) + p(4) + p(5) + p(6) + p(7);
    }
    for (&w, &x) in w_rest.iter().zip(x_rest) {
        acc += i32::from(w as i8) * i32::from(x);
    }
    acc
}

/// `sum_j w_j * x_j` over `xs` and the int4 weights packed from `bytes[0]` (low
/// nibble first, each stored `+8`), eight weights (four bytes) at a time.
#[inline(always)]
fn group_sum_q4(bytes: &[u8], xs: &[i16]) -> i32 {
    let x8 = xs.chunks_exact(8);
    let x_rest = x8.remainder();
    let (b_main, b_rest) = bytes[..xs.len().div_ceil(2)].split_at(xs.len() / 8 * 4);
    let mut acc: i32 = 0;
    for (b, x) in b_main.chunks_exact(4).zip(x8) {
        let p = |i: usize| {
            (i32::from(b[i] & 0x0F) - 8) * i32::from(x[2 * i])
                + (i32::from(b[i] >> 4) - 8) * i32::from(x[2 * i + 1])
        };
        acc += p(0) + p(1) + p(2) + p(3);
    }
    let pairs = x_rest.chunks_exact(2);
    let odd = pairs.remainder();
    for (&b, pair) in b_rest.iter().zip(pairs) {
        acc += (i32::from(b & 0x0F) - 8) * i32::from(pair[0]);
        acc += (i32::from(b >> 4) - 8) * i32::from(pair[1]);
    }
    if let [x] = odd {
        acc += (i32::from(b_rest[x_rest.len() / 2] & 0x0F) - 8) * i32::from(*x);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Weight `j` of a row, read one element at a time from the layout.
    fn weight(qtype: QType, values: &[u8], j: usize) -> i32 {
        match qtype {
            QType::Q8 => i32::from(values[j] as i8),
            QType::Q4 => i32::from((values[j / 2] >> (4 * (j % 2))) & 0x0F) - 8,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The unrolled loops equal the sum written element by element, for group
        /// sizes and row lengths that leave every kind of remainder.
        #[test]
        fn row_total_equals_the_element_by_element_sum(
            q4 in any::<bool>(),
            cols in 1usize..300,
            group_half in 1usize..40,
            bytes in proptest::collection::vec(any::<u8>(), 160),
            xs in proptest::collection::vec(any::<i16>(), 300),
            scales in proptest::collection::vec(-(1i32 << 24)..(1 << 24), 300),
        ) {
            let qtype = if q4 { QType::Q4 } else { QType::Q8 };
            let group = 2 * group_half;
            let values: Vec<u8> = bytes.iter().cycle().take(qtype.row_bytes(cols as u32)).copied().collect();
            let groups = cols.div_ceil(group);
            let scale_bytes: Vec<u8> = scales[..groups].iter().flat_map(|m| m.to_le_bytes()).collect();
            let m = QMatrix {
                qtype,
                rows: 1,
                cols: cols as u32,
                group: group as u32,
                exp: 0,
                scales: &scale_bytes,
                qs: &values,
            };
            let x = &xs[..cols];
            let want: i64 = (0..groups)
                .map(|g| {
                    let acc: i64 = (g * group..((g + 1) * group).min(cols))
                        .map(|j| i64::from(weight(qtype, &values, j)) * i64::from(x[j]))
                        .sum();
                    acc * i64::from(scales[g])
                })
                .sum();
            prop_assert_eq!(row_total(&m, 0, x), want);
        }
    }
}
