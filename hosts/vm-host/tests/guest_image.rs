//! The guest runs the small image models in the VM and writes exactly the PNG bytes
//! of the native pipeline: ddpm-mnist (converted from the bundled checkpoint) and
//! tiny-unet2d (the diffusers folder), two seeds each with a reduced step count
//! (seed 0 one step, seed 42 two steps: the difference of their VM steps is the
//! cost of one UNet evaluation; the full 1000-step DDPM loop is the same code with
//! a larger count, see `hosts/vm-host/README.md` for its estimated VM cost), and
//! tiny-sd (text to image: one prompt, one DDIM step guided by the guidance of the
//! request parameters, the VAE decoder).
//!
//! The native bytes are rebuilt here from the model APIs the way `oracle run`
//! builds them (sample, pixels, PNG), independently of
//! `oracle_core::AnyModel::run`, which the guest runs and which is checked
//! against them too.

mod support;
use support::{guest_elf, run_in_vm};

use oracle_core::commit::merkle::{keccak, to_hex};
use oracle_core::diffusion::ddpm_mnist::{to_pixels, DdpmMnist, DdpmNoise, SIZE};
use oracle_core::diffusion::noise::fill_normal_q16;
use oracle_core::diffusion::png::{encode, ColorType};
use oracle_core::diffusion::request::posted_output;
use oracle_core::diffusion::unet2d::UNet2D;
use oracle_core::format::ModelFile;
use oracle_core::rng::Rng;
use oracle_core::{Exec, ImageParams, Request};

/// (seed, steps) of each VM run.
const CASES: [(u64, u32); 2] = [(0, 1), (42, 2)];

fn ddpm_file() -> Vec<u8> {
    oracle_tests::ddpm_mnist_model_file()
}

fn unet_file() -> Vec<u8> {
    oracle_tests::tiny_unet2d_model_file()
}

/// The image parameters of `seed` and `steps` (guidance 0: the unconditional
/// models ignore it).
fn params(steps: u32, seed: u64) -> ImageParams {
    ImageParams {
        steps,
        seed,
        guidance_q16: 0,
    }
}

/// The image request of `seed` and `steps`, without a prompt.
fn request(steps: u32, seed: u64) -> Request<'static> {
    Request::image(b"", params(steps, seed))
}

/// ddpm-mnist's PNG as `oracle run --seed --steps` builds it.
fn native_ddpm(bytes: &[u8], steps: u32, seed: u64) -> Vec<u8> {
    let file = ModelFile::parse(bytes).unwrap();
    let model = DdpmMnist::from_file(&file).unwrap();
    let z = model
        .sample(Exec::default(), steps as usize, DdpmNoise::Seed(seed))
        .unwrap();
    encode(&to_pixels(&z), SIZE as u32, SIZE as u32, ColorType::Gray).unwrap()
}

/// tiny-unet2d's PNG as `oracle run --seed --steps` builds it (RGB, HWC).
fn native_unet(bytes: &[u8], steps: u32, seed: u64) -> Vec<u8> {
    let file = ModelFile::parse(bytes).unwrap();
    let model = UNet2D::from_file(&file).unwrap();
    let side = model.sample_size.max(model.side_multiple());
    let c = model.in_channels;
    assert_eq!(c, 3, "tiny-unet2d is RGB");
    let mut start = vec![0i32; c * side * side];
    fill_normal_q16(&mut Rng::new(seed), &mut start);
    let x = model
        .sample(Exec::default(), start, side, side, steps as usize)
        .unwrap();
    let hw = side * side;
    let mut px = vec![0u8; x.len()];
    for (i, &v) in x.iter().enumerate() {
        let q = (i64::from(v) / 2 + 32768).clamp(0, 65536);
        px[(i % hw) * c + i / hw] = ((q * 255 + 32768) >> 16) as u8;
    }
    encode(&px, side as u32, side as u32, ColorType::Rgb).unwrap()
}

/// Run both cases in the VM and compare with `native`; print the VM steps.
fn check(name: &str, bytes: &[u8], native: impl Fn(&[u8], u32, u64) -> Vec<u8>) {
    let mut vm_steps = Vec::new();
    for (seed, steps) in CASES {
        let want = native(bytes, steps, seed);
        let shared =
            oracle_tests::run_image(bytes, Exec::default(), b"", params(steps, seed)).unwrap();
        assert_eq!(shared, want, "{name} seed {seed}: AnyModel::run");
        let got = run_in_vm(bytes, &request(steps, seed));
        assert_eq!(
            (got.status, got.exit_code),
            (1, 0),
            "{name} seed {seed} exited badly: {}",
            String::from_utf8_lossy(&got.stdout)
        );
        assert!(
            got.stdout == want,
            "{name} seed {seed}: VM PNG bytes differ"
        );
        assert_eq!(
            got.output,
            keccak(&posted_output(&want)),
            "{name} seed {seed}: commitment (of the posted output)"
        );
        eprintln!(
            "{name} seed {seed} steps {steps}: {} VM steps, {} KiB resident, png {}",
            got.steps,
            got.pages * 4,
            to_hex(&keccak(&want))
        );
        vm_steps.push(got.steps);
    }
    eprintln!(
        "{name}: {} VM steps per UNet evaluation, {} outside the loop",
        vm_steps[1] - vm_steps[0],
        2 * vm_steps[0] - vm_steps[1]
    );
}

