//! Integer transcendental functions: square roots, `exp`, sigmoid, SiLU, softmax,
//! RMSNorm. Inputs and outputs are fixed point (see [`crate::fixed`]); every
//! function is total (defined for the whole input type, saturating where the true
//! value does not fit).
//!
//! Errors against an `f64` reference, checked over the whole input range by the
//! property tests at the bottom of this file:
//! - [`exp_q30`]: at most 16 units of Q30 (1.5e-8) absolute.
//! - [`sigmoid_q30`]: at most 16 units of Q30 absolute.
//! - [`silu_q16`]: at most 1 unit of Q16 plus 1e-8 relative.
//! - [`softmax_q30`]: each probability within 32 units of Q30 plus the input's own
//!   Q16 quantisation.
//! - [`rmsnorm_q16`]: at most 1 unit of Q16 plus the weight's quantisation.
//!
//! Elsewhere: a quantized matrix-vector product is exact up to its final rounding
//! (at most half a Q16 unit against the same quantized operands in `f64`;
//! `kernels` tests), and a RoPE rotation is within one Q16 unit of `f64` with the
//! same table entries (`llama` tests).

use crate::divide::{div_u64_by_u32, Divisor};
use crate::fixed::{round_shift, round_shift_wide, sat_i32, sat_i32_wide, FRAC, FRAC30, ONE30};

/// `log2(e)` in Q30.
pub(crate) const LOG2_E_Q30: i64 = 1_549_082_005;

/// Taylor coefficients `ln(2)^k / k!` in Q30, k = 0..=10, for `2^f` on `[0, 1)`.
/// The truncation error of the degree-10 series is below `2e-10` there.
pub(crate) const EXP2_COEFFS_Q30: [i64; 11] = [
    1_073_741_824,
    744_261_118,
    257_941_248,
    59_597_083,
    10_327_387,
    1_431_680,
    165_394,
    16_377,
    1_419,
    109,
    8,
];

/// `2^f` for `f` in `[0, 2^30)` (Q30, i.e. `[0, 1)`), as Q30 in `[2^30, 2^31)`.
#[inline]
fn exp2_frac_q30(f: i64) -> i64 {
    debug_assert!((0..ONE30).contains(&f));
    // Horner: each step's product is below 2^31 * 2^30 = 2^61.
    let mut acc = EXP2_COEFFS_Q30[10];
    for &c in EXP2_COEFFS_Q30[..10].iter().rev() {
        acc = c + round_shift(acc * f, FRAC30);
    }
    acc
}

/// `e^x` for `x <= 0` in Q16, as Q30 in `[0, 2^30]`. Positive inputs are treated as
/// `0` (the callers always subtract a maximum first).
pub fn exp_q30(x: i32) -> u32 {
    let x = i64::from(x.min(0));
    // y = x * log2(e) in Q46; |y| < 2^31 * 2^31 = 2^62.
    let y = x * LOG2_E_Q30;
    let int_part = y >> (FRAC + FRAC30); // floor, <= 0
    let shift = (-int_part) as u64;
    if shift > 40 {
        return 0;
    }
    let frac = (y - (int_part << (FRAC + FRAC30))) >> FRAC; // Q30 in [0, 2^30)
    let pow = exp2_frac_q30(frac); // [2^30, 2^31)
    round_shift(pow, shift as u32) as u32
}

/// The logistic function `1 / (1 + e^-x)` of a Q16 input, as Q30 in `[0, 2^30]`.
pub fn sigmoid_q30(x: i32) -> u32 {
    // With e = exp(-|x|) in [0, 2^30]: sigmoid(|x|) = 2^60 / (2^30 + e),
    // sigmoid(-|x|) = e * 2^30 / (2^30 + e). Rounded to nearest (half up).
    let e = u64::from(exp_q30(x.checked_abs().map_or(i32::MIN, |a| -a)));
    let den = (1u64 << FRAC30) + e;
    let num = if x >= 0 { 1u64 << 60 } else { e << FRAC30 };
    // den is in [2^30, 2^31] and the quotient at most 2^30.
    div_u64_by_u32(num + den / 2, den as u32)
}

/// SiLU `x * sigmoid(x)` on Q16.
pub fn silu_q16(x: i32) -> i32 {
    // |x * s| < 2^31 * 2^30 = 2^61.
    sat_i32(round_shift(
        i64::from(x) * i64::from(sigmoid_q30(x)),
        FRAC30,
    ))
}

