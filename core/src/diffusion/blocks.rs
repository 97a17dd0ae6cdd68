//! The diffusers blocks the UNets and the VAE decoder share, in integers over Q16
//! `[C × H × W]` maps: `ResnetBlock2D`, the spatial self-attention, the
//! cross-attention `Transformer2DModel` (as one [`Attention`] enum), and the down,
//! up and mid blocks built from them. Names mirror the checkpoint's
//! (`{prefix}resnets.M.conv1`, `{prefix}attentions.M`, `{prefix}downsamplers.0.conv`).
//!
//! A ResNet is `norm1 → SiLU → conv1 → + time_emb_proj(SiLU(temb)) → norm2 → SiLU
//! → conv2`, plus `conv_shortcut(x)` (or `x`); the VAE's ResNets have no time
//! embedding. A spatial attention is `group_norm → to_q/to_k/to_v →
//! softmax(qkᵀ/√d)v → to_out.0`, plus `x`. Residual sums saturate; every other
//! rounding is the layer's own (see [`crate::nn`]).

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::ddpm_mnist::{load_conv, load_linear};
use super::transformer::{Transformer2D, Transformer2DConfig};
use crate::error::FormatError;
use crate::format::ModelFile;
use crate::kernels::Exec;
use crate::nn::attention::attention;
use crate::nn::conv2d::Conv2d;
use crate::nn::groupnorm::group_norm;
use crate::nn::linear::Linear;
use crate::nn::resample::upsample_nearest2;

/// Shared settings of the layers of one network.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// GroupNorm groups of the ResNets.
    pub groups: usize,
    /// GroupNorm groups of the spatial attentions.
    pub attn_groups: usize,
    /// GroupNorm epsilon, Q32.
    pub eps: u32,
    /// Time-embedding width (0: the ResNets have no `time_emb_proj`).
    pub temb: usize,
    /// The transformers' shapes (channels set per block), when there are any.
    pub cross: Option<Transformer2DConfig>,
}

/// A GroupNorm's `(weight, bias)`, Q16.
pub type Norm = (Vec<i32>, Vec<i32>);

/// Load `{p}.weight` and `{p}.bias` of a norm over `c` channels.
pub fn load_norm(f: &ModelFile<'_>, p: &str, c: usize) -> Result<Norm, FormatError> {
    Ok((
        f.i32s(&format!("{p}.weight"), c as u64, 16)?,
        f.i32s(&format!("{p}.bias"), c as u64, 16)?,
    ))
}

/// GroupNorm of `x: [c × hw]` into a new map.
pub fn norm(x: &[i32], c: usize, hw: usize, groups: usize, n: &Norm, eps: u32) -> Vec<i32> {
    let mut out = vec![0; x.len()];
    group_norm(x, c, hw, groups, &n.0, &n.1, eps, &mut out);
    out
}

/// SiLU in place ([`crate::kernels::silu_in_place`]).
pub fn silu_inplace(exec: Exec, x: &mut [i32]) {
    crate::kernels::silu_in_place(exec, x);
}

/// `BadConfig` unless `g` divides `c`.
pub fn check_groups(c: usize, g: usize) -> Result<(), FormatError> {
    if g == 0 || !c.is_multiple_of(g) {
        return Err(FormatError::BadConfig(
            "GroupNorm groups do not divide the channels",
        ));
    }
    Ok(())
}

fn add_sat(a: &mut [i32], b: &[i32]) {
    a.iter_mut()
        .zip(b)
        .for_each(|(v, &s)| *v = v.saturating_add(s));
}

/// `ResnetBlock2D`.
#[derive(Debug, Clone)]
pub struct Resnet<'a> {
    norm1: Norm,
    conv1: Conv2d<'a>,
    time_emb_proj: Option<Linear<'a>>,
    norm2: Norm,
    conv2: Conv2d<'a>,
    conv_shortcut: Option<Conv2d<'a>>,
    cin: usize,
    /// Output channels.
    pub cout: usize,
}

