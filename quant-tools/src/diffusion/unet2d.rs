//! diffusers `UNet2DModel` (unconditional), float32, driven by its `config.json`.
//!
//! Supported: `time_embedding_type` "positional", `DownBlock2D`/`AttnDownBlock2D`,
//! `UpBlock2D`/`AttnUpBlock2D`, mid block `UNetMidBlock2D` (with or without
//! attention), conv down/up sampling, `resnet_time_scale_shift` "default",
//! `act_fn` "silu", no class embedding. Anything else is
//! [`DiffusionError::Unsupported`].
//!
//! Naming quirk: in `UNet2DModel`, `attention_head_dim` is the size of a head
//! (heads = channels / attention_head_dim), unlike `UNet2DConditionModel`.

use std::path::Path;

use serde::Deserialize;

use super::blocks::{Downsample2D, ResnetBlock2D, SpatialAttention, TimestepEmbedding, Upsample2D};
use super::defaults::{
    default_name, norm_eps, one, one_f, positional, silu_name, thirty_two, three, two, yes,
};
use super::diffusers::{read_config, read_weights};
use super::ops::{cat_channels, silu, timestep_embedding, Conv2d, GroupNorm};
use super::{DiffusionError, Tensor, Vb, Weights};

/// The fields of `unet/config.json` that the reference reads (diffusers defaults
/// where absent).
#[derive(Debug, Clone, Deserialize)]
pub struct UNet2DConfig {
    /// Sample side.
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Input channels.
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Output channels.
    #[serde(default = "three")]
    pub out_channels: usize,
    /// Down block types.
    pub down_block_types: Vec<String>,
    /// Up block types.
    pub up_block_types: Vec<String>,
    /// Channels per resolution.
    pub block_out_channels: Vec<usize>,
    /// ResNets per down block (up blocks have one more).
    #[serde(default = "two")]
    pub layers_per_block: usize,
    /// Channels per attention head (`None`: one head over all channels).
    #[serde(default)]
    pub attention_head_dim: Option<usize>,
    /// GroupNorm groups.
    #[serde(default = "thirty_two")]
    pub norm_num_groups: usize,
    /// GroupNorm groups of the attention blocks (`None`: `norm_num_groups`).
    #[serde(default)]
    pub attn_norm_num_groups: Option<usize>,
    /// GroupNorm epsilon.
    #[serde(default = "norm_eps")]
    pub norm_eps: f32,
    /// `[cos, sin]` order of the timestep embedding.
    #[serde(default = "yes")]
    pub flip_sin_to_cos: bool,
    /// Frequency shift of the timestep embedding.
    #[serde(default)]
    pub freq_shift: f32,
    /// Downsampling conv padding.
    #[serde(default = "one")]
    pub downsample_padding: usize,
    /// Output scale of the mid block.
    #[serde(default = "one_f")]
    pub mid_block_scale_factor: f32,
    /// Activation (`silu` only).
    #[serde(default = "silu_name")]
    pub act_fn: String,
    /// `positional` only.
    #[serde(default = "positional")]
    pub time_embedding_type: String,
    /// `default` only.
    #[serde(default = "default_name")]
    pub resnet_time_scale_shift: String,
    /// `conv` only.
    #[serde(default = "conv_name")]
    pub downsample_type: String,
    /// `conv` only.
    #[serde(default = "conv_name")]
    pub upsample_type: String,
    /// `UNetMidBlock2D` (or null for none).
    #[serde(default = "mid_name")]
    pub mid_block_type: Option<String>,
    /// Attention in the mid block.
    #[serde(default = "yes")]
    pub add_attention: bool,
    /// Must be false.
    #[serde(default)]
    pub center_input_sample: bool,
    /// Must be null.
    #[serde(default)]
    pub class_embed_type: Option<String>,
    /// Must be null.
    #[serde(default)]
    pub num_class_embeds: Option<usize>,
}

fn conv_name() -> String {
    "conv".into()
}
fn mid_name() -> Option<String> {
    Some("UNetMidBlock2D".into())
}

