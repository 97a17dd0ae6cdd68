//! Quality of the integer tiny-sd pipeline (CLIP, guided conditional UNet, DDIM,
//! VAE decoder) against the float32 reference of `oracle-quant` from the same
//! start latents: 10 DDIM steps, guidance 7.5, three prompts and seeds. Figures
//! go to stdout (`--nocapture`) and into the README.
#![allow(clippy::float_arithmetic)]

use std::path::PathBuf;

use oracle_core::diffusion::sd::DEFAULT_GUIDANCE_Q16;
use oracle_core::kernels::{Exec, Simd};
use oracle_quant::image::ddpm::DEFAULT_GROUP;
use oracle_quant::image::eval::eval_sd;
use oracle_quant::image::sd::{export_sd, load_folder};

/// The prompts and seeds measured.
const CASES: [(&str, u64); 3] = [
    ("a photo of a red cat", 1),
    ("an astronaut riding a horse on the moon", 2),
    ("", 3),
];

#[test]
fn tiny_sd_integer_matches_float() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-sd");
    let float = load_folder(&dir).expect("tiny-sd loads");
    let bytes = export_sd(&float, DEFAULT_GROUP).expect("export");
    let exec = Exec {
        simd: Simd::Best,
        threads: 2,
    };
    for (prompt, seed) in CASES {
        let e =
            eval_sd(&bytes, &float, prompt, seed, 10, DEFAULT_GUIDANCE_Q16, exec).expect("eval");
        println!(
            "tiny-sd {prompt:?} seed {seed}: text {:.2} dB, guided forward {:.2} dB, latents {:.2} dB (max abs {:.4}), VAE alone {:.2} dB, image {:.2} dB (max abs {:.4})",
            e.text.psnr_db,
            e.forward.psnr_db,
            e.latents.psnr_db,
            e.latents.max_abs,
            e.vae_only.psnr_db,
            e.image.psnr_db,
            e.image.max_abs
        );
        assert!(
            e.image.psnr_db >= 30.0,
            "{prompt:?} seed {seed}: image {:.2} dB",
            e.image.psnr_db
        );
    }
}
