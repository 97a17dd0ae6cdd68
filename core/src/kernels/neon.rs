//! aarch64 NEON twins of [`super::scalar`]: widening multiply-accumulate, eight
//! products at a time, the same integer sums.

use core::arch::aarch64::*;

use crate::quant::{mantissa, q4_value, QMatrix, QType};

/// NEON version of [`super::scalar::row_total`] (NEON is part of every aarch64 CPU).
pub fn row_total(m: &QMatrix<'_>, r: usize, x: &[i16]) -> i64 {
    let values = m.row_values(r);
    let scales = m.row_scales(r);
    let group = m.group as usize;
    let cols = x.len();
    let mut total: i64 = 0;
    let mut start = 0;
    let mut g = 0;
    while start < cols {
        let end = (start + group).min(cols);
        let a = match m.qtype {
            QType::Q8 => group_q8(values, x, start, end),
            QType::Q4 => (start..end)
                .map(|j| q4_value(values, j) * i32::from(x[j]))
                .sum(),
        };
        total += i64::from(a) * i64::from(mantissa(scales, g));
        start = end;
        g += 1;
    }
    total
}

fn group_q8(values: &[u8], x: &[i16], start: usize, end: usize) -> i32 {
    let mut j = start;
    let mut a;
    // Safety: every load reads values[j..j+8] and x[j..j+8] with j + 8 <= end, which
    // is within both slices; NEON is always present on aarch64.
    unsafe {
        let mut acc = vdupq_n_s32(0);
        while j + 8 <= end {
            let w = vmovl_s8(vld1_s8(values.as_ptr().add(j).cast()));
            let xv = vld1q_s16(x.as_ptr().add(j));
            acc = vmlal_s16(acc, vget_low_s16(w), vget_low_s16(xv));
            acc = vmlal_high_s16(acc, w, xv);
            j += 8;
        }
        a = vaddvq_s32(acc);
    }
    while j < end {
        a += i32::from(values[j] as i8) * i32::from(x[j]);
        j += 1;
    }
    a
}
