//! Crafted image model files (`image/`), built with the core's writer and
//! patched.

use oracle_core::diffusion::unet2d::UNet2DConfig;
use oracle_core::format::{Arch, ModelWriter};

use super::model_file::{entry_field, zero_matrix, FILE_LEN, N_TENSORS, TABLE_OFF, WORDS};
use super::{put_u32, put_u64, Hostile};

/// A UNet2D config of one block of `channels`, one ResNet, sample side `sample`,
/// block type `kind` (0 plain, 2 cross-attention).
fn unet_config(channels: u32, sample: u32, kind: u32) -> UNet2DConfig {
    UNet2DConfig {
        in_channels: 1,
        out_channels: 1,
        layers_per_block: 1,
        groups: 1,
        attn_groups: 1,
        down_pad: 1,
        sample_size: sample,
        train_timesteps: 1000,
        block_out_channels: vec![channels],
        down_block_types: vec![kind],
        up_block_types: vec![kind],
        ..UNet2DConfig::default()
    }
}

fn norm(w: &mut ModelWriter, p: &str, c: u32) {
    w.add_i32(&format!("{p}.weight"), 1, c, 16, &vec![1 << 16; c as usize]);
    w.add_i32(&format!("{p}.bias"), 1, c, 16, &vec![0; c as usize]);
}

fn conv(w: &mut ModelWriter, p: &str, cin: u32, cout: u32, k: u32) {
    zero_matrix(w, &format!("{p}.weight"), cout, cin * k * k);
    w.add_i32(&format!("{p}.bias"), 1, cout, 16, &vec![0; cout as usize]);
}

/// A small image file: a UNet2D header of sample side `sample` with a few valid
/// tensors (it parses; binding it fails on the first missing tensor).
pub fn small_unet(sample: u32) -> Vec<u8> {
    let mut w = ModelWriter::new(Arch::UNet2D, unet_config(2, sample, 0).to_words());
    norm(&mut w, "conv_norm_out", 2);
    conv(&mut w, "conv_in", 1, 2, 3);
    w.finish()
}

/// The image model files.
pub fn files() -> Vec<Hostile> {
    let mut out = Vec::new();
    let base = small_unet(8);
    let patched = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        b
    };
    out.push(Hostile::new(
        "image/huge-sample-size.img",
        "a UNet2D with sample_size 65536: a map of 2^32 pixels per channel, terabytes of activations on the first request",
        small_unet(1 << 16),
    ));
    // A cross-attention block asking for 2^32 - 1 transformer layers: the binder
    // reserved a vector of that many blocks before reading the first.
    let mut config = unet_config(2, 8, 2);
    config.cross_attention_dim = 4;
    config.heads = 1;
    config.transformer_layers = u32::MAX;
    let mut w = ModelWriter::new(Arch::UNet2D, config.to_words());
    let p = "down_blocks.0.resnets.0";
    norm(&mut w, &format!("{p}.norm1"), 2);
    conv(&mut w, &format!("{p}.conv1"), 2, 2, 3);
    zero_matrix(&mut w, &format!("{p}.time_emb_proj.weight"), 2, 8);
    w.add_i32(&format!("{p}.time_emb_proj.bias"), 1, 2, 16, &[0, 0]);
    norm(&mut w, &format!("{p}.norm2"), 2);
    conv(&mut w, &format!("{p}.conv2"), 2, 2, 3);
    out.push(Hostile::new(
        "image/huge-transformer-layers.img",
        "2^32 - 1 transformer layers: `Vec::with_capacity` of 4 billion blocks aborted the process",
        w.finish(),
    ));
    out.push(Hostile::new(
        "image/huge-config-words.img",
        "2^32 - 1 config words: the config section's end wrapped",
        patched(&|b| put_u32(b, WORDS, u32::MAX)),
    ));
    out.push(Hostile::new(
        "image/wrapped-table-offset.img",
        "a tensor table at 2^64 - 100",
        patched(&|b| put_u64(b, TABLE_OFF, u64::MAX - 100)),
    ));
    out.push(Hostile::new(
        "image/wrapped-table-length.img",
        "4 billion tensors of 176 bytes",
        patched(&|b| put_u32(b, N_TENSORS, u32::MAX)),
    ));
    out.push(Hostile::new(
        "image/wrapped-tensor-offset.img",
        "a tensor at offset 2^64 - 64",
        patched(&|b| {
            let at = entry_field(b, 0, 24);
            put_u64(b, at, u64::MAX - 63);
        }),
    ));
    out.push(Hostile::new(
        "image/overlapping-tensors.img",
        "two tensors over the same bytes",
        patched(&|b| {
            let first = entry_field(b, 0, 24);
            let v = u64::from_le_bytes(b[first..first + 8].try_into().unwrap());
            let second = entry_field(b, 1, 24);
            put_u64(b, second, v);
        }),
    ));
    out.push(Hostile::new(
        "image/unknown-arch.img",
        "an architecture id no build knows",
        patched(&|b| put_u32(b, 12, 77)),
    ));
    out.push(Hostile::new(
        "image/length-mismatch.img",
        "the header's file length differs from the file",
        patched(&|b| put_u64(b, FILE_LEN, 12)),
    ));
    out.push(Hostile::new(
        "image/short.img",
        "the magic and nothing else of the header",
        base[..20].to_vec(),
    ));
    out
}
