//! diffusers' `UNet2DModel` (unconditional) and `UNet2DConditionModel` (text
//! cross-attention, Stable Diffusion's UNet), and the DDIM scheduler (eta 0), in
//! integers, driven by the config words of an [`ARCH_UNET2D`] image model file
//! (or the UNet part of an [`crate::image_format::ARCH_SD`] one, whose
//! tensor names carry the prefix `unet.`). Both are one struct, [`UNet2D`]: the
//! blocks (in [`super::blocks`]) differ only in their attention.
//!
//! Blocks (tensor names as in the diffusers checkpoint): `conv_in`,
//! `time_embedding.linear_{1,2}`, `down_blocks.N.{resnets.M, attentions.M,
//! downsamplers.0.conv}`, `mid_block.{resnets.0, attentions.0, resnets.1}`,
//! `up_blocks.N.{resnets.M, attentions.M, upsamplers.0.conv}`, `conv_norm_out`,
//! `conv_out`. A ResNet is `norm1 → SiLU → conv1 → + time_emb_proj(SiLU(temb)) →
//! norm2 → SiLU → conv2`, plus `conv_shortcut(x)` (or `x`); an attention is
//! `group_norm → to_q/to_k/to_v → softmax(qkᵀ/√d)v → to_out.0`, plus `x`.
//! Supported: the settings `oracle-quant`'s float reference supports with
//! `output_scale_factor`/`rescale_output_factor` 1 (the converter refuses others).
//!
//! **Config words** (`u32`): see the `W_*` constants; `block_out_channels`, the
//! down block types and the up block types follow at [`W_CHANNELS`] (`n` words
//! each; type 0 = plain, 1 = with spatial attention, 2 = with cross-attention
//! transformers: `CrossAttnDownBlock2D`/`CrossAttnUpBlock2D`).
//!
//! **Tables** stored by the converter (computed with `libm`, covered by the root):
//! `time_proj.freqs` (half of `block_out_channels[0]` frequencies, turns per
//! timestep, fractional bits in the tensor's `exp`); the DDIM tables over the `T`
//! training timesteps `scheduler.sqrt_alphas_cumprod` and
//! `scheduler.sqrt_one_minus_alphas_cumprod` (Q30) and
//! `scheduler.inv_sqrt_alphas_cumprod` (Q20, i.e. below 2048), and
//! `scheduler.final` (the same three for `final_alpha_cumprod`).
//!
//! **DDIM step** (epsilon prediction): `x0 = (x − s1m_t ε) · inv_sa_t`, clipped to
//! `±clip_range` when `clip_sample`, then `x' = sa_prev x0 + s1m_prev ε`; every
//! product `Q16 × Q30` (or `Q20`) is below `2^62` in `i64` and rounded half up once.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::blocks::{
    check_groups, load_norm, norm, silu_inplace, Block, BlockSpec, Ctx, Mid, Norm, Skips,
    KIND_CROSS, KIND_PLAIN, KIND_SPATIAL,
};
use super::ddpm_mnist::{load_conv, load_linear};
use super::transformer::Transformer2DConfig;
use crate::error::FormatError;
use crate::fixed::{round_shift, sat_i32, FRAC30};
use crate::footprint::{check_run_state, conv_net_bytes, image_width};
use crate::image_format::{ImageModelFile, ARCH_UNET2D};
use crate::kernels::Exec;
use crate::math::silu_q16;
use crate::nn::conv2d::Conv2d;
use crate::nn::linear::Linear;
use crate::nn::timestep::sinusoidal_embedding;

