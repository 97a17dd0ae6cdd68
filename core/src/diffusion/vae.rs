//! The decoder half of diffusers' `AutoencoderKL`, in integers: latents
//! `[latent_channels × h × w]` (Q16, as the UNet leaves them) to an image
//! `[out_channels × h·2^(n−1) × w·2^(n−1)]` (Q16, about `[−1, 1]`).
//!
//! `z = latents · (1 / scaling_factor)` (the factor a Q16 config field, the product
//! rounded half up once and saturated), then `post_quant_conv` (1x1, when
//! present), `decoder.conv_in`, `decoder.mid_block` (ResNet, one-head spatial
//! attention, ResNet), `decoder.up_blocks.N` (`layers_per_block + 1` ResNets and
//! an upsampler but the last), `decoder.conv_norm_out`, SiLU, `decoder.conv_out`.
//! The ResNets have no time embedding; every norm uses the config's epsilon
//! (diffusers hard-codes `1e-6` in the VAE). Names as in the checkpoint under the
//! file's prefix (`vae.` in a pipeline file).
//!
//! **Config**: [`VaeConfig`], written field by field.

use alloc::format;
use alloc::vec::Vec;

use super::blocks::{
    check_groups, load_norm, norm, silu_inplace, Block, BlockSpec, Ctx, Mid, Norm, Skips,
    KIND_PLAIN, KIND_SPATIAL,
};
use super::ddpm_mnist::load_conv;
use crate::error::FormatError;
use crate::fixed::{round_shift, sat_i32};
use crate::footprint::conv_net_bytes;
use crate::format::{ConfigReader, ConfigWriter, ModelFile};
use crate::kernels::Exec;
use crate::nn::conv2d::Conv2d;

/// Hyper-parameters of a [`VaeDecoder`], as stored in the model file's config
/// ([`VaeConfig::write`]); diffusers' names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaeConfig {
    /// `latent_channels`.
    pub latent_channels: u32,
    /// `out_channels` (image channels).
    pub out_channels: u32,
    /// `layers_per_block`: ResNets per encoder block (the decoder's have one
    /// more).
    pub layers_per_block: u32,
    /// `norm_num_groups`: GroupNorm groups.
    pub groups: u32,
    /// GroupNorm epsilon in Q32.
    pub eps_q32: u32,
    /// Whether the mid block has its attention.
    pub mid_attention: bool,
    /// Whether `post_quant_conv` is present.
    pub post_quant_conv: bool,
    /// `1 / scaling_factor` in Q16.
    pub inv_scale_q16: u32,
    /// `block_out_channels` (encoder order, 1 to 8 blocks).
    pub block_out_channels: Vec<u32>,
}

impl VaeConfig {
    /// Append the fields: latent_channels, out_channels, the number of blocks
    /// `n`, layers_per_block, groups, eps_q32, mid_attention, post_quant_conv,
    /// inv_scale_q16, then the `n` block_out_channels.
    pub fn write(&self, w: &mut ConfigWriter) {
        w.u32(self.latent_channels)
            .u32(self.out_channels)
            .u32(self.block_out_channels.len() as u32)
            .u32(self.layers_per_block)
            .u32(self.groups)
            .u32(self.eps_q32)
            .flag(self.mid_attention)
            .flag(self.post_quant_conv)
            .u32(self.inv_scale_q16)
            .list(&self.block_out_channels);
    }

    /// Read the fields [`VaeConfig::write`] appends; `BadConfig` unless there are
    /// 1 to 8 blocks.
    pub fn read(r: &mut ConfigReader<'_>) -> Result<VaeConfig, FormatError> {
        let latent_channels = r.u32()?;
        let out_channels = r.u32()?;
        let n = r.u32()?;
        if n == 0 || n > 8 {
            return Err(FormatError::BadConfig("VAE: 1..=8 blocks"));
        }
        Ok(VaeConfig {
            latent_channels,
            out_channels,
            layers_per_block: r.u32()?,
            groups: r.u32()?,
            eps_q32: r.u32()?,
            mid_attention: r.flag()?,
            post_quant_conv: r.flag()?,
            inv_scale_q16: r.u32()?,
            block_out_channels: r.list(n)?,
        })
    }
}

/// The integer VAE decoder.
#[derive(Debug, Clone)]
pub struct VaeDecoder<'a> {
    ctx: Ctx,
    /// Latent channels.
    pub latent_channels: usize,
    /// Image channels.
    pub out_channels: usize,
    inv_scale_q16: i32,
    post_quant_conv: Option<Conv2d<'a>>,
    conv_in: Conv2d<'a>,
    mid: Mid<'a>,
    up: Vec<Block<'a>>,
    norm_out: Norm,
    conv_out: Conv2d<'a>,
}

