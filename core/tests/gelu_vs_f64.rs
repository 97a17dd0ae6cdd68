//! `oracle_core::nn::gelu` against `f64` over the input range; the bounds
//! asserted are the ones stated in the module docs.
#![allow(clippy::float_arithmetic)]

use oracle_core::nn::gelu::{gelu_q16, normal_cdf_q30, quick_gelu_q16};
use proptest::prelude::*;

const Q16: f64 = 65536.0;

fn gelu_f64(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / 2f64.sqrt()))
}

fn quick_gelu_f64(x: f64) -> f64 {
    x / (1.0 + (-1.702 * x).exp())
}

#[test]
fn endpoints() {
    assert_eq!(gelu_q16(0), 0);
    assert_eq!(quick_gelu_q16(0), 0);
    assert_eq!(normal_cdf_q30(0), 1 << 29);
    assert_eq!(gelu_q16(i32::MAX), i32::MAX);
    assert_eq!(gelu_q16(i32::MIN), 0);
    assert_eq!(quick_gelu_q16(i32::MAX), i32::MAX);
    assert_eq!(quick_gelu_q16(i32::MIN), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn normal_cdf_within_1e7(x in any::<i32>()) {
        let xf = f64::from(x) / Q16;
        let want = 0.5 * (1.0 + libm::erf(xf / 2f64.sqrt()));
        let got = normal_cdf_q30(x) as f64 / 2f64.powi(30);
        prop_assert!((got - want).abs() <= 1e-7, "x={xf} got {got} want {want}");
    }

    #[test]
    fn gelu_within_stated_bound(x in -(40i32 << 16)..(40i32 << 16)) {
        let xf = f64::from(x) / Q16;
        let got = f64::from(gelu_q16(x));
        let want = gelu_f64(xf) * Q16;
        let bound = 1.0 + xf.abs() * Q16 * 1e-7;
        prop_assert!((got - want).abs() <= bound, "x={xf} got {got} want {want}");
    }

    #[test]
    fn gelu_whole_range(x in any::<i32>()) {
        let xf = f64::from(x) / Q16;
        let got = f64::from(gelu_q16(x));
        let want = gelu_f64(xf) * Q16;
        prop_assert!((got - want).abs() <= 1.0 + xf.abs() * Q16 * 1e-7, "x={xf}");
    }

    #[test]
    fn quick_gelu_within_stated_bound(x in any::<i32>()) {
        let xf = f64::from(x) / Q16;
        let got = f64::from(quick_gelu_q16(x));
        let want = quick_gelu_f64(xf) * Q16;
        let bound = 1.0 + xf.abs() * 2f64.powi(-24) * Q16;
        prop_assert!((got - want).abs() <= bound, "x={xf} got {got} want {want}");
    }
}
