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

use super::blocks::{ResnetBlock2D, SpatialAttention, TimestepEmbedding};
use super::defaults::{
    default_name, norm_eps, one, one_f, positional, silu_name, thirty_two, three, two, yes,
};
use super::diffusers::{read_config, read_weights};
use super::ops::{silu, timestep_embedding, Conv2d, GroupNorm};
use super::unet_blocks::{
    self, check_block_counts, check_sample, check_silu_positional, check_types, BlockPlan,
};
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
        let down_ok = ["DownBlock2D", "AttnDownBlock2D"];
        check_types(&self.down_block_types, down_ok, "down block type")?;
        check_types(
            &self.up_block_types,
            ["UpBlock2D", "AttnUpBlock2D"],
            "up block type",
        )?;
        match self.mid_block_type.as_deref() {
            Some("UNetMidBlock2D") | None => {}
            Some(t) => return unsupported("mid block type", t),
        }
        check_silu_positional(
            &self.act_fn,
            &self.time_embedding_type,
            &self.resnet_time_scale_shift,
        )?;
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
        check_block_counts(
            &self.block_out_channels,
            &self.down_block_types,
            &self.up_block_types,
            self.layers_per_block,
        )
    }
}

/// One down block: `resnets.M` (+ `attentions.M` self-attention), then
/// `downsamplers.0`.
pub type DownBlock = unet_blocks::DownBlock<SpatialAttention>;

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

/// One up block: `resnets.M` on `cat(h, skip)` (+ `attentions.M`
/// self-attention), then `upsamplers.0`.
pub type UpBlock = unet_blocks::UpBlock<SpatialAttention>;

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
        let plan = BlockPlan {
            channels: boc,
            layers_per_block: cfg.layers_per_block,
            downsample_padding: cfg.downsample_padding,
            resnet: |vb: &Vb, cin: usize, cout: usize| {
                ResnetBlock2D::load(vb, cin, cout, Some(temb), groups, eps, 1.0)
            },
            attention: |vb: &Vb, c: usize| {
                let head_dim = cfg.attention_head_dim.unwrap_or(c);
                SpatialAttention::load(vb, c, head_dim, attn_groups, eps, 1.0)
            },
        };
        let down_blocks = plan.down_blocks(&vb, &cfg.down_block_types, "AttnDownBlock2D")?;
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
        let up_blocks = plan.up_blocks(&vb, &cfg.up_block_types, "AttnUpBlock2D")?;
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
        check_sample(sample, c.in_channels, c.block_out_channels.len())?;
        let temb = self.time_embed(t);
        let mut h = self.conv_in.forward(sample);
        let mut skips = vec![h.clone()];
        let attend = |a: &SpatialAttention, h: &Tensor| a.forward(h);
        for b in &self.down_blocks {
            h = b.forward(&h, Some(&temb), &mut skips, attend);
        }
        if let Some(m) = &self.mid_block {
            h = m.forward(&h, Some(&temb));
        }
        for b in &self.up_blocks {
            h = b.forward(&h, Some(&temb), &mut skips, attend);
        }
        let mut h = self.conv_norm_out.forward(&h);
        h.data.iter_mut().for_each(|v| *v = silu(*v));
        Ok(self.conv_out.forward(&h))
    }
}
