//! Golden outputs of the integer tiny-sd pipeline (CLIP text encoder, guided
//! conditional UNet, DDIM, VAE decoder), pinned in `tests/golden/tiny_sd.txt`.
//!
//! The file converted from `fixtures/models/tiny-sd` (its model root is pinned),
//! then for three prompts and seeds, `STEPS` DDIM steps with guidance 7.5: the
//! keccak256 of the prompt's text states, of the final latents and of the PNG
//! (`i32` little-endian for the tensors), through the request path the node and
//! the guest share ([`oracle_tests::run_image`]: `AnyModel::run`). Each case runs scalar, SIMD and with
//! three threads, which must agree exactly (elsewhere than x86_64, the SIMD
//! kernels alone: see [`image_execs`]). `.ci/test` runs this test on aarch64 under
//! qemu-user too, so equal pins there prove cross-target bit-exactness.
//!
//! To re-pin after an intended change: `ORACLE_BLESS=1 cargo test -p oracle-tests
//! --test golden_tiny_sd`, then review the diff.

use std::fmt::Write;

use oracle_core::commit::merkle::{keccak, model_root, to_hex};
use oracle_core::diffusion::sd::{seeded_latents, StableDiffusion, DEFAULT_GUIDANCE_Q16};
use oracle_core::format::ModelFile;
use oracle_tests::golden::{assert_golden, image_execs, le_bytes};
use oracle_tests::tiny_sd_model_file;

/// DDIM steps per golden case (the quality test runs 10).
const STEPS: usize = 3;
/// Prompts and seeds.
const CASES: [(&str, u64); 3] = [
    ("a photo of a red cat", 0),
    ("an astronaut riding a horse on the moon", 7),
    ("", 42),
];

fn golden_text() -> String {
    let bytes = tiny_sd_model_file();
    let file = ModelFile::parse(&bytes).expect("parses");
    let sd = StableDiffusion::from_file(&file).expect("binds");
    let mut out = String::new();
    writeln!(out, "root tiny-sd {}", to_hex(&model_root(&bytes))).unwrap();
    for (prompt, seed) in CASES {
        let mut runs = Vec::new();
        for exec in image_execs() {
            let text = sd.encode(exec, prompt.as_bytes()).expect("encode");
            let z = sd
                .denoise(
                    exec,
                    prompt.as_bytes(),
                    seeded_latents(&sd, seed),
                    STEPS,
                    DEFAULT_GUIDANCE_Q16,
                )
                .expect("denoise");
            let png = oracle_tests::run_image(
                &bytes,
                exec,
                prompt.as_bytes(),
                oracle_core::ImageParams {
                    steps: STEPS as u32,
                    seed,
                    guidance_q16: DEFAULT_GUIDANCE_Q16,
                },
            )
            .expect("request");
            runs.push((
                to_hex(&keccak(&le_bytes(&text.cond))),
                to_hex(&keccak(&le_bytes(&z))),
                to_hex(&keccak(&png)),
            ));
        }
        for (i, r) in runs.iter().enumerate().skip(1) {
            assert_eq!(&runs[0], r, "exec {i} differs from the first, seed {seed}");
        }
        let (t, z, p) = &runs[0];
        writeln!(
            out,
            "run tiny-sd seed{seed} steps{STEPS} g7.5 {prompt:?} text={t} latents={z} png={p}"
        )
        .unwrap();
    }
    out
}

#[test]
fn golden_tiny_sd_outputs_are_pinned_and_equal_across_kernels() {
    assert_golden("tiny_sd.txt", &golden_text(), 1 + CASES.len());
}
