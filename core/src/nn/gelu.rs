//! GELU activations on Q16, in integers.
//!
//! - [`gelu_q16`]: the erf form `x · Φ(x)`, `Φ(x) = (1 + erf(x / √2)) / 2`
//!   (`torch.nn.functional.gelu` default, used by diffusers' GEGLU). `erf` is
//!   Abramowitz & Stegun 7.1.26, `erf(z) = 1 - (a1 t + … + a5 t⁵) e^{-z²}`,
//!   `t = 1 / (1 + p z)`, whose own error is below `1.5e-7`; every constant is Q30
//!   and `e^{-z²}` is [`exp_q30`]. So `Φ` is within `1e-7` of the truth and an
//!   output within `1 + |x| · 2^16 · 1e-7` Q16 units (one unit for `|x| < 150`).
//! - [`quick_gelu_q16`]: CLIP's `x · sigmoid(1.702 x)`; `1.702 x` is formed exactly
//!   as `x · 1702 / 1000` rounded half up, then [`sigmoid_q30`] (within 16 units
//!   of Q30). An output is within `1 + |x| · 2^-24` Q16 units of the truth.
//!
//! The tanh approximation of GELU is not provided: no config in the fixtures uses
//! it (CLIP uses quick GELU, diffusers' GEGLU the erf form).
//!
//! Errors are checked against `f64` over the input range in `core/tests/gelu_vs_f64.rs`.

use crate::fixed::{round_shift, round_shift_wide, sat_i32, FRAC, FRAC30, ONE30};
use crate::math::{exp_q30, sigmoid_q30};

/// `p` of A&S 7.1.26 in Q30 (`0.3275911`).
const P_Q30: i64 = 351_748_265;
/// `a1..a5` of A&S 7.1.26 in Q30.
const A_Q30: [i64; 5] = [
    273_621_191,
    -305_476_044,
    1_526_231_383,
    -1_560_310_108,
    1_139_675_401,
];
/// `1 / √2` in Q30.
const INV_SQRT2_Q30: i64 = 759_250_125;

/// Inputs at or beyond this magnitude (10.0 in Q16) take `Φ = 1` or `0`:
/// `1 - Φ(10) < 1e-23`.
const CDF_SATURATION_Q16: i64 = 10 << 16;

/// `Φ(x)`, the standard normal CDF of a Q16 input, as Q30 in `[0, 2^30]`.
///
/// Intermediates are Q30 so that no step loses more than a unit of Q30:
/// `z = |x| / √2 < 7.1` (below `2^33` in Q30), `p z < 2^62`; `z²` is formed in
/// `i128` and kept to Q32, its Q16 part goes through [`exp_q30`] and the remaining
/// `δ < 2^-16` through `e^{-δ} ≈ 1 - δ` (error below `2^-33`).
pub fn normal_cdf_q30(x: i32) -> i64 {
    let ax = i64::from(x).abs(); // <= 2^31
    if ax >= CDF_SATURATION_Q16 {
        return if x > 0 { ONE30 } else { 0 };
    }
    // z = |x| / √2 in Q30: |x| < 10 · 2^16, so the product is below 2^50.
    let z = round_shift(ax * INV_SQRT2_Q30, FRAC);
    // t = 1 / (1 + p z) in Q30: p z < 2^29 · 2^33.
    let den = ONE30 + round_shift(P_Q30 * z, FRAC30);
    let t = ((1i64 << 60) + den / 2) / den;
    // Horner in Q30: coefficients below 2^31, t <= 2^30, products below 2^61.
    let mut acc = A_Q30[4];
    for &a in A_Q30[..4].iter().rev() {
        acc = a + round_shift(acc * t, FRAC30);
    }
    let poly = round_shift(acc * t, FRAC30);
    // z² in Q32 (z² < 50, so below 2^38), split into a Q16 part and a remainder.
    let zz = round_shift_wide(i128::from(z) * i128::from(z), 2 * FRAC30 - 32) as i64;
    let (whole, rest) = (zz >> FRAC, zz & 0xFFFF);
    let e0 = i64::from(exp_q30(-(whole as i32)));
    let e = e0 - round_shift(e0 * rest, 32);
    // erfc(z) in Q30 (poly <= ~2^30, e <= 2^30).
    let erfc = round_shift(poly * e, FRAC30).clamp(0, 2 * ONE30);
    let half = round_shift(erfc, 1);
    if x >= 0 {
        ONE30 - half
    } else {
        half
    }
}

/// GELU, erf form: `x · Φ(x)` on Q16.
pub fn gelu_q16(x: i32) -> i32 {
    // |x · Φ| <= 2^31 · 2^30.
    sat_i32(round_shift(i64::from(x) * normal_cdf_q30(x), FRAC30))
}

/// CLIP's quick GELU `x · sigmoid(1.702 x)` on Q16.
pub fn quick_gelu_q16(x: i32) -> i32 {
    // 1.702 x exactly as x · 1702 / 1000, rounded half up (|x · 1702| < 2^42).
    let t = (i64::from(x) * 1702 + 500).div_euclid(1000);
    let s = i64::from(sigmoid_q30(sat_i32(t)));
    sat_i32(round_shift(i64::from(x) * s, FRAC30))
}
