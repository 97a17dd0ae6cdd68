//! Integer attention (`oracle_core::nn::attention`) against a float32 attention
//! with the same loops as quant-tools' reference (max-subtracted softmax, `exp`),
//! in the same run, at Stable Diffusion 1.5's level-0 width (8 heads of 40
//! channels) over a 32x32 latent map: self-attention 1024x1024 and
//! cross-attention to 77 text tokens. Each bench first checks that scalar, SIMD
//! and two threads give equal integer outputs.
// criterion's macros generate undocumented items.
#![allow(missing_docs)]
#![allow(clippy::float_arithmetic)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use oracle_benches::Xorshift;
use oracle_core::kernels::Simd;
use oracle_core::nn::attention::attention;
use oracle_core::Exec;

/// Float32 attention, per head: scores, max-subtracted `exp`, weighted sum.
fn attention_f32(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    lq: usize,
    lk: usize,
    heads: usize,
    out: &mut [f32],
) {
    let d = q.len() / lq;
    let hd = d / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut scores = vec![0f32; lk];
    out.fill(0.0);
    for h in 0..heads {
        for i in 0..lq {
            let qi = &q[i * d + h * hd..i * d + (h + 1) * hd];
            let mut max = f32::NEG_INFINITY;
            for (j, s) in scores.iter_mut().enumerate() {
                let kj = &k[j * d + h * hd..j * d + (h + 1) * hd];
                *s = qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
                max = max.max(*s);
            }
            let mut sum = 0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let o = &mut out[i * d + h * hd..i * d + (h + 1) * hd];
            for (j, &s) in scores.iter().enumerate() {
                let p = s / sum;
                for (ov, &vv) in o.iter_mut().zip(&v[j * d + h * hd..j * d + (h + 1) * hd]) {
                    *ov += p * vv;
                }
            }
        }
    }
}

fn bench_attention(c: &mut Criterion) {
    let mut group = c.benchmark_group("attention");
    group.sample_size(10);
    let (heads, hd) = (8usize, 40usize);
    let d = heads * hd;
    for (name, lq, lk) in [("self", 1024usize, 1024usize), ("cross", 1024, 77)] {
        let mut rng = Xorshift(0xA77E);
        // Q16 values of magnitude up to 2 (typical normalised projections).
        let mut gen =
            |n: usize| -> Vec<i32> { (0..n).map(|_| (rng.next_u64() as i32) >> 14).collect() };
        let (q, k, v) = (gen(lq * d), gen(lk * d), gen(lk * d));
        let f = |x: &[i32]| -> Vec<f32> { x.iter().map(|&v| v as f32 / 65536.0).collect() };
        let (qf, kf, vf) = (f(&q), f(&k), f(&v));
        let mut want = vec![0; lq * d];
        attention(Exec::SCALAR, &q, &k, &v, lq, lk, heads, hd, &mut want);
        let two = Exec {
            simd: Simd::Best,
            threads: 2,
        };
        for exec in [Exec::default(), two] {
            let mut got = vec![0; lq * d];
            attention(exec, &q, &k, &v, lq, lk, heads, hd, &mut got);
            assert_eq!(got, want, "{exec:?} differs from scalar");
        }
        group.throughput(Throughput::Elements((lq * lk * d) as u64));
        let mut out = vec![0; lq * d];
        for (label, exec) in [
            ("int-scalar", Exec::SCALAR),
            ("int-simd", Exec::default()),
            ("int-simd-2threads", two),
        ] {
            group.bench_function(
                BenchmarkId::new(format!("{name}-{label}"), format!("{lq}x{lk}x{d}")),
                |b| b.iter(|| attention(exec, black_box(&q), &k, &v, lq, lk, heads, hd, &mut out)),
            );
        }
        let mut outf = vec![0f32; lq * d];
        group.bench_function(
            BenchmarkId::new(format!("{name}-f32"), format!("{lq}x{lk}x{d}")),
            |b| b.iter(|| attention_f32(black_box(&qf), &kf, &vf, lq, lk, heads, &mut outf)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_attention);
criterion_main!(benches);
