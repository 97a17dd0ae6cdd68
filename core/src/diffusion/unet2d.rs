//! diffusers' `UNet2DModel` (unconditional) and the DDIM scheduler (eta 0), in
//! integers, driven by the config words of an [`ARCH_UNET2D`] image model file.
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
//! each; type 0 = plain, 1 = with attention).
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

use alloc::vec;
use alloc::vec::Vec;

use crate::error::FormatError;
use crate::fixed::{round_shift, sat_i32, FRAC30};
use crate::image_format::{ImageModelFile, ARCH_UNET2D};
use crate::kernels::Exec;
use crate::math::silu_q16;
use crate::nn::attention::attention;
use crate::nn::conv2d::Conv2d;
use crate::nn::groupnorm::group_norm;
use crate::nn::linear::Linear;
use crate::nn::resample::upsample_nearest2;
use crate::nn::timestep::sinusoidal_embedding;

use super::ddpm_mnist::{load_conv, load_linear};

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
/// Config word: mid block (0 none, 1 with attention, 2 without).
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
/// First word of `block_out_channels`.
pub const W_CHANNELS: usize = 20;

/// `ResnetBlock2D`.
#[derive(Debug, Clone)]
pub struct Resnet<'a> {
    norm1: (Vec<i32>, Vec<i32>),
    conv1: Conv2d<'a>,
    time_emb_proj: Linear<'a>,
    norm2: (Vec<i32>, Vec<i32>),
    conv2: Conv2d<'a>,
    conv_shortcut: Option<Conv2d<'a>>,
    cin: usize,
    cout: usize,
}

/// Shared settings of the layers.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    groups: usize,
    attn_groups: usize,
    eps: u32,
    temb: usize,
}

fn load_norm(
    f: &ImageModelFile<'_>,
    p: &str,
    c: usize,
) -> Result<(Vec<i32>, Vec<i32>), FormatError> {
    Ok((
        f.i32s(&alloc::format!("{p}.weight"), c, 16)?,
        f.i32s(&alloc::format!("{p}.bias"), c, 16)?,
    ))
}

fn norm(
    x: &[i32],
    c: usize,
    hw: usize,
    groups: usize,
    n: &(Vec<i32>, Vec<i32>),
    eps: u32,
) -> Vec<i32> {
    let mut out = vec![0; x.len()];
    group_norm(x, c, hw, groups, &n.0, &n.1, eps, &mut out);
    out
}

fn check_groups(c: usize, g: usize) -> Result<(), FormatError> {
    if g == 0 || !c.is_multiple_of(g) {
        return Err(FormatError::BadConfig(
            "GroupNorm groups do not divide the channels",
        ));
    }
    Ok(())
}

impl<'a> Resnet<'a> {
    fn load(
        f: &ImageModelFile<'a>,
        p: &str,
        cin: usize,
        cout: usize,
        ctx: Ctx,
    ) -> Result<Self, FormatError> {
        check_groups(cin, ctx.groups)?;
        check_groups(cout, ctx.groups)?;
        Ok(Resnet {
            norm1: load_norm(f, &alloc::format!("{p}.norm1"), cin)?,
            conv1: load_conv(f, &alloc::format!("{p}.conv1"), cin, cout, 3, 1, 1)?,
            time_emb_proj: load_linear(f, &alloc::format!("{p}.time_emb_proj"), ctx.temb, cout)?,
            norm2: load_norm(f, &alloc::format!("{p}.norm2"), cout)?,
            conv2: load_conv(f, &alloc::format!("{p}.conv2"), cout, cout, 3, 1, 1)?,
            conv_shortcut: if cin != cout {
                Some(load_conv(
                    f,
                    &alloc::format!("{p}.conv_shortcut"),
                    cin,
                    cout,
                    1,
                    1,
                    0,
                )?)
            } else {
                None
            },
            cin,
            cout,
        })
    }

