//! Float weights to the core's quantized groups (the inverse of
//! [`oracle_core::quant`]'s layout).
//!
//! Per group: Q8 takes `d = max|x| / 127`; Q4 starts from ggml's Q4_0 rule (the
//! element of largest magnitude `v` and `d = v / -8`, so `v` maps to `-8`) and keeps
//! whichever nearby scale gives the smallest squared error (see `q4_group_scale`). The tensor's exponent `e` makes the largest
//! `|d| * 2^e` land in `[2^23, 2^24)`; each mantissa is `round(d * 2^e)` and each
//! value `round(x / (m * 2^-e))` against the *rounded* scale, clamped to the type's
//! range. All arithmetic is `f64` with exactly rounded operations only, so the
//! output is the same on every platform.
//!
//! Lossless import of GGUF blocks: a Q8_0 block dequantizes to `d * q` with `d` an
//! f16 and `|q| <= 127`, where the block's extreme element is `±127`, so `max|x|/127`
//! is exactly `d`; Q4_0 likewise gives back `d` from its `-8` element. With a group
//! size of 32 the original values are then recovered bit for bit **provided every
//! `d * 2^e` is an integer**, i.e. the tensor's block scales span less than
//! `2^(24 - 11) = 8192` in ratio. Where they span more, the smallest scales lose low
//! bits; [`Quantized::exact`] and the conversion report say which tensors.

use oracle_core::quant::{QType, MANTISSA_LIMIT};

/// A quantized tensor in the file layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// Shared exponent.
    pub exp: i32,
    /// One mantissa per group, row-major.
    pub mantissas: Vec<i32>,
    /// Values (Q8: one byte each; Q4: two per byte, low nibble first).
    pub values: Vec<u8>,
    /// Largest `|x - dequantized(x)|`.
    pub max_abs_error: f64,
    /// Whether every element was reproduced exactly.
    pub exact: bool,
}

fn frexp_exponent(v: f64) -> i32 {
    libm::frexp(v).1
}

/// Squared error of quantizing `chunk` to `[-8, 7]` with scale `d`.
fn q4_error(chunk: &[f32], d: f64) -> f64 {
    if d == 0.0 {
        return chunk.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    }
    chunk
        .iter()
        .map(|&x| {
            let x = f64::from(x);
            let q = (x / d).round().clamp(-8.0, 7.0);
            (x - q * d) * (x - q * d)
        })
        .sum()
}

/// The Q4 scale of one group: ggml's rule first (`v / -8` for the element `v` of
/// largest magnitude), then a search over nearby scales of either sign, each refined
/// by least squares for its rounding; the smallest squared error wins, the earlier
/// candidate on ties (so exact Q4_0 blocks keep their own scale).
fn q4_group_scale(chunk: &[f32]) -> f64 {
    let v = chunk.iter().fold(0f64, |m, &x| {
        if f64::from(x).abs() > m.abs() {
            f64::from(x)
        } else {
            m
        }
    });
    let first = v / -8.0;
    let mut best = (q4_error(chunk, first), first);
    if v == 0.0 {
        return first;
    }
    for step in 0..=40 {
        let t = 6.0 + f64::from(step) * 0.0625; // 6 ..= 8.5
        for d in [v / -t, v / t] {
            // Least-squares scale for the rounding that d induces.
            let (mut xq, mut qq) = (0f64, 0f64);
            for &x in chunk {
                let q = (f64::from(x) / d).round().clamp(-8.0, 7.0);
                xq += f64::from(x) * q;
                qq += q * q;
            }
            for cand in [d, if qq > 0.0 { xq / qq } else { d }] {
                let err = q4_error(chunk, cand);
                if err < best.0 {
                    best = (err, cand);
                }
            }
        }
    }
    best.1
}

/// Quantize a row-major `(rows, cols)` matrix.
pub fn quantize_matrix(
    w: &[f32],
    rows: usize,
    cols: usize,
    qtype: QType,
    group: usize,
) -> Quantized {
    assert_eq!(w.len(), rows * cols, "matrix length");
    let groups = cols.div_ceil(group);
    let (qmin, qmax) = match qtype {
        QType::Q8 => (-127.0, 127.0),
        QType::Q4 => (-8.0, 7.0),
    };
    // Float scale per group.
    let mut scales = Vec::with_capacity(rows * groups);
    for r in 0..rows {
        for g in 0..groups {
            let chunk = &w[r * cols + g * group..r * cols + ((g + 1) * group).min(cols)];
            let d = match qtype {
                QType::Q8 => chunk.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs())) / 127.0,
                QType::Q4 => q4_group_scale(chunk),
            };
            scales.push(d);
        }
    }
    let max_scale = scales.iter().fold(0f64, |m, &d| m.max(d.abs()));
    // |d| * 2^exp in [2^23, 2^24) for the largest: frexp gives max = f * 2^k, f in [0.5, 1).
    let exp = if max_scale > 0.0 {
        (24 - frexp_exponent(max_scale)).clamp(-64, 64)
    } else {
        0
    };
    let pow = libm::ldexp(1.0, exp);
    let limit = f64::from(MANTISSA_LIMIT - 1);
    let mantissas: Vec<i32> = scales
        .iter()
        .map(|&d| (d * pow).round().clamp(-limit, limit) as i32)
        .collect();
    let row_bytes = qtype.row_bytes(cols as u32);
    let mut values = vec![0u8; rows * row_bytes];
    let mut max_abs_error = 0f64;
    for r in 0..rows {
        for j in 0..cols {
            let m = mantissas[r * groups + j / group];
            let scale = f64::from(m) / pow;
            let x = f64::from(w[r * cols + j]);
            let q = if m == 0 {
                0.0
            } else {
                (x / scale).round().clamp(qmin, qmax)
            };
            max_abs_error = max_abs_error.max((q * scale - x).abs());
            let q = q as i32;
            match qtype {
                QType::Q8 => values[r * row_bytes + j] = q as i8 as u8,
                QType::Q4 => {
                    let nibble = (q + 8) as u8;
                    let byte = &mut values[r * row_bytes + j / 2];
                    *byte |= if j.is_multiple_of(2) {
                        nibble
                    } else {
                        nibble << 4
                    };
                }
            }
        }
    }
    Quantized {
        exp,
        mantissas,
        values,
        max_abs_error,
        exact: max_abs_error == 0.0,
    }
}

