//! A diffusers `StableDiffusionPipeline` folder (tiny-sd) to one
//! `Arch::StableDiffusion` model file: tokenizer, text encoder, conditional UNet, VAE decoder and DDIM
//! tables under one Merkle root (layout in [`oracle_core::diffusion::sd`]).
//!
//! The float components are loaded by [`crate::diffusion::sd::StableDiffusion`],
//! so a missing component, a tensor of the wrong shape or an unsupported block
//! type is the loader's typed error, naming the component, tensor or block.

use std::path::Path;

use oracle_core::diffusion::sd::{SdConfig, CLIP_PREFIX, TOKENIZER, UNET_PREFIX, VAE_PREFIX};
use oracle_core::diffusion::unet2d::UNet2DConfig;
use oracle_core::diffusion::vae::VaeConfig;
use oracle_core::format::{Arch, ModelWriter};
use oracle_core::quant::QType;

use super::quantize::add_conv;
use super::unet2d::{
    add_attention, add_down_blocks, add_norm, add_resnet, add_tables, add_up_blocks,
    scheduler_config, unsupported,
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

fn transformer(w: &mut ModelWriter, prefix: &str, t: &Transformer2D, group: usize) {
    QuantizedTransformer2D::quantize(t, QType::Q8, group as u32).write(w, &format!("{prefix}."));
}

fn unet_config(m: &UNet2DConditionModel) -> Result<UNet2DConfig, ImageError> {
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
    let kinds = |types: &[String], cross: &str| -> Vec<u32> {
        types
            .iter()
            .map(|t| if t == cross { 2 } else { 0 })
            .collect()
    };
    Ok(UNet2DConfig {
        in_channels: c.in_channels as u32,
        out_channels: c.out_channels as u32,
        layers_per_block: c.layers_per_block as u32,
        groups: c.norm_num_groups as u32,
        attn_groups: c.norm_num_groups as u32,
        eps_q32: eps_q32(c.norm_eps),
        flip_sin_to_cos: c.flip_sin_to_cos,
        down_pad: c.downsample_padding as u32,
        mid_block: 3,
        sample_size: c.sample_size.unwrap_or(0) as u32,
        cross_attention_dim: c.cross_attention_dim as u32,
        transformer_layers: m
            .mid_block
            .attention
            .transformer_blocks
            .len()
            .try_into()
            .unwrap_or(0),
        heads: c.heads() as u32,
        block_out_channels: c.block_out_channels.iter().map(|&ch| ch as u32).collect(),
        down_block_types: kinds(&c.down_block_types[..n], "CrossAttnDownBlock2D"),
        up_block_types: kinds(&c.up_block_types[..n], "CrossAttnUpBlock2D"),
        ..UNet2DConfig::default()
    })
}

fn vae_config(v: &VaeDecoder) -> Result<VaeConfig, ImageError> {
    let c = &v.config;
    let n = c.block_out_channels.len();
    if n > 8 || c.layers_per_block > 8 {
        return Err(unsupported("VAE size", &format!("{n} blocks")));
    }
    let inv = (1.0 / f64::from(c.scaling_factor) * 65536.0).round();
    if !(1.0..2_147_483_647.0).contains(&inv) {
        return Err(unsupported("scaling_factor", &c.scaling_factor.to_string()));
    }
    Ok(VaeConfig {
        latent_channels: c.latent_channels as u32,
        out_channels: c.out_channels as u32,
        layers_per_block: c.layers_per_block as u32,
        groups: c.norm_num_groups as u32,
        eps_q32: eps_q32(VAE_EPS),
        mid_attention: v.mid_block.attention.is_some(),
        post_quant_conv: v.post_quant_conv.is_some(),
        inv_scale_q16: inv as u32,
        block_out_channels: c.block_out_channels.iter().map(|&ch| ch as u32).collect(),
    })
}

fn add_unet(w: &mut ModelWriter, m: &UNet2DConditionModel, g: usize) -> Result<(), ImageError> {
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
    let attention = |w: &mut ModelWriter, p: &str, t: &Transformer2D| {
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

fn add_vae(w: &mut ModelWriter, v: &VaeDecoder, g: usize) -> Result<(), ImageError> {
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

/// The `Arch::StableDiffusion` model file of a float pipeline: Q8 weights in groups of
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
    let mut unet = unet_config(&sd.unet)?;
    scheduler_config(&mut unet, &sd.scheduler);
    let clip = QuantizedClip::quantize(&sd.text_encoder, QType::Q8, group as u32);
    let config = SdConfig {
        unet,
        vae: vae_config(&sd.vae)?,
        clip: clip.config,
    };
    let mut w = ModelWriter::new(Arch::StableDiffusion, config.to_words());
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
