//! Bad input to the tiny-sd pipeline gives clear, typed errors: a pipeline folder
//! with a missing component, mismatched shapes, an unsupported block type,
//! latents of the wrong length, an out-of-range guidance, a model file missing a
//! tensor, and a prompt given to an unconditional model.

use std::path::{Path, PathBuf};

use oracle_core::diffusion::request::ImageRequestError;
use oracle_core::diffusion::sd::{SdConfig, SdError, StableDiffusion, MAX_GUIDANCE_Q16};
use oracle_core::diffusion::unet2d::UNetError;
use oracle_core::format::ModelFile;
use oracle_core::kernels::Exec;
use oracle_core::model::Rejection;
use oracle_core::FormatError;
use oracle_quant::image::cli::{convert, detect, ImageInput};
use oracle_tests::fixtures;
use oracle_tests::scratch::{copy_model_folder, edit_file};

fn tiny_sd() -> PathBuf {
    fixtures().join("models/tiny-sd")
}

/// A copy of tiny-sd in a fresh temporary folder.
fn copy_tiny(tag: &str) -> PathBuf {
    copy_model_folder("tiny-sd", &format!("bad-sd-{tag}"))
}

fn convert_err(dir: &Path) -> String {
    assert_eq!(detect(dir), Some(ImageInput::DiffusersFolder));
    let e = convert(dir, ImageInput::DiffusersFolder, None).expect_err("conversion must fail");
    let _ = std::fs::remove_dir_all(dir);
    e.to_string()
}

fn model() -> Vec<u8> {
    convert(&tiny_sd(), ImageInput::DiffusersFolder, None).expect("tiny-sd converts")
}

#[test]
fn missing_components_are_named() {
    for component in ["vae", "text_encoder", "tokenizer", "unet"] {
        let dir = copy_tiny(component);
        std::fs::remove_dir_all(dir.join(component)).unwrap();
        let msg = convert_err(&dir);
        assert!(
            msg.contains(&format!("missing component {component}")),
            "{msg}"
        );
    }
}

#[test]
fn mismatched_shapes_name_the_tensor() {
    // The UNet's cross-attention width no longer matches its to_k weights.
    let dir = copy_tiny("shapes");
    edit_file(
        &dir,
        "unet/config.json",
        "\"cross_attention_dim\": 32",
        "\"cross_attention_dim\": 48",
    );
    let msg = convert_err(&dir);
    assert!(
        msg.contains("attn2.to_k.weight") && msg.contains("[32, 48]"),
        "{msg}"
    );
    // The VAE's channels differ from its weights.
    let dir = copy_tiny("vae-shapes");
    edit_file(&dir, "vae/config.json", "    64\n", "    96\n");
    let msg = convert_err(&dir);
    assert!(msg.contains("tensor decoder."), "{msg}");
}

#[test]
fn unsupported_block_types_are_named() {
    // (copy tag, config file, block type, its replacement, expected message)
    let cases = [
        (
            "block",
            "unet/config.json",
            "\"UpBlock2D\",",
            "\"AttnUpBlock2D\",",
            "unsupported up block type \"AttnUpBlock2D\"",
        ),
        (
            "mid",
            "unet/config.json",
            "\"UNetMidBlock2DCrossAttn\"",
            "\"UNetMidBlock2DSimpleCrossAttn\"",
            "UNetMidBlock2DSimpleCrossAttn",
        ),
        (
            "vae-block",
            "vae/config.json",
            "\"UpDecoderBlock2D\"",
            "\"AttnUpDecoderBlock2D\"",
            "AttnUpDecoderBlock2D",
        ),
    ];
    for (tag, file, from, to, expected) in cases {
        let dir = copy_tiny(tag);
        edit_file(&dir, file, from, to);
        let msg = convert_err(&dir);
        assert!(msg.contains(expected), "{msg}");
    }
}

#[test]
fn wrong_length_latents_and_guidance_are_errors() {
    let bytes = model();
    let file = ModelFile::parse(&bytes).unwrap();
    let sd = StableDiffusion::from_file(&file).unwrap();
    let n = sd.latent_len();
    assert_eq!(n, 4 * 8 * 8);
    for len in [0, n - 1, n + 1, 3 * 16 * 16] {
        assert_eq!(
            sd.denoise(Exec::SCALAR, b"a cat", vec![0; len], 1, 1 << 16),
            Err(SdError::UNet(UNetError::NoiseLength { got: len, want: n }))
        );
    }
    assert_eq!(
        sd.denoise(Exec::SCALAR, b"a cat", vec![0; n], 1001, 1 << 16),
        Err(SdError::UNet(UNetError::Steps(1001)))
    );
    assert_eq!(
        sd.denoise(Exec::SCALAR, b"a cat", vec![0; n], 1, MAX_GUIDANCE_Q16 + 1),
        Err(SdError::Guidance(MAX_GUIDANCE_Q16 + 1))
    );
    let params = |steps| oracle_core::ImageParams {
        steps,
        seed: 1,
        guidance_q16: 1 << 16,
    };
    assert!(matches!(
        oracle_tests::run_image(&bytes, Exec::SCALAR, b"a cat", params(0)),
        Err(Rejection::Image(ImageRequestError::Sd(SdError::UNet(
            UNetError::Steps(0)
        ))))
    ));
}

#[test]
fn damaged_sd_files_are_rejected() {
    let bytes = model();
    // Rename one tensor in the table: binding names the missing one.
    for name in [
        "vae.decoder.conv_out.weight",
        "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        "text_encoder.text_model.final_layer_norm.bias",
        "tokenizer",
    ] {
        let mut b = bytes.clone();
        let needle: Vec<u8> = [name.as_bytes(), &[0u8]].concat();
        let at = b
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{name} in the table"));
        b[at] = b'X';
        let file = ModelFile::parse(&b).unwrap();
        assert_eq!(
            StableDiffusion::from_file(&file).unwrap_err(),
            FormatError::MissingTensor(name.to_string()),
        );
    }
    // A config cut short.
    let file = ModelFile::parse(&bytes).unwrap();
    let mut short = file.clone();
    short.config.pop();
    assert_eq!(
        StableDiffusion::from_file(&short).unwrap_err(),
        FormatError::BadConfig("config too short")
    );
    // A config with a word past its last field.
    let mut long = file.clone();
    long.config.push(0);
    assert_eq!(
        StableDiffusion::from_file(&long).unwrap_err(),
        FormatError::BadConfig("config has words past its last field")
    );
    // An unknown block type code.
    let mut odd = file.clone();
    let mut config = SdConfig::from_words(&odd.config).unwrap();
    config.unet.down_block_types[0] = 9;
    odd.config = config.to_words();
    assert_eq!(
        StableDiffusion::from_file(&odd).unwrap_err(),
        FormatError::BadConfig("unknown block type code")
    );
}
