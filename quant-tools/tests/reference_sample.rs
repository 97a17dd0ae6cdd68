//! The evaluation text `fixtures/eval/stories260K-sample.txt`: stories260K sampled at
//! temperature 1.0 by the float reference, reproducible from this test.
//!
//! Regenerate it with
//! `ORACLE_UPDATE_FIXTURES=1 cargo test -p oracle-quant --test reference_sample`.
//!
//! It is 8 samples (seeds 1..=8, 256 steps each, from BOS), one after another, each
//! ending with a newline: byte for byte the concatenated output of upstream
//! llama2.c's `run stories260K.bin -z tok512.bin -t 1.0 -p 1.0 -s $s -n 256` for
//! `s` in 1..=8 (checked against run.c built with `gcc -O3` on x86_64 when the
//! file was made).

use std::path::{Path, PathBuf};

use oracle_quant::checkpoint;
use oracle_quant::reference::{sample_text, FloatLlama, XorShiftRng, BOS};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Seeds `FIRST_SEED..FIRST_SEED + SAMPLES`, `STEPS` positions each.
const FIRST_SEED: u64 = 1;
const SAMPLES: usize = 8;
const STEPS: usize = 256;

#[test]
fn eval_sample_fixture_is_reproducible() {
    let m = checkpoint::load(
        &root().join("models/stories260K/stories260K.bin"),
        Some(&root().join("models/stories260K/tok512.bin")),
    )
    .unwrap();
    let (mut text, n_tokens) = sample_text(&m, FIRST_SEED, SAMPLES, STEPS);
    text.push(b'\n');
    let path = root().join("eval/stories260K-sample.txt");
    if std::env::var_os("ORACLE_UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read(&path).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&text),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(n_tokens, 2048, "no sample hit BOS within 256 steps");
    assert!(text.iter().filter(|&&b| b == b'\n').count() >= SAMPLES);
}

#[test]
fn xorshift_matches_run_c() {
    // random_u32 / random_f32 from run.c, compiled with gcc.
    let mut r = XorShiftRng::new(42);
    assert_eq!(
        [r.next_u32(), r.next_u32(), r.next_u32()],
        [1456360119, 3359763283, 3393612768]
    );
    let mut r = XorShiftRng::new(7);
    assert_eq!(r.next_f32(), 0.820_246_64);
}

#[test]
fn sampling_is_seeded() {
    let m = checkpoint::load(&root().join("models/stories260K/stories260K.bin"), None).unwrap();
    let run =
        |seed| FloatLlama::new(&m).generate_sampled(&[BOS], 40, 1.0, &mut XorShiftRng::new(seed));
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
    // A low temperature approaches greedy decoding.
    let greedy = FloatLlama::new(&m).generate_greedy(&[BOS], 40);
    assert_eq!(
        FloatLlama::new(&m).generate_sampled(&[BOS], 40, 1e-3, &mut XorShiftRng::new(5)),
        greedy
    );
}
