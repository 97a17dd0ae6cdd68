//! The image layers of `oracle_core::nn` (sin/cos, GroupNorm, conv2d) against `f64`
//! references; the bounds asserted here are the ones stated in the module docs.
#![allow(clippy::float_arithmetic)]

use oracle_core::kernels::Exec;
use oracle_core::nn::conv2d::Conv2d;
use oracle_core::nn::groupnorm::group_norm;
use oracle_core::nn::timestep::{phase_turns, sin_cos_q30};
use oracle_core::quant::{QMatrix, QType};
use proptest::prelude::*;

const Q30: f64 = (1u64 << 30) as f64;
const Q16: f64 = 65536.0;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn sin_cos_within_16_units_of_q30(angle in any::<u32>()) {
        let (s, c) = sin_cos_q30(angle);
        let th = angle as f64 / 4294967296.0 * std::f64::consts::TAU;
        prop_assert!((s as f64 - th.sin() * Q30).abs() <= 16.0, "sin {angle}: {s}");
        prop_assert!((c as f64 - th.cos() * Q30).abs() <= 16.0, "cos {angle}: {c}");
    }

    #[test]
    fn phase_is_the_fraction_of_a_turn(step in 0u32..2048, freq in -(1i64 << 51)..(1i64 << 51)) {
        let got = phase_turns(step, freq) as f64 / 4294967296.0;
        let exact = (step as f64 * freq as f64 / (1u64 << 48) as f64).rem_euclid(1.0);
        let d = (got - exact).abs();
        prop_assert!(d.min(1.0 - d) <= 2f64.powi(-32) + 2f64.powi(-40), "{got} {exact}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn group_norm_within_two_units(
        seed in any::<u64>(),
        groups in 1usize..5,
        per in 1usize..4,
        hw in 1usize..50,
        mag in 4u32..31,
    ) {
        let channels = groups * per;
        let mut s = seed | 1;
        let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
        let x: Vec<i32> = (0..channels * hw).map(|_| (next() as i32) >> (32 - mag)).collect();
        let gamma: Vec<i32> = (0..channels).map(|_| ((next() % (4 << 16)) as i32) - (2 << 16)).collect();
        let beta: Vec<i32> = (0..channels).map(|_| ((next() % (4 << 16)) as i32) - (2 << 16)).collect();
        let eps_q32 = 42950u32;
        let mut out = vec![0; x.len()];
        group_norm(&x, channels, hw, groups, &gamma, &beta, eps_q32, &mut out);
        let n = per * hw;
        for g in 0..groups {
            let vals = &x[g * n..(g + 1) * n];
            let mean = vals.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = vals.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let std = (var / (Q16 * Q16) + eps_q32 as f64 / 2f64.powi(32)).sqrt();
            for c in g * per..(g + 1) * per {
                for i in 0..hw {
                    let k = c * hw + i;
                    let y = (x[k] as f64 - mean) / Q16 / std;
                    let want = y * gamma[c] as f64 + beta[c] as f64;
                    let tol = 1.0 + (gamma[c] as f64 / Q16).abs();
                    prop_assert!((out[k] as f64 - want).abs() <= tol, "{} vs {want}", out[k]);
                }
            }
        }
    }

    #[test]
    fn conv2d_is_exact_up_to_activation_quantization(seed in any::<u64>(), stride in 1usize..3) {
        let (cin, cout, k, pad, h, w) = (3usize, 4usize, 3usize, 1usize, 6usize, 5usize);
        let cols = cin * k * k;
        let mut s = seed | 1;
        let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
        let mant: Vec<i32> = (0..cout).map(|_| (next() % (1 << 23)) as i32 + 1).collect();
        let scales: Vec<u8> = mant.iter().flat_map(|m| m.to_le_bytes()).collect();
        let qs: Vec<u8> = (0..cout * cols).map(|_| next() as u8).collect();
        let exp = 30;
        let m = QMatrix { qtype: QType::Q8, rows: cout as u32, cols: cols as u32, group: cols as u32, exp, scales: &scales, qs: &qs };
        let conv = Conv2d::new(m, vec![0; cout], cin, k, stride, pad).unwrap();
        // Inputs that fit i16 exactly (shift 0): the product is then exact up to one rounding.
        let x: Vec<i32> = (0..cin * h * w).map(|_| ((next() % 65535) as i32) - 32767).collect();
        let got = conv.forward(Exec::SCALAR, &x, h, w);
        let (ho, wo) = conv.out_shape(h, w).unwrap();
        for o in 0..cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = 0f64;
                    for c in 0..cin { for ky in 0..k { for kx in 0..k {
                        let (yy, xx) = ((oy * stride + ky) as i64 - pad as i64, (ox * stride + kx) as i64 - pad as i64);
                        if yy < 0 || xx < 0 || yy >= h as i64 || xx >= w as i64 { continue; }
                        let wq = qs[o * cols + (c * k + ky) * k + kx] as i8 as f64;
                        acc += wq * mant[o] as f64 / 2f64.powi(exp) * x[(c * h + yy as usize) * w + xx as usize] as f64;
                    }}}
                    let g = got[(o * ho + oy) * wo + ox] as f64;
                    prop_assert!((g - acc).abs() <= 0.5 + 1e-9 * acc.abs(), "{g} vs {acc}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn normal_pair_within_one_unit_of_box_muller(seed in any::<u64>()) {
        use oracle_core::diffusion::noise::normal_pair_q16;
        use oracle_core::rng::Rng;
        let mut rng = Rng::new(seed);
        let mut twin = rng.clone();
        let (z0, z1) = normal_pair_q16(&mut rng);
        let (a, b) = (twin.next_u32(), twin.next_u32());
        let u = (a as f64 + 1.0) / 4294967296.0;
        let th = b as f64 / 4294967296.0 * std::f64::consts::TAU;
        let r = (-2.0 * u.ln()).sqrt();
        prop_assert!((z0 as f64 - r * th.cos() * Q16).abs() <= 1.0, "{z0} vs {}", r * th.cos() * Q16);
        prop_assert!((z1 as f64 - r * th.sin() * Q16).abs() <= 1.0, "{z1} vs {}", r * th.sin() * Q16);
    }
}
