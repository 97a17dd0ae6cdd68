//! int8 / int4 GEMV: multiply-accumulates per second of every kernel family this CPU
//! has (scalar, AVX2, AVX-512 VNNI / NEON) and of the widest on two threads, measured
//! in the same run. Each bench first checks that every family gives the scalar output.
// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use oracle_benches::{random_quant, Xorshift};
use oracle_core::kernels::{matvec, Exec, Simd};
use oracle_core::quant::{quantize_activations, QMatrix, QType};

fn bench_gemv(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemv");
    for (qtype, rows, cols) in [
        (QType::Q8, 1024, 1024),
        (QType::Q8, 4096, 4096),
        (QType::Q4, 4096, 4096),
    ] {
        let mut rng = Xorshift(0x5EED);
        let (mantissas, values) = random_quant(&mut rng, qtype, rows, cols, 32);
        let scales: Vec<u8> = mantissas.iter().flat_map(|m| m.to_le_bytes()).collect();
        let m = QMatrix {
            qtype,
            rows: rows as u32,
            cols: cols as u32,
            group: 32,
            exp: 30,
            scales: &scales,
            qs: &values,
        };
        let x: Vec<i32> = (0..cols).map(|_| (rng.next_u64() as i32) >> 10).collect();
        let mut xq = vec![0i16; cols];
        let shift = quantize_activations(&x, &mut xq);
        let mut want = vec![0; rows];
        let mut got = vec![0; rows];
        matvec(Exec::SCALAR, &m, &xq, shift, &mut want);
        let mut runs: Vec<(String, Exec)> = Simd::available()
            .map(|simd| (simd.name().to_string(), Exec { simd, threads: 1 }))
            .collect();
        runs.push((
            format!("{}-2threads", Simd::Best.resolve().name()),
            Exec::best(2),
        ));
        for (name, exec) in &runs {
            matvec(*exec, &m, &xq, shift, &mut got);
            assert_eq!(want, got, "the {name} and scalar kernels differ");
        }
        group.throughput(Throughput::Elements((rows * cols) as u64));
        for (name, exec) in runs {
            let id = BenchmarkId::new(format!("{}-{name}", qtype.name()), format!("{rows}x{cols}"));
            group.bench_function(id, |b| {
                b.iter(|| matvec(exec, &m, black_box(&xq), shift, &mut got))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_gemv);
criterion_main!(benches);