/// Config word: input channels.
pub const W_IN: usize = 0;
/// Config word: output channels.
pub const W_OUT: usize = 1;
/// Config word: number of blocks (`len(block_out_channels)`).
pub const W_BLOCKS: usize = 2;
/// Config word: ResNets per down block.
pub const W_LAYERS: usize = 3;
/// Config word: channels per attention head (0: one head over all channels).
pub const W_HEAD_DIM: usize = 4;
/// Config word: GroupNorm groups.
pub const W_GROUPS: usize = 5;
/// Config word: GroupNorm groups of the attentions.
pub const W_ATTN_GROUPS: usize = 6;
/// Config word: GroupNorm epsilon in Q32.
pub const W_EPS: usize = 7;
/// Config word: `flip_sin_to_cos` (0/1).
pub const W_FLIP: usize = 8;
/// Config word: downsampling conv padding.
pub const W_DOWN_PAD: usize = 9;
/// Config word: mid block (0 none, 1 with attention, 2 without, 3 with a
/// cross-attention transformer: `UNetMidBlock2DCrossAttn`).
pub const W_MID: usize = 10;
/// Config word: sample side.
pub const W_SAMPLE: usize = 11;
/// Config word: DDIM training timesteps `T`.
pub const W_TRAIN_T: usize = 12;
/// Config word: timestep spacing (0 leading, 1 trailing, 2 linspace).
pub const W_SPACING: usize = 13;
/// Config word: `steps_offset`.
pub const W_OFFSET: usize = 14;
/// Config word: `clip_sample` (0/1).
pub const W_CLIP: usize = 15;
/// Config word: `clip_sample_range` in Q16.
pub const W_CLIP_RANGE: usize = 16;
/// Config word: `cross_attention_dim` (0: no cross-attention blocks).
pub const W_CROSS_DIM: usize = 17;
/// Config word: `transformer_layers_per_block`.
pub const W_TRANSFORMER_LAYERS: usize = 18;
/// Config word: heads of the transformers (diffusers' `attention_head_dim` in SD
/// 1.x configs, or `num_attention_heads`).
pub const W_HEADS: usize = 19;
/// First word of `block_out_channels`.
pub const W_CHANNELS: usize = 20;

/// The integer `UNet2DModel` / `UNet2DConditionModel` with its DDIM tables.
#[derive(Debug, Clone)]
pub struct UNet2D<'a> {
    ctx: Ctx,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Sample side (from the config).
    pub sample_size: usize,
    /// Width of the text states the cross-attentions take (0: unconditional).
    pub cross_attention_dim: usize,
    flip: bool,
    freqs_q48: Vec<i64>,
    conv_in: Conv2d<'a>,
    linear_1: Linear<'a>,
    linear_2: Linear<'a>,
    down: Vec<Block<'a>>,
    mid: Option<Mid<'a>>,
    up: Vec<Block<'a>>,
    norm_out: Norm,
    conv_out: Conv2d<'a>,
    /// The DDIM scheduler.
    pub ddim: Ddim,
}

/// DDIM (eta 0) in fixed point.
#[derive(Debug, Clone)]
pub struct Ddim {
    /// Training timesteps `T`.
    pub train_t: usize,
    spacing: u32,
    offset: usize,
    clip: Option<i32>,
    sa: Vec<i32>,
    s1m: Vec<i32>,
    inv_sa: Vec<i32>,
    fin: [i32; 3],
}

impl Ddim {
    /// The `n` inference timesteps, descending (diffusers' `set_timesteps`; the
    /// roundings of `trailing`/`linspace` are half-to-even of exact rationals).
    pub fn timesteps(&self, n: usize) -> Option<Vec<usize>> {
        let t = self.train_t;
        if n == 0 || n > t {
            return None;
        }
        let round_even = |num: u64, den: u64| -> u64 {
            let (q, r) = (num / den, num % den);
            if 2 * r > den || 2 * r == den && q % 2 == 1 {
                q + 1
            } else {
                q
            }
        };
        let ts: Vec<usize> = match self.spacing {
            0 => (0..n).rev().map(|i| i * (t / n) + self.offset).collect(),
            1 => (0..n)
                .map(|i| (round_even((t * n - i * t) as u64, n as u64) as usize).saturating_sub(1))
                .collect(),
            _ => (0..n)
                .rev()
                .map(|i| {
                    if n == 1 {
                        0
                    } else {
                        round_even((i * (t - 1)) as u64, (n - 1) as u64) as usize
                    }
                })
                .collect(),
        };
        ts.iter().all(|&x| x < t).then_some(ts)
    }

    /// One step from `x` at `timestep` with the model's `eps`, to `timestep − T/n`.
    pub fn step(&self, eps: &[i32], timestep: usize, n: usize, x: &mut [i32]) {
        let ratio = self.train_t / n;
        let (s1m, inv) = (
            i64::from(self.s1m[timestep]),
            i64::from(self.inv_sa[timestep]),
        );
        let (sa_p, s1m_p) = match timestep.checked_sub(ratio) {
            Some(p) => (i64::from(self.sa[p]), i64::from(self.s1m[p])),
            None => (i64::from(self.fin[0]), i64::from(self.fin[1])),
        };
        for (v, &e) in x.iter_mut().zip(eps) {
            let e = i64::from(e);
            let d = i64::from(*v) - round_shift(s1m * e, FRAC30);
            let mut x0 = sat_i32(round_shift(d * inv, 20));
            if let Some(r) = self.clip {
                x0 = x0.clamp(-r, r);
            }
            *v =
                sat_i32(round_shift(sa_p * i64::from(x0), FRAC30) + round_shift(s1m_p * e, FRAC30));
        }
    }
}

