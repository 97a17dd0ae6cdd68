//! Golden outputs of the integer diffusion pipelines, pinned in
//! `tests/golden/diffusion.txt`.
//!
//! ddpm-mnist, converted from the bundled checkpoint: the model root, then for
//! several seeds the keccak256 of the final sample (`i32` little-endian) and of
//! the PNG, after the last `STEPS` DDPM steps (a reduced loop so CI, and qemu-user
//! on aarch64, stay fast; the full 1000-step loop is the same code with a larger
//! count). Each case runs scalar, SIMD and with three threads, which must agree
//! exactly (on aarch64 the NEON kernels alone: see [`execs`]). tiny-unet2d likewise: one UNet forward and 10 DDIM steps per seed.
//! `.ci/test` runs this test on aarch64 under qemu-user too, so equal pins
//! there prove cross-target bit-exactness.
//!
//! To re-pin after an intended change: `ORACLE_BLESS=1 cargo test -p oracle-tests
//! --test golden_diffusion`, then review the diff.

use std::fmt::Write;
use std::path::PathBuf;

use oracle_core::diffusion::ddpm_mnist::{to_pixels, DdpmMnist as IntDdpm, DdpmNoise, SIZE};
use oracle_core::diffusion::png::{encode, ColorType};
use oracle_core::image_format::ImageModelFile;
use oracle_core::kernels::Exec;
use oracle_core::merkle::{keccak, model_root, to_hex};
use oracle_quant::diffusion::ddpm_mnist::DdpmMnist;
use oracle_quant::image::ddpm::{export_ddpm_mnist, DEFAULT_GROUP};

/// The kernels each case runs: scalar, SIMD and three threads on x86_64 (which
/// must agree); elsewhere (aarch64 under qemu-user in CI, where emulation makes
/// every run ~20x slower) the SIMD (NEON) kernels alone, still against the pins.
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

/// DDPM steps per golden case (the last 8 of 1000).
const STEPS: usize = 8;
const SEEDS: [u64; 3] = [0, 7, 42];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn golden_text() -> String {
    let float = DdpmMnist::load_pth(&fixtures().join("models/ddpm-mnist/ddpm_mnist.pth"))
        .expect("ddpm-mnist loads");
    let bytes = export_ddpm_mnist(&float, DEFAULT_GROUP).expect("export");
    let file = ImageModelFile::parse(&bytes).expect("parses");
    let model = IntDdpm::from_file(&file).expect("binds");
    let mut out = String::new();
    writeln!(out, "root ddpm-mnist {}", to_hex(&model_root(&bytes))).unwrap();
    for seed in SEEDS {
        let runs: Vec<Vec<i32>> = execs()
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
        let z: Vec<u8> = runs[0].iter().flat_map(|v| v.to_le_bytes()).collect();
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
    use oracle_core::sampler::Rng;
    use oracle_quant::image::unet2d::{export_unet2d, load_folder};
    let (unet, ddim) =
        load_folder(&fixtures().join("models/tiny-unet2d")).expect("tiny-unet2d loads");
    let bytes = export_unet2d(&unet, &ddim, DEFAULT_GROUP).expect("export");
    let file = ImageModelFile::parse(&bytes).expect("parses");
    let model = UNet2D::from_file(&file).expect("binds");
    writeln!(out, "root tiny-unet2d {}", to_hex(&model_root(&bytes))).unwrap();
    let side = model.sample_size;
    let ts = model.ddim.timesteps(UNET_STEPS).expect("timesteps");
    for seed in SEEDS {
        let mut start = vec![0i32; model.in_channels * side * side];
        fill_normal_q16(&mut Rng::new(seed), &mut start);
        let mut hashes = Vec::new();
        for exec in execs() {
            let eps = model.forward(exec, &start, side, side, ts[0] as u32);
            let x = model
                .sample(exec, start.clone(), side, side, UNET_STEPS)
                .expect("sample");
            let bytes = |v: &[i32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
            hashes.push((to_hex(&keccak(&bytes(&eps))), to_hex(&keccak(&bytes(&x)))));
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
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/diffusion.txt");
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
    assert_eq!(want.lines().count(), 2 * (1 + SEEDS.len()));
}
