//! diffusers `UNet2DConditionModel` (Stable Diffusion's UNet with text
//! cross-attention), float32, driven by its `config.json`.
//!
//! Supported: `CrossAttnDownBlock2D`/`DownBlock2D`, `UpBlock2D`/
//! `CrossAttnUpBlock2D`, mid block `UNetMidBlock2DCrossAttn`, positional time
//! embedding, conv projections in the transformers (`use_linear_projection`
//! false), one `transformer_layers_per_block` value for all blocks, no class or
//! addition embeddings. Anything else is [`DiffusionError::Unsupported`].
//!
//! Naming quirk: here `attention_head_dim` is the NUMBER of heads (unless
//! `num_attention_heads` is set); head size = channels / heads.

use std::path::Path;

use serde::Deserialize;

use super::blocks::{ResnetBlock2D, TimestepEmbedding, Transformer2D};
use super::defaults::{
    default_name, four, norm_eps, one, one_f, positional, silu_name, thirty_two, three, two, yes,
};
use super::diffusers::{read_config, read_weights};
use super::ops::{silu, timestep_embedding, Conv2d, GroupNorm};
use super::unet_blocks::{
    check_block_counts, check_sample, check_silu_positional, check_types, zero_layers, BlockPlan,
    DownBlock, UpBlock,
};
use super::{DiffusionError, Tensor, Vb, Weights};

/// The fields of `unet/config.json` that the reference reads.
#[derive(Debug, Clone, Deserialize)]
pub struct UNet2DConditionConfig {
    /// Latent side.
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Latent channels in.
    #[serde(default = "four")]
    pub in_channels: usize,
    /// Latent channels out.
    #[serde(default = "four")]
    pub out_channels: usize,
    /// Down block types.
    pub down_block_types: Vec<String>,
    /// Up block types.
    pub up_block_types: Vec<String>,
    /// Mid block type.
    #[serde(default = "mid_name")]
    pub mid_block_type: Option<String>,
    /// Channels per resolution.
    pub block_out_channels: Vec<usize>,
    /// ResNets per down block.
    #[serde(default = "two")]
    pub layers_per_block: usize,
    /// Heads (sic) when `num_attention_heads` is null.
    #[serde(default = "eight")]
    pub attention_head_dim: usize,
    /// Heads.
    #[serde(default)]
    pub num_attention_heads: Option<usize>,
    /// Width of the text embeddings.
    #[serde(default = "cross_dim")]
    pub cross_attention_dim: usize,
    /// Transformer blocks per attention (one value).
    #[serde(default = "one_json")]
    pub transformer_layers_per_block: serde_json::Value,
    /// GroupNorm groups.
    #[serde(default = "thirty_two")]
    pub norm_num_groups: usize,
    /// GroupNorm epsilon.
    #[serde(default = "norm_eps")]
    pub norm_eps: f32,
    /// `[cos, sin]` order.
    #[serde(default = "yes")]
    pub flip_sin_to_cos: bool,
    /// Frequency shift.
    #[serde(default)]
    pub freq_shift: f32,
    /// Downsampling conv padding.
    #[serde(default = "one")]
    pub downsample_padding: usize,
    /// Output scale of the mid block.
    #[serde(default = "one_f")]
    pub mid_block_scale_factor: f32,
    /// `silu` only.
    #[serde(default = "silu_name")]
    pub act_fn: String,
    /// Must be false.
    #[serde(default)]
    pub use_linear_projection: bool,
    /// Must be false.
    #[serde(default)]
    pub only_cross_attention: serde_json::Value,
    /// Must be false.
    #[serde(default)]
    pub dual_cross_attention: bool,
    /// Must be false.
    #[serde(default)]
    pub upcast_attention: bool,
    /// Must be false.
    #[serde(default)]
    pub center_input_sample: bool,
    /// 3 only.
    #[serde(default = "three")]
    pub conv_in_kernel: usize,
    /// 3 only.
    #[serde(default = "three")]
    pub conv_out_kernel: usize,
    /// `positional` only.
    #[serde(default = "positional")]
    pub time_embedding_type: String,
    /// `default` only.
    #[serde(default = "default_name")]
    pub resnet_time_scale_shift: String,
    /// Must be null.
    #[serde(default)]
    pub class_embed_type: Option<String>,
    /// Must be null.
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    /// Must be null.
    #[serde(default)]
    pub encoder_hid_dim: Option<usize>,
    /// Must be null.
    #[serde(default)]
    pub time_cond_proj_dim: Option<usize>,
    /// Must be null.
    #[serde(default)]
    pub num_class_embeds: Option<usize>,
}

