//! A diffusers `StableDiffusionPipeline` folder (tiny-sd) to one `ARCH_SD` image
//! model file: tokenizer, text encoder, conditional UNet, VAE decoder and DDIM
//! tables under one Merkle root (layout in [`oracle_core::diffusion::sd`]).
//!
//! The float components are loaded by [`crate::diffusion::sd::StableDiffusion`],
//! so a missing component, a tensor of the wrong shape or an unsupported block
//! type is the loader's typed error, naming the component, tensor or block.

use std::path::Path;

use oracle_core::diffusion::sd::{
    CLIP_PREFIX, SD_CLIP, SD_VAE, SD_WORDS, TOKENIZER, UNET_PREFIX, VAE_PREFIX,
};
use oracle_core::diffusion::unet2d::*;
use oracle_core::diffusion::vae::*;
use oracle_core::image_format::{ImageModelWriter, ARCH_SD};
use oracle_core::quant::QType;

use super::quantize::add_conv;
use super::unet2d::{
    add_attention, add_down_blocks, add_norm, add_resnet, add_tables, add_up_blocks,
    scheduler_words, unsupported,
};
use super::ImageError;
use crate::diffusion::blocks::Transformer2D;
use crate::diffusion::sd::StableDiffusion;
use crate::diffusion::unet2d_condition::UNet2DConditionModel;
use crate::diffusion::vae::{VaeDecoder, VAE_EPS};
use crate::image_clip::{
    eps_q32, tokenizer_blob, write_tokenizer, QuantizedClip, QuantizedTransformer2D,
};

/// Load the float pipeline of a diffusers folder.
///
/// # Errors
/// A missing component, bad configs or shapes, unsupported blocks.
pub fn load_folder(dir: &Path) -> Result<StableDiffusion, ImageError> {
    Ok(StableDiffusion::load_dir(dir)?)
}

/// Whether a diffusers folder's `model_index.json` names a
/// `StableDiffusionPipeline`.
pub fn is_sd_folder(dir: &Path) -> bool {
    crate::diffusion::diffusers::PipelineFolder::open(dir)
        .is_ok_and(|p| p.class_name == "StableDiffusionPipeline")
}

fn transformer(w: &mut ImageModelWriter, prefix: &str, t: &Transformer2D, group: usize) {
    QuantizedTransformer2D::quantize(t, QType::Q8, group as u32).write(w, &format!("{prefix}."));
}

fn unet_words(words: &mut [u32], m: &UNet2DConditionModel) -> Result<(), ImageError> {
    let c = &m.config;
    let n = c.block_out_channels.len();
    if n > 8 || c.layers_per_block > 8 {
        return Err(unsupported("UNet size", &format!("{n} blocks")));
    }
    if c.mid_block_scale_factor != 1.0 {
        return Err(unsupported(
            "mid_block_scale_factor",
            &c.mid_block_scale_factor.to_string(),
        ));
    }
    if c.freq_shift != 0.0 && c.freq_shift != 1.0 {
        return Err(unsupported("freq_shift", &c.freq_shift.to_string()));
    }
    words[W_IN] = c.in_channels as u32;
    words[W_OUT] = c.out_channels as u32;
    words[W_BLOCKS] = n as u32;
    words[W_LAYERS] = c.layers_per_block as u32;
    words[W_HEAD_DIM] = 0;
    words[W_GROUPS] = c.norm_num_groups as u32;
    words[W_ATTN_GROUPS] = c.norm_num_groups as u32;
    words[W_EPS] = eps_q32(c.norm_eps);
    words[W_FLIP] = u32::from(c.flip_sin_to_cos);
    words[W_DOWN_PAD] = c.downsample_padding as u32;
    words[W_MID] = 3;
    words[W_SAMPLE] = c.sample_size.unwrap_or(0) as u32;
    words[W_CROSS_DIM] = c.cross_attention_dim as u32;
    words[W_TRANSFORMER_LAYERS] = m
        .mid_block
        .attention
        .transformer_blocks
        .len()
        .try_into()
        .unwrap_or(0);
    words[W_HEADS] = c.heads() as u32;
    for i in 0..n {
        words[W_CHANNELS + i] = c.block_out_channels[i] as u32;
        words[W_CHANNELS + n + i] = if c.down_block_types[i] == "CrossAttnDownBlock2D" {
            2
        } else {
            0
        };
        words[W_CHANNELS + 2 * n + i] = if c.up_block_types[i] == "CrossAttnUpBlock2D" {
            2
        } else {
            0
        };
    }
    Ok(())
}