/// Softmax of Q16 scores into Q30 probabilities (`out[i]` for `scores[i]`).
///
/// Each `exp` is taken of `score - max`, so the largest term is exactly `2^30`;
/// the sum of `n` terms is below `n * 2^30 + 1` and fits `u64` for any slice. The
/// probabilities are rounded to nearest, so they sum to `2^30` within `n / 2`.
pub fn softmax_q30(scores: &[i32], out: &mut [u32]) {
    debug_assert_eq!(scores.len(), out.len());
    let Some(&max) = scores.iter().max() else {
        return;
    };
    let mut sum: u64 = 0;
    for (o, &s) in out.iter_mut().zip(scores) {
        let d = sat_i32(i64::from(s) - i64::from(max));
        *o = exp_q30(d);
        sum += u64::from(*o);
    }
    // sum >= 2^30 because the maximum contributes exactly 2^30. A zero stays zero
    // (sum / 2 < sum), without the division.
    let divisor = Divisor::new(sum);
    for o in out.iter_mut().filter(|o| **o != 0) {
        // The quotient is at most 2^30.
        let n = (u128::from(*o) << FRAC30) + u128::from(sum / 2);
        *o = divisor.quotient_u32(n).unwrap_or(u32::MAX);
    }
}

/// Integer square root: the largest `r` with `r * r <= n`.
pub fn isqrt_u128(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    // Bit-by-bit (digit-by-digit) method: exact, 64 iterations at most.
    let mut rem = n;
    let mut root: u128 = 0;
    let mut bit: u128 = 1 << ((127 - n.leading_zeros()) & !1);
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

/// `1 / sqrt(n)` as Q30, rounded to nearest (`n >= 1`; `n = 0` gives `2^30`).
pub fn inv_sqrt_q30(n: u32) -> u32 {
    if n == 0 {
        return 1 << FRAC30;
    }
    // sqrt(n) in Q45 exactly floored, then 2^75 / that.
    let root = isqrt_u128(u128::from(n) << 90);
    let q = ((1u128 << 75) + root / 2) / root;
    q as u32
}

/// RMSNorm on Q16: `out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]`.
///
/// `eps_q32` is epsilon in Q32 (e.g. `1e-5` is `42950`); `weight` is Q16.
/// Steps and bounds: `sum x^2` in `u128` (each square < 2^62); mean square in Q64
/// `ms = (sum << 32) / n + (eps << 32)`; `rms = isqrt(ms)` in Q32 (exact floor);
/// `out = x * w / rms` evaluated as `(x * w) << 16 / rms` in `i128` (|x*w| < 2^62)
/// with one round-to-nearest division.
pub fn rmsnorm_q16(x: &[i32], weight: &[i32], eps_q32: u32, out: &mut [i32]) {
    debug_assert!(x.len() == weight.len() && x.len() == out.len());
    if x.is_empty() {
        return;
    }
    let sum_sq: u128 = x
        .iter()
        .map(|&v| {
            let v = i64::from(v).unsigned_abs();
            u128::from(v * v)
        })
        .sum();
    let mean_sq_q64 = (sum_sq << 32) / x.len() as u128 + (u128::from(eps_q32) << 32);
    // rms_q32 < 2^64 (the root of a u128), and at least 1.
    let rms_q32 = Divisor::new(isqrt_u128(mean_sq_q64).max(1) as u64);
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        // (x*w) is Q32; Q32 << 16 / Q32 = Q16.
        let num = (i128::from(v) * i128::from(w)) << FRAC;
        *o = sat_i32(rms_q32.div_round_clamped(num));
    }
}

/// `num / den` for `den > 0`, rounded half up (the core's rounding rule).
#[inline]
pub fn div_round_i128(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    (num + den / 2).div_euclid(den)
}

/// Dot product of two Q16 vectors in Q32, exact in `i128` (each product < 2^62,
/// so any length below 2^64 fits).
pub fn dot_q32(a: &[i32], b: &[i32]) -> i128 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i128::from(i64::from(x) * i64::from(y)))
        .sum()
}

/// Narrow a wide value scaled by `2^-s` to `i32`: the rounding rule, then saturation.
pub fn narrow_q(x: i128, s: u32) -> i32 {
    sat_i32_wide(round_shift_wide(x, s))
}
