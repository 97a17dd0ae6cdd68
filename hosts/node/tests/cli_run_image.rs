//! `oracle run` on image models: the PNG it writes (and the keccak it prints) is
//! what `run_image_request`, the path the VM guest runs, produces for the same
//! seed and steps, whatever the kernel; a prompt is refused.

use std::process::Command;

use oracle_core::image_request::{run_image_request, ImageRequest};
use oracle_core::merkle::{keccak, to_hex};
use oracle_core::Exec;

fn check(name: &str, model: &[u8], steps: u32, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.bin"));
    std::fs::write(&path, model).unwrap();
    let want = run_image_request(
        model,
        Exec::default(),
        &ImageRequest {
            prompt: b"",
            steps,
            seed,
            guidance_q16: oracle_core::diffusion::sd::DEFAULT_GUIDANCE_Q16,
        },
    )
    .unwrap();
    for extra in [&[][..], &["--scalar"][..], &["--threads", "2"][..]] {
        let png = dir.path().join("out.png");
        let out = Command::new(env!("CARGO_BIN_EXE_oracle"))
            .arg("run")
            .arg("--model")
            .arg(&path)
            .args(["--steps", &steps.to_string(), "--seed", &seed.to_string()])
            .arg("--output")
            .arg(&png)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&png).unwrap(), want, "{name} {extra:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.trim(), format!("output {}", to_hex(&keccak(&want))));
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_oracle"))
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
