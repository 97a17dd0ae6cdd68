//! The fault-proof VM on the real guest: a stories260K W8 request of 64 greedy
//! positions. Prints the steps of the whole request, fast-mode MIPS, checkpoint
//! memory and the time to produce the witness of a late step from checkpoints, then
//! lets criterion measure fast-mode throughput (steps per second) on a window.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oracle_core::quant::QType;
use oracle_core::{Request, SamplingParams};
use oracle_fpvm::checkpoint::Checkpoints;
use oracle_fpvm::preimage::guest_oracle;
use oracle_fpvm::{SharedOracle, Vm};
use oracle_tests::LLAMA_FIXTURES;

fn bench_fpvm(c: &mut Criterion) {
    let elf = oracle_tests::guest_elf();
    let model = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let request = Request {
        prompt: b"",
        steps: 64,
        sampling: SamplingParams::GREEDY,
    };
    let oracle: SharedOracle = Arc::new(guest_oracle(&model, &request));

    let mut vm = Vm::from_elf(&elf, oracle.clone()).expect("guest loads");
    let t = Instant::now();
    vm.run(u64::MAX).expect("runs");
    let secs = t.elapsed().as_secs_f64();
    let total = vm.cpu.step;
    eprintln!(
        "fpvm stories260K W8, 64 greedy positions: {total} steps, exit {} code {}, {:.2}s fast mode = {:.0} MIPS",
        vm.cpu.status,
        vm.cpu.exit_code,
        secs,
        total as f64 / secs / 1e6
    );

    let interval = 1 << 24;
    let mut vm = Vm::from_elf(&elf, oracle.clone()).expect("guest loads");
    let t = Instant::now();
    let cps = Checkpoints::record(&mut vm, interval, u64::MAX).expect("records");
    eprintln!(
        "checkpoints every {interval} steps: {} snapshots, {:.1} MiB, recorded in {:.2}s",
        cps.len(),
        cps.memory_bytes() as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );
    let late = total - 1000;
    let t = Instant::now();
    let w = cps.witness_at(late).expect("witness");
    eprintln!(
        "witness of step {late} from checkpoints: {:.1} ms ({} proof bytes)",
        t.elapsed().as_secs_f64() * 1e3,
        w.proof.len()
    );

    let window = 20_000_000u64;
    let mut group = c.benchmark_group("fpvm");
    group.sample_size(10);
    group.throughput(Throughput::Elements(window));
    group.bench_function("fast-mode-20M-steps", |b| {
        b.iter(|| {
            let mut vm = Vm::from_elf(&elf, oracle.clone()).expect("guest loads");
            vm.run(window).expect("runs");
            vm.cpu.step
        })
    });
    group.finish();
}

criterion_group!(benches, bench_fpvm);
criterion_main!(benches);