fn eight() -> usize {
    8
}
fn one_json() -> serde_json::Value {
    serde_json::json!(1)
}
fn cross_dim() -> usize {
    1280
}
fn mid_name() -> Option<String> {
    Some("UNetMidBlock2DCrossAttn".into())
}

impl UNet2DConditionConfig {
    /// Checks that every setting is one the reference implements; returns the
    /// transformer depth.
    pub fn validate(&self) -> Result<usize, DiffusionError> {
        let unsupported = |what: &'static str, name: &str| {
            Err(DiffusionError::Unsupported {
                what,
                name: name.to_string(),
            })
        };
        let down_ok = ["DownBlock2D", "CrossAttnDownBlock2D"];
        check_types(&self.down_block_types, down_ok, "down block type")?;
        let up_ok = ["UpBlock2D", "CrossAttnUpBlock2D"];
        check_types(&self.up_block_types, up_ok, "up block type")?;
        match self.mid_block_type.as_deref() {
            Some("UNetMidBlock2DCrossAttn") => {}
            Some(t) => return unsupported("mid block type", t),
            None => return unsupported("mid block type", "null"),
        }
        let flags = [
            ("use_linear_projection", self.use_linear_projection),
            ("dual_cross_attention", self.dual_cross_attention),
            ("upcast_attention", self.upcast_attention),
            ("center_input_sample", self.center_input_sample),
            (
                "only_cross_attention",
                self.only_cross_attention.as_bool() == Some(true)
                    || self.only_cross_attention.is_array(),
            ),
            (
                "class/addition/encoder_hid/time_cond embeddings",
                self.class_embed_type.is_some()
                    || self.addition_embed_type.is_some()
                    || self.encoder_hid_dim.is_some()
                    || self.time_cond_proj_dim.is_some()
                    || self.num_class_embeds.is_some(),
            ),
            (
                "conv_in/out kernel other than 3",
                self.conv_in_kernel != 3 || self.conv_out_kernel != 3,
            ),
        ];
        for (name, on) in flags {
            if on {
                return unsupported("setting", name);
            }
        }
        check_silu_positional(
            &self.act_fn,
            &self.time_embedding_type,
            &self.resnet_time_scale_shift,
        )?;
        let Some(depth) = self.transformer_layers_per_block.as_u64() else {
            return unsupported(
                "transformer_layers_per_block",
                &self.transformer_layers_per_block.to_string(),
            );
        };
        check_block_counts(
            &self.block_out_channels,
            &self.down_block_types,
            &self.up_block_types,
            self.layers_per_block,
        )?;
        if depth == 0 {
            return Err(zero_layers());
        }
        Ok(depth as usize)
    }

    /// Number of attention heads.
    pub fn heads(&self) -> usize {
        self.num_attention_heads.unwrap_or(self.attention_head_dim)
    }
}

/// A down block: `resnets.M` (+ `attentions.M` transformers), `downsamplers.0`.
pub type CondDownBlock = DownBlock<Transformer2D>;

/// The mid block `UNetMidBlock2DCrossAttn`: `resnets.0`, `attentions.0`, `resnets.1`.
#[derive(Debug, Clone)]
pub struct CondMidBlock {
    /// `resnets.0`, `resnets.1`.
    pub resnets: Vec<ResnetBlock2D>,
    /// `attentions.0`.
    pub attention: Transformer2D,
}

/// An up block: `resnets.M` on `cat(h, skip)` (+ `attentions.M` transformers),
/// `upsamplers.0`.
pub type CondUpBlock = UpBlock<Transformer2D>;

/// The float `UNet2DConditionModel`.
#[derive(Debug, Clone)]
pub struct UNet2DConditionModel {
    /// The configuration it was built from.
    pub config: UNet2DConditionConfig,
    /// `conv_in`.
    pub conv_in: Conv2d,
    /// `time_embedding`.
    pub time_embedding: TimestepEmbedding,
    /// `down_blocks.N`.
    pub down_blocks: Vec<CondDownBlock>,
    /// `mid_block`.
    pub mid_block: CondMidBlock,
    /// `up_blocks.N`.
    pub up_blocks: Vec<CondUpBlock>,
    /// `conv_norm_out`.
    pub conv_norm_out: GroupNorm,
    /// `conv_out`.
    pub conv_out: Conv2d,
}

