//! Decode speed at the 1.1B shape (TinyLlama: dim 2048, hidden 5632, 22 layers, GQA
//! 32/4, vocab 32000), random weights, W8 and W4 in groups of 32, and W4 in the
//! converter's default groups of 16, with the widest
//! kernel family on one and two threads, next to the read bandwidth measured in the
//! same run (the bandwidth limit is `bandwidth / model bytes` tokens per second).
//! The summary lines also give W4's speed over W8's. Each model is about a gigabyte
//! in memory; run it alone: `cargo bench -p oracle-benches --bench decode_1b`.
// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oracle_benches::{decode_tokens_per_second, llama_1b_config, read_bandwidth, synthetic_model};
use oracle_core::llama::{LlamaState, Model};
use oracle_core::quant::QType;
use oracle_core::Exec;

fn bench_decode_1b(c: &mut Criterion) {
    let bandwidth = read_bandwidth(1 << 30, 5);
    let mut group = c.benchmark_group("decode-1.1B");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let mut one_thread = Vec::new();
    for (qtype, group_size) in [(QType::Q8, 32), (QType::Q4, 32), (QType::Q4, 16)] {
        let bytes = synthetic_model(llama_1b_config(256), qtype, group_size, 11);
        let name = format!("{}/{group_size}", qtype.name());
        let model = Model::load(&bytes).expect("synthetic model loads");
        let limit = bandwidth / bytes.len() as f64;
        for threads in [1, 2] {
            let exec = Exec::best(threads);
            let tps = decode_tokens_per_second(&model, exec, 8);
            if threads == 1 {
                one_thread.push(tps);
            }
            eprintln!(
                "decode 1.1B-shape {name}: {} x{threads}: {tps:.2} tok/s; read bandwidth {:.2} GB/s; model {:.1} MB; limit {limit:.2} tok/s; reached {:.0}%",
                exec.kernel_name(),
                bandwidth / 1e9,
                bytes.len() as f64 / 1e6,
                100.0 * tps / limit
            );
            let mut state = LlamaState::new(&model.weights.config);
            let mut pos = 0u32;
            group.bench_function(format!("{}-g{group_size}-{threads}t", qtype.name()), |b| {
                b.iter(|| {
                    let logits = state
                        .forward(&model.weights, exec, 1, pos % 64)
                        .expect("forward");
                    std::hint::black_box(logits);
                    pos += 1;
                })
            });
        }
    }
    eprintln!(
        "decode 1.1B-shape, one thread: W4 / W8 = {:.2} (groups of 32), {:.2} (W4 in groups of 16)",
        one_thread[1] / one_thread[0],
        one_thread[2] / one_thread[0]
    );
    group.finish();
}

criterion_group!(benches, bench_decode_1b);
criterion_main!(benches);
