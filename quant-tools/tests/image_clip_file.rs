//! The CLIP tokenizer, text encoder and a `Transformer2DModel` written into an
//! image model file by `oracle_quant::image_clip` and bound back by the core's
//! loaders (checkpoint names): the same bits as the in-memory structs, and clear
//! errors for a missing tensor or a config that disagrees with the shapes.

use std::path::{Path, PathBuf};

use oracle_core::diffusion::clip::{
    ClipTextConfig, ClipTextModel as IntClip, ClipTokenizer as IntTokenizer,
};
use oracle_core::diffusion::transformer::{Transformer2D, Transformer2DConfig};
use oracle_core::format::{Arch, ModelFile, ModelWriter};
use oracle_core::quant::QType;
use oracle_core::{Exec, FormatError};
use oracle_quant::diffusion::clip::{ClipTextModel, ClipTokenizer};
use oracle_quant::diffusion::unet2d_condition::UNet2DConditionModel;
use oracle_quant::image_clip::{
    tokenizer_blob, write_tokenizer, QuantizedClip, QuantizedTransformer2D,
};

const CLIP: &str = "text_encoder.text_model.";
const MID: &str = "unet.mid_block.attentions.0.";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-sd")
}

struct Parts {
    clip: QuantizedClip,
    mid: QuantizedTransformer2D,
    blob: Vec<u8>,
}

fn parts() -> Parts {
    let tok = ClipTokenizer::load_dir(&fixture().join("tokenizer")).unwrap();
    let clip = ClipTextModel::load_dir(&fixture().join("text_encoder")).unwrap();
    let unet = UNet2DConditionModel::load_dir(&fixture().join("unet")).unwrap();
    Parts {
        clip: QuantizedClip::quantize(&clip, QType::Q8, 32),
        mid: QuantizedTransformer2D::quantize(&unet.mid_block.attention, QType::Q8, 32),
        blob: tokenizer_blob(&tok).unwrap(),
    }
}

fn file_bytes(p: &Parts, skip_mid: bool) -> Vec<u8> {
    let mut w = ModelWriter::new(Arch::UNet2D, p.clip.config.to_words());
    write_tokenizer(&mut w, "tokenizer", &p.blob);
    p.clip.write(&mut w, CLIP);
    if !skip_mid {
        p.mid.write(&mut w, MID);
    }
    w.finish()
}

fn mid_config() -> Transformer2DConfig {
    Transformer2DConfig {
        channels: 64,
        heads: 8,
        layers: 1,
        context_dim: 32,
        groups: 8,
    }
}

#[test]
fn file_round_trip_gives_the_same_bits() {
    let p = parts();
    let bytes = file_bytes(&p, false);
    let file = ModelFile::parse(&bytes).unwrap();

    let tok = IntTokenizer::load(&file, "tokenizer").unwrap();
    assert_eq!(tok, IntTokenizer::parse(&p.blob).unwrap());
    let ids = tok.encode_padded("a red cat on the moon");

    let config = ClipTextConfig::from_words(&file.config).unwrap();
    assert_eq!(config, p.clip.config);
    assert!(ClipTextConfig::from_words(&file.config[..6]).is_err());
    let clip = IntClip::load(&file, CLIP, config).unwrap();
    let ctx = clip.forward(Exec::default(), &ids).unwrap();
    assert_eq!(ctx, p.clip.model().forward(Exec::SCALAR, &ids).unwrap());

    let mid = Transformer2D::load(&file, MID, mid_config()).unwrap();
    let x: Vec<i32> = (0..64 * 16)
        .map(|i| ((i * 7919) % 131_071) - 65_535)
        .collect();
    let (mut a, mut b) = (vec![0; 64 * 16], vec![0; 64 * 16]);
    mid.forward(Exec::default(), &x, 16, &ctx, 77, &mut a);
    p.mid
        .model()
        .forward(Exec::SCALAR, &x, 16, &ctx, 77, &mut b);
    assert_eq!(a, b);
}

#[test]
fn missing_tensors_and_wrong_configs_are_errors() {
    let p = parts();
    let bytes = file_bytes(&p, true);
    let file = ModelFile::parse(&bytes).unwrap();
    let e = Transformer2D::load(&file, MID, mid_config()).unwrap_err();
    assert!(matches!(e, FormatError::MissingTensor(_)), "{e}");
    assert!(IntTokenizer::load(&file, "no-such").is_err());

    let mut cfg = p.clip.config;
    cfg.intermediate = 40;
    let e = IntClip::load(&file, CLIP, cfg).unwrap_err();
    assert!(matches!(e, FormatError::BadTensor { .. }), "{e}");
    let mut cfg = p.clip.config;
    cfg.heads = 5;
    assert!(matches!(
        IntClip::load(&file, CLIP, cfg),
        Err(FormatError::BadConfig(_))
    ));

    let bytes = file_bytes(&p, false);
    let file = ModelFile::parse(&bytes).unwrap();
    let mut cfg = mid_config();
    cfg.context_dim = 40;
    assert!(Transformer2D::load(&file, MID, cfg).is_err());
    let mut cfg = mid_config();
    cfg.groups = 7;
    assert!(Transformer2D::load(&file, MID, cfg).is_err());
}