impl UNet2DConfig {
    /// Checks that every setting is one the reference implements.
    pub fn validate(&self) -> Result<(), DiffusionError> {
        let unsupported = |what: &'static str, name: &str| {
            Err(DiffusionError::Unsupported {
                what,
                name: name.to_string(),
            })
        };
        for t in &self.down_block_types {
            if t != "DownBlock2D" && t != "AttnDownBlock2D" {
                return unsupported("down block type", t);
            }
        }
        for t in &self.up_block_types {
            if t != "UpBlock2D" && t != "AttnUpBlock2D" {
                return unsupported("up block type", t);
            }
        }
        match self.mid_block_type.as_deref() {
            Some("UNetMidBlock2D") | None => {}
            Some(t) => return unsupported("mid block type", t),
        }
        if self.act_fn != "silu" {
            return unsupported("act_fn", &self.act_fn);
        }
        if self.time_embedding_type != "positional" {
            return unsupported("time_embedding_type", &self.time_embedding_type);
        }
        if self.resnet_time_scale_shift != "default" {
            return unsupported("resnet_time_scale_shift", &self.resnet_time_scale_shift);
        }
        if self.downsample_type != "conv" {
            return unsupported("downsample_type", &self.downsample_type);
        }
        if self.upsample_type != "conv" {
            return unsupported("upsample_type", &self.upsample_type);
        }
        if self.center_input_sample {
            return unsupported("center_input_sample", "true");
        }
        if let Some(c) = &self.class_embed_type {
            return unsupported("class_embed_type", c);
        }
        if self.num_class_embeds.is_some() {
            return unsupported("num_class_embeds", "set");
        }
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(DiffusionError::Input(format!(
                "{n} block_out_channels for {} down and {} up blocks",
                self.down_block_types.len(),
                self.up_block_types.len()
            )));
        }
        if self.layers_per_block == 0 || self.block_out_channels.contains(&0) {
            return Err(DiffusionError::Input("zero layers or channels".into()));
        }
        Ok(())
    }
}

/// One down block: `resnets.M` (+ `attentions.M`), then `downsamplers.0`.
#[derive(Debug, Clone)]
pub struct DownBlock {
    /// `resnets.M`.
    pub resnets: Vec<ResnetBlock2D>,
    /// `attentions.M` (empty for `DownBlock2D`).
    pub attentions: Vec<SpatialAttention>,
    /// `downsamplers.0` (absent on the last block).
    pub downsampler: Option<Downsample2D>,
}

impl DownBlock {
    /// `x -> (x', skip states)`.
    pub fn forward(&self, x: &Tensor, temb: &[f32], skips: &mut Vec<Tensor>) -> Tensor {
        let mut h = x.clone();
        for (m, r) in self.resnets.iter().enumerate() {
            h = r.forward(&h, Some(temb));
            if let Some(a) = self.attentions.get(m) {
                h = a.forward(&h);
            }
            skips.push(h.clone());
        }
        if let Some(d) = &self.downsampler {
            h = d.forward(&h);
            skips.push(h.clone());
        }
        h
    }
}

/// The settings of a [`MidBlock`].
#[derive(Debug, Clone, Copy)]
pub struct MidBlockConfig {
    /// GroupNorm groups of the ResNets.
    pub groups: usize,
    /// GroupNorm groups of the attention.
    pub attn_groups: usize,
    /// Channels per attention head.
    pub head_dim: usize,
    /// GroupNorm epsilon.
    pub eps: f32,
    /// Output scale of each ResNet and the attention.
    pub output_scale_factor: f32,
    /// Whether `attentions.0` exists.
    pub add_attention: bool,
}

/// `UNetMidBlock2D`: `resnets.0`, then (`attentions.0`, `resnets.1`).
#[derive(Debug, Clone)]
pub struct MidBlock {
    /// `resnets.0`, `resnets.1`.
    pub resnets: Vec<ResnetBlock2D>,
    /// `attentions.0` (absent without `add_attention`).
    pub attention: Option<SpatialAttention>,
}

impl MidBlock {
    /// Loads `UNetMidBlock2D` over `c` channels with `temb` time-embedding
    /// channels (none in the VAE).
    pub fn load(
        vb: &Vb,
        c: usize,
        temb: Option<usize>,
        m: &MidBlockConfig,
    ) -> Result<Self, DiffusionError> {
        let r = vb.pp("resnets");
        let (g, eps, scale) = (m.groups, m.eps, m.output_scale_factor);
        Ok(Self {
            resnets: vec![
                ResnetBlock2D::load(&r.pp(0), c, c, temb, g, eps, scale)?,
                ResnetBlock2D::load(&r.pp(1), c, c, temb, g, eps, scale)?,
            ],
            attention: if m.add_attention {
                Some(SpatialAttention::load(
                    &vb.pp("attentions.0"),
                    c,
                    m.head_dim,
                    m.attn_groups,
                    eps,
                    scale,
                )?)
            } else {
                None
            },
        })
    }

