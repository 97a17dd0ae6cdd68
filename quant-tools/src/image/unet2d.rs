//! A diffusers `UNet2DModel` + `DDIMScheduler` folder to an `Arch::UNet2D` model
//! file (config and tables in [`oracle_core::diffusion::unet2d`]).

use std::path::Path;

use oracle_core::diffusion::unet2d::UNet2DConfig;
use oracle_core::format::{Arch, ModelWriter};

use super::quantize::{add_conv, add_linear, add_q16, q30};
use super::ImageError;
use crate::diffusion::blocks::{ResnetBlock2D, SpatialAttention};
use crate::diffusion::ddim::Ddim;
use crate::diffusion::diffusers::PipelineFolder;
use crate::diffusion::ops::GroupNorm;
use crate::diffusion::unet2d::UNet2DModel;
use crate::diffusion::unet_blocks::{DownBlock, UpBlock};
use crate::diffusion::DiffusionError;

/// Load the float UNet and scheduler of a diffusers folder.
///
/// # Errors
/// Missing components, bad configs or shapes, unsupported blocks.
pub fn load_folder(dir: &Path) -> Result<(UNet2DModel, Ddim), ImageError> {
    let p = PipelineFolder::open(dir)?;
    let unet = UNet2DModel::load_dir(&p.component("unet", "UNet2DModel")?)?;
    let ddim = Ddim::load_dir(&p.component("scheduler", "DDIMScheduler")?)?;
    Ok((unet, ddim))
}

/// Add `{p}.weight` and `{p}.bias` of a GroupNorm (Q16).
pub(crate) fn add_norm(w: &mut ModelWriter, p: &str, n: &GroupNorm) {
    add_q16(w, &format!("{p}.weight"), &n.weight);
    add_q16(w, &format!("{p}.bias"), &n.bias);
}

/// Add a ResNet's tensors under `p` (`time_emb_proj` when present).
pub(crate) fn add_resnet(
    w: &mut ModelWriter,
    p: &str,
    r: &ResnetBlock2D,
    g: usize,
) -> Result<(), ImageError> {
    if r.output_scale_factor != 1.0 {
        return Err(unsupported(
            "output_scale_factor",
            &r.output_scale_factor.to_string(),
        ));
    }
    add_norm(w, &format!("{p}.norm1"), &r.norm1);
    add_conv(w, &format!("{p}.conv1"), &r.conv1, g);
    if let Some(proj) = &r.time_emb_proj {
        add_linear(w, &format!("{p}.time_emb_proj"), proj, g);
    }
    add_norm(w, &format!("{p}.norm2"), &r.norm2);
    add_conv(w, &format!("{p}.conv2"), &r.conv2, g);
    if let Some(c) = &r.conv_shortcut {
        add_conv(w, &format!("{p}.conv_shortcut"), c, g);
    }
    Ok(())
}

/// Add a spatial attention's tensors under `p`.
pub(crate) fn add_attention(
    w: &mut ModelWriter,
    p: &str,
    a: &SpatialAttention,
    g: usize,
) -> Result<(), ImageError> {
    if a.rescale != 1.0 {
        return Err(unsupported("rescale_output_factor", &a.rescale.to_string()));
    }
    add_norm(w, &format!("{p}.group_norm"), &a.group_norm);
    add_linear(w, &format!("{p}.to_q"), &a.to_q, g);
    add_linear(w, &format!("{p}.to_k"), &a.to_k, g);
    add_linear(w, &format!("{p}.to_v"), &a.to_v, g);
    add_linear(w, &format!("{p}.to_out.0"), &a.to_out, g);
    Ok(())
}

/// Add the tensors of `down_blocks.N` under `prefix`: per block its ResNets,
/// its attentions (through `attention`), then its downsampler.
pub(crate) fn add_down_blocks<A>(
    w: &mut ModelWriter,
    prefix: &str,
    blocks: &[DownBlock<A>],
    g: usize,
    attention: impl Fn(&mut ModelWriter, &str, &A) -> Result<(), ImageError>,
) -> Result<(), ImageError> {
    for (i, b) in blocks.iter().enumerate() {
        let bp = format!("{prefix}down_blocks.{i}");
        add_resnets_and_attentions(w, &bp, &b.resnets, &b.attentions, g, &attention)?;
        if let Some(d) = &b.downsampler {
            add_conv(w, &format!("{bp}.downsamplers.0.conv"), &d.conv, g);
        }
    }
    Ok(())
}

