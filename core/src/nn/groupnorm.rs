//! GroupNorm (and whole-map LayerNorm) on Q16 feature maps with integer statistics.
//!
//! For a group of `n` values the mean and variance are never rounded separately:
//! with `S = Σx` and `Q = Σx²` (exact, `x` in Q16 units), the centred value times
//! `n` is `d = n·x − S` and `n²·var = n·Q − S²`. So the normalised value is exactly
//! `y = d / sqrt(W)` with `W = n·Q − S² + eps·n²` (eps in Q32, i.e. the same units).
//! The only approximations are one integer square root and one reciprocal:
//!
//! - `W << 2k` with `k` chosen so that it lies in `[2^124, 2^126)` (or `k = 0` for
//!   larger `W`); `root = isqrt(W << 2k)` floors `sqrt(W)·2^k` (relative error below
//!   `2^-61`);
//! - `inv = round(2^126 / root)` (at least `2^63`, relative error below `2^-62`);
//! - `y_q16 = round_shift(d · inv, 110 − k)`, then `out = round_shift(y · γ, 16) + β`.
//!
//! So `y` is within one Q16 unit of the exact normalised value and the output within
//! about `|γ|`-weighted one unit plus half a unit (`core/tests/groupnorm_vs_f64.rs`).
//!
//! **Bounds.** `|x| < 2^31` and a group of `n ≤ 2^24` values ([`MAX_GROUP_LEN`]):
//! `|S| < 2^55` (`i64`), `Q < 2^86`, `W < 2^112` (`u128`); `|d| < 2^56` and
//! `inv < 2^65`, so `|d · inv| < 2^121` fits `i128`; `|y| < 2^31 · 2^16`... in practice
//! `|y| ≤ sqrt(n)`, and `y · γ` is formed in `i128`. Outputs saturate to `i32`.

use crate::fixed::{round_shift_wide, sat_i32_wide, FRAC};
use crate::math::isqrt_u128;

/// Largest number of values in one normalisation group (keeps the sums in range).
pub const MAX_GROUP_LEN: usize = 1 << 24;

/// The statistics of one group: its sum and the reciprocal of `sqrt(W)` scaled by
/// `2^(126 - k)`.
#[derive(Debug, Clone, Copy)]
struct GroupStats {
    /// `n` as `i128`.
    n: i128,
    /// `Σx`.
    sum: i128,
    /// `round(2^126 / isqrt(W << 2k))`, or 0 when `W = 0` (a constant group, eps 0).
    inv: i128,
    /// Right shift taking `d · inv` to Q16: `110 − k`.
    shift: u32,
}

fn stats(values: &[i32], eps_q32: u32) -> GroupStats {
    debug_assert!(values.len() <= MAX_GROUP_LEN);
    let n = values.len() as i128;
    let mut sum: i64 = 0;
    let mut sum_sq: u128 = 0;
    for &v in values {
        sum += i64::from(v);
        let a = u128::from(v.unsigned_abs());
        sum_sq += a * a;
    }
    let sum = i128::from(sum);
    // n·Q − S² ≥ 0 (Cauchy–Schwarz), exact.
    let var_n2 = (n as u128) * sum_sq - sum.unsigned_abs() * sum.unsigned_abs();
    let w = var_n2 + u128::from(eps_q32) * (n as u128) * (n as u128);
    if w == 0 {
        return GroupStats {
            n,
            sum,
            inv: 0,
            shift: 0,
        };
    }
    let bits = 128 - w.leading_zeros();
    let k = if bits < 125 { (125 - bits) / 2 } else { 0 };
    let root = isqrt_u128(w << (2 * k));
    let inv = ((1u128 << 126) + root / 2) / root;
    GroupStats {
        n,
        sum,
        inv: inv as i128,
        shift: 110 - k,
    }
}

impl GroupStats {
    /// The normalised Q16 value of `x` (before the affine map).
    #[inline]
    fn normalise(&self, x: i32) -> i128 {
        let d = self.n * i128::from(x) - self.sum;
        round_shift_wide(d * self.inv, self.shift)
    }
}

/// `γ·y + β` in Q16 for a normalised `y` (Q16) and Q16 `γ`, `β`, saturating.
#[inline]
fn affine(y: i128, gamma: i32, beta: i32) -> i32 {
    sat_i32_wide(round_shift_wide(y * i128::from(gamma), FRAC) + i128::from(beta))
}