    fn forward(
        &self,
        exec: Exec,
        ctx: Ctx,
        x: &[i32],
        h: usize,
        w: usize,
        temb_silu: &[i32],
    ) -> Vec<i32> {
        let hw = h * w;
        let mut a = norm(x, self.cin, hw, ctx.groups, &self.norm1, ctx.eps);
        a.iter_mut().for_each(|v| *v = silu_q16(*v));
        let mut a = self.conv1.forward(exec, &a, h, w);
        let t = self.time_emb_proj.forward_vec(exec, temb_silu, 1);
        for (plane, &tv) in a.chunks_exact_mut(hw).zip(&t) {
            plane.iter_mut().for_each(|v| *v = v.saturating_add(tv));
        }
        let mut a = norm(&a, self.cout, hw, ctx.groups, &self.norm2, ctx.eps);
        a.iter_mut().for_each(|v| *v = silu_q16(*v));
        let mut a = self.conv2.forward(exec, &a, h, w);
        match &self.conv_shortcut {
            Some(c) => {
                let s = c.forward(exec, x, h, w);
                a.iter_mut()
                    .zip(&s)
                    .for_each(|(v, &s)| *v = v.saturating_add(s));
            }
            None => a
                .iter_mut()
                .zip(x)
                .for_each(|(v, &s)| *v = v.saturating_add(s)),
        }
        a
    }
}

/// The spatial self-attention of the attention blocks.
#[derive(Debug, Clone)]
pub struct SpatialAttention<'a> {
    group_norm: (Vec<i32>, Vec<i32>),
    to_q: Linear<'a>,
    to_k: Linear<'a>,
    to_v: Linear<'a>,
    to_out: Linear<'a>,
    channels: usize,
    heads: usize,
}

impl<'a> SpatialAttention<'a> {
    fn load(
        f: &ImageModelFile<'a>,
        p: &str,
        c: usize,
        head_dim: usize,
        ctx: Ctx,
    ) -> Result<Self, FormatError> {
        let head_dim = if head_dim == 0 { c } else { head_dim };
        if !c.is_multiple_of(head_dim) {
            return Err(FormatError::BadConfig(
                "attention head dim does not divide the channels",
            ));
        }
        check_groups(c, ctx.attn_groups)?;
        Ok(SpatialAttention {
            group_norm: load_norm(f, &alloc::format!("{p}.group_norm"), c)?,
            to_q: load_linear(f, &alloc::format!("{p}.to_q"), c, c)?,
            to_k: load_linear(f, &alloc::format!("{p}.to_k"), c, c)?,
            to_v: load_linear(f, &alloc::format!("{p}.to_v"), c, c)?,
            to_out: load_linear(f, &alloc::format!("{p}.to_out.0"), c, c)?,
            channels: c,
            heads: c / head_dim,
        })
    }

    fn forward(&self, exec: Exec, ctx: Ctx, x: &[i32], hw: usize) -> Vec<i32> {
        let c = self.channels;
        let n = norm(x, c, hw, ctx.attn_groups, &self.group_norm, ctx.eps);
        // [C × HW] -> [HW × C] tokens.
        let mut t = vec![0i32; n.len()];
        for ch in 0..c {
            for p in 0..hw {
                t[p * c + ch] = n[ch * hw + p];
            }
        }
        let q = self.to_q.forward_vec(exec, &t, hw);
        let k = self.to_k.forward_vec(exec, &t, hw);
        let v = self.to_v.forward_vec(exec, &t, hw);
        let mut a = vec![0i32; hw * c];
        attention(exec, &q, &k, &v, hw, hw, self.heads, c / self.heads, &mut a);
        let o = self.to_out.forward_vec(exec, &a, hw);
        let mut out = x.to_vec();
        for ch in 0..c {
            for p in 0..hw {
                out[ch * hw + p] = out[ch * hw + p].saturating_add(o[p * c + ch]);
            }
        }
        out
    }
}

/// A down or up block: ResNets (with attentions) and an optional resampler conv.
#[derive(Debug, Clone)]
pub struct Block<'a> {
    resnets: Vec<Resnet<'a>>,
    attentions: Vec<SpatialAttention<'a>>,
    sampler: Option<Conv2d<'a>>,
}