/// Add the tensors of `up_blocks.N` under `prefix`: per block its ResNets, its
/// attentions (through `attention`), then its upsampler.
pub(crate) fn add_up_blocks<A>(
    w: &mut ModelWriter,
    prefix: &str,
    blocks: &[UpBlock<A>],
    g: usize,
    attention: impl Fn(&mut ModelWriter, &str, &A) -> Result<(), ImageError>,
) -> Result<(), ImageError> {
    for (i, b) in blocks.iter().enumerate() {
        let bp = format!("{prefix}up_blocks.{i}");
        add_resnets_and_attentions(w, &bp, &b.resnets, &b.attentions, g, &attention)?;
        if let Some(u) = &b.upsampler {
            add_conv(w, &format!("{bp}.upsamplers.0.conv"), &u.conv, g);
        }
    }
    Ok(())
}

/// Add `{bp}.resnets.M`, then `{bp}.attentions.M`.
fn add_resnets_and_attentions<A>(
    w: &mut ModelWriter,
    bp: &str,
    resnets: &[ResnetBlock2D],
    attentions: &[A],
    g: usize,
    attention: &impl Fn(&mut ModelWriter, &str, &A) -> Result<(), ImageError>,
) -> Result<(), ImageError> {
    for (k, r) in resnets.iter().enumerate() {
        add_resnet(w, &format!("{bp}.resnets.{k}"), r, g)?;
    }
    for (k, a) in attentions.iter().enumerate() {
        attention(w, &format!("{bp}.attentions.{k}"), a)?;
    }
    Ok(())
}

pub(crate) fn unsupported(what: &'static str, name: &str) -> ImageError {
    DiffusionError::Unsupported {
        what,
        name: name.to_string(),
    }
    .into()
}

/// The image model file of a float UNet2D and its DDIM scheduler.
///
/// # Errors
/// Settings the integer core does not implement.
pub fn export_unet2d(m: &UNet2DModel, ddim: &Ddim, group: usize) -> Result<Vec<u8>, ImageError> {
    let c = &m.config;
    let n = c.block_out_channels.len();
    if c.mid_block_scale_factor != 1.0 {
        return Err(unsupported(
            "mid_block_scale_factor",
            &c.mid_block_scale_factor.to_string(),
        ));
    }
    if ddim.config.prediction_type != "epsilon" {
        return Err(unsupported("prediction_type", &ddim.config.prediction_type));
    }
    if c.freq_shift != 0.0 && c.freq_shift != 1.0 {
        return Err(unsupported("freq_shift", &c.freq_shift.to_string()));
    }
    let kinds = |types: &[String], attn: &str| -> Vec<u32> {
        types.iter().map(|t| u32::from(t == attn)).collect()
    };
    let mut config = UNet2DConfig {
        in_channels: c.in_channels as u32,
        out_channels: c.out_channels as u32,
        layers_per_block: c.layers_per_block as u32,
        head_dim: c.attention_head_dim.unwrap_or(0) as u32,
        groups: c.norm_num_groups as u32,
        attn_groups: c.attn_norm_num_groups.unwrap_or(c.norm_num_groups) as u32,
        eps_q32: (f64::from(c.norm_eps) * 4_294_967_296.0).round() as u32,
        flip_sin_to_cos: c.flip_sin_to_cos,
        down_pad: c.downsample_padding as u32,
        mid_block: match (&m.mid_block, c.add_attention) {
            (None, _) => 0,
            (Some(_), true) => 1,
            (Some(_), false) => 2,
        },
        sample_size: c.sample_size.unwrap_or(0) as u32,
        block_out_channels: c.block_out_channels[..n]
            .iter()
            .map(|&ch| ch as u32)
            .collect(),
        down_block_types: kinds(&c.down_block_types[..n], "AttnDownBlock2D"),
        up_block_types: kinds(&c.up_block_types[..n], "AttnUpBlock2D"),
        ..UNet2DConfig::default()
    };
    scheduler_config(&mut config, ddim);
    let mut w = ModelWriter::new(Arch::UNet2D, config.to_words());
    add_conv(&mut w, "conv_in", &m.conv_in, group);
    add_linear(
        &mut w,
        "time_embedding.linear_1",
        &m.time_embedding.linear_1,
        group,
    );
    add_linear(
        &mut w,
        "time_embedding.linear_2",
        &m.time_embedding.linear_2,
        group,
    );
    let attention =
        |w: &mut ModelWriter, p: &str, a: &SpatialAttention| add_attention(w, p, a, group);
    add_down_blocks(&mut w, "", &m.down_blocks, group, attention)?;
    if let Some(mb) = &m.mid_block {
        add_resnet(&mut w, "mid_block.resnets.0", &mb.resnets[0], group)?;
        if let Some(a) = &mb.attention {
            add_attention(&mut w, "mid_block.attentions.0", a, group)?;
        }
        add_resnet(&mut w, "mid_block.resnets.1", &mb.resnets[1], group)?;
    }
    add_up_blocks(&mut w, "", &m.up_blocks, group, attention)?;
    add_norm(&mut w, "conv_norm_out", &m.conv_norm_out);
    add_conv(&mut w, "conv_out", &m.conv_out, group);
    add_tables(&mut w, "", c.block_out_channels[0], c.freq_shift, ddim)?;
    Ok(w.finish())
}

