//! The fault-proof VM on the real guest: a stories260K W8 request of 64 greedy
//! positions. Prints the steps of the whole request, fast-mode MIPS, checkpoint
//! memory and the time to produce the witness of a late step from checkpoints, then
//! lets criterion measure fast-mode throughput (steps per second) on a window.
//!
//! Then the validator's side of a dispute over a trace of at least 10^9 steps (a
//! long stories260K request): the trace is recorded once with checkpoints every
//! 2^24 steps, and criterion measures the time to answer one bisection query (the
//! state hash at the queried step) from the checkpoints, over the ~30 midpoints of
//! a bisection towards a disputed step. A query costs
//! `t_restore + (n mod K) / R + t_hash`: restoring the snapshot below `n` (its
//! pages and Merkle root), replaying fewer than `K` steps at the fast-mode rate `R`,
//! and hashing the state; the bench prints each part. Finally the phase-2 trace of
//! the two-phase game: the VM steps of one position (`fpvm run --position`).

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oracle_core::commit::position::Decoder;
use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_fpvm::checkpoint::Checkpoints;
use oracle_fpvm::{SharedOracle, Vm};
use oracle_tests::LLAMA_FIXTURES;
use oracle_vm_host::{guest_oracle, position_oracle};

fn bench_fpvm(c: &mut Criterion) {
    let elf = oracle_tests::guest_elf();
    let model = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let request = Request::text(b"", 64, SamplingParams::GREEDY);
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

/// A request on `model` whose whole trace is at least 10^9 steps: the first of a
/// few seeds whose generation runs 160 positions without stopping at BOS.
fn long_request(model: &[u8]) -> Request<'static> {
    let m = Model::load(model).expect("model loads");
    for seed in 1..50 {
        let request = Request::text(
            b"",
            160,
            SamplingParams {
                temperature_q16: 52429,
                top_p_q16: 58982,
                seed,
            },
        );
        let g = m.generate(Exec::default(), &request, |_| {}).expect("runs");
        if g.tokens.len() == 161 {
            return request;
        }
    }
    panic!("no seed below 50 runs 160 positions");
}

/// The steps a bisection over `[0, total]` queries while narrowing to `target`.
fn bisection_queries(total: u64, target: u64) -> Vec<u64> {
    let (mut lo, mut hi) = (0u64, total);
    let mut out = Vec::new();
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        out.push(mid);
        if target < mid {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    out
}

fn bench_bisection_query(c: &mut Criterion) {
    let elf = oracle_tests::guest_elf();
    let model = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let request = long_request(&model);
    let oracle: SharedOracle = Arc::new(guest_oracle(&model, &request));
    let interval = 1u64 << 24;
    let mut vm = Vm::from_elf(&elf, oracle.clone()).expect("guest loads");
    let t = Instant::now();
    let cps = Checkpoints::record(&mut vm, interval, u64::MAX).expect("records");
    let record_secs = t.elapsed().as_secs_f64();
    let total = vm.cpu.step;
    assert!(
        vm.halted() && vm.cpu.exit_code == 0,
        "the long request runs"
    );
    assert!(total >= 1_000_000_000, "trace of {total} steps < 10^9");
    eprintln!(
        "long request (stories260K W8, 160 positions, seed {}): {total} steps, recorded with \
         checkpoints every 2^24 in {record_secs:.1}s ({:.0} MIPS), {} snapshots, {:.1} MiB",
        request.text_params().expect("text").sampling.seed,
        total as f64 / record_secs / 1e6,
        cps.len(),
        cps.memory_bytes() as f64 / (1 << 20) as f64
    );
    // The parts of the formula: a restore at a snapshot, and a full interval.
    let at = 32 * interval;
    let t = Instant::now();
    let mut v = cps.vm_at(at).expect("restores");
    let restore = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let h0 = v.state_hash();
    let hash = t.elapsed().as_secs_f64();
    let t = Instant::now();
    v.run(at + interval - 1).expect("replays");
    let replay = t.elapsed().as_secs_f64();
    let _ = (h0, v.state_hash());
    eprintln!(
        "query parts: restore {:.1} ms, state hash {:.1} ms, replay of K-1 steps {:.0} ms \
         ({:.0} MIPS) -> worst case {:.0} ms, mean {:.0} ms",
        restore * 1e3,
        hash * 1e3,
        replay * 1e3,
        (interval - 1) as f64 / replay / 1e6,
        (restore + hash + replay) * 1e3,
        (restore + hash + replay / 2.0) * 1e3
    );

    // The midpoints a bisection asks on its way to a step ~0.618 of the trace.
    let queries = bisection_queries(total, total / 1000 * 618 + 12_345);
    eprintln!("bisection depth over the trace: {} queries", queries.len());
    let mut group = c.benchmark_group("fpvm-dispute");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group.bench_function("answer-one-bisection-query-1e9-steps", |b| {
        b.iter(|| {
            let n = queries[next % queries.len()];
            next += 1;
            let mut vm = cps.vm_at(n).expect("restores");
            assert_eq!(vm.cpu.step, n);
            vm.state_hash()
        })
    });
    group.finish();
}

/// Phase 2 of the two-phase game: one position of the 64-position request.
fn bench_position_trace(c: &mut Criterion) {
    let elf = oracle_tests::guest_elf();
    let model = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let m = Model::load(&model).expect("model loads");
    let root = oracle_core::commit::merkle::model_root(&model);
    let request = Request::text(b"", 64, SamplingParams::GREEDY);
    let mut d = Decoder::start(&m.weights, &m.tokenizer, root, &request).expect("starts");
    let mut per_position = Vec::new();
    for t in 0..64u32 {
        if t % 16 == 0 || t == 63 {
            let oracle: SharedOracle = Arc::new(position_oracle(&model, &request, &d));
            let mut vm = Vm::from_elf(&elf, oracle).expect("guest loads");
            vm.run(u64::MAX).expect("runs");
            let mut next = d.clone();
            next.step(Exec::default()).expect("steps");
            assert_eq!(vm.cpu.output, next.state().hash(), "position {t}");
            per_position.push((t, vm.cpu.step));
        }
        d.step(Exec::default()).expect("steps");
    }
    eprintln!("phase-2 trace of one position (stories260K W8, 64 greedy positions): {per_position:?} steps");
    let oracle: SharedOracle = Arc::new(position_oracle(&model, &request, &d));
    let mut group = c.benchmark_group("fpvm-dispute");
    group.sample_size(10);
    group.bench_function("run-one-position-in-the-vm", |b| {
        b.iter(|| {
            let mut vm = Vm::from_elf(&elf, oracle.clone()).expect("guest loads");
            vm.run(u64::MAX).expect("runs");
            vm.cpu.output
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_fpvm,
    bench_position_trace,
    bench_bisection_query
);
criterion_main!(benches);
