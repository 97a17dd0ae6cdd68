//! Standard normal noise from the seeded integer PRNG ([`crate::rng::Rng`],
//! xorshift64*), by the Box–Muller transform in integers.
//!
//! Each pair of normals takes two 32-bit draws `a`, `b`: `u = (a + 1) / 2^32` in
//! `(0, 1]` and the binary angle `θ = b` (`2^32` = one turn), then
//! `r = sqrt(−2 ln u)` and the pair `(r cos θ, r sin θ)`, in that order.
//!
//! - `−2 ln u = 2 ln 2 · (−log2 u)`: the integer part of `log2` from the leading
//!   zeros, the fraction by 30 rounds of repeated squaring ([`log2_frac_q30`],
//!   error below `2^-29`), so `r²` in Q30 is within `2^-26` absolute;
//! - `r = isqrt(r² · 2^30)` (exact floor, Q30), `cos`/`sin` from
//!   [`crate::nn::timestep::sin_cos_q30`] (within `2^-26`);
//! - the product rounded half up to Q16.
//!
//! So each value is within one Q16 unit (`1.5e-5`) of the exact Box–Muller value of
//! the same draws. `u ≥ 2^-32` bounds `|z|` by `sqrt(64 ln 2) ≈ 6.66`: the tails
//! beyond 6.66σ (probability `3e-11`) are cut, nothing else differs from a normal
//! distribution beyond the 32-bit discreteness of `u` and `θ`.

use crate::fixed::{round_shift, round_shift_wide, FRAC30};
use crate::math::isqrt_u128;
use crate::nn::timestep::sin_cos_q30;
use crate::rng::Rng;

/// `2 ln 2` in Q30.
const TWO_LN2_Q30: i64 = 1_488_522_236;

/// `log2(m / 2^30)` for `m` in `[2^30, 2^31)`, as Q30 in `[0, 2^30)`: the
/// fraction bits by repeated squaring (each square rounded half up in `u64`;
/// `m² < 2^62`).
pub fn log2_frac_q30(m: u64) -> u64 {
    debug_assert!((1 << 30..1 << 31).contains(&m));
    let mut x = m;
    let mut y = 0u64;
    for i in 1..=30 {
        x = round_shift((x * x) as i64, FRAC30) as u64;
        if x >= 2 << 30 {
            x = (x + 1) >> 1;
            y |= 1 << (30 - i);
        }
    }
    y
}

/// `−2 ln u` in Q30 for `u = (a + 1) / 2^32`.
fn minus_two_ln_q30(a: u32) -> i64 {
    let v = u64::from(a) + 1; // (0, 2^32]
    let bits = 64 - v.leading_zeros(); // v in [2^(bits-1), 2^bits)
                                       // log2(v) = (bits - 1) + log2(v / 2^(bits-1)); mantissa normalised to Q30.
    let m = if bits > 31 {
        v >> (bits - 31)
    } else {
        v << (31 - bits)
    };
    let log2_v = (i64::from(bits - 1) << 30) + log2_frac_q30(m) as i64;
    // −log2(u) in [0, 32 · 2^30]; times 2 ln 2 the product is below 2^35 · 2^31 =
    // 2^66, so it is formed in i128; the result is below 45 · 2^30.
    let minus_log2_u = (32 << 30) - log2_v;
    round_shift_wide(i128::from(minus_log2_u) * i128::from(TWO_LN2_Q30), FRAC30) as i64
}

/// A pair of standard normals in Q16 from two draws of `rng`.
pub fn normal_pair_q16(rng: &mut Rng) -> (i32, i32) {
    let a = rng.next_u32();
    let b = rng.next_u32();
    let r2 = minus_two_ln_q30(a) as u128; // Q30, < 45 · 2^30
    let r = isqrt_u128(r2 << 30) as i64; // Q30, < 7 · 2^30
    let (s, c) = sin_cos_q30(b);
    // r · c < 2^33 · 2^30: fits i64; Q60 -> Q16.
    let z0 = round_shift(r * i64::from(c), 44) as i32;
    let z1 = round_shift(r * i64::from(s), 44) as i32;
    (z0, z1)
}

/// Fill `out` with standard normals (Q16), pairs in order `(r cos θ, r sin θ)`; an
/// odd tail uses the first of one more pair.
pub fn fill_normal_q16(rng: &mut Rng, out: &mut [i32]) {
    for pair in out.chunks_mut(2) {
        let (z0, z1) = normal_pair_q16(rng);
        pair[0] = z0;
        if let Some(v) = pair.get_mut(1) {
            *v = z1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn log2_of_powers_and_sqrt2() {
        assert_eq!(log2_frac_q30(1 << 30), 0);
        // sqrt(2) · 2^30 = 1518500249.99 -> log2 = 0.5
        let y = log2_frac_q30(1_518_500_250) as i64;
        assert!((y - (1 << 29)).abs() <= 2, "{y}");
        assert_eq!(minus_two_ln_q30(u32::MAX), 0); // u = 1
    }

    #[test]
    fn moments_are_standard_normal() {
        let mut rng = Rng::new(42);
        let mut z = vec![0i32; 200_000];
        fill_normal_q16(&mut rng, &mut z);
        let n = z.len() as i64;
        let mean = z.iter().map(|&v| i64::from(v)).sum::<i64>() / n;
        let var = z
            .iter()
            .map(|&v| (i64::from(v) * i64::from(v)) >> 16)
            .sum::<i64>()
            / n;
        assert!(mean.abs() < 65536 / 100, "mean {mean}");
        assert!((var - 65536).abs() < 65536 / 50, "var {var}");
        let max = z.iter().map(|v| v.unsigned_abs()).max().unwrap();
        assert!(max < 7 << 16);
    }
}