/// The integer `UNet2DModel` with its DDIM tables.
#[derive(Debug, Clone)]
pub struct UNet2D<'a> {
    ctx: Ctx,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Sample side (from the config).
    pub sample_size: usize,
    flip: bool,
    freqs_q48: Vec<i64>,
    conv_in: Conv2d<'a>,
    linear_1: Linear<'a>,
    linear_2: Linear<'a>,
    down: Vec<Block<'a>>,
    mid: Option<(Resnet<'a>, Option<SpatialAttention<'a>>, Resnet<'a>)>,
    up: Vec<Block<'a>>,
    norm_out: (Vec<i32>, Vec<i32>),
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

impl<'a> UNet2D<'a> {
    /// Bind a parsed image model file of architecture [`ARCH_UNET2D`].
    pub fn from_file(f: &ImageModelFile<'a>) -> Result<Self, FormatError> {
        if f.arch != ARCH_UNET2D {
            return Err(FormatError::UnsupportedArch(f.arch));
        }
        let w = |i| f.word(i).map(|v| v as usize);
        let n = w(W_BLOCKS)?;
        if n == 0 || n > 8 {
            return Err(FormatError::BadConfig("1..=8 blocks"));
        }
        let boc: Vec<usize> = (0..n)
            .map(|i| w(W_CHANNELS + i))
            .collect::<Result<_, _>>()?;
        let down_t: Vec<usize> = (0..n)
            .map(|i| w(W_CHANNELS + n + i))
            .collect::<Result<_, _>>()?;
        let up_t: Vec<usize> = (0..n)
            .map(|i| w(W_CHANNELS + 2 * n + i))
            .collect::<Result<_, _>>()?;
        if boc.iter().any(|&c| c == 0 || c > 1 << 14) || !boc[0].is_multiple_of(2) {
            return Err(FormatError::BadConfig(
                "block channels must be even, 1..=16384",
            ));
        }
        let layers = w(W_LAYERS)?;
        let head_dim = w(W_HEAD_DIM)?;
        let ctx = Ctx {
            groups: w(W_GROUPS)?,
            attn_groups: w(W_ATTN_GROUPS)?,
            eps: f.word(W_EPS)?,
            temb: boc[0] * 4,
        };
        let (cin, cout) = (w(W_IN)?, w(W_OUT)?);
        let mut down = Vec::with_capacity(n);
        let mut out_c = boc[0];
        for i in 0..n {
            let in_c = out_c;
            out_c = boc[i];
            let p = alloc::format!("down_blocks.{i}");
            let mut b = Block {
                resnets: Vec::new(),
                attentions: Vec::new(),
                sampler: None,
            };
            for m in 0..layers {
                let ci = if m == 0 { in_c } else { out_c };
                b.resnets.push(Resnet::load(
                    f,
                    &alloc::format!("{p}.resnets.{m}"),
                    ci,
                    out_c,
                    ctx,
                )?);
                if down_t[i] == 1 {
                    b.attentions.push(SpatialAttention::load(
                        f,
                        &alloc::format!("{p}.attentions.{m}"),
                        out_c,
                        head_dim,
                        ctx,
                    )?);
                }
            }
            if i + 1 < n {
                let pad = w(W_DOWN_PAD)?;
                b.sampler = Some(load_conv(
                    f,
                    &alloc::format!("{p}.downsamplers.0.conv"),
                    out_c,
                    out_c,
                    3,
                    2,
                    pad,
                )?);
            }
            down.push(b);
        }
        let mid_c = boc[n - 1];
        let mid = match w(W_MID)? {
            0 => None,
            kind => Some((
                Resnet::load(f, "mid_block.resnets.0", mid_c, mid_c, ctx)?,
                if kind == 1 {
                    Some(SpatialAttention::load(
                        f,
                        "mid_block.attentions.0",
                        mid_c,
                        head_dim,
                        ctx,
                    )?)
                } else {
                    None
                },
                Resnet::load(f, "mid_block.resnets.1", mid_c, mid_c, ctx)?,
            )),
        };
        let rev: Vec<usize> = boc.iter().rev().copied().collect();
        let mut up = Vec::with_capacity(n);
        let mut out_c = rev[0];
        for i in 0..n {
            let prev_c = out_c;
            out_c = rev[i];
            let in_c = rev[(i + 1).min(n - 1)];
            let p = alloc::format!("up_blocks.{i}");
            let mut b = Block {
                resnets: Vec::new(),
                attentions: Vec::new(),
                sampler: None,
            };
            for m in 0..=layers {
                let skip_c = if m == layers { in_c } else { out_c };
                let res_in = if m == 0 { prev_c } else { out_c };
                b.resnets.push(Resnet::load(
                    f,
                    &alloc::format!("{p}.resnets.{m}"),
                    res_in + skip_c,
                    out_c,
                    ctx,
                )?);
                if up_t[i] == 1 {
                    b.attentions.push(SpatialAttention::load(
                        f,
                        &alloc::format!("{p}.attentions.{m}"),
                        out_c,
                        head_dim,
                        ctx,
                    )?);
                }
            }
            if i + 1 < n {
                b.sampler = Some(load_conv(
                    f,
                    &alloc::format!("{p}.upsamplers.0.conv"),
                    out_c,
                    out_c,
                    3,
                    1,
                    1,
                )?);
            }
            up.push(b);
        }
        let ft = f.tensor("time_proj.freqs")?;
        if ft.dtype != crate::format::DType::I32
            || ft.rows as usize * ft.cols as usize != boc[0] / 2
            || !(0..=48).contains(&ft.exp)
        {
            return Err(FormatError::BadTensor {
                name: "time_proj.freqs".into(),
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
        Ok(UNet2D {
            ctx,
            in_channels: cin,
            out_channels: cout,
            sample_size: w(W_SAMPLE)?,
            flip: f.word(W_FLIP)? == 1,
            freqs_q48,
            conv_in: load_conv(f, "conv_in", cin, boc[0], 3, 1, 1)?,
            linear_1: load_linear(f, "time_embedding.linear_1", boc[0], ctx.temb)?,
            linear_2: load_linear(f, "time_embedding.linear_2", ctx.temb, ctx.temb)?,
            down,
            mid,
            up,
            norm_out: load_norm(f, "conv_norm_out", boc[0])?,
            conv_out: load_conv(f, "conv_out", boc[0], cout, 3, 1, 1)?,
            ddim,
        })
    }

    /// Sides must be divisible by this.
    pub fn side_multiple(&self) -> usize {
        1 << (self.down.len() - 1)
    }

    /// The predicted noise for `x: [in_channels × h × w]` at integer timestep `t`.
    ///
    /// # Panics
    /// If `x` does not have the shape or the sides are not multiples of
    /// [`UNet2D::side_multiple`] (callers check inputs).
    pub fn forward(&self, exec: Exec, x: &[i32], h: usize, w: usize, t: u32) -> Vec<i32> {
        assert!(
            x.len() == self.in_channels * h * w
                && h.is_multiple_of(self.side_multiple())
                && w.is_multiple_of(self.side_multiple())
        );
        let ctx = self.ctx;
        let mut e = vec![0i32; self.freqs_q48.len() * 2];
        sinusoidal_embedding(t, &self.freqs_q48, self.flip, &mut e);
        let mut temb = self.linear_1.forward_vec(exec, &e, 1);
        temb.iter_mut().for_each(|v| *v = silu_q16(*v));
        let mut temb = self.linear_2.forward_vec(exec, &temb, 1);
        temb.iter_mut().for_each(|v| *v = silu_q16(*v)); // every ResNet takes SiLU(temb)
        let (mut hh, mut ww) = (h, w);
        let mut a = self.conv_in.forward(exec, x, hh, ww);
        let mut skips: Vec<(Vec<i32>, usize)> = vec![(a.clone(), self.conv_in.cout)];
        for b in &self.down {
            for (m, r) in b.resnets.iter().enumerate() {
                a = r.forward(exec, ctx, &a, hh, ww, &temb);
                if let Some(at) = b.attentions.get(m) {
                    a = at.forward(exec, ctx, &a, hh * ww);
                }
                skips.push((a.clone(), r.cout));
            }
            if let Some(s) = &b.sampler {
                a = s.forward(exec, &a, hh, ww);
                (hh, ww) = s.out_shape(hh, ww).unwrap_or((hh / 2, ww / 2));
                skips.push((a.clone(), s.cout));
            }
        }
        if let Some((r0, at, r1)) = &self.mid {
            a = r0.forward(exec, ctx, &a, hh, ww, &temb);
            if let Some(at) = at {
                a = at.forward(exec, ctx, &a, hh * ww);
            }
            a = r1.forward(exec, ctx, &a, hh, ww, &temb);
        }
        for b in &self.up {
            for (m, r) in b.resnets.iter().enumerate() {
                let (skip, _) = skips.pop().expect("skip states counted at load");
                a.extend_from_slice(&skip); // channel concat: [h ; skip]
                a = r.forward(exec, ctx, &a, hh, ww, &temb);
                if let Some(at) = b.attentions.get(m) {
                    a = at.forward(exec, ctx, &a, hh * ww);
                }
            }
            if let Some(s) = &b.sampler {
                let c = s.cin;
                a = upsample_nearest2(&a, c, hh, ww);
                (hh, ww) = (2 * hh, 2 * ww);
                a = s.forward(exec, &a, hh, ww);
            }
        }
        let c0 = self.conv_out.cin;
        let mut a = norm(&a, c0, hh * ww, ctx.groups, &self.norm_out, ctx.eps);
        a.iter_mut().for_each(|v| *v = silu_q16(*v));
        self.conv_out.forward(exec, &a, hh, ww)
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
