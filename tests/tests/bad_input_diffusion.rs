//! Bad input to the image pipelines gives clear, typed errors: a diffusers folder
//! with a missing component, mismatched shapes, an unsupported block type, noise of
//! the wrong length, a damaged model file.

use std::path::{Path, PathBuf};

use oracle_core::diffusion::ddpm_mnist::{DdpmMnist as IntDdpm, DdpmNoise, SampleError};
use oracle_core::diffusion::unet2d::{UNet2D, UNetError};
use oracle_core::format::{Arch, ModelFile};
use oracle_core::kernels::Exec;
use oracle_core::FormatError;
use oracle_quant::diffusion::ddpm_mnist::DdpmMnist;
use oracle_quant::image::cli::{convert, detect, ImageInput};
use oracle_quant::image::ddpm::{export_ddpm_mnist, DEFAULT_GROUP};
use oracle_tests::fixtures;
use oracle_tests::scratch::{copy_model_folder, edit_file};

/// A copy of tiny-unet2d in a fresh temporary folder.
fn copy_tiny(tag: &str) -> PathBuf {
    copy_model_folder("tiny-unet2d", &format!("bad-diffusion-{tag}"))
}

fn convert_err(dir: &Path) -> String {
    assert_eq!(detect(dir), Some(ImageInput::DiffusersFolder));
    let e = convert(dir, ImageInput::DiffusersFolder, None).expect_err("conversion must fail");
    e.to_string()
}

fn edit_unet_config(dir: &Path, from: &str, to: &str) {
    edit_file(dir, "unet/config.json", from, to);
}

#[test]
fn missing_component_is_named() {
    let dir = copy_tiny("missing");
    std::fs::remove_dir_all(dir.join("scheduler")).unwrap();
    let msg = convert_err(&dir);
    assert!(msg.contains("missing component scheduler"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mismatched_shapes_name_the_tensor() {
    let dir = copy_tiny("shapes");
    // 32 -> 48 channels in the first block: conv_in's weight no longer fits.
    edit_unet_config(&dir, "32,", "48,");
    let msg = convert_err(&dir);
    assert!(msg.contains("shape") && msg.contains("expected"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unsupported_block_type_is_named() {
    let dir = copy_tiny("block");
    edit_unet_config(&dir, "\"AttnDownBlock2D\"", "\"SkipDownBlock2D\"");
    let msg = convert_err(&dir);
    assert!(
        msg.contains("unsupported down block type \"SkipDownBlock2D\""),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_length_noise_is_an_error() {
    let float = DdpmMnist::load_pth(&fixtures().join("models/ddpm-mnist/ddpm_mnist.pth")).unwrap();
    let bytes = export_ddpm_mnist(&float, DEFAULT_GROUP).unwrap();
    let file = ModelFile::parse(&bytes).unwrap();
    let model = IntDdpm::from_file(&file).unwrap();
    let short = vec![0i32; 783];
    assert_eq!(
        model
            .sample(Exec::SCALAR, 2, DdpmNoise::Stack(&short))
            .unwrap_err(),
        SampleError::NoiseLength {
            got: 783,
            want: 1568
        }
    );
    assert_eq!(
        model
            .sample(Exec::SCALAR, 2, DdpmNoise::Start(&short, 1))
            .unwrap_err(),
        SampleError::NoiseLength {
            got: 783,
            want: 784
        }
    );
    assert_eq!(
        model
            .sample(Exec::SCALAR, 1001, DdpmNoise::Seed(1))
            .unwrap_err(),
        SampleError::Steps(1001)
    );

    let unet_bytes = convert(
        &fixtures().join("models/tiny-unet2d"),
        ImageInput::DiffusersFolder,
        None,
    )
    .unwrap();
    let file = ModelFile::parse(&unet_bytes).unwrap();
    let unet = UNet2D::from_file(&file).unwrap();
    assert_eq!(
        unet.sample(Exec::SCALAR, vec![0; 10], 16, 16, 2)
            .unwrap_err(),
        UNetError::NoiseLength { got: 10, want: 768 }
    );
    assert_eq!(
        unet.sample(Exec::SCALAR, vec![0; 768], 16, 16, 0)
            .unwrap_err(),
        UNetError::Steps(0)
    );
}

#[test]
fn damaged_model_files_are_rejected() {
    let float = DdpmMnist::load_pth(&fixtures().join("models/ddpm-mnist/ddpm_mnist.pth")).unwrap();
    let bytes = export_ddpm_mnist(&float, DEFAULT_GROUP).unwrap();
    assert!(matches!(
        ModelFile::parse(&bytes[..bytes.len() - 64]),
        Err(FormatError::LengthMismatch { .. })
    ));
    // A ddpm-mnist file is not a UNet2D.
    let file = ModelFile::parse(&bytes).unwrap();
    assert_eq!(
        UNet2D::from_file(&file).unwrap_err(),
        FormatError::WrongArch {
            expected: Arch::UNet2D,
            found: Arch::DdpmMnist
        }
    );
}
