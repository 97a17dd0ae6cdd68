//! The decoder half of diffusers' `AutoencoderKL`, in integers: latents
//! `[latent_channels × h × w]` (Q16, as the UNet leaves them) to an image
//! `[out_channels × h·2^(n−1) × w·2^(n−1)]` (Q16, about `[−1, 1]`).
//!
//! `z = latents · (1 / scaling_factor)` (the factor a Q16 config word, the product
//! rounded half up once and saturated), then `post_quant_conv` (1x1, when
//! present), `decoder.conv_in`, `decoder.mid_block` (ResNet, one-head spatial
//! attention, ResNet), `decoder.up_blocks.N` (`layers_per_block + 1` ResNets and
//! an upsampler but the last), `decoder.conv_norm_out`, SiLU, `decoder.conv_out`.
//! The ResNets have no time embedding; every norm uses the config's epsilon
//! (diffusers hard-codes `1e-6` in the VAE). Names as in the checkpoint under the
//! file's prefix (`vae.` in a pipeline file).
//!
//! **Config words** (`u32`, from a base word): see the `V_*` constants;
//! `block_out_channels` (encoder order) follow at [`V_CHANNELS`].

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
use crate::image_format::ImageModelFile;
use crate::kernels::Exec;
use crate::nn::conv2d::Conv2d;

/// Word: latent channels.
pub const V_LATENT: usize = 0;
/// Word: image channels out.
pub const V_OUT: usize = 1;
/// Word: number of blocks (`len(block_out_channels)`).
pub const V_BLOCKS: usize = 2;
/// Word: ResNets per encoder block (the decoder's blocks have one more).
pub const V_LAYERS: usize = 3;
/// Word: GroupNorm groups.
pub const V_GROUPS: usize = 4;
/// Word: GroupNorm epsilon, Q32.
pub const V_EPS: usize = 5;
/// Word: mid-block attention (0/1).
pub const V_MID_ATTENTION: usize = 6;
/// Word: `post_quant_conv` present (0/1).
pub const V_POST_QUANT: usize = 7;
/// Word: `1 / scaling_factor` in Q16.
pub const V_INV_SCALE: usize = 8;
/// First word of `block_out_channels`.
pub const V_CHANNELS: usize = 9;

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
    /// Bind the decoder whose config words start at `base` and whose tensor names
    /// start with `pre` (e.g. `"vae."`).
    pub fn bind(f: &ImageModelFile<'a>, pre: &str, base: usize) -> Result<Self, FormatError> {
        let w = |i: usize| f.word(base + i).map(|v| v as usize);
        let n = w(V_BLOCKS)?;
        if n == 0 || n > 8 {
            return Err(FormatError::BadConfig("VAE: 1..=8 blocks"));
        }
        let boc: Vec<usize> = (0..n)
            .map(|i| w(V_CHANNELS + i))
            .collect::<Result<_, _>>()?;
        if boc.iter().any(|&c| c == 0 || c > 1 << 14) {
            return Err(FormatError::BadConfig("VAE: block channels 1..=16384"));
        }
        let layers = w(V_LAYERS)?;
        if layers > 8 {
            return Err(FormatError::BadConfig("VAE: at most 8 layers per block"));
        }
        let inv_scale_q16 = i32::try_from(w(V_INV_SCALE)?)
            .ok()
            .filter(|&s| s > 0)
            .ok_or(FormatError::BadConfig("VAE: 1/scaling_factor out of range"))?;
        let groups = w(V_GROUPS)?;
        let ctx = Ctx {
            groups,
            attn_groups: groups,
            eps: f.word(base + V_EPS)?,
            temb: 0,
            cross: None,
        };
        let (lat, out) = (w(V_LATENT)?, w(V_OUT)?);
        let d = format!("{pre}decoder.");
        let rev: Vec<usize> = boc.iter().rev().copied().collect();
        let mid_kind = if w(V_MID_ATTENTION)? == 1 {
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
            post_quant_conv: if w(V_POST_QUANT)? == 1 {
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
        silu_inplace(&mut a);
        self.conv_out.forward(exec, &a, hw.0, hw.1)
    }
}
