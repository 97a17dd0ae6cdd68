//! The decoder half of diffusers' `AutoencoderKL`, float32: `post_quant_conv`,
//! then `decoder.{conv_in, mid_block, up_blocks.N, conv_norm_out, conv_out}`.
//! All norms use eps 1e-6 (diffusers' VAE blocks hard-code it); the mid-block
//! attention has one head over all channels.

use std::path::Path;

use serde::Deserialize;

use super::blocks::{ResnetBlock2D, Upsample2D};
use super::defaults::{four, one, silu_name, thirty_two, three, yes};
use super::diffusers::{read_config, read_weights};
use super::ops::{silu, Conv2d, GroupNorm};
use super::unet2d::{MidBlock, MidBlockConfig};
use super::{DiffusionError, Tensor, Weights};

/// The fields of `vae/config.json` that the reference reads.
#[derive(Debug, Clone, Deserialize)]
pub struct VaeConfig {
    /// Image channels out.
    #[serde(default = "three")]
    pub out_channels: usize,
    /// Up block types (`UpDecoderBlock2D` only).
    pub up_block_types: Vec<String>,
    /// Channels per resolution (encoder order).
    pub block_out_channels: Vec<usize>,
    /// ResNets per encoder block (decoder blocks have one more).
    #[serde(default = "one")]
    pub layers_per_block: usize,
    /// Latent channels.
    #[serde(default = "four")]
    pub latent_channels: usize,
    /// GroupNorm groups.
    #[serde(default = "thirty_two")]
    pub norm_num_groups: usize,
    /// Latents are divided by this before decoding.
    #[serde(default = "scaling")]
    pub scaling_factor: f32,
    /// Must be null.
    #[serde(default)]
    pub shift_factor: Option<f32>,
    /// `silu` only.
    #[serde(default = "silu_name")]
    pub act_fn: String,
    /// Attention in the mid block.
    #[serde(default = "yes")]
    pub mid_block_add_attention: bool,
    /// Whether `post_quant_conv` exists.
    #[serde(default = "yes")]
    pub use_post_quant_conv: bool,
}

fn scaling() -> f32 {
    0.18215
}

/// Epsilon of every VAE norm.
pub const VAE_EPS: f32 = 1e-6;

/// `decoder.up_blocks.N` (`UpDecoderBlock2D`).
#[derive(Debug, Clone)]
pub struct UpDecoderBlock {
    /// `resnets.M`.
    pub resnets: Vec<ResnetBlock2D>,
    /// `upsamplers.0`.
    pub upsampler: Option<Upsample2D>,
}

/// The float VAE decoder.
#[derive(Debug, Clone)]
pub struct VaeDecoder {
    /// The configuration.
    pub config: VaeConfig,
    /// `post_quant_conv` 1x1.
    pub post_quant_conv: Option<Conv2d>,
    /// `decoder.conv_in`.
    pub conv_in: Conv2d,
    /// `decoder.mid_block`.
    pub mid_block: MidBlock,
    /// `decoder.up_blocks.N`.
    pub up_blocks: Vec<UpDecoderBlock>,
    /// `decoder.conv_norm_out`.
    pub conv_norm_out: GroupNorm,
    /// `decoder.conv_out`.
    pub conv_out: Conv2d,
}

impl VaeDecoder {
    /// Loads a `vae` component folder (the encoder's tensors are ignored).
    pub fn load_dir(dir: &Path) -> Result<Self, DiffusionError> {
        let cfg: VaeConfig = read_config(dir, "config.json", "vae", "AutoencoderKL")?;
        Self::load(&read_weights(dir, "vae")?, cfg)
    }