impl UNet2DConditionModel {
    /// Loads a `unet` component folder.
    pub fn load_dir(dir: &Path) -> Result<Self, DiffusionError> {
        let cfg: UNet2DConditionConfig =
            read_config(dir, "config.json", "unet", "UNet2DConditionModel")?;
        Self::load(&read_weights(dir, "unet")?, cfg)
    }

    /// Builds the model from its weights and config.
    pub fn load(w: &Weights, cfg: UNet2DConditionConfig) -> Result<Self, DiffusionError> {
        let depth = cfg.validate()?;
        let vb = w.root();
        let boc = cfg.block_out_channels.clone();
        let (g, eps) = (cfg.norm_num_groups, cfg.norm_eps);
        let heads = cfg.heads();
        let ctx = cfg.cross_attention_dim;
        let temb = boc[0] * 4;
        let n = boc.len();
        let resnet = |vb: &Vb, cin: usize, cout: usize, scale: f32| {
            ResnetBlock2D::load(vb, cin, cout, Some(temb), g, eps, scale)
        };
        let transformer = |vb: &Vb, c: usize| Transformer2D::load(vb, c, heads, depth, ctx, g);
        let plan = BlockPlan {
            channels: &boc,
            layers_per_block: cfg.layers_per_block,
            downsample_padding: cfg.downsample_padding,
            resnet: |vb: &Vb, cin: usize, cout: usize| resnet(vb, cin, cout, 1.0),
            attention: transformer,
        };
        let down_blocks = plan.down_blocks(&vb, &cfg.down_block_types, "CrossAttnDownBlock2D")?;
        let mid_c = boc[n - 1];
        let mb = vb.pp("mid_block");
        let s = cfg.mid_block_scale_factor;
        let mid_block = CondMidBlock {
            resnets: vec![
                resnet(&mb.pp("resnets.0"), mid_c, mid_c, s)?,
                resnet(&mb.pp("resnets.1"), mid_c, mid_c, s)?,
            ],
            attention: transformer(&mb.pp("attentions.0"), mid_c)?,
        };
        let up_blocks = plan.up_blocks(&vb, &cfg.up_block_types, "CrossAttnUpBlock2D")?;
        Ok(Self {
            conv_in: Conv2d::load(&vb.pp("conv_in"), cfg.in_channels, boc[0], 3, 1, 1)?,
            time_embedding: TimestepEmbedding::load(&vb.pp("time_embedding"), boc[0], temb)?,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: GroupNorm::load(&vb.pp("conv_norm_out"), g, boc[0], eps)?,
            conv_out: Conv2d::load(&vb.pp("conv_out"), boc[0], cfg.out_channels, 3, 1, 1)?,
            config: cfg,
        })
    }

    /// The predicted noise for `sample (in_channels, H, W)` at timestep `t` with
    /// text embeddings `context (tokens, cross_attention_dim)`.
    pub fn forward(
        &self,
        sample: &Tensor,
        t: f32,
        context: &Tensor,
    ) -> Result<Tensor, DiffusionError> {
        let c = &self.config;
        check_sample(sample, c.in_channels, c.block_out_channels.len())?;
        if context.shape.len() != 2 || context.shape[1] != c.cross_attention_dim {
            return Err(DiffusionError::Input(format!(
                "context of shape {:?}, expected (tokens, {})",
                context.shape, c.cross_attention_dim
            )));
        }
        let e = timestep_embedding(t, c.block_out_channels[0], c.flip_sin_to_cos, c.freq_shift);
        let temb = self.time_embedding.forward(&e);
        let temb = Some(temb.as_slice());
        let mut h = self.conv_in.forward(sample);
        let mut skips = vec![h.clone()];
        let attend = |a: &Transformer2D, h: &Tensor| a.forward(h, context);
        for b in &self.down_blocks {
            h = b.forward(&h, temb, &mut skips, attend);
        }
        let mb = &self.mid_block;
        h = mb.resnets[0].forward(&h, temb);
        h = mb.attention.forward(&h, context);
        h = mb.resnets[1].forward(&h, temb);
        for b in &self.up_blocks {
            h = b.forward(&h, temb, &mut skips, attend);
        }
        let mut h = self.conv_norm_out.forward(&h);
        h.data.iter_mut().for_each(|v| *v = silu(*v));
        Ok(self.conv_out.forward(&h))
    }
}
