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
