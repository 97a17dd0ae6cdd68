//! Integer sine and cosine, and sinusoidal timestep embeddings.
//!
//! **Angles** are binary angles: a `u32` where `2^32` is one full turn, so range
//! reduction modulo `2π` is exact (wrapping arithmetic *is* the reduction). A phase
//! `t · f` of any size (ddpm-mnist reaches about 1834 rad, diffusers' timesteps
//! 999 rad) is formed as `step · freq` with `freq` in **Q48 turns per step** (a
//! table the converter computes offline with `libm` and stores in the model file,
//! so the model root covers it); the product's low 48 bits are the fraction of a
//! turn, rounded half up to 32 bits ([`phase_turns`]). With `|freq| < 2^52` and
//! `step < 2^11` the product is below `2^63`: exact.
//!
//! **[`sin_cos_q30`]**: quadrant and octant symmetry reduce the angle to `φ` in
//! `[0, π/4]` (Q30 radians, one rounding: below `2^-30` rad), then Taylor series to
//! `φ^11` (sine) and `φ^12` (cosine) in Horner form with exact small divisors
//! (truncation below `1e-10` on `[0, π/4]`). Each result is within `2^-26`
//! (`16` units of Q30) of the true sine/cosine of the binary angle; checked against
//! `f64` in `core/tests/timestep_vs_f64.rs`. The phase itself is within
//! `2^-33 + step · 2^-49` turns of `step · freq`.

use crate::fixed::{round_shift, FRAC30, ONE30};

/// `2π` in Q30.
const TWO_PI_Q30: i64 = 6_746_518_852;

/// `x · y / k` in Q30 for Q30 `x`, `y` (both `< 2^31` in magnitude): the product
/// is below `2^62`; the quotient is rounded half up.
#[inline]
fn mul_div(x: i64, y: i64, k: i64) -> i64 {
    let p = round_shift(x * y, FRAC30);
    (p + k / 2).div_euclid(k)
}

/// `(sin φ, cos φ)` in Q30 for `φ` in `[0, π/4]` given in Q30 radians.
fn sin_cos_small(phi: i64) -> (i64, i64) {
    let x2 = round_shift(phi * phi, FRAC30); // < 0.62 · 2^30
                                             // sin φ = φ (1 − x²/(2·3) (1 − x²/(4·5) (1 − … x²/(10·11))))
    let mut s = ONE30;
    for k in [110, 72, 42, 20, 6] {
        s = ONE30 - mul_div(s, x2, k);
    }
    // cos φ = 1 − x²/(1·2) (1 − x²/(3·4) (1 − … x²/(11·12)))
    let mut c = ONE30;
    for k in [132, 90, 56, 30, 12, 2] {
        c = ONE30 - mul_div(c, x2, k);
    }
    (round_shift(phi * s, FRAC30), c)
}

/// `(sin, cos)` of a binary angle (`2^32` = one turn), each Q30 in `[-2^30, 2^30]`.
pub fn sin_cos_q30(angle: u32) -> (i32, i32) {
    let quadrant = angle >> 30;
    let a = i64::from(angle & ((1 << 30) - 1)); // [0, quarter turn)
    let half_quadrant = 1i64 << 29;
    let reflect = a > half_quadrant;
    let r = if reflect { (1i64 << 30) - a } else { a }; // [0, 2^29]: [0, π/4]
                                                        // φ = r · 2π / 2^32 in Q30; r · 2π·2^30 < 2^29 · 2^33 = 2^62.
    let phi = round_shift(r * TWO_PI_Q30, 32);
    let (s0, c0) = sin_cos_small(phi);
    let (s, c) = if reflect { (c0, s0) } else { (s0, c0) };
    let (s, c) = match quadrant {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    };
    (s as i32, c as i32)
}

/// The binary angle of `step · freq`, `freq` in Q48 turns per step: the product
/// modulo one turn, rounded half up to 32 bits (the `as u32` keeps the low 32 bits
/// of the rounded value, i.e. reduces modulo a full turn, which is exact).
pub fn phase_turns(step: u32, freq_q48: i64) -> u32 {
    debug_assert!(step < 1 << 11 && freq_q48.unsigned_abs() < 1 << 52);
    round_shift(i64::from(step) * freq_q48, 16) as u32
}

/// Sinusoidal embedding `[sin(step·f_0), …, sin(step·f_{n−1}), cos(step·f_0), …]`
/// (or cosines first when `flip_sin_to_cos`, as diffusers' `Timesteps`), Q16,
/// from a table of Q48 turns-per-step frequencies. `out` has `2 · freqs.len()`
/// entries.
pub fn sinusoidal_embedding(step: u32, freqs_q48: &[i64], flip_sin_to_cos: bool, out: &mut [i32]) {
    let n = freqs_q48.len();
    debug_assert_eq!(out.len(), 2 * n);
    for (i, &f) in freqs_q48.iter().enumerate() {
        let (s, c) = sin_cos_q30(phase_turns(step, f));
        let (s, c) = (
            round_shift(i64::from(s), 14) as i32,
            round_shift(i64::from(c), 14) as i32,
        );
        if flip_sin_to_cos {
            out[i] = c;
            out[n + i] = s;
        } else {
            out[i] = s;
            out[n + i] = c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_quarter_turns() {
        assert_eq!(sin_cos_q30(0), (0, 1 << 30));
        assert_eq!(sin_cos_q30(1 << 30), (1 << 30, 0));
        assert_eq!(sin_cos_q30(1 << 31), (0, -(1 << 30)));
        assert_eq!(sin_cos_q30(3 << 30), (-(1 << 30), 0));
    }

    #[test]
    fn eighth_turn_is_balanced() {
        let (s, c) = sin_cos_q30(1 << 29);
        let want = 759_250_125; // 2^30 / sqrt(2)
        assert!((s - want).abs() <= 4 && (c - want).abs() <= 4, "{s} {c}");
    }

    #[test]
    fn phase_wraps_modulo_a_turn() {
        // freq = 1/4 turn per step: step 5 is 5/4 turns = a quarter turn.
        assert_eq!(phase_turns(5, 1 << 46), 1 << 30);
        assert_eq!(phase_turns(3, -(1 << 46)), 1 << 30); // -3/4 turn
    }
}
