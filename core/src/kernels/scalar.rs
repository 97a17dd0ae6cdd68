//! The reference kernels: one element at a time, in row order.

use crate::quant::{mantissa, q4_value, QMatrix, QType};

/// `sum_g (sum_{j in g} w_j * x_j) * m_g` for row `r` (exact; see the bound in
/// [`crate::quant`]).
pub fn row_total(m: &QMatrix<'_>, r: usize, x: &[i16]) -> i64 {
    let values = m.row_values(r);
    let scales = m.row_scales(r);
    let group = m.group as usize;
    let mut total: i64 = 0;
    for (g, xs) in x.chunks(group).enumerate() {
        let start = g * group;
        let mut acc: i32 = 0;
        for (k, &xv) in xs.iter().enumerate() {
            let j = start + k;
            let w = match m.qtype {
                QType::Q8 => i32::from(values[j] as i8),
                QType::Q4 => q4_value(values, j),
            };
            acc += w * i32::from(xv);
        }
        total += i64::from(acc) * i64::from(mantissa(scales, g));
    }
    total
}