#[test]
fn ddpm_mnist_png_in_the_vm_equals_native() {
    check("ddpm-mnist", &ddpm_file(), native_ddpm);
}

#[test]
fn tiny_unet2d_png_in_the_vm_equals_native() {
    check("tiny-unet2d", &unet_file(), native_unet);
}

/// tiny-sd (CLIP text encoder, UNet2DConditionModel with cross-attention, guidance
/// 7.5, VAE decoder) for one prompt and one DDIM step: the VM writes the PNG of
/// the native request path and commits its posted output.
#[test]
fn tiny_sd_png_in_the_vm_equals_native() {
    let bytes = oracle_tests::tiny_sd_model_file();
    let prompt = b"a red cat";
    // guidance 3 (not the usual 7.5): the guest must read it from the parameters
    let guidance_q16 = 3 << 16;
    let native = |guidance_q16| {
        oracle_tests::run_image(
            &bytes,
            Exec::default(),
            prompt,
            ImageParams {
                guidance_q16,
                ..params(1, 7)
            },
        )
        .unwrap()
    };
    let want = native(guidance_q16);
    assert_ne!(
        want,
        native(oracle_core::diffusion::sd::DEFAULT_GUIDANCE_Q16),
        "guidance changes the image"
    );
    // the guidance travels in its own field of the image parameters
    let r = Request::image(
        prompt,
        ImageParams {
            guidance_q16,
            ..params(1, 7)
        },
    );
    let got = run_in_vm(&bytes, &r);
    assert_eq!(
        (got.status, got.exit_code),
        (1, 0),
        "tiny-sd exited badly: {}",
        String::from_utf8_lossy(&got.stdout)
    );
    assert!(got.stdout == want, "tiny-sd: VM PNG bytes differ");
    assert_eq!(got.output, keccak(&posted_output(&want)));
    eprintln!(
        "tiny-sd \"a red cat\" seed 7, guidance 3, 1 step: {} VM steps, {} KiB resident, png {} bytes",
        got.steps,
        got.pages * 4,
        want.len()
    );
}

/// A prompt for an unconditional image model, or steps outside the schedule: the
/// request is rejected before any sampling, and its result is the error outcome
/// (exit 0, nothing written, `keccak256("")` committed).
#[test]
fn bad_image_requests_commit_the_error_outcome() {
    let bytes = ddpm_file();
    let mut with_prompt = request(1, 0);
    with_prompt.prompt = b"a digit";
    for (what, req) in [
        ("prompt", with_prompt),
        ("0 steps", request(0, 0)),
        ("1001 steps", request(1001, 0)),
    ] {
        let got = run_in_vm(&bytes, &req);
        assert_eq!((got.status, got.exit_code), (1, 0), "{what}");
        assert!(
            !got.stdout.starts_with(b"\x89PNG"),
            "{what}: no PNG written"
        );
        assert_eq!(
            got.output,
            oracle_core::model::outcome::rejected_commitment(),
            "{what}: the error outcome committed"
        );
        eprintln!(
            "ddpm-mnist {what}: the error outcome after {} VM steps",
            got.steps
        );
    }
}

/// `fpvm run --model <image model> --seed --steps --output` writes the VM's PNG,
/// equal to the native bytes; image models have no transition modes.
#[test]
fn fpvm_run_writes_the_png() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("ddpm.bin");
    let png = dir.path().join("out.png");
    let bytes = ddpm_file();
    std::fs::write(&model, &bytes).unwrap();
    let elf = dir.path().join("guest.elf");
    std::fs::write(&elf, guest_elf()).unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_fpvm"))
            .args(["run", "--elf"])
            .arg(&elf)
            .arg("--model")
            .arg(&model)
            .args(["--seed", "7", "--steps", "1"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--output", png.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = native_ddpm(&bytes, 1, 7);
    assert!(std::fs::read(&png).unwrap() == want, "PNG differs");
    let log = String::from_utf8_lossy(&out.stderr);
    let posted = keccak(&posted_output(&want));
    assert!(log.contains(&format!("output commitment: {}", to_hex(&posted))));
    let out = run(&["--init"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no transition modes"));
}