impl<'a> Resnet<'a> {
    /// Bind `{p}.*` for `cin → cout` channels (`time_emb_proj` when `ctx.temb > 0`).
    pub fn load(
        f: &ModelFile<'a>,
        p: &str,
        cin: usize,
        cout: usize,
        ctx: &Ctx,
    ) -> Result<Self, FormatError> {
        check_groups(cin, ctx.groups)?;
        check_groups(cout, ctx.groups)?;
        Ok(Resnet {
            norm1: load_norm(f, &format!("{p}.norm1"), cin)?,
            conv1: load_conv(f, &format!("{p}.conv1"), cin, cout, 3, 1, 1)?,
            time_emb_proj: if ctx.temb > 0 {
                Some(load_linear(
                    f,
                    &format!("{p}.time_emb_proj"),
                    ctx.temb,
                    cout,
                )?)
            } else {
                None
            },
            norm2: load_norm(f, &format!("{p}.norm2"), cout)?,
            conv2: load_conv(f, &format!("{p}.conv2"), cout, cout, 3, 1, 1)?,
            conv_shortcut: if cin != cout {
                Some(load_conv(
                    f,
                    &format!("{p}.conv_shortcut"),
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

    /// `x: [cin × h × w]` → `[cout × h × w]`; `temb_silu` is `SiLU(temb)`.
    pub fn forward(
        &self,
        exec: Exec,
        ctx: &Ctx,
        x: &[i32],
        h: usize,
        w: usize,
        temb_silu: Option<&[i32]>,
    ) -> Vec<i32> {
        let hw = h * w;
        let mut a = norm(x, self.cin, hw, ctx.groups, &self.norm1, ctx.eps);
        silu_inplace(exec, &mut a);
        let mut a = self.conv1.forward(exec, &a, h, w);
        if let (Some(proj), Some(temb)) = (&self.time_emb_proj, temb_silu) {
            let t = proj.forward_vec(exec, temb, 1);
            for (plane, &tv) in a.chunks_exact_mut(hw).zip(&t) {
                plane.iter_mut().for_each(|v| *v = v.saturating_add(tv));
            }
        }
        let mut a = norm(&a, self.cout, hw, ctx.groups, &self.norm2, ctx.eps);
        silu_inplace(exec, &mut a);
        let mut a = self.conv2.forward(exec, &a, h, w);
        match &self.conv_shortcut {
            Some(c) => add_sat(&mut a, &c.forward(exec, x, h, w)),
            None => add_sat(&mut a, x),
        }
        a
    }
}

/// The spatial self-attention of the attention blocks and the VAE mid block.
#[derive(Debug, Clone)]
pub struct SpatialAttention<'a> {
    group_norm: Norm,
    to_q: Linear<'a>,
    to_k: Linear<'a>,
    to_v: Linear<'a>,
    to_out: Linear<'a>,
    channels: usize,
    heads: usize,
}

impl<'a> SpatialAttention<'a> {
    /// Bind `{p}.*` over `c` channels, heads of `head_dim` (0: one head).
    pub fn load(
        f: &ModelFile<'a>,
        p: &str,
        c: usize,
        head_dim: usize,
        ctx: &Ctx,
    ) -> Result<Self, FormatError> {
        let head_dim = if head_dim == 0 { c } else { head_dim };
        if !c.is_multiple_of(head_dim) {
            return Err(FormatError::BadConfig(
                "attention head dim does not divide the channels",
            ));
        }
        check_groups(c, ctx.attn_groups)?;
        Ok(SpatialAttention {
            group_norm: load_norm(f, &format!("{p}.group_norm"), c)?,
            to_q: load_linear(f, &format!("{p}.to_q"), c, c)?,
            to_k: load_linear(f, &format!("{p}.to_k"), c, c)?,
            to_v: load_linear(f, &format!("{p}.to_v"), c, c)?,
            to_out: load_linear(f, &format!("{p}.to_out.0"), c, c)?,
            channels: c,
            heads: c / head_dim,
        })
    }

    /// `x: [C × hw]` → `[C × hw]`.
    pub fn forward(&self, exec: Exec, ctx: &Ctx, x: &[i32], hw: usize) -> Vec<i32> {
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

/// Block type code of the config words: ResNets only.
pub const KIND_PLAIN: u32 = 0;
/// Block type code: ResNets each followed by a spatial self-attention.
pub const KIND_SPATIAL: u32 = 1;
/// Block type code: ResNets each followed by a cross-attention `Transformer2DModel`.
pub const KIND_CROSS: u32 = 2;

/// The attention after a ResNet: spatial self-attention (`AttnDownBlock2D`, the
/// VAE) or a cross-attention transformer (`CrossAttnDownBlock2D`).
#[derive(Debug, Clone)]
pub enum Attention<'a> {
    /// Self-attention over the pixels.
    Spatial(SpatialAttention<'a>),
    /// `Transformer2DModel` attending to the text states too.
    Cross(Transformer2D<'a>),
}

impl<'a> Attention<'a> {
    /// Bind the attention of block type `kind` under `p` (`None` for
    /// [`KIND_PLAIN`]); an unknown kind or a cross-attention without a
    /// transformer config is `BadConfig`.
    pub fn load(
        f: &ModelFile<'a>,
        p: &str,
        kind: u32,
        c: usize,
        head_dim: usize,
        ctx: &Ctx,
    ) -> Result<Option<Self>, FormatError> {
        match kind {
            KIND_PLAIN => Ok(None),
            KIND_SPATIAL => Ok(Some(Attention::Spatial(SpatialAttention::load(
                f, p, c, head_dim, ctx,
            )?))),
            KIND_CROSS => {
                let cfg = ctx.cross.ok_or(FormatError::BadConfig(
                    "cross-attention block without a transformer config",
                ))?;
                let cfg = Transformer2DConfig {
                    channels: u32::try_from(c).map_err(|_| FormatError::BadConfig("channels"))?,
                    ..cfg
                };
                Ok(Some(Attention::Cross(Transformer2D::load(
                    f,
                    &format!("{p}."),
                    cfg,
                )?)))
            }
            _ => Err(FormatError::BadConfig("unknown block type code")),
        }
    }

    /// `x: [C × hw]` → `[C × hw]`; `context` is the text states `[m × dim]`
    /// (ignored by a spatial attention; a cross-attention without one attends to
    /// a single zero token).
    pub fn forward(
        &self,
        exec: Exec,
        ctx: &Ctx,
        x: &[i32],
        hw: usize,
        context: Option<(&[i32], usize)>,
    ) -> Vec<i32> {
        match self {
            Attention::Spatial(a) => a.forward(exec, ctx, x, hw),
            Attention::Cross(t) => {
                let zero;
                let (c, m) = match context {
                    Some(c) => c,
                    None => {
                        zero = vec![0i32; ctx.cross.map_or(0, |c| c.context_dim as usize)];
                        (&zero[..], 1)
                    }
                };
                let mut out = vec![0i32; x.len()];
                t.forward(exec, x, hw, c, m, &mut out);
                out
            }
        }
    }
}

/// Where a block's states go: down blocks push a skip state after every ResNet
/// and after the downsampler; up blocks concatenate one before every ResNet; the
/// VAE's up blocks use none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skips {
    /// Push (down blocks).
    Push,
    /// Pop and concatenate `[h ; skip]` (up blocks).
    Pop,
    /// None (VAE decoder).
    None,
}

/// The resampler at a block's end.
#[derive(Debug, Clone)]
pub enum Sampler<'a> {
    /// `downsamplers.0.conv`: 3x3, stride 2.
    Down(Conv2d<'a>),
    /// `upsamplers.0.conv` after nearest 2x upsampling.
    Up(Conv2d<'a>),
}

/// A down or up block: ResNets (each with an optional attention) and an optional
/// resampler.
#[derive(Debug, Clone)]
pub struct Block<'a> {
    resnets: Vec<Resnet<'a>>,
    attentions: Vec<Attention<'a>>,
    sampler: Option<Sampler<'a>>,
    skips: Skips,
}

/// The shape of one block to bind.
#[derive(Debug, Clone)]
pub struct BlockSpec<'s> {
    /// Checkpoint prefix, e.g. `unet.down_blocks.0`.
    pub prefix: &'s str,
    /// [`KIND_PLAIN`], [`KIND_SPATIAL`] or [`KIND_CROSS`].
    pub kind: u32,
    /// `(cin, cout)` of each ResNet (with the skip channels for up blocks).
    pub resnets: &'s [(usize, usize)],
    /// Spatial attention head size (0: one head).
    pub head_dim: usize,
    /// Skip handling.
    pub skips: Skips,
    /// Downsampler padding (`Some` for a down block with a downsampler).
    pub down_pad: Option<usize>,
    /// Whether an up block has an upsampler.
    pub up: bool,
}

impl<'a> Block<'a> {
    /// Bind a block from its spec.
    pub fn load(f: &ModelFile<'a>, s: &BlockSpec<'_>, ctx: &Ctx) -> Result<Self, FormatError> {
        let p = s.prefix;
        let mut resnets = Vec::with_capacity(s.resnets.len());
        let mut attentions = Vec::new();
        for (m, &(cin, cout)) in s.resnets.iter().enumerate() {
            resnets.push(Resnet::load(
                f,
                &format!("{p}.resnets.{m}"),
                cin,
                cout,
                ctx,
            )?);
            if let Some(a) = Attention::load(
                f,
                &format!("{p}.attentions.{m}"),
                s.kind,
                cout,
                s.head_dim,
                ctx,
            )? {
                attentions.push(a);
            }
        }
        let out_c = s.resnets.last().map_or(0, |r| r.1);
        let sampler = if let Some(pad) = s.down_pad {
            let c = load_conv(
                f,
                &format!("{p}.downsamplers.0.conv"),
                out_c,
                out_c,
                3,
                2,
                pad,
            )?;
            Some(Sampler::Down(c))
        } else if s.up {
            let c = load_conv(f, &format!("{p}.upsamplers.0.conv"), out_c, out_c, 3, 1, 1)?;
            Some(Sampler::Up(c))
        } else {
            None
        };
        Ok(Block {
            resnets,
            attentions,
            sampler,
            skips: s.skips,
        })
    }

    /// Skip states this block pushes (down blocks) or pops (up blocks).
    pub fn skip_count(&self) -> usize {
        match self.skips {
            Skips::Push => self.resnets.len() + usize::from(self.sampler.is_some()),
            Skips::Pop => self.resnets.len(),
            Skips::None => 0,
        }
    }

    /// Run the block on `a: [C × h × w]`, updating the sides.
    ///
    /// # Panics
    /// If an up block finds no skip state (the caller counted them at bind time).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        exec: Exec,
        ctx: &Ctx,
        mut a: Vec<i32>,
        hw: &mut (usize, usize),
        temb: Option<&[i32]>,
        context: Option<(&[i32], usize)>,
        skips: &mut Vec<Vec<i32>>,
    ) -> Vec<i32> {
        for (m, r) in self.resnets.iter().enumerate() {
            if self.skips == Skips::Pop {
                let skip = skips.pop().expect("skip states counted at bind time");
                a.extend_from_slice(&skip); // channel concat: [h ; skip]
            }
            a = r.forward(exec, ctx, &a, hw.0, hw.1, temb);
            if let Some(at) = self.attentions.get(m) {
                a = at.forward(exec, ctx, &a, hw.0 * hw.1, context);
            }
            if self.skips == Skips::Push {
                skips.push(a.clone());
            }
        }
        match &self.sampler {
            Some(Sampler::Down(s)) => {
                a = s.forward(exec, &a, hw.0, hw.1);
                *hw = s.out_shape(hw.0, hw.1).unwrap_or((hw.0 / 2, hw.1 / 2));
                if self.skips == Skips::Push {
                    skips.push(a.clone());
                }
            }
            Some(Sampler::Up(s)) => {
                a = upsample_nearest2(&a, s.cin, hw.0, hw.1);
                *hw = (2 * hw.0, 2 * hw.1);
                a = s.forward(exec, &a, hw.0, hw.1);
            }
            None => {}
        }
        a
    }
}

/// A mid block: `resnets.0`, an optional `attentions.0`, `resnets.1`.
#[derive(Debug, Clone)]
pub struct Mid<'a> {
    r0: Resnet<'a>,
    attention: Option<Attention<'a>>,
    r1: Resnet<'a>,
}

impl<'a> Mid<'a> {
    /// Bind `{p}.resnets.{0,1}` and (for `kind` ≠ [`KIND_PLAIN`]) `{p}.attentions.0`
    /// over `c` channels.
    pub fn load(
        f: &ModelFile<'a>,
        p: &str,
        kind: u32,
        c: usize,
        head_dim: usize,
        ctx: &Ctx,
    ) -> Result<Self, FormatError> {
        Ok(Mid {
            r0: Resnet::load(f, &format!("{p}.resnets.0"), c, c, ctx)?,
            attention: Attention::load(f, &format!("{p}.attentions.0"), kind, c, head_dim, ctx)?,
            r1: Resnet::load(f, &format!("{p}.resnets.1"), c, c, ctx)?,
        })
    }

    /// `a: [c × h × w]` → same shape.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        exec: Exec,
        ctx: &Ctx,
        a: &[i32],
        h: usize,
        w: usize,
        temb: Option<&[i32]>,
        context: Option<(&[i32], usize)>,
    ) -> Vec<i32> {
        let mut a = self.r0.forward(exec, ctx, a, h, w, temb);
        if let Some(at) = &self.attention {
            a = at.forward(exec, ctx, &a, h * w, context);
        }
        self.r1.forward(exec, ctx, &a, h, w, temb)
    }
}