/// Why a UNet2D request was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UNetError {
    /// A given noise tensor of the wrong length.
    #[error("noise has {got} values, expected {want}")]
    NoiseLength {
        /// Values given.
        got: usize,
        /// Values expected.
        want: usize,
    },
    /// Steps outside `1..=T`.
    #[error("steps {0} outside 1..=num_train_timesteps or past the last timestep")]
    Steps(usize),
}

fn words(f: &ImageModelFile<'_>, from: usize, n: usize) -> Result<Vec<usize>, FormatError> {
    (0..n)
        .map(|i| f.word(from + i).map(|v| v as usize))
        .collect()
}

impl<'a> UNet2D<'a> {
    /// Bind a parsed image model file of architecture [`ARCH_UNET2D`].
    pub fn from_file(f: &ImageModelFile<'a>) -> Result<Self, FormatError> {
        if f.arch != ARCH_UNET2D {
            return Err(FormatError::UnsupportedArch(f.arch));
        }
        let m = Self::bind(f, "")?;
        check_run_state(m.run_state_bytes(image_width(f, m.in_channels as u64)))?;
        Ok(m)
    }

    /// The run state of one sampling request (see [`crate::footprint`]):
    /// [`conv_net_bytes`] at the sample side with every skip state, for maps of at
    /// most `width` channels ([`image_width`]); the sample, the predicted noise
    /// and the time embedding fit in the same count.
    pub fn run_state_bytes(&self, width: u64) -> u64 {
        let side = self.sample_size.max(self.side_multiple()) as u64;
        let skips = 1 + self.down.iter().map(Block::skip_count).sum::<usize>() as u64;
        conv_net_bytes(width, side, skips)
    }

