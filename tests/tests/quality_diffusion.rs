//! Quality of the integer diffusion pipelines against the float32 references of
//! `oracle-quant`, from the same noise. Figures go to stdout (`--nocapture`) and
//! into the README.
//!
//! ddpm-mnist runs its last `DDPM_STEPS` steps here (the full 1000-step loop takes
//! minutes in debug-free CI too; `oracle-quant eval --steps 1000` runs it, and the
//! committed grid `fixtures/golden/ddpm-mnist-grid.png` comes from it).
#![allow(clippy::float_arithmetic)]

use std::path::PathBuf;

use oracle_core::kernels::{Exec, Simd};
use oracle_quant::diffusion::ddpm_mnist::DdpmMnist;
use oracle_quant::image::ddpm::{export_ddpm_mnist, DEFAULT_GROUP};
use oracle_quant::image::eval::eval_ddpm;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Steps of the reduced ddpm-mnist loop checked here.
const DDPM_STEPS: usize = 100;

#[test]
fn ddpm_mnist_integer_matches_float() {
    let float = DdpmMnist::load_pth(&fixtures().join("models/ddpm-mnist/ddpm_mnist.pth"))
        .expect("ddpm-mnist loads");
    let bytes = export_ddpm_mnist(&float, DEFAULT_GROUP).expect("export");
    let exec = Exec {
        simd: Simd::Best,
        threads: 2,
    };
    for seed in [1u64, 2, 3] {
        let s = eval_ddpm(&bytes, &float, seed, DDPM_STEPS, exec).expect("eval");
        println!(
            "ddpm-mnist seed {seed} steps {DDPM_STEPS}: PSNR {:.2} dB, max abs {:.4}",
            s.cmp.psnr_db, s.cmp.max_abs
        );
        assert!(
            s.cmp.psnr_db >= 25.0,
            "seed {seed}: {:.2} dB",
            s.cmp.psnr_db
        );
    }
}

#[test]
fn tiny_unet2d_integer_matches_float() {
    use oracle_quant::image::eval::eval_unet2d;
    use oracle_quant::image::unet2d::{export_unet2d, load_folder};
    let (unet, ddim) =
        load_folder(&fixtures().join("models/tiny-unet2d")).expect("tiny-unet2d loads");
    let bytes = export_unet2d(&unet, &ddim, DEFAULT_GROUP).expect("export");
    let exec = Exec {
        simd: Simd::Best,
        threads: 2,
    };
    for seed in [1u64, 2, 3] {
        let e = eval_unet2d(&bytes, &unet, &ddim, seed, 10, exec).expect("eval");
        println!(
            "tiny-unet2d seed {seed}: forward PSNR {:.2} dB (max abs {:.4}); DDIM 10 steps PSNR {:.2} dB raw (max abs {:.4}), {:.2} dB image",
            e.forward.psnr_db, e.forward.max_abs, e.sample_raw.psnr_db, e.sample_raw.max_abs, e.sample_image.psnr_db
        );
        assert!(
            e.forward.psnr_db >= 40.0,
            "forward {:.2} dB",
            e.forward.psnr_db
        );
        assert!(
            e.sample_raw.psnr_db >= 30.0,
            "DDIM {:.2} dB",
            e.sample_raw.psnr_db
        );
    }
}