fn vae_words(words: &mut [u32], v: &VaeDecoder) -> Result<(), ImageError> {
    let c = &v.config;
    let n = c.block_out_channels.len();
    if n > 8 || c.layers_per_block > 8 {
        return Err(unsupported("VAE size", &format!("{n} blocks")));
    }
    let inv = (1.0 / f64::from(c.scaling_factor) * 65536.0).round();
    if !(1.0..2_147_483_647.0).contains(&inv) {
        return Err(unsupported("scaling_factor", &c.scaling_factor.to_string()));
    }
    let w = &mut words[SD_VAE..];
    w[V_LATENT] = c.latent_channels as u32;
    w[V_OUT] = c.out_channels as u32;
    w[V_BLOCKS] = n as u32;
    w[V_LAYERS] = c.layers_per_block as u32;
    w[V_GROUPS] = c.norm_num_groups as u32;
    w[V_EPS] = eps_q32(VAE_EPS);
    w[V_MID_ATTENTION] = u32::from(v.mid_block.attention.is_some());
    w[V_POST_QUANT] = u32::from(v.post_quant_conv.is_some());
    w[V_INV_SCALE] = inv as u32;
    for (i, &ch) in c.block_out_channels.iter().enumerate() {
        w[V_CHANNELS + i] = ch as u32;
    }
    Ok(())
}

fn add_unet(
    w: &mut ImageModelWriter,
    m: &UNet2DConditionModel,
    g: usize,
) -> Result<(), ImageError> {
    let p = |s: &str| format!("{UNET_PREFIX}{s}");
    add_conv(w, &p("conv_in"), &m.conv_in, g);
    super::quantize::add_linear(
        w,
        &p("time_embedding.linear_1"),
        &m.time_embedding.linear_1,
        g,
    );
    super::quantize::add_linear(
        w,
        &p("time_embedding.linear_2"),
        &m.time_embedding.linear_2,
        g,
    );
    let attention = |w: &mut ImageModelWriter, p: &str, t: &Transformer2D| {
        transformer(w, p, t, g);
        Ok(())
    };
    add_down_blocks(w, UNET_PREFIX, &m.down_blocks, g, attention)?;
    let mb = &m.mid_block;
    add_resnet(w, &p("mid_block.resnets.0"), &mb.resnets[0], g)?;
    transformer(w, &p("mid_block.attentions.0"), &mb.attention, g);
    add_resnet(w, &p("mid_block.resnets.1"), &mb.resnets[1], g)?;
    add_up_blocks(w, UNET_PREFIX, &m.up_blocks, g, attention)?;
    add_norm(w, &p("conv_norm_out"), &m.conv_norm_out);
    add_conv(w, &p("conv_out"), &m.conv_out, g);
    Ok(())
}

fn add_vae(w: &mut ImageModelWriter, v: &VaeDecoder, g: usize) -> Result<(), ImageError> {
    let d = format!("{VAE_PREFIX}decoder");
    if let Some(c) = &v.post_quant_conv {
        add_conv(w, &format!("{VAE_PREFIX}post_quant_conv"), c, g);
    }
    add_conv(w, &format!("{d}.conv_in"), &v.conv_in, g);
    let mb = &v.mid_block;
    add_resnet(w, &format!("{d}.mid_block.resnets.0"), &mb.resnets[0], g)?;
    if let Some(a) = &mb.attention {
        add_attention(w, &format!("{d}.mid_block.attentions.0"), a, g)?;
    }
    add_resnet(w, &format!("{d}.mid_block.resnets.1"), &mb.resnets[1], g)?;
    for (i, b) in v.up_blocks.iter().enumerate() {
        for (k, r) in b.resnets.iter().enumerate() {
            add_resnet(w, &format!("{d}.up_blocks.{i}.resnets.{k}"), r, g)?;
        }
        if let Some(u) = &b.upsampler {
            add_conv(
                w,
                &format!("{d}.up_blocks.{i}.upsamplers.0.conv"),
                &u.conv,
                g,
            );
        }
    }
    add_norm(w, &format!("{d}.conv_norm_out"), &v.conv_norm_out);
    add_conv(w, &format!("{d}.conv_out"), &v.conv_out, g);
    Ok(())
}

/// The `ARCH_SD` image model file of a float pipeline: Q8 weights in groups of
/// `group` (a whole row when shorter), Q16 biases and norms.
///
/// # Errors
/// Settings the integer core does not implement (named in the error).
pub fn export_sd(sd: &StableDiffusion, group: usize) -> Result<Vec<u8>, ImageError> {
    if sd.scheduler.config.prediction_type != "epsilon" {
        return Err(unsupported(
            "prediction_type",
            &sd.scheduler.config.prediction_type,
        ));
    }
    let mut words = vec![0u32; SD_WORDS];
    unet_words(&mut words, &sd.unet)?;
    scheduler_words(&mut words, &sd.scheduler);
    vae_words(&mut words, &sd.vae)?;
    let clip = QuantizedClip::quantize(&sd.text_encoder, QType::Q8, group as u32);
    words[SD_CLIP..].copy_from_slice(&clip.config.to_words());
    let mut w = ImageModelWriter::new(ARCH_SD, words);
    write_tokenizer(&mut w, TOKENIZER, &tokenizer_blob(&sd.tokenizer)?);
    clip.write(&mut w, CLIP_PREFIX);
    add_unet(&mut w, &sd.unet, group)?;
    add_vae(&mut w, &sd.vae, group)?;
    let c = &sd.unet.config;
    add_tables(
        &mut w,
        UNET_PREFIX,
        c.block_out_channels[0],
        c.freq_shift,
        &sd.scheduler,
    )?;
    Ok(w.finish())
}