    /// Bind the UNet whose config words start at word 0 and whose tensor names
    /// start with `pre` (`""`, or `"unet."` in a pipeline file); the DDIM tables
    /// are `scheduler.*` in both.
    pub fn bind(f: &ImageModelFile<'a>, pre: &str) -> Result<Self, FormatError> {
        let w = |i| f.word(i).map(|v| v as usize);
        let n = w(W_BLOCKS)?;
        if n == 0 || n > 8 {
            return Err(FormatError::BadConfig("1..=8 blocks"));
        }
        let boc = words(f, W_CHANNELS, n)?;
        let down_t = words(f, W_CHANNELS + n, n)?;
        let up_t = words(f, W_CHANNELS + 2 * n, n)?;
        if boc.iter().any(|&c| c == 0 || c > 1 << 14) || !boc[0].is_multiple_of(2) {
            return Err(FormatError::BadConfig(
                "block channels must be even, 1..=16384",
            ));
        }
        let layers = w(W_LAYERS)?;
        if layers == 0 || layers > 8 {
            return Err(FormatError::BadConfig("1..=8 layers per block"));
        }
        // The run state from the config alone, before any tensor is bound: a
        // lower bound of [`UNet2D::run_state_bytes`] (every block's convolutions
        // output its channels, so the widest map has at least twice the most).
        let side = w(W_SAMPLE)?.max(1 << (n - 1)) as u64;
        let widest = boc.iter().copied().max().unwrap_or(0) as u64;
        let skips = (1 + n * layers + (n - 1)) as u64;
        check_run_state(conv_net_bytes(2 * widest, side, skips))?;
        let head_dim = w(W_HEAD_DIM)?;
        let cross_dim = f.word(W_CROSS_DIM)?;
        let ctx = Ctx {
            groups: w(W_GROUPS)?,
            attn_groups: w(W_ATTN_GROUPS)?,
            eps: f.word(W_EPS)?,
            temb: boc[0] * 4,
            cross: (cross_dim > 0).then(|| Transformer2DConfig {
                channels: 0,
                heads: f.word(W_HEADS).unwrap_or(0),
                layers: f.word(W_TRANSFORMER_LAYERS).unwrap_or(0),
                context_dim: cross_dim,
                groups: f.word(W_GROUPS).unwrap_or(0),
            }),
        };
        let kind = |t: usize| -> Result<u32, FormatError> {
            match t as u32 {
                k @ (KIND_PLAIN | KIND_SPATIAL | KIND_CROSS) => Ok(k),
                _ => Err(FormatError::BadConfig("unknown block type code")),
            }
        };
        let (cin, cout) = (w(W_IN)?, w(W_OUT)?);
        let mut down = Vec::with_capacity(n);
        let mut out_c = boc[0];
        for i in 0..n {
            let in_c = out_c;
            out_c = boc[i];
            let res: Vec<(usize, usize)> = (0..layers)
                .map(|m| (if m == 0 { in_c } else { out_c }, out_c))
                .collect();
            let spec = BlockSpec {
                prefix: &format!("{pre}down_blocks.{i}"),
                kind: kind(down_t[i])?,
                resnets: &res,
                head_dim,
                skips: Skips::Push,
                down_pad: if i + 1 < n {
                    Some(w(W_DOWN_PAD)?)
                } else {
                    None
                },
                up: false,
            };
            down.push(Block::load(f, &spec, &ctx)?);
        }
        let mid_c = boc[n - 1];
        let mid_kind = match w(W_MID)? {
            0 => None,
            1 => Some(KIND_SPATIAL),
            2 => Some(KIND_PLAIN),
            3 => Some(KIND_CROSS),
            _ => return Err(FormatError::BadConfig("unknown mid block type code")),
        };
        let mid = match mid_kind {
            Some(k) => Some(Mid::load(
                f,
                &format!("{pre}mid_block"),
                k,
                mid_c,
                head_dim,
                &ctx,
            )?),
            None => None,
        };
        let rev: Vec<usize> = boc.iter().rev().copied().collect();
        let mut up = Vec::with_capacity(n);
        let mut out_c = rev[0];
        for i in 0..n {
            let prev_c = out_c;
            out_c = rev[i];
            let in_c = rev[(i + 1).min(n - 1)];
            let res: Vec<(usize, usize)> = (0..=layers)
                .map(|m| {
                    let skip_c = if m == layers { in_c } else { out_c };
                    let res_in = if m == 0 { prev_c } else { out_c };
                    (res_in + skip_c, out_c)
                })
                .collect();
            let spec = BlockSpec {
                prefix: &format!("{pre}up_blocks.{i}"),
                kind: kind(up_t[i])?,
                resnets: &res,
                head_dim,
                skips: Skips::Pop,
                down_pad: None,
                up: i + 1 < n,
            };
            up.push(Block::load(f, &spec, &ctx)?);
        }
        let pushed: usize = 1 + down.iter().map(Block::skip_count).sum::<usize>();
        let popped: usize = up.iter().map(Block::skip_count).sum();
        if pushed != popped {
            return Err(FormatError::BadConfig(
                "skip states of down and up blocks differ",
            ));
        }
        let freqs_name = format!("{pre}time_proj.freqs");
        let ft = f.tensor(&freqs_name)?;
        if ft.dtype != crate::format::DType::I32
            || ft.rows as usize * ft.cols as usize != boc[0] / 2
            || !(0..=48).contains(&ft.exp)
        {
            return Err(FormatError::BadTensor {
                name: freqs_name,
                reason: "expected half the first block's channels, at most 48 fractional bits",
            });
        }
        let up_shift = 48 - ft.exp as u32;
        let freqs_q48 = ft
            .to_i32_vec()
            .iter()
            .map(|&v| i64::from(v) << up_shift)
            .collect();
        let t = w(W_TRAIN_T)?;
        if !(2..=1 << 12).contains(&t) {
            return Err(FormatError::BadConfig(
                "num_train_timesteps must be 2..=4096",
            ));
        }
        let fin = f.i32s("scheduler.final", 3, 30)?;
        let ddim = Ddim {
            train_t: t,
            spacing: f.word(W_SPACING)?,
            offset: w(W_OFFSET)?,
            clip: (f.word(W_CLIP)? == 1).then_some(f.word(W_CLIP_RANGE)? as i32),
            sa: f.i32s("scheduler.sqrt_alphas_cumprod", t, 30)?,
            s1m: f.i32s("scheduler.sqrt_one_minus_alphas_cumprod", t, 30)?,
            inv_sa: f.i32s("scheduler.inv_sqrt_alphas_cumprod", t, 20)?,
            fin: [fin[0], fin[1], fin[2]],
        };
        check_groups(boc[0], ctx.groups)?;
        let p = |s: &str| format!("{pre}{s}");
        Ok(UNet2D {
            ctx,
            in_channels: cin,
            out_channels: cout,
            sample_size: w(W_SAMPLE)?,
            cross_attention_dim: cross_dim as usize,
            flip: f.word(W_FLIP)? == 1,
            freqs_q48,
            conv_in: load_conv(f, &p("conv_in"), cin, boc[0], 3, 1, 1)?,
            linear_1: load_linear(f, &p("time_embedding.linear_1"), boc[0], ctx.temb)?,
            linear_2: load_linear(f, &p("time_embedding.linear_2"), ctx.temb, ctx.temb)?,
            down,
            mid,
            up,
            norm_out: load_norm(f, &p("conv_norm_out"), boc[0])?,
            conv_out: load_conv(f, &p("conv_out"), boc[0], cout, 3, 1, 1)?,
            ddim,
        })
    }

