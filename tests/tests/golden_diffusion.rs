//! Golden outputs of the integer diffusion pipelines, pinned in
//! `tests/golden/diffusion.txt`.
//!
//! ddpm-mnist, converted from the bundled checkpoint: the model root, then for
//! several seeds the keccak256 of the final sample (`i32` little-endian) and of
//! the PNG, after the last `STEPS` DDPM steps (a reduced loop so CI, and qemu-user
//! on aarch64, stay fast; the full 1000-step loop is the same code with a larger
//! count). Each case runs scalar, SIMD and with three threads, which must agree
//! exactly (on aarch64 the NEON kernels alone: see [`image_execs`]). tiny-unet2d likewise: one UNet forward and 10 DDIM steps per seed.
//! `.ci/test` runs this test on aarch64 under qemu-user too, so equal pins
//! there prove cross-target bit-exactness.
//!
//! To re-pin after an intended change: `ORACLE_BLESS=1 cargo test -p oracle-tests
//! --test golden_diffusion`, then review the diff.

use std::fmt::Write;

use oracle_core::commit::merkle::{keccak, model_root, to_hex};
use oracle_core::diffusion::ddpm_mnist::{to_pixels, DdpmMnist as IntDdpm, DdpmNoise, SIZE};
use oracle_core::diffusion::png::{encode, ColorType};
use oracle_core::format::ModelFile;
use oracle_tests::golden::{assert_golden, image_execs, le_bytes};
use oracle_tests::{ddpm_mnist_model_file, tiny_unet2d_model_file};

/// DDPM steps per golden case (the last 8 of 1000).
const STEPS: usize = 8;
const SEEDS: [u64; 3] = [0, 7, 42];

fn golden_text() -> String {
    let bytes = ddpm_mnist_model_file();
    let file = ModelFile::parse(&bytes).expect("parses");
    let model = IntDdpm::from_file(&file).expect("binds");
    let mut out = String::new();
    writeln!(out, "root ddpm-mnist {}", to_hex(&model_root(&bytes))).unwrap();
    for seed in SEEDS {
        let runs: Vec<Vec<i32>> = image_execs()
            .into_iter()
            .map(|exec| {
                model
                    .sample(exec, STEPS, DdpmNoise::Seed(seed))
                    .expect("sample")
            })
            .collect();
        for (i, run) in runs.iter().enumerate().skip(1) {
            assert_eq!(
                &runs[0], run,
                "exec {i} differs from the first, seed {seed}"
            );
        }
        let z = le_bytes(&runs[0]);
        let png = encode(
            &to_pixels(&runs[0]),
            SIZE as u32,
            SIZE as u32,
            ColorType::Gray,
        )
        .expect("png");
        writeln!(
            out,
            "run ddpm-mnist seed{seed} steps{STEPS} z={} png={}",
            to_hex(&keccak(&z)),
            to_hex(&keccak(&png))
        )
        .unwrap();
    }
    unet2d_golden(&mut out);
    out
}

/// tiny-unet2d: the model root, then per seed the keccak of one UNet forward at
/// the first of 10 DDIM timesteps and of the sample after 10 DDIM steps.
fn unet2d_golden(out: &mut String) {
    use oracle_core::diffusion::noise::fill_normal_q16;
    use oracle_core::diffusion::unet2d::UNet2D;
    use oracle_core::rng::Rng;
    let bytes = tiny_unet2d_model_file();
    let file = ModelFile::parse(&bytes).expect("parses");
    let model = UNet2D::from_file(&file).expect("binds");
    writeln!(out, "root tiny-unet2d {}", to_hex(&model_root(&bytes))).unwrap();
    let side = model.sample_size;
    let ts = model.ddim.timesteps(UNET_STEPS).expect("timesteps");
    for seed in SEEDS {
        let mut start = vec![0i32; model.in_channels * side * side];
        fill_normal_q16(&mut Rng::new(seed), &mut start);
        let mut hashes = Vec::new();
        for exec in image_execs() {
            let eps = model.forward(exec, &start, side, side, ts[0] as u32);
            let x = model
                .sample(exec, start.clone(), side, side, UNET_STEPS)
                .expect("sample");
            hashes.push((
                to_hex(&keccak(&le_bytes(&eps))),
                to_hex(&keccak(&le_bytes(&x))),
            ));
        }
        for (i, h) in hashes.iter().enumerate().skip(1) {
            assert_eq!(
                &hashes[0], h,
                "exec {i} differs from the first, seed {seed}"
            );
        }
        writeln!(
            out,
            "run tiny-unet2d seed{seed} forward={} ddim{UNET_STEPS}={}",
            hashes[0].0, hashes[0].1
        )
        .unwrap();
    }
}

/// DDIM steps of the tiny-unet2d golden case.
const UNET_STEPS: usize = 10;

#[test]
fn golden_diffusion_outputs_are_pinned_and_equal_across_kernels() {
    assert_golden("diffusion.txt", &golden_text(), 2 * (1 + SEEDS.len()));
}
