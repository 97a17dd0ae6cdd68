//! Golden outputs of the integer tiny-sd pipeline (CLIP text encoder, guided
//! conditional UNet, DDIM, VAE decoder), pinned in `tests/golden/tiny_sd.txt`.
//!
//! The file converted from `fixtures/models/tiny-sd` (its model root is pinned),
//! then for three prompts and seeds, `STEPS` DDIM steps with guidance 7.5: the
//! keccak256 of the prompt's text states, of the final latents and of the PNG
//! (`i32` little-endian for the tensors), through the request path the node and
//! the guest share ([`run_image_request`]). Each case runs scalar, SIMD and with
//! three threads, which must agree exactly (elsewhere than x86_64, the SIMD
//! kernels alone: see [`execs`]). `.ci/test` runs this test on aarch64 under
//! qemu-user too, so equal pins there prove cross-target bit-exactness.
//!
//! To re-pin after an intended change: `ORACLE_BLESS=1 cargo test -p oracle-tests
//! --test golden_tiny_sd`, then review the diff.

use std::fmt::Write;
use std::path::PathBuf;

use oracle_core::diffusion::sd::{seeded_latents, StableDiffusion, DEFAULT_GUIDANCE_Q16};
use oracle_core::image_format::ImageModelFile;
use oracle_core::image_request::{run_image_request, ImageRequest};
use oracle_core::kernels::Exec;
use oracle_core::merkle::{keccak, model_root, to_hex};
use oracle_quant::image::ddpm::DEFAULT_GROUP;
use oracle_quant::image::sd::{export_sd, load_folder};

/// DDIM steps per golden case (the quality test runs 10).
const STEPS: usize = 3;
/// Prompts and seeds.
const CASES: [(&str, u64); 3] = [
    ("a photo of a red cat", 0),
    ("an astronaut riding a horse on the moon", 7),
    ("", 42),
];

/// Scalar, SIMD and three threads on x86_64 (which must agree); elsewhere
/// (aarch64 under qemu-user in CI) the SIMD (NEON) kernels alone, against the pins.
fn execs() -> Vec<Exec> {
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

fn le(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn golden_text() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-sd");
    let bytes =
        export_sd(&load_folder(&dir).expect("tiny-sd loads"), DEFAULT_GROUP).expect("export");
    let file = ImageModelFile::parse(&bytes).expect("parses");
    let sd = StableDiffusion::from_file(&file).expect("binds");
    let mut out = String::new();
    writeln!(out, "root tiny-sd {}", to_hex(&model_root(&bytes))).unwrap();
    for (prompt, seed) in CASES {
        let mut runs = Vec::new();
        for exec in execs() {
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
            let png = run_image_request(
                &bytes,
                exec,
                &ImageRequest {
                    prompt: prompt.as_bytes(),
                    steps: STEPS as u32,
                    seed,
                    guidance_q16: DEFAULT_GUIDANCE_Q16,
                },
            )
            .expect("request");
            runs.push((
                to_hex(&keccak(&le(&text.cond))),
                to_hex(&keccak(&le(&z))),
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
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/tiny_sd.txt");
    let got = golden_text();
    if std::env::var_os("ORACLE_BLESS").is_some() {
        std::fs::write(&path, &got).expect("writing golden file");
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
    assert_eq!(want.lines().count(), 1 + CASES.len());
}
