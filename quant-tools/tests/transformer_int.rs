//! The integer `Transformer2DModel` of `oracle_core::diffusion::transformer`
//! against the float32 reference block (`oracle_quant::diffusion::blocks`), on
//! tiny-sd's real UNet weights (Q8, groups of 32), fed the real activations that
//! reach each block in the float UNet at t = 501 and the real CLIP hidden states
//! of a prompt. Reports max abs error and SNR per block, with pinned thresholds;
//! scalar, SIMD and two-thread runs must give the same bits; a keccak256 of each
//! block's integer output is pinned in `tests/golden/transformer_int.txt` (re-pin
//! with `ORACLE_BLESS=1 cargo test -p oracle-quant --test transformer_int`).
#![allow(clippy::float_arithmetic)]

use std::path::{Path, PathBuf};

use oracle_core::commit::merkle::{keccak, to_hex};
use oracle_core::kernels::Simd;
use oracle_core::quant::QType;
use oracle_core::Exec;
use oracle_quant::diffusion::blocks::Transformer2D;
use oracle_quant::diffusion::clip::{ClipTextModel, ClipTokenizer};
use oracle_quant::diffusion::ops::timestep_embedding;
use oracle_quant::diffusion::unet2d_condition::UNet2DConditionModel;
use oracle_quant::diffusion::Tensor;
use oracle_quant::image_clip::{QuantizedClip, QuantizedTransformer2D};
use oracle_quant::quantize::to_fixed;

const PROMPT: &str = "A photo of a  red cat, sitting! it's 42";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-sd")
}

/// Max abs error and SNR (dB) of integer Q16 values against float ones.
fn compare(int: &[i32], float: &[f32]) -> (f64, f64) {
    let mut max = 0f64;
    let (mut sig, mut noise) = (0f64, 0f64);
    for (&i, &f) in int.iter().zip(float) {
        let e = f64::from(i) / 65536.0 - f64::from(f);
        max = max.max(e.abs());
        sig += f64::from(f) * f64::from(f);
        noise += e * e;
    }
    (max, 10.0 * (sig / noise).log10())
}

/// The float inputs of the three transformers of the float UNet at t = 501:
/// `down_blocks.0.attentions.0`, `mid_block.attentions.0`, `up_blocks.1.attentions.0`
/// (the last one: its real resnet applied to a stand-in input, see below).
fn block_inputs(unet: &UNet2DConditionModel, context: &Tensor) -> Vec<(&'static str, Tensor)> {
    let lat = Tensor::new(
        vec![4, 8, 8],
        (0..256)
            .map(|i| (0.37 * i as f64 + 0.1).sin() as f32)
            .collect(),
    )
    .unwrap();
    let c = &unet.config;
    let e = timestep_embedding(
        501.0,
        c.block_out_channels[0],
        c.flip_sin_to_cos,
        c.freq_shift,
    );
    let temb = unet.time_embedding.forward(&e);
    let t = Some(temb.as_slice());
    let h0 = unet.conv_in.forward(&lat);
    let d0 = &unet.down_blocks[0];
    let x_down = d0.resnets[0].forward(&h0, t);
    let a_down = d0.attentions[0].forward(&x_down, context);
    let h = d0.downsampler.as_ref().unwrap().forward(&a_down);
    let h = unet.down_blocks[1].resnets[0].forward(&h, t);
    let x_mid = unet.mid_block.resnets[0].forward(&h, t);
    // up_blocks.1 (CrossAttnUpBlock2D at 8x8): its first resnet takes the upsampled
    // map concatenated with a skip. Stand-in: the resnet's input channels filled
    // cyclically with the real output of down block 0, then its real resnet.
    let up = &unet.up_blocks[1];
    let cin = up.resnets[0].norm1.weight.len();
    let mut cat = Tensor::zeros(&[cin, 8, 8]);
    let plane = 64;
    for ch in 0..cin {
        let src = &a_down.data[(ch % 32) * plane..(ch % 32 + 1) * plane];
        cat.data[ch * plane..(ch + 1) * plane].copy_from_slice(src);
    }
    let x_up = up.resnets[0].forward(&cat, t);
    vec![
        ("down_blocks.0", x_down),
        ("mid_block", x_mid),
        ("up_blocks.1", x_up),
    ]
}