    /// `(C, H, W) -> (C, H, W)`.
    pub fn forward(&self, x: &Tensor, temb: Option<&[f32]>) -> Tensor {
        let mut h = self.resnets[0].forward(x, temb);
        if let Some(a) = &self.attention {
            h = a.forward(&h);
        }
        self.resnets[1].forward(&h, temb)
    }
}

/// One up block: `resnets.M` on `cat(h, skip)` (+ `attentions.M`), then
/// `upsamplers.0`.
#[derive(Debug, Clone)]
pub struct UpBlock {
    /// `resnets.M`.
    pub resnets: Vec<ResnetBlock2D>,
    /// `attentions.M` (empty for `UpBlock2D`).
    pub attentions: Vec<SpatialAttention>,
    /// `upsamplers.0` (absent on the last block).
    pub upsampler: Option<Upsample2D>,
}

impl UpBlock {
    /// Consumes `resnets.len()` skip states from the end of `skips`.
    pub fn forward(&self, x: &Tensor, temb: &[f32], skips: &mut Vec<Tensor>) -> Tensor {
        let mut h = x.clone();
        for (m, r) in self.resnets.iter().enumerate() {
            let skip = skips.pop().expect("skip states counted at load");
            h = r.forward(&cat_channels(&h, &skip), Some(temb));
            if let Some(a) = self.attentions.get(m) {
                h = a.forward(&h);
            }
        }
        if let Some(u) = &self.upsampler {
            h = u.forward(&h);
        }
        h
    }
}

/// The float `UNet2DModel`.
#[derive(Debug, Clone)]
pub struct UNet2DModel {
    /// The configuration it was built from.
    pub config: UNet2DConfig,
    /// `conv_in` 3x3.
    pub conv_in: Conv2d,
    /// `time_embedding`.
    pub time_embedding: TimestepEmbedding,
    /// `down_blocks.N`.
    pub down_blocks: Vec<DownBlock>,
    /// `mid_block`.
    pub mid_block: Option<MidBlock>,
    /// `up_blocks.N`.
    pub up_blocks: Vec<UpBlock>,
    /// `conv_norm_out`.
    pub conv_norm_out: GroupNorm,
    /// `conv_out` 3x3.
    pub conv_out: Conv2d,
}

impl UNet2DModel {
    /// Loads a `unet` component folder (`config.json` + safetensors).
    pub fn load_dir(dir: &Path) -> Result<Self, DiffusionError> {
        let cfg: UNet2DConfig = read_config(dir, "config.json", "unet", "UNet2DModel")?;
        Self::load(&read_weights(dir, "unet")?, cfg)
    }

