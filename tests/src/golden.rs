//! Golden files: comparing a test's output text with its pinned file under
//! `tests/golden/`, re-pinning it on request, and what the golden tests share.

use std::path::PathBuf;

use oracle_core::kernels::{Exec, Simd};

/// Compare `got` with the pinned file `tests/golden/<name>` line by line and
/// check the pinned file has `lines` lines. With `ORACLE_BLESS` set, write `got`
/// to the file instead (re-pinning) and check nothing.
pub fn assert_golden(name: &str, got: &str, lines: usize) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name);
    if std::env::var_os("ORACLE_BLESS").is_some() {
        std::fs::write(&path, got).expect("writing golden file");
        return;
    }
    let want =
        std::fs::read_to_string(&path).expect("golden file (run with ORACLE_BLESS=1 to create)");
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "golden line {} differs", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "number of golden lines"
    );
    assert_eq!(want.lines().count(), lines);
}

/// The kernels each text golden case runs, scalar first: every kernel family this
/// CPU has on one thread, then the widest on two threads. The names of the families
/// are printed, so a run on a CPU without AVX-512 says so.
pub fn text_execs() -> Vec<Exec> {
    let mut execs: Vec<Exec> = Simd::available()
        .map(|simd| Exec { simd, threads: 1 })
        .collect();
    execs.push(Exec::best(2));
    announce(&execs);
    execs
}

/// The kernels each image golden case runs: scalar, every SIMD family this CPU has
/// and the widest on three threads on x86_64 (which must agree); elsewhere (aarch64
/// under qemu-user in CI, where emulation makes every run ~20x slower) the widest
/// family (NEON) alone, still against the pins.
pub fn image_execs() -> Vec<Exec> {
    let execs = if cfg!(target_arch = "x86_64") {
        let mut execs: Vec<Exec> = Simd::available()
            .map(|simd| Exec { simd, threads: 1 })
            .collect();
        execs.push(Exec::best(3));
        execs
    } else {
        vec![Exec::best(1)]
    };
    announce(&execs);
    execs
}

fn announce(execs: &[Exec]) {
    let names: Vec<String> = execs
        .iter()
        .map(|e| format!("{} x{}", e.kernel_name(), e.threads))
        .collect();
    println!("golden runs with the kernels: {}", names.join(", "));
}

/// A tensor's bytes as the goldens hash them: each `i32` little-endian.
pub fn le_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