/// A float vector to Q`frac` fixed point (`round(x * 2^frac)`, saturating).
pub fn to_fixed(v: &[f32], frac: i32) -> Vec<i32> {
    let pow = libm::ldexp(1.0, frac);
    v.iter()
        .map(|&x| {
            (f64::from(x) * pow)
                .round()
                .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oracle_core::kernels::scalar;
    use oracle_core::quant::QMatrix;

    fn f16_like(i: usize) -> f32 {
        // Scales with an 11-bit significand, spanning a few octaves.
        let sig = 1024 + (i * 37 % 1024);
        sig as f32 * 2f32.powi(-20 - (i % 5) as i32)
    }

    #[test]
    fn q8_0_blocks_round_trip_exactly() {
        let (rows, cols) = (6, 96);
        let mut w = vec![0f32; rows * cols];
        for r in 0..rows {
            for b in 0..cols / 32 {
                let d = f16_like(r * 7 + b);
                for k in 0..32 {
                    let q = if k == 5 {
                        -127
                    } else {
                        (k as i32 * 29 + r as i32) % 255 - 127
                    };
                    w[r * cols + b * 32 + k] = d * q as f32;
                }
            }
        }
        let q = quantize_matrix(&w, rows, cols, QType::Q8, 32);
        assert!(q.exact, "max error {}", q.max_abs_error);
    }

    #[test]
    fn q4_0_blocks_round_trip_exactly() {
        let (rows, cols) = (4, 64);
        let mut w = vec![0f32; rows * cols];
        for r in 0..rows {
            for b in 0..2 {
                let d = f16_like(r * 3 + b);
                for k in 0..32 {
                    let q = if k == 9 {
                        -8
                    } else {
                        (k as i32 * 5 + r as i32) % 15 - 7
                    };
                    w[r * cols + b * 32 + k] = d * q as f32;
                }
            }
        }
        let q = quantize_matrix(&w, rows, cols, QType::Q4, 32);
        assert!(q.exact, "max error {}", q.max_abs_error);
    }

    #[test]
    fn ragged_last_group_and_error_bound() {
        // 172 columns with groups of 64: 64 + 64 + 44.
        let (rows, cols) = (3, 172);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        // Q8: half a step of max/127. Q4: the largest magnitude maps to -8, so a value
        // of the opposite sign near the maximum clamps at +7: up to one full step max/8.
        for (qtype, bound) in [(QType::Q8, 0.5 * 0.5 / 127.0), (QType::Q4, 0.5 / 8.0)] {
            let q = quantize_matrix(&w, rows, cols, qtype, 64);
            assert_eq!(q.mantissas.len(), rows * 3);
            assert!(
                q.max_abs_error <= bound * 1.001,
                "{:?} {}",
                qtype,
                q.max_abs_error
            );
            // The core's dequantization agrees with the float reconstruction.
            let mut scales = Vec::new();
            for m in &q.mantissas {
                scales.extend_from_slice(&m.to_le_bytes());
            }
            let m = QMatrix {
                qtype,
                rows: rows as u32,
                cols: cols as u32,
                group: 64,
                exp: q.exp,
                scales: &scales,
                qs: &q.values,
            };
            let mut row = vec![0i32; cols];
            m.dequantize_row(1, &mut row);
            for j in 0..cols {
                let got = row[j] as f64 / 65536.0;
                assert!((got - w[cols + j] as f64).abs() <= q.max_abs_error + 1.0 / 65536.0);
            }
            // Unit activation on one column picks out one weight exactly.
            let mut x = vec![0i16; cols];
            x[100] = 1;
            let total = scalar::row_total(&m, 2, &x);
            let expect =
                f64::from(m.value(m.row_values(2), 100)) * f64::from(q.mantissas[2 * 3 + 1]);
            assert_eq!(total as f64, expect);
        }
    }
}