/// The DDIM scheduler's fields of a UNet config (`train_timesteps` ..
/// `clip_sample_range_q16`).
pub(crate) fn scheduler_config(config: &mut UNet2DConfig, ddim: &Ddim) {
    config.train_timesteps = ddim.config.num_train_timesteps as u32;
    config.timestep_spacing = match ddim.config.timestep_spacing.as_str() {
        "leading" => 0,
        "trailing" => 1,
        _ => 2,
    };
    config.steps_offset = ddim.config.steps_offset as u32;
    config.clip_sample = ddim.config.clip_sample;
    config.clip_sample_range_q16 =
        (f64::from(ddim.config.clip_sample_range) * 65536.0).round() as u32;
}

/// Add the tables computed offline with `libm`: `{pre}time_proj.freqs` (half of
/// `ch0` frequencies) and the DDIM tables `scheduler.*`.
pub(crate) fn add_tables(
    w: &mut ModelWriter,
    pre: &str,
    ch0: usize,
    freq_shift: f32,
    ddim: &Ddim,
) -> Result<(), ImageError> {
    // Frequencies exp(-ln(10000) i / (half - shift)) / (2π), turns per timestep.
    let half = ch0 / 2;
    let turns: Vec<f64> = (0..half)
        .map(|i| {
            let e = -libm::log(10000.0) * i as f64 / (half as f64 - f64::from(freq_shift));
            libm::exp(e) / (2.0 * std::f64::consts::PI)
        })
        .collect();
    let frac = 32;
    let fq: Vec<i32> = turns
        .iter()
        .map(|&v| libm::round(libm::ldexp(v, frac)) as i32)
        .collect();
    w.add_i32(&format!("{pre}time_proj.freqs"), 1, half as u32, frac, &fq);
    let t = ddim.config.num_train_timesteps;
    let a: Vec<f64> = ddim.alphas_cumprod.iter().map(|&v| f64::from(v)).collect();
    let table = |name: &str, f: &dyn Fn(f64) -> f64, frac: i32| -> Result<Vec<i32>, ImageError> {
        a.iter()
            .map(|&x| {
                let v = libm::round(libm::ldexp(f(x), frac));
                (v.abs() < 2_147_483_647.0)
                    .then_some(v as i32)
                    .ok_or_else(|| ImageError::Export {
                        what: name.into(),
                        why: format!("value {} does not fit", f(x)),
                    })
            })
            .collect()
    };
    w.add_i32(
        "scheduler.sqrt_alphas_cumprod",
        1,
        t as u32,
        30,
        &table("sqrt_alphas_cumprod", &|x| x.sqrt(), 30)?,
    );
    w.add_i32(
        "scheduler.sqrt_one_minus_alphas_cumprod",
        1,
        t as u32,
        30,
        &table("sqrt_one_minus", &|x| (1.0 - x).sqrt(), 30)?,
    );
    w.add_i32(
        "scheduler.inv_sqrt_alphas_cumprod",
        1,
        t as u32,
        20,
        &table("inv_sqrt_alphas_cumprod", &|x| 1.0 / x.sqrt(), 20)?,
    );
    let fa = f64::from(ddim.final_alpha_cumprod);
    let fin = [
        q30(fa.sqrt()),
        q30((1.0 - fa).sqrt()),
        q30(1.0 / fa.sqrt() / 1024.0),
    ];
    let fin: Vec<i32> = fin.iter().map(|v| v.unwrap_or(0)).collect();
    w.add_i32("scheduler.final", 1, 3, 30, &fin);
    Ok(())
}