    /// Builds the model from its weights and config.
    pub fn load(w: &Weights, cfg: UNet2DConfig) -> Result<Self, DiffusionError> {
        cfg.validate()?;
        let vb = w.root();
        let boc = &cfg.block_out_channels;
        let (groups, eps) = (cfg.norm_num_groups, cfg.norm_eps);
        let attn_groups = cfg.attn_norm_num_groups.unwrap_or(groups);
        let temb = boc[0] * 4;
        let n = boc.len();
        let mut down_blocks = Vec::with_capacity(n);
        let mut out_c = boc[0];
        for (i, ty) in cfg.down_block_types.iter().enumerate() {
            let in_c = out_c;
            out_c = boc[i];
            let b = vb.pp("down_blocks").pp(i);
            let head_dim = cfg.attention_head_dim.unwrap_or(out_c);
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for m in 0..cfg.layers_per_block {
                let cin = if m == 0 { in_c } else { out_c };
                resnets.push(ResnetBlock2D::load(
                    &b.pp("resnets").pp(m),
                    cin,
                    out_c,
                    Some(temb),
                    groups,
                    eps,
                    1.0,
                )?);
                if ty == "AttnDownBlock2D" {
                    attentions.push(SpatialAttention::load(
                        &b.pp("attentions").pp(m),
                        out_c,
                        head_dim,
                        attn_groups,
                        eps,
                        1.0,
                    )?);
                }
            }
            let downsampler = if i + 1 < n {
                Some(Downsample2D::load(
                    &b.pp("downsamplers.0"),
                    out_c,
                    cfg.downsample_padding,
                )?)
            } else {
                None
            };
            down_blocks.push(DownBlock {
                resnets,
                attentions,
                downsampler,
            });
        }
        let mid_c = boc[n - 1];
        let mid_block = match cfg.mid_block_type {
            Some(_) => Some(MidBlock::load(
                &vb.pp("mid_block"),
                mid_c,
                Some(temb),
                &MidBlockConfig {
                    groups,
                    attn_groups,
                    head_dim: cfg.attention_head_dim.unwrap_or(mid_c),
                    eps,
                    output_scale_factor: cfg.mid_block_scale_factor,
                    add_attention: cfg.add_attention,
                },
            )?),
            None => None,
        };
        let rev: Vec<usize> = boc.iter().rev().copied().collect();
        let mut up_blocks = Vec::with_capacity(n);
        let mut out_c = rev[0];
        for (i, ty) in cfg.up_block_types.iter().enumerate() {
            let prev_c = out_c;
            out_c = rev[i];
            let in_c = rev[(i + 1).min(n - 1)];
            let b = vb.pp("up_blocks").pp(i);
            let head_dim = cfg.attention_head_dim.unwrap_or(out_c);
            let layers = cfg.layers_per_block + 1;
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for m in 0..layers {
                let skip_c = if m == layers - 1 { in_c } else { out_c };
                let res_in = if m == 0 { prev_c } else { out_c };
                resnets.push(ResnetBlock2D::load(
                    &b.pp("resnets").pp(m),
                    res_in + skip_c,
                    out_c,
                    Some(temb),
                    groups,
                    eps,
                    1.0,
                )?);
                if ty == "AttnUpBlock2D" {
                    attentions.push(SpatialAttention::load(
                        &b.pp("attentions").pp(m),
                        out_c,
                        head_dim,
                        attn_groups,
                        eps,
                        1.0,
                    )?);
                }
            }
            let upsampler = if i + 1 < n {
                Some(Upsample2D::load(&b.pp("upsamplers.0"), out_c)?)
            } else {
                None
            };
            up_blocks.push(UpBlock {
                resnets,
                attentions,
                upsampler,
            });
        }
        Ok(Self {
            conv_in: Conv2d::load(&vb.pp("conv_in"), cfg.in_channels, boc[0], 3, 1, 1)?,
            time_embedding: TimestepEmbedding::load(&vb.pp("time_embedding"), boc[0], temb)?,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: GroupNorm::load(&vb.pp("conv_norm_out"), groups, boc[0], eps)?,
            conv_out: Conv2d::load(&vb.pp("conv_out"), boc[0], cfg.out_channels, 3, 1, 1)?,
            config: cfg,
        })
    }

    /// The time embedding `(4 * block_out_channels[0])` of timestep `t`.
    pub fn time_embed(&self, t: f32) -> Vec<f32> {
        let c = &self.config;
        let e = timestep_embedding(t, c.block_out_channels[0], c.flip_sin_to_cos, c.freq_shift);
        self.time_embedding.forward(&e)
    }

    /// The predicted noise for `sample (in_channels, H, W)` at timestep `t`;
    /// H and W must be divisible by `2^(blocks - 1)`.
    pub fn forward(&self, sample: &Tensor, t: f32) -> Result<Tensor, DiffusionError> {
        let c = &self.config;
        let f = 1usize << (c.block_out_channels.len() - 1);
        if sample.shape.len() != 3
            || sample.shape[0] != c.in_channels
            || sample.shape[1] == 0
            || sample.shape[2] == 0
            || !sample.shape[1].is_multiple_of(f)
            || !sample.shape[2].is_multiple_of(f)
        {
            return Err(DiffusionError::Input(format!(
                "sample of shape {:?} for {} channels and sides divisible by {f}",
                sample.shape, c.in_channels
            )));
        }
        let temb = self.time_embed(t);
        let mut h = self.conv_in.forward(sample);
        let mut skips = vec![h.clone()];
        for b in &self.down_blocks {
            h = b.forward(&h, &temb, &mut skips);
        }
        if let Some(m) = &self.mid_block {
            h = m.forward(&h, Some(&temb));
        }
        for b in &self.up_blocks {
            h = b.forward(&h, &temb, &mut skips);
        }
        let mut h = self.conv_norm_out.forward(&h);
        h.data.iter_mut().for_each(|v| *v = silu(*v));
        Ok(self.conv_out.forward(&h))
    }
}