    /// Sides must be divisible by this.
    pub fn side_multiple(&self) -> usize {
        1 << (self.down.len() - 1)
    }

    /// The predicted noise for `x: [in_channels × h × w]` at integer timestep `t`
    /// (an unconditional UNet; see [`UNet2D::forward_cond`]).
    ///
    /// # Panics
    /// If `x` does not have the shape or the sides are not multiples of
    /// [`UNet2D::side_multiple`] (callers check inputs).
    pub fn forward(&self, exec: Exec, x: &[i32], h: usize, w: usize, t: u32) -> Vec<i32> {
        self.forward_cond(exec, x, h, w, t, None)
    }

    /// The predicted noise for `x: [in_channels × h × w]` at integer timestep `t`,
    /// the cross-attentions attending to `context: [m × cross_attention_dim]`.
    ///
    /// # Panics
    /// As [`UNet2D::forward`], or if `context` is shorter than `m` rows.
    pub fn forward_cond(
        &self,
        exec: Exec,
        x: &[i32],
        h: usize,
        w: usize,
        t: u32,
        context: Option<(&[i32], usize)>,
    ) -> Vec<i32> {
        assert!(
            x.len() == self.in_channels * h * w
                && h.is_multiple_of(self.side_multiple())
                && w.is_multiple_of(self.side_multiple())
        );
        if let Some((c, m)) = context {
            assert!(c.len() == m * self.cross_attention_dim, "context shape");
        }
        let ctx = &self.ctx;
        let mut e = vec![0i32; self.freqs_q48.len() * 2];
        sinusoidal_embedding(t, &self.freqs_q48, self.flip, &mut e);
        let mut temb = self.linear_1.forward_vec(exec, &e, 1);
        temb.iter_mut().for_each(|v| *v = silu_q16(*v));
        let mut temb = self.linear_2.forward_vec(exec, &temb, 1);
        silu_inplace(&mut temb); // every ResNet takes SiLU(temb)
        let temb = Some(&temb[..]);
        let mut hw = (h, w);
        let mut a = self.conv_in.forward(exec, x, h, w);
        let mut skips: Vec<Vec<i32>> = vec![a.clone()];
        for b in &self.down {
            a = b.forward(exec, ctx, a, &mut hw, temb, context, &mut skips);
        }
        if let Some(m) = &self.mid {
            a = m.forward(exec, ctx, &a, hw.0, hw.1, temb, context);
        }
        for b in &self.up {
            a = b.forward(exec, ctx, a, &mut hw, temb, context, &mut skips);
        }
        let c0 = self.conv_out.cin;
        let mut a = norm(&a, c0, hw.0 * hw.1, ctx.groups, &self.norm_out, ctx.eps);
        silu_inplace(&mut a);
        self.conv_out.forward(exec, &a, hw.0, hw.1)
    }

    /// DDIM sampling from the start noise `x` (`[in_channels × h × w]`, Q16) in
    /// `steps` steps; returns the final sample (Q16).
    pub fn sample(
        &self,
        exec: Exec,
        mut x: Vec<i32>,
        h: usize,
        w: usize,
        steps: usize,
    ) -> Result<Vec<i32>, UNetError> {
        let want = self.in_channels * h * w;
        if x.len() != want
            || !h.is_multiple_of(self.side_multiple())
            || !w.is_multiple_of(self.side_multiple())
            || h == 0
        {
            return Err(UNetError::NoiseLength { got: x.len(), want });
        }
        let ts = self.ddim.timesteps(steps).ok_or(UNetError::Steps(steps))?;
        for &t in &ts {
            let eps = self.forward(exec, &x, h, w, t as u32);
            self.ddim.step(&eps, t, steps, &mut x);
        }
        Ok(x)
    }
}
