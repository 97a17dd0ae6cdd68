//! Decode speed on a synthetic model of the stories110M shape (W8, random weights
//! from a fixed seed), next to the read bandwidth measured in the same run: the
//! bandwidth limit is `bandwidth / model bytes` tokens per second, and the summary
//! lines print the fraction of it reached by each kernel family on one thread and
//! by the widest on two threads. `generate` times the
//! whole decode loop (forward, logits hash, sampling, detokenizing) over 32
//! positions, so that the loop's own cost shows next to the forward pass. `prefill`
//! runs a 256-token prompt's positions together into the KV cache
//! (`LlamaState::prefill_cache`, what a request's prompt runs: its positions need
//! no logits), printed next to decode's per-token speed.
// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oracle_benches::{
    decode_tokens_per_second, read_bandwidth, stories110m_config, synthetic_model,
};
use oracle_core::kernels::Simd;
use oracle_core::llama::{LlamaState, Model};
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};

fn bench_decode(c: &mut Criterion) {
    let bytes = synthetic_model(stories110m_config(256), QType::Q8, 32, 110);
    let model = Model::load(&bytes).expect("synthetic model loads");
    let bandwidth = read_bandwidth(1 << 30, 5);
    let limit = bandwidth / bytes.len() as f64;
    let mut runs: Vec<(String, Exec)> = Simd::available()
        .filter(|&s| s != Simd::Off)
        .map(|simd| {
            (
                format!("{}, 1 thread", simd.name()),
                Exec { simd, threads: 1 },
            )
        })
        .collect();
    runs.push((
        format!("{}, 2 threads", Simd::Best.resolve().name()),
        Exec::best(2),
    ));
    for (name, exec) in runs {
        let tps = decode_tokens_per_second(&model, exec, 12);
        eprintln!(
            "decode stories110M-shape W8: {name}: {tps:.2} tok/s; read bandwidth {:.2} GB/s; model {:.1} MB; limit {limit:.2} tok/s; reached {:.0}%",
            bandwidth / 1e9,
            bytes.len() as f64 / 1e6,
            100.0 * tps / limit
        );
    }
    // Prefill of a 256-token prompt against decode's per-token speed, both with
    // the widest family: one and two threads.
    let prompt: Vec<u32> = (0..PREFILL_TOKENS)
        .map(|i| 3 + (i * 7919) % 31_000)
        .collect();
    for threads in [1, 2] {
        let exec = Exec::best(threads);
        let mut best = f64::MAX;
        for _ in 0..3 {
            let mut state = LlamaState::new(&model.weights.config);
            let t = Instant::now();
            state
                .prefill_cache(&model.weights, exec, &prompt)
                .expect("prefill");
            best = best.min(t.elapsed().as_secs_f64());
        }
        let prefill = f64::from(PREFILL_TOKENS) / best;
        let decode = decode_tokens_per_second(&model, exec, 12);
        eprintln!(
            "prefill stories110M-shape W8, {PREFILL_TOKENS} tokens: {} x{threads}: {prefill:.1} tok/s; decode {decode:.1} tok/s; prefill / decode = {:.2}",
            exec.kernel_name(),
            prefill / decode
        );
    }
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let best = Simd::Best.resolve();
    let mut runs = vec![(best, 1), (best, 2)];
    if best != Simd::Avx2 && Simd::Avx2.supported() {
        runs.insert(0, (Simd::Avx2, 1));
    }
    for (simd, threads) in runs {
        let exec = Exec { simd, threads };
        let mut state = LlamaState::new(&model.weights.config);
        let mut pos = 0u32;
        group.bench_function(format!("stories110M-w8-{}-{threads}t", simd.name()), |b| {
            b.iter(|| {
                let logits = state
                    .forward(&model.weights, exec, 1, pos % 64)
                    .expect("forward");
                std::hint::black_box(logits);
                pos += 1;
            })
        });
    }
    group.throughput(Throughput::Elements(PREFILL_TOKENS.into()));
    for threads in [1, 2] {
        let exec = Exec::best(threads);
        group.bench_function(
            format!("stories110M-w8-prefill{PREFILL_TOKENS}-{threads}t"),
            |b| {
                b.iter(|| {
                    let mut state = LlamaState::new(&model.weights.config);
                    state
                        .prefill_cache(&model.weights, exec, &prompt)
                        .expect("prefill");
                    std::hint::black_box(state.kv_cache());
                })
            },
        );
    }
    group.throughput(Throughput::Elements(GENERATE_STEPS.into()));
    let request = Request::text(b"", GENERATE_STEPS, SamplingParams::GREEDY);
    let exec = Exec::best(1);
    group.bench_function(format!("stories110M-w8-generate{GENERATE_STEPS}-1t"), |b| {
        b.iter(|| {
            let g = model
                .generate(exec, std::hint::black_box(&request), |_| {})
                .expect("generate");
            std::hint::black_box(g.logits_hash);
        })
    });
    group.finish();
}

/// Tokens of the prefill case.
const PREFILL_TOKENS: u32 = 256;

/// Positions of the `generate` case.
const GENERATE_STEPS: u32 = 32;

criterion_group!(benches, bench_decode);
criterion_main!(benches);