/// GroupNorm over a `[channels × hw]` Q16 map: channels are split into `groups`
/// consecutive groups, each normalised over its `channels / groups × hw` values,
/// then scaled by the per-channel `gamma_q16` and shifted by `beta_q16`.
/// `eps_q32` is epsilon in Q32 (`1e-5` → `42950`, `1e-6` → `4295`).
///
/// `channels` must be a multiple of `groups` and a group must hold at most
/// [`MAX_GROUP_LEN`] values (the callers' configs are checked at load time).
#[allow(clippy::too_many_arguments)]
pub fn group_norm(
    x: &[i32],
    channels: usize,
    hw: usize,
    groups: usize,
    gamma_q16: &[i32],
    beta_q16: &[i32],
    eps_q32: u32,
    out: &mut [i32],
) {
    debug_assert!(groups > 0 && channels.is_multiple_of(groups));
    debug_assert!(x.len() == channels * hw && out.len() == x.len());
    debug_assert!(gamma_q16.len() == channels && beta_q16.len() == channels);
    let per = channels / groups;
    for g in 0..groups {
        let range = g * per * hw..(g + 1) * per * hw;
        let st = stats(&x[range.clone()], eps_q32);
        for c in g * per..(g + 1) * per {
            let (gamma, beta) = (gamma_q16[c], beta_q16[c]);
            let plane = c * hw..(c + 1) * hw;
            for (o, &v) in out[plane.clone()].iter_mut().zip(&x[plane]) {
                *o = affine(st.normalise(v), gamma, beta);
            }
        }
    }
}

/// LayerNorm over a whole map with an element-wise affine (`gamma`, `beta` of the
/// map's own shape), as ddpm-mnist's `LayerNorm((C, 28, 28))`.
pub fn layer_norm_map(
    x: &[i32],
    gamma_q16: &[i32],
    beta_q16: &[i32],
    eps_q32: u32,
    out: &mut [i32],
) {
    debug_assert!(x.len() == out.len() && gamma_q16.len() == x.len() && beta_q16.len() == x.len());
    let st = stats(x, eps_q32);
    for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(gamma_q16).zip(beta_q16) {
        *o = affine(st.normalise(v), g, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::ONE;
    use alloc::vec;

    #[test]
    fn unit_affine_gives_zero_mean_unit_variance() {
        let x: alloc::vec::Vec<i32> = (0..64).map(|i| (i * 37 % 23 - 11) * ONE / 3).collect();
        let mut out = vec![0; 64];
        group_norm(&x, 4, 16, 2, &[ONE; 4], &[0; 4], 0, &mut out);
        for half in out.chunks(32) {
            let sum: i64 = half.iter().map(|&v| i64::from(v)).sum();
            let sq: i64 = half
                .iter()
                .map(|&v| (i64::from(v) * i64::from(v)) >> 16)
                .sum();
            assert!(sum.abs() <= 32, "{sum}");
            assert!((sq / 32 - i64::from(ONE)).abs() <= 64, "{sq}");
        }
    }

    #[test]
    fn constant_group_is_beta() {
        let x = vec![5 * ONE; 8];
        let mut out = vec![0; 8];
        group_norm(&x, 2, 4, 1, &[ONE, 2 * ONE], &[7, -9], 0, &mut out);
        assert_eq!(out, vec![7, 7, 7, 7, -9, -9, -9, -9]);
        group_norm(&x, 2, 4, 1, &[ONE, 2 * ONE], &[7, -9], 42950, &mut out);
        assert_eq!(out, vec![7, 7, 7, 7, -9, -9, -9, -9]);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let x: alloc::vec::Vec<i32> = (0..1000)
            .map(|i| if i % 2 == 0 { i32::MAX } else { i32::MIN })
            .collect();
        let mut out = vec![0; 1000];
        layer_norm_map(&x, &vec![ONE; 1000], &vec![0; 1000], 42950, &mut out);
        assert!((i64::from(out[0]) - i64::from(ONE)).abs() <= 1);
        assert!((i64::from(out[1]) + i64::from(ONE)).abs() <= 1);
    }
}