    /// Builds the decoder from the VAE's weights and config.
    pub fn load(w: &Weights, cfg: VaeConfig) -> Result<Self, DiffusionError> {
        for t in &cfg.up_block_types {
            if t != "UpDecoderBlock2D" {
                return Err(DiffusionError::Unsupported {
                    what: "up block type",
                    name: t.clone(),
                });
            }
        }
        if cfg.act_fn != "silu" {
            return Err(DiffusionError::Unsupported {
                what: "act_fn",
                name: cfg.act_fn.clone(),
            });
        }
        if cfg.shift_factor.is_some() {
            return Err(DiffusionError::Unsupported {
                what: "setting",
                name: "shift_factor".into(),
            });
        }
        let n = cfg.block_out_channels.len();
        if n == 0 || cfg.up_block_types.len() != n || cfg.block_out_channels.contains(&0) {
            return Err(DiffusionError::Input(format!(
                "{n} block_out_channels for {} up blocks",
                cfg.up_block_types.len()
            )));
        }
        let vb = w.root();
        let d = vb.pp("decoder");
        let g = cfg.norm_num_groups;
        let rev: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
        let lat = cfg.latent_channels;
        let mid_block = MidBlock::load(
            &d.pp("mid_block"),
            rev[0],
            None,
            &MidBlockConfig {
                groups: g,
                attn_groups: g,
                head_dim: rev[0],
                eps: VAE_EPS,
                output_scale_factor: 1.0,
                add_attention: cfg.mid_block_add_attention,
            },
        )?;
        let mut up_blocks = Vec::with_capacity(n);
        let mut out_c = rev[0];
        for (i, &c) in rev.iter().enumerate() {
            let prev_c = out_c;
            out_c = c;
            let b = d.pp("up_blocks").pp(i);
            let mut resnets = Vec::new();
            for m in 0..=cfg.layers_per_block {
                let cin = if m == 0 { prev_c } else { out_c };
                resnets.push(ResnetBlock2D::load(
                    &b.pp("resnets").pp(m),
                    cin,
                    out_c,
                    None,
                    g,
                    VAE_EPS,
                    1.0,
                )?);
            }
            let upsampler = if i + 1 < n {
                Some(Upsample2D::load(&b.pp("upsamplers.0"), out_c)?)
            } else {
                None
            };
            up_blocks.push(UpDecoderBlock { resnets, upsampler });
        }
        Ok(Self {
            post_quant_conv: if cfg.use_post_quant_conv {
                Some(Conv2d::load(&vb.pp("post_quant_conv"), lat, lat, 1, 1, 0)?)
            } else {
                None
            },
            conv_in: Conv2d::load(&d.pp("conv_in"), lat, rev[0], 3, 1, 1)?,
            mid_block,
            up_blocks,
            conv_norm_out: GroupNorm::load(&d.pp("conv_norm_out"), g, rev[n - 1], VAE_EPS)?,
            conv_out: Conv2d::load(&d.pp("conv_out"), rev[n - 1], cfg.out_channels, 3, 1, 1)?,
            config: cfg,
        })
    }

    /// `vae.decode(z)`: latents `(latent_channels, h, w)` (already divided by
    /// `scaling_factor`) -> image `(out_channels, h * 2^(n-1), w * 2^(n-1))` in
    /// about [-1, 1].
    pub fn decode(&self, z: &Tensor) -> Result<Tensor, DiffusionError> {
        if z.shape.len() != 3 || z.shape[0] != self.config.latent_channels || z.is_empty() {
            return Err(DiffusionError::Input(format!(
                "latents of shape {:?}, expected ({}, h, w)",
                z.shape, self.config.latent_channels
            )));
        }
        let mut h = match &self.post_quant_conv {
            Some(c) => c.forward(z),
            None => z.clone(),
        };
        h = self.conv_in.forward(&h);
        h = self.mid_block.forward(&h, None);
        for b in &self.up_blocks {
            for r in &b.resnets {
                h = r.forward(&h, None);
            }
            if let Some(u) = &b.upsampler {
                h = u.forward(&h);
            }
        }
        let mut h = self.conv_norm_out.forward(&h);
        h.data.iter_mut().for_each(|v| *v = silu(*v));
        Ok(self.conv_out.forward(&h))
    }
}
