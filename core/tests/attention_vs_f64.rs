//! `oracle_core::nn::attention` against `f64` attention on the same Q16 inputs,
//! causal and not, and equal whatever `Exec` is given.
#![allow(clippy::float_arithmetic)]

use oracle_core::kernels::Simd;
use oracle_core::nn::attention::{attention, attention_masked};
use oracle_core::Exec;
use proptest::prelude::*;

const Q16: f64 = 65536.0;

#[allow(clippy::too_many_arguments)]
fn reference(
    q: &[i32],
    k: &[i32],
    v: &[i32],
    lq: usize,
    lk: usize,
    heads: usize,
    hd: usize,
    causal: bool,
) -> Vec<f64> {
    let d = heads * hd;
    let f = |x: i32| f64::from(x) / Q16;
    let mut out = vec![0.0; lq * d];
    for h in 0..heads {
        for i in 0..lq {
            let seen = if causal { (i + 1).min(lk) } else { lk };
            let s: Vec<f64> = (0..seen)
                .map(|j| {
                    (0..hd)
                        .map(|c| f(q[i * d + h * hd + c]) * f(k[j * d + h * hd + c]))
                        .sum::<f64>()
                        / (hd as f64).sqrt()
                })
                .collect();
            let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for c in 0..hd {
                out[i * d + h * hd + c] = (0..seen)
                    .map(|j| e[j] / sum * f(v[j * d + h * hd + c]))
                    .sum::<f64>()
                    * Q16;
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Within `2 + lk · max|v| · 2^-14` Q16 units: the scores' Q16 rounding
    /// (half a unit each, so a relative 2^-17 on each probability) and the
    /// probabilities' Q30 rounding.
    #[test]
    fn close_to_f64(
        lq in 1usize..20,
        lk in 1usize..40,
        heads in 1usize..5,
        hd in 1usize..17,
        causal in any::<bool>(),
        mag in 10u32..22,
        seed in any::<u64>(),
    ) {
        let d = heads * hd;
        let mut s = seed | 1;
        let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; ((s as i64) >> (64 - mag - 1)) as i32 };
        let q: Vec<i32> = (0..lq * d).map(|_| next()).collect();
        let k: Vec<i32> = (0..lk * d).map(|_| next()).collect();
        let v: Vec<i32> = (0..lk * d).map(|_| next()).collect();
        let mut got = vec![0; lq * d];
        attention_masked(Exec::SCALAR, &q, &k, &v, lq, lk, heads, hd, causal, &mut got);
        let want = reference(&q, &k, &v, lq, lk, heads, hd, causal);
        let vmax = v.iter().map(|x| f64::from(x.unsigned_abs())).fold(0.0, f64::max);
        let bound = 2.0 + lk as f64 * vmax / 16384.0;
        for (g, w) in got.iter().zip(&want) {
            prop_assert!((f64::from(*g) - w).abs() <= bound, "got {g} want {w} bound {bound}");
        }
        // Any execution mode gives the same bits: every kernel family this CPU has
        // (scalar, AVX2, AVX-512; NEON), on one and three threads.
        let mut other = vec![0; lq * d];
        for simd in Simd::available() {
            for threads in [1, 3] {
                attention_masked(Exec { simd, threads }, &q, &k, &v, lq, lk, heads, hd, causal, &mut other);
                prop_assert_eq!(&other, &got, "{} x{}", simd.name(), threads);
            }
        }
        if !causal {
            attention(Exec::default(), &q, &k, &v, lq, lk, heads, hd, &mut other);
            prop_assert_eq!(&other, &got);
        }
    }
}

#[test]
fn one_key_copies_its_value() {
    let (q, k, v) = ([1 << 16, -3 << 16], [5 << 16, 7], [123_456, -654_321]);
    let mut out = [0; 2];
    attention(Exec::SCALAR, &q, &k, &v, 1, 1, 1, 2, &mut out);
    assert_eq!(out, v);
}

#[test]
fn causal_first_query_sees_only_the_first_key() {
    // Two queries, three keys, one head of width 1.
    let q = [1 << 16, 1 << 16];
    let k = [0, 0, 0];
    let v = [10 << 16, 20 << 16, 30 << 16];
    let mut out = [0; 2];
    attention_masked(Exec::SCALAR, &q, &k, &v, 2, 3, 1, 1, true, &mut out);
    assert_eq!(out, [10 << 16, 15 << 16]);
}

#[test]
fn threaded_large_attention_equals_scalar() {
    // 256 queries × 300 keys × 64 wide: above the threading threshold.
    let (lq, lk, heads, hd) = (256usize, 300usize, 8usize, 8usize);
    let d = heads * hd;
    let mut s = 12345u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s as i64) >> 44) as i32
    };
    let q: Vec<i32> = (0..lq * d).map(|_| next()).collect();
    let k: Vec<i32> = (0..lk * d).map(|_| next()).collect();
    let v: Vec<i32> = (0..lk * d).map(|_| next()).collect();
    for causal in [false, true] {
        let mut want = vec![0; lq * d];
        attention_masked(
            Exec::SCALAR,
            &q,
            &k,
            &v,
            lq,
            lk,
            heads,
            hd,
            causal,
            &mut want,
        );
        for (simd, threads) in Simd::available().flat_map(|s| [(s, 2), (s, 3)]) {
            let mut got = vec![0; lq * d];
            attention_masked(
                Exec { simd, threads },
                &q,
                &k,
                &v,
                lq,
                lk,
                heads,
                hd,
                causal,
                &mut got,
            );
            assert_eq!(got, want, "{} x{threads}, causal {causal}", simd.name());
        }
    }
}

#[test]
fn operands_beyond_the_i64_bound_take_the_wide_sum() {
    // max|q| · max|k| · head_dim = 2^30 · 2^30 · 16 > 2^63 forces the i128 sums;
    // the large entries sit in channels the other operand zeroes, so the scores
    // stay moderate and the f64 reference still applies.
    let (lq, lk, hd) = (4usize, 6usize, 16usize);
    let mut s = 99u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s as i32) >> 14
    };
    let mut q: Vec<i32> = (0..lq * hd).map(|_| next()).collect();
    let mut k: Vec<i32> = (0..lk * hd).map(|_| next()).collect();
    let v: Vec<i32> = (0..lk * hd).map(|_| next()).collect();
    for i in 0..lq {
        q[i * hd] = 1 << 30;
        q[i * hd + 1] = 0;
    }
    for j in 0..lk {
        k[j * hd] = 0;
        k[j * hd + 1] = -(1 << 30);
    }
    let want = reference(&q, &k, &v, lq, lk, 1, hd, false);
    let vmax = v
        .iter()
        .map(|x| f64::from(x.unsigned_abs()))
        .fold(0.0, f64::max);
    let bound = 2.0 + lk as f64 * vmax / 16384.0;
    let mut scalar = vec![0; lq * hd];
    attention(Exec::SCALAR, &q, &k, &v, lq, lk, 1, hd, &mut scalar);
    for (g, w) in scalar.iter().zip(&want) {
        assert!((f64::from(*g) - w).abs() <= bound, "got {g} want {w}");
    }
    let mut simd = vec![0; lq * hd];
    attention(
        Exec {
            simd: Simd::Best,
            threads: 1,
        },
        &q,
        &k,
        &v,
        lq,
        lk,
        1,
        hd,
        &mut simd,
    );
    assert_eq!(simd, scalar);
}
