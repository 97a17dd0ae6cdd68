//! `oracle_core::nn::layernorm` against `f64`: within the module docs' bound of
//! the exact LayerNorm with the same Q16 inputs and affine weights (half a unit
//! plus `|y| / r`), including rows of 25,088 values near the `i32` range.
#![allow(clippy::float_arithmetic)]

use oracle_core::nn::layernorm::{layer_norm, LayerNorm, MAX_LEN};
use proptest::prelude::*;

const Q16: f64 = 65536.0;

fn reference(x: &[i32], g: &[i32], b: &[i32], eps: f64) -> Vec<f64> {
    let n = x.len() as f64;
    let xs: Vec<f64> = x.iter().map(|&v| f64::from(v) / Q16).collect();
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    xs.iter()
        .zip(g.iter().zip(b))
        .map(|(v, (&g, &b))| {
            ((v - mean) / (var + eps).sqrt() * f64::from(g) / Q16 + f64::from(b) / Q16) * Q16
        })
        .collect()
}

/// The largest excess of an output's error over its bound, in Q16 units (<= 0
/// when every output is within its bound). The bound of the module docs: half a
/// unit for the final rounding plus `|y| / r` for the floor of
/// `r = isqrt(D · 2^32)`, where `y` is the normalised-and-scaled part (the output
/// without `beta`) in Q16 units; with `r >= 2^16` that is within one unit
/// whenever `|y| < 2^15` units (0.5 in value).
fn check(x: &[i32], g: &[i32], b: &[i32], eps_q32: u32) -> f64 {
    let mut out = vec![0; x.len()];
    layer_norm(x, g, b, eps_q32, &mut out);
    let want = reference(x, g, b, f64::from(eps_q32) / 2f64.powi(32));
    let n = x.len() as u128;
    let s: i64 = x.iter().map(|&v| i64::from(v)).sum();
    let q: u128 = x
        .iter()
        .map(|&v| u128::from(i64::from(v).unsigned_abs()).pow(2))
        .sum();
    let d = n * q - u128::from(s.unsigned_abs()).pow(2) + u128::from(eps_q32) * n * n;
    let r = ((d as f64) * 2f64.powi(32)).sqrt().floor().max(1.0);
    out.iter()
        .zip(&want)
        .zip(b)
        .map(|((&o, &w), &b)| {
            let err = (f64::from(o) - w.clamp(i32::MIN as f64, i32::MAX as f64)).abs();
            let bound = 0.5 + (w - f64::from(b)).abs() / r + 1e-6;
            err - bound
        })
        .fold(f64::NEG_INFINITY, f64::max)
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

#[test]
fn long_rows_at_the_extremes_do_not_overflow() {
    let n = 25_088;
    assert!(n <= MAX_LEN);
    let mut next = xorshift(3);
    for (lo, hi) in [(i32::MIN, i32::MAX), (i32::MAX - 1000, i32::MAX), (-5, 5)] {
        let x: Vec<i32> = (0..n)
            .map(|_| {
                (i64::from(lo) + (next() % (i64::from(hi) - i64::from(lo) + 1) as u64) as i64)
                    as i32
            })
            .collect();
        let g: Vec<i32> = (0..n).map(|_| (next() % 131072) as i32).collect();
        let b: Vec<i32> = (0..n).map(|_| (next() % 65536) as i32 - 32768).collect();
        let excess = check(&x, &g, &b, 42950);
        assert!(
            excess <= 0.0,
            "range {lo}..{hi}: {excess} Q16 units over the bound"
        );
    }
    // A constant row normalises to the bias.
    let x = vec![i32::MAX; n];
    let g = vec![65536; n];
    let b = vec![7; n];
    let mut out = vec![0; n];
    layer_norm(&x, &g, &b, 42950, &mut out);
    assert!(out.iter().all(|&o| o == 7));
}

#[test]
fn layer_struct_normalises_each_row() {
    let ln = LayerNorm {
        weight: vec![65536; 4],
        bias: vec![0; 4],
        eps_q32: 0,
    };
    let x = [1 << 16, 2 << 16, 3 << 16, 4 << 16, 0, 0, 0, 4 << 16];
    let mut out = [0; 8];
    ln.forward(&x, &mut out);
    // Row 1: mean 2.5, var 1.25 -> (-1.5, -0.5, 0.5, 1.5) / sqrt(1.25).
    assert_eq!(out[..4], [-87_926, -29_309, 29_309, 87_926]);
    // Row 2: mean 1, var 3 -> (-1, -1, -1, 3) / sqrt(3).
    assert_eq!(out[4..], [-37_837, -37_837, -37_837, 113_512]);
}

/// The case a random run found beyond one unit (1.03): a tiny variance, `eps`
/// 0, large `gamma`; within the bound.
#[test]
fn tiny_variance_with_large_gamma() {
    let mut next = xorshift(17_272_899_890_290_804_734);
    let x: Vec<i32> = (0..22).map(|_| (next() as i32) >> 30).collect();
    let g: Vec<i32> = (0..22).map(|_| (next() as i32) >> 12).collect();
    let b: Vec<i32> = (0..22).map(|_| (next() as i32) >> 10).collect();
    let excess = check(&x, &g, &b, 0);
    assert!(excess <= 0.0, "{excess} Q16 units over the bound");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn within_the_bound(
        n in 1usize..600,
        scale in 0u32..31,
        eps_q32 in prop_oneof![Just(0u32), Just(4295u32), Just(42950u32), any::<u32>()],
        seed in any::<u64>(),
    ) {
        let mut next = xorshift(seed);
        let x: Vec<i32> = (0..n).map(|_| (next() as i32) >> scale).collect();
        let g: Vec<i32> = (0..n).map(|_| (next() as i32) >> 12).collect();
        let b: Vec<i32> = (0..n).map(|_| (next() as i32) >> 10).collect();
        let excess = check(&x, &g, &b, eps_q32);
        prop_assert!(excess <= 0.0, "{excess} Q16 units over the bound");
    }
}
