//! The integer functions of `oracle_core::math` against `f64` over their whole
//! input range; the bounds asserted here are the ones stated in the module docs.
#![allow(clippy::float_arithmetic)]

use oracle_core::math::*;
use proptest::prelude::*;

fn q16(v: f64) -> i32 {
    (v * 65536.0).round() as i32
}

#[test]
fn exp_endpoints() {
    assert_eq!(exp_q30(0), 1 << 30);
    assert_eq!(exp_q30(i32::MIN), 0);
    assert_eq!(exp_q30(5 << 16), 1 << 30); // positive clamps to 0
    let e_minus1 = exp_q30(-65536) as f64 / 2f64.powi(30);
    assert!((e_minus1 - (-1f64).exp()).abs() < 2e-8);
}

#[test]
fn isqrt_exact() {
    for n in [0u128, 1, 2, 3, 4, 15, 16, 17, u64::MAX as u128, u128::MAX] {
        let r = isqrt_u128(n);
        assert!(r * r <= n);
        assert!((r + 1).checked_mul(r + 1).is_none_or(|s| s > n));
    }
}

#[test]
fn inv_sqrt_small_values() {
    for n in 1..=1024u32 {
        let got = inv_sqrt_q30(n) as f64 / 2f64.powi(30);
        assert!((got - 1.0 / (n as f64).sqrt()).abs() < 2e-9, "n={n}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn exp_matches_f64(x in i32::MIN..=0i32) {
        let want = ((x as f64) / 65536.0).exp();
        let got = exp_q30(x) as f64 / 2f64.powi(30);
        prop_assert!((got - want).abs() <= 16.0 / 2f64.powi(30), "x={x} got={got} want={want}");
    }

    #[test]
    fn sigmoid_matches_f64(x in any::<i32>()) {
        let xf = x as f64 / 65536.0;
        let want = 1.0 / (1.0 + (-xf).exp());
        let got = sigmoid_q30(x) as f64 / 2f64.powi(30);
        prop_assert!((got - want).abs() <= 16.0 / 2f64.powi(30), "x={x}");
    }

    #[test]
    fn silu_matches_f64(x in any::<i32>()) {
        let xf = x as f64 / 65536.0;
        let want = xf / (1.0 + (-xf).exp());
        let got = silu_q16(x) as f64 / 65536.0;
        prop_assert!((got - want).abs() <= 1.0 / 65536.0 + want.abs() * 1e-8, "x={x}");
    }

    #[test]
    fn isqrt_is_floor(n in any::<u128>()) {
        let r = isqrt_u128(n);
        prop_assert!(r * r <= n);
        prop_assert!((r + 1).checked_mul(r + 1).is_none_or(|s| s > n));
    }

    #[test]
    fn softmax_matches_f64(scores in proptest::collection::vec(-(40i32 << 16)..(40i32 << 16), 1..64)) {
        let mut out = vec![0u32; scores.len()];
        softmax_q30(&scores, &mut out);
        let max = scores.iter().map(|&s| s as f64 / 65536.0).fold(f64::MIN, f64::max);
        let exps: Vec<f64> = scores.iter().map(|&s| (s as f64 / 65536.0 - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        for (o, e) in out.iter().zip(&exps) {
            let got = *o as f64 / 2f64.powi(30);
            prop_assert!((got - e / sum).abs() <= 32.0 / 2f64.powi(30));
        }
    }

    #[test]
    fn rmsnorm_matches_f64(
        x in proptest::collection::vec(-(1000i32 << 16)..(1000i32 << 16), 1..128),
        wscale in 1i32..(4 << 16),
    ) {
        let w: Vec<i32> = (0..x.len()).map(|i| wscale - (i as i32 * 977) % wscale).collect();
        let mut out = vec![0; x.len()];
        let eps = 42950u32;
        rmsnorm_q16(&x, &w, eps, &mut out);
        let xf: Vec<f64> = x.iter().map(|&v| v as f64 / 65536.0).collect();
        let ms = xf.iter().map(|v| v * v).sum::<f64>() / xf.len() as f64 + eps as f64 / 2f64.powi(32);
        let inv = 1.0 / ms.sqrt();
        for i in 0..x.len() {
            let want = xf[i] * inv * (w[i] as f64 / 65536.0);
            let got = out[i] as f64 / 65536.0;
            prop_assert!((got - want).abs() <= 1.0 / 65536.0 + want.abs() * 1e-9, "i={i} got={got} want={want}");
        }
    }

    #[test]
    fn rmsnorm_of_tiny_vectors_is_finite(v in -4i32..4, n in 1usize..64) {
        let x = vec![v; n];
        let w = vec![q16(1.0); n];
        let mut out = vec![0; n];
        rmsnorm_q16(&x, &w, 42950, &mut out);
        // |x| / sqrt(x^2 + eps) <= 1.
        prop_assert!(out.iter().all(|&o| o.abs() <= 65536 + 1));
    }
}