fn blocks(unet: &UNet2DConditionModel) -> Vec<&Transformer2D> {
    vec![
        &unet.down_blocks[0].attentions[0],
        &unet.mid_block.attention,
        &unet.up_blocks[1].attentions[0],
    ]
}

#[test]
fn transformer_blocks_close_to_float_and_equal_across_kernels() {
    let unet = UNet2DConditionModel::load_dir(&fixture().join("unet")).unwrap();
    let clip = ClipTextModel::load_dir(&fixture().join("text_encoder")).unwrap();
    let tok = ClipTokenizer::load_dir(&fixture().join("tokenizer")).unwrap();
    let ids = tok.encode_padded(PROMPT);
    let context = clip.forward(&ids).unwrap();
    // The integer CLIP's own hidden states, for the end-to-end figure.
    let qclip = QuantizedClip::quantize(&clip, QType::Q8, 32);
    let int_context = qclip.model().forward(Exec::SCALAR, &ids).unwrap();
    let float_context = to_fixed(&context.data, 16);

    let mut golden = String::new();
    for ((name, x), block) in block_inputs(&unet, &context).into_iter().zip(blocks(&unet)) {
        let want = block.forward(&x, &context);
        let q = QuantizedTransformer2D::quantize(block, QType::Q8, 32);
        let model = q.model();
        model.validate(32).unwrap();
        let (c, hw) = (x.shape[0], x.shape[1] * x.shape[2]);
        let xi = to_fixed(&x.data, 16);
        let mut got = vec![0; c * hw];
        model.forward(Exec::SCALAR, &xi, hw, &float_context, 77, &mut got);
        let (max, snr) = compare(&got, &want.data);
        // Only the transformer's own change (output minus input), which the
        // residual would otherwise hide.
        let delta_int: Vec<i32> = got.iter().zip(&xi).map(|(a, b)| a - b).collect();
        let delta_float: Vec<f32> = want.data.iter().zip(&x.data).map(|(a, b)| a - b).collect();
        let (dmax, dsnr) = compare(&delta_int, &delta_float);
        let mut e2e = vec![0; c * hw];
        model.forward(Exec::SCALAR, &xi, hw, &int_context, 77, &mut e2e);
        let (emax, esnr) = compare(&e2e, &want.data);
        println!(
            "{name} ({c}x{hw}): output max {max:.5} SNR {snr:.2} dB; block delta max {dmax:.5} \
             SNR {dsnr:.2} dB; with integer CLIP context max {emax:.5} SNR {esnr:.2} dB"
        );
        assert!(snr > 52.0 && dsnr > 39.0 && esnr > 52.0, "{name}");
        assert!(max < 0.01 && dmax < 0.01 && emax < 0.01, "{name}");
        for exec in [
            Exec {
                simd: Simd::Best,
                threads: 1,
            },
            Exec {
                simd: Simd::Best,
                threads: 2,
            },
        ] {
            let mut other = vec![0; c * hw];
            model.forward(exec, &xi, hw, &float_context, 77, &mut other);
            assert_eq!(other, got, "{name} {exec:?}");
        }
        for (label, out) in [("float-context", &got), ("int-context", &e2e)] {
            let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
            golden.push_str(&format!(
                "{name} q8g32 {label} {}\n",
                to_hex(&keccak(&bytes))
            ));
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/transformer_int.txt");
    if std::env::var_os("ORACLE_BLESS").is_some() {
        std::fs::write(&path, &golden).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden file (ORACLE_BLESS=1 creates it)");
    assert_eq!(golden, want);
}

#[test]
fn bad_shapes_are_errors() {
    let unet = UNet2DConditionModel::load_dir(&fixture().join("unet")).unwrap();
    let q = QuantizedTransformer2D::quantize(&unet.mid_block.attention, QType::Q8, 32);
    let model = q.model();
    assert!(model.validate(32).is_ok());
    assert!(model.validate(40).is_err(), "wrong context width");
    let mut m = model.clone();
    m.norm_groups = 7;
    assert!(m.validate(32).is_err(), "groups must divide channels");
    let mut m = model.clone();
    m.proj_in.bias = None;
    assert!(m.validate(32).is_err(), "proj_in needs its bias");
    let mut m = model;
    m.transformer_blocks[0].attn1.heads = 0;
    assert!(m.validate(32).is_err(), "zero heads");
}