impl<'a> VaeDecoder<'a> {
    /// Bind the decoder of config `cfg` whose tensor names start with `pre`
    /// (e.g. `"vae."`).
    pub fn bind(f: &ModelFile<'a>, cfg: &VaeConfig, pre: &str) -> Result<Self, FormatError> {
        let n = cfg.block_out_channels.len();
        if n == 0 || n > 8 {
            return Err(FormatError::BadConfig("VAE: 1..=8 blocks"));
        }
        let boc: Vec<usize> = cfg.block_out_channels.iter().map(|&c| c as usize).collect();
        if boc.iter().any(|&c| c == 0 || c > 1 << 14) {
            return Err(FormatError::BadConfig("VAE: block channels 1..=16384"));
        }
        let layers = cfg.layers_per_block as usize;
        if layers > 8 {
            return Err(FormatError::BadConfig("VAE: at most 8 layers per block"));
        }
        let inv_scale_q16 = i32::try_from(cfg.inv_scale_q16)
            .ok()
            .filter(|&s| s > 0)
            .ok_or(FormatError::BadConfig("VAE: 1/scaling_factor out of range"))?;
        let groups = cfg.groups as usize;
        let ctx = Ctx {
            groups,
            attn_groups: groups,
            eps: cfg.eps_q32,
            temb: 0,
            cross: None,
        };
        let (lat, out) = (cfg.latent_channels as usize, cfg.out_channels as usize);
        let d = format!("{pre}decoder.");
        let rev: Vec<usize> = boc.iter().rev().copied().collect();
        let mid_kind = if cfg.mid_attention {
            KIND_SPATIAL
        } else {
            KIND_PLAIN
        };
        let mid = Mid::load(f, &format!("{d}mid_block"), mid_kind, rev[0], 0, &ctx)?;
        let mut up = Vec::with_capacity(n);
        let mut out_c = rev[0];
        for (i, &c) in rev.iter().enumerate() {
            let prev_c = out_c;
            out_c = c;
            let res: Vec<(usize, usize)> = (0..=layers)
                .map(|m| (if m == 0 { prev_c } else { out_c }, out_c))
                .collect();
            let spec = BlockSpec {
                prefix: &format!("{d}up_blocks.{i}"),
                kind: KIND_PLAIN,
                resnets: &res,
                head_dim: 0,
                skips: Skips::None,
                down_pad: None,
                up: i + 1 < n,
            };
            up.push(Block::load(f, &spec, &ctx)?);
        }
        check_groups(rev[n - 1], groups)?;
        Ok(VaeDecoder {
            ctx,
            latent_channels: lat,
            out_channels: out,
            inv_scale_q16,
            post_quant_conv: if cfg.post_quant_conv {
                Some(load_conv(
                    f,
                    &format!("{pre}post_quant_conv"),
                    lat,
                    lat,
                    1,
                    1,
                    0,
                )?)
            } else {
                None
            },
            conv_in: load_conv(f, &format!("{d}conv_in"), lat, rev[0], 3, 1, 1)?,
            mid,
            up,
            norm_out: load_norm(f, &format!("{d}conv_norm_out"), rev[n - 1])?,
            conv_out: load_conv(f, &format!("{d}conv_out"), rev[n - 1], out, 3, 1, 1)?,
        })
    }

    /// How much the decoder enlarges each side (`2^(blocks − 1)`).
    pub fn scale(&self) -> usize {
        1 << self.up.len().saturating_sub(1)
    }

    /// The run state of decoding `latent_side²` latents (see
    /// [`crate::footprint`]): [`conv_net_bytes`] at the image side, for maps of at
    /// most `width` channels.
    pub fn run_state_bytes(&self, width: u64, latent_side: u64) -> u64 {
        let side = latent_side.saturating_mul(self.scale() as u64);
        conv_net_bytes(width, side, 0)
    }

    /// Decode latents `[latent_channels × h × w]` (Q16, not yet divided by the
    /// scaling factor) to the image `[out_channels × h·s × w·s]`, `s` =
    /// [`VaeDecoder::scale`].
    ///
    /// # Panics
    /// If `latents` does not have the shape (callers check inputs).
    pub fn decode(&self, exec: Exec, latents: &[i32], h: usize, w: usize) -> Vec<i32> {
        assert_eq!(latents.len(), self.latent_channels * h * w, "latent shape");
        let s = i64::from(self.inv_scale_q16);
        // |v · s| < 2^31 · 2^31 = 2^62: no overflow in i64.
        let z: Vec<i32> = latents
            .iter()
            .map(|&v| sat_i32(round_shift(i64::from(v) * s, 16)))
            .collect();
        let z = match &self.post_quant_conv {
            Some(c) => c.forward(exec, &z, h, w),
            None => z,
        };
        let ctx = &self.ctx;
        let a = self.conv_in.forward(exec, &z, h, w);
        let mut a = self.mid.forward(exec, ctx, &a, h, w, None, None);
        let mut hw = (h, w);
        let mut no_skips = Vec::new();
        for b in &self.up {
            a = b.forward(exec, ctx, a, &mut hw, None, None, &mut no_skips);
        }
        let c = self.conv_out.cin;
        let mut a = norm(&a, c, hw.0 * hw.1, ctx.groups, &self.norm_out, ctx.eps);
        silu_inplace(exec, &mut a);
        self.conv_out.forward(exec, &a, hw.0, hw.1)
    }
}
