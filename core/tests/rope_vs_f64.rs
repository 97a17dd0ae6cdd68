//! The RoPE rotation against `f64` with the same Q30 table entries.
#![allow(clippy::float_arithmetic)]

use oracle_core::llama::forward::rotate_pairs;
use proptest::prelude::*;

proptest! {
    /// Within one Q16 unit (saturating like the integer code).
    #[test]
    fn rotation_matches_f64(x0 in any::<i32>(), x1 in any::<i32>(), angle in 0u32..6283) {
        let a = f64::from(angle) / 1000.0;
        let cs = [(a.cos() * 2f64.powi(30)).round() as i32, (a.sin() * 2f64.powi(30)).round() as i32];
        let mut v = [x0, x1];
        rotate_pairs(&mut v, &cs, 2);
        let (c, s) = (f64::from(cs[0]) / 2f64.powi(30), f64::from(cs[1]) / 2f64.powi(30));
        let clamp = |x: f64| x.clamp(f64::from(i32::MIN), f64::from(i32::MAX));
        prop_assert!((f64::from(v[0]) - clamp(f64::from(x0) * c - f64::from(x1) * s)).abs() <= 1.0);
        prop_assert!((f64::from(v[1]) - clamp(f64::from(x0) * s + f64::from(x1) * c)).abs() <= 1.0);
    }
}
