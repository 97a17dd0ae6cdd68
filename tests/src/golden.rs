//! Golden files: comparing a test's output text with its pinned file under
//! `tests/golden/`, re-pinning it on request, and what the golden tests share.

use std::path::PathBuf;

use oracle_core::kernels::Exec;

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

/// The kernels each image golden case runs: scalar, SIMD and three threads on
/// x86_64 (which must agree); elsewhere (aarch64 under qemu-user in CI, where
/// emulation makes every run ~20x slower) the SIMD (NEON) kernels alone, still
/// against the pins.
pub fn image_execs() -> Vec<Exec> {
    let simd = Exec {
        simd: true,
        threads: 1,
    };
    if cfg!(target_arch = "x86_64") {
        vec![
            Exec::SCALAR,
            simd,
            Exec {
                simd: true,
                threads: 3,
            },
        ]
    } else {
        vec![simd]
    }
}

/// A tensor's bytes as the goldens hash them: each `i32` little-endian.
pub fn le_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
