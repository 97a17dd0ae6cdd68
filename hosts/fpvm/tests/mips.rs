//! Quick fast-mode speed measurement (not a benchmark harness): runs
//! bench/compute.S and prints MIPS. Ignored by default; run with
//! `cargo test -p oracle-fpvm --release --test mips -- --ignored --nocapture`.

mod common;

use std::path::Path;
use std::time::Instant;

#[test]
#[ignore = "speed measurement; run explicitly"]
fn fast_mode_mips() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/compute.S");
    let elf = common::assemble(&src, "bench-compute");
    let mut best = 0.0f64;
    for _ in 0..3 {
        let mut vm = common::load(&elf);
        let t = Instant::now();
        vm.run(u64::MAX).unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(vm.cpu.status, 1);
        let mips = vm.cpu.step as f64 / secs / 1e6;
        println!("{} steps in {secs:.3} s: {mips:.1} MIPS", vm.cpu.step);
        best = best.max(mips);
    }
    println!("best: {best:.1} MIPS");
}

#[test]
#[ignore = "speed measurement; run explicitly"]
fn checkpoint_cost_and_late_witness_time() {
    use oracle_fpvm::checkpoint::Checkpoints;
    use oracle_fpvm::step_from_witness;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/compute.S");
    let elf = common::assemble(&src, "bench-compute-cp");
    let mut vm = common::load(&elf);
    let interval = 1 << 20;
    let t = Instant::now();
    let cp = Checkpoints::record(&mut vm, interval, u64::MAX).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let end = vm.cpu.step;
    println!(
        "record: {end} steps, interval {interval}: {} snapshots, {:.1} KiB held, {secs:.3} s ({:.1} MIPS)",
        cp.len(),
        cp.memory_bytes() as f64 / 1024.0,
        end as f64 / secs / 1e6
    );
    let n = end - 12_345;
    let t = Instant::now();
    let w = cp.witness_at(n).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let t2 = Instant::now();
    step_from_witness(&w.state, &w.proof).unwrap();
    println!(
        "witness of step {n}: {:.1} ms from the nearest checkpoint; verify {:.3} ms; proof {} bytes",
        secs * 1e3,
        t2.elapsed().as_secs_f64() * 1e3,
        w.proof.len()
    );
}
