//! `oracle run` on image models: the PNG it writes (and the keccak it prints) is
//! what `AnyModel::run`, the path the VM guest runs, produces for the same
//! seed and steps, whatever the kernel; a prompt is refused.

mod common;

use std::path::Path;
use std::process::Output;

use common::{assert_success, oracle};
use oracle_core::commit::merkle::{keccak, to_hex};
use oracle_core::{Exec, ImageParams};

/// `oracle run --model <model> --steps <steps> --seed <seed> --output <png>` with
/// `extra` arguments: its output and the PNG it wrote (a stale one removed first).
fn oracle_run(
    model: &Path,
    steps: u32,
    seed: u64,
    png: &Path,
    extra: &[&str],
) -> (Output, Option<Vec<u8>>) {
    let _ = std::fs::remove_file(png);
    let out = oracle()
        .arg("run")
        .arg("--model")
        .arg(model)
        .args(["--steps", &steps.to_string(), "--seed", &seed.to_string()])
        .arg("--output")
        .arg(png)
        .args(extra)
        .output()
        .unwrap();
    (out, std::fs::read(png).ok())
}

/// Assert that `oracle run` (`what`) succeeded, wrote `want` (`png`: what it wrote)
/// and printed its keccak.
fn assert_wrote(out: &Output, png: Option<&[u8]>, want: &[u8], what: &str) {
    assert_success(out, what);
    assert_eq!(png, Some(want), "{what}");
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.trim(), format!("output {}", to_hex(&keccak(want))));
}

fn check(name: &str, model: &[u8], steps: u32, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.bin"));
    std::fs::write(&path, model).unwrap();
    let want = oracle_tests::run_image(
        model,
        Exec::default(),
        b"",
        ImageParams {
            steps,
            seed,
            guidance_q16: oracle_core::diffusion::sd::DEFAULT_GUIDANCE_Q16,
        },
    )
    .unwrap();
    for extra in [&[][..], &["--scalar"][..], &["--threads", "2"][..]] {
        let (out, png) = oracle_run(&path, steps, seed, &dir.path().join("out.png"), extra);
        assert_wrote(&out, png.as_deref(), &want, &format!("{name} {extra:?}"));
    }
    let refused = oracle()
        .arg("run")
        .arg("--model")
        .arg(&path)
        .args(["--prompt", "a cat", "--steps", "2", "--output"])
        .arg(dir.path().join("no.png"))
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "{name}: a prompt must be refused"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("prompt"));
}

#[test]
fn ddpm_mnist_png_equals_the_guest_path() {
    check("ddpm-mnist", &oracle_tests::ddpm_mnist_model_file(), 3, 42);
}

#[test]
fn tiny_unet2d_png_equals_the_guest_path() {
    check("tiny-unet2d", &oracle_tests::tiny_unet2d_model_file(), 2, 7);
}

fn tiny_sd_model_file() -> Vec<u8> {
    use oracle_quant::image::ddpm::DEFAULT_GROUP;
    use oracle_quant::image::sd::{export_sd, load_folder};
    let sd = load_folder(&oracle_tests::fixtures().join("models/tiny-sd")).expect("tiny-sd loads");
    export_sd(&sd, DEFAULT_GROUP).expect("tiny-sd exports")
}

/// A `(shape)` float32 `.npy` file.
fn npy(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    data.iter()
        .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    out
}

#[test]
fn tiny_sd_png_equals_the_guest_path() {
    use oracle_core::diffusion::sd::{seeded_latents, StableDiffusion};
    use oracle_core::format::ModelFile;
    let model = tiny_sd_model_file();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-sd.bin");
    std::fs::write(&path, &model).unwrap();
    let (prompt, steps, seed) = ("a red cat on a mat", 2u32, 5u64);
    let want = oracle_tests::run_image(
        &model,
        Exec::default(),
        prompt.as_bytes(),
        ImageParams {
            steps,
            seed,
            guidance_q16: 6 << 16,
        },
    )
    .unwrap();
    // The seeded start latents as float32 noise: Q16 values below 2^19 are exact
    // in f32, so --noise with them must give the same bytes.
    let file = ModelFile::parse(&model).unwrap();
    let sd = StableDiffusion::from_file(&file).unwrap();
    let lat: Vec<f32> = seeded_latents(&sd, seed)
        .iter()
        .map(|&v| v as f32 / 65536.0)
        .collect();
    let s = sd.latent_side();
    let noise = dir.path().join("noise.npy");
    std::fs::write(&noise, npy(&[sd.unet.in_channels, s, s], &lat)).unwrap();
    let bad_noise = dir.path().join("bad.npy");
    std::fs::write(&bad_noise, npy(&[lat.len() - 1], &lat[1..])).unwrap();
    let png = dir.path().join("out.png");
    let run = |extra: &[&str]| {
        let args = [&["--prompt", prompt, "--guidance", "6.0"][..], extra].concat();
        oracle_run(&path, steps, seed, &png, &args)
    };
    let noise_arg = noise.to_str().unwrap();
    for extra in [
        &[][..],
        &["--scalar"][..],
        &["--threads", "2"][..],
        &["--noise", noise_arg][..],
    ] {
        let (out, png) = run(extra);
        assert_wrote(&out, png.as_deref(), &want, &format!("{extra:?}"));
    }
    assert_eq!(&want[1..4], b"PNG");
    let (out, png) = run(&["--noise", bad_noise.to_str().unwrap()]);
    assert!(!out.status.success() && png.is_none());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected the latents' (4, 8, 8)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, _) = run(&["--guidance", "lots"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--guidance"));
}
