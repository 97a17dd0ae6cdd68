//! diffusers' `UNet2DModel` (unconditional) and `UNet2DConditionModel` (text
//! cross-attention, Stable Diffusion's UNet), and the DDIM scheduler (eta 0), in
//! integers, driven by the typed config ([`UNet2DConfig`]) of an
//! [`Arch::UNet2D`] model file (or the UNet part of an
//! [`Arch::StableDiffusion`] one, whose tensor names carry the prefix `unet.`). Both are one struct, [`UNet2D`]: the
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
//! **Config**: [`UNet2DConfig`], written field by field (block type 0 = plain,
//! 1 = with spatial attention, 2 = with cross-attention transformers:
//! `CrossAttnDownBlock2D`/`CrossAttnUpBlock2D`).
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
use crate::format::{Arch, ConfigReader, ConfigWriter, DType, ModelFile};
use crate::kernels::Exec;
use crate::nn::conv2d::Conv2d;
use crate::nn::linear::Linear;
use crate::nn::timestep::sinusoidal_embedding;

/// Hyper-parameters of a [`UNet2D`] and its DDIM scheduler, as stored in the
/// model file's config ([`UNet2DConfig::write`]); diffusers' names. The default
/// is all zeros (no blocks): a writer sets what its model has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UNet2DConfig {
    /// `in_channels`.
    pub in_channels: u32,
    /// `out_channels`.
    pub out_channels: u32,
    /// `layers_per_block`: ResNets per down block.
    pub layers_per_block: u32,
    /// `attention_head_dim`: channels per spatial attention head (0: one head
    /// over all channels).
    pub head_dim: u32,
    /// `norm_num_groups`: GroupNorm groups.
    pub groups: u32,
    /// `attn_norm_num_groups`: GroupNorm groups of the attentions.
    pub attn_groups: u32,
    /// `norm_eps` in Q32.
    pub eps_q32: u32,
    /// `flip_sin_to_cos`.
    pub flip_sin_to_cos: bool,
    /// `downsample_padding`.
    pub down_pad: u32,
    /// The mid block: 0 none, 1 with spatial attention, 2 without, 3 with a
    /// cross-attention transformer (`UNetMidBlock2DCrossAttn`).
    pub mid_block: u32,
    /// `sample_size`.
    pub sample_size: u32,
    /// The scheduler's `num_train_timesteps` `T`.
    pub train_timesteps: u32,
    /// The scheduler's `timestep_spacing`: 0 leading, 1 trailing, 2 linspace.
    pub timestep_spacing: u32,
    /// The scheduler's `steps_offset`.
    pub steps_offset: u32,
    /// The scheduler's `clip_sample`.
    pub clip_sample: bool,
    /// The scheduler's `clip_sample_range` in Q16.
    pub clip_sample_range_q16: u32,
    /// `cross_attention_dim` (0: no cross-attention blocks).
    pub cross_attention_dim: u32,
    /// `transformer_layers_per_block`.
    pub transformer_layers: u32,
    /// Heads of the transformers (diffusers' `attention_head_dim` in SD 1.x
    /// configs, or `num_attention_heads`).
    pub heads: u32,
    /// `block_out_channels` (1 to 8 blocks).
    pub block_out_channels: Vec<u32>,
    /// The down blocks' types: 0 plain, 1 with spatial attention, 2 with
    /// cross-attention transformers (`CrossAttnDownBlock2D`).
    pub down_block_types: Vec<u32>,
    /// The up blocks' types, coded as the down blocks'.
    pub up_block_types: Vec<u32>,
}

impl UNet2DConfig {
    /// Append the fields: in_channels, out_channels, the number of blocks `n`,
    /// layers_per_block, head_dim, groups, attn_groups, eps_q32, flip_sin_to_cos,
    /// down_pad, mid_block, sample_size, train_timesteps, timestep_spacing,
    /// steps_offset, clip_sample, clip_sample_range_q16, cross_attention_dim,
    /// transformer_layers, heads, then the `n` block_out_channels, the `n` down
    /// and the `n` up block types.
    pub fn write(&self, w: &mut ConfigWriter) {
        w.u32(self.in_channels)
            .u32(self.out_channels)
            .u32(self.block_out_channels.len() as u32)
            .u32(self.layers_per_block)
            .u32(self.head_dim)
            .u32(self.groups)
            .u32(self.attn_groups)
            .u32(self.eps_q32)
            .flag(self.flip_sin_to_cos)
            .u32(self.down_pad)
            .u32(self.mid_block)
            .u32(self.sample_size)
            .u32(self.train_timesteps)
            .u32(self.timestep_spacing)
            .u32(self.steps_offset)
            .flag(self.clip_sample)
            .u32(self.clip_sample_range_q16)
            .u32(self.cross_attention_dim)
            .u32(self.transformer_layers)
            .u32(self.heads)
            .list(&self.block_out_channels)
            .list(&self.down_block_types)
            .list(&self.up_block_types);
    }

    /// Read the fields [`UNet2DConfig::write`] appends; `BadConfig` unless there
    /// are 1 to 8 blocks.
    pub fn read(r: &mut ConfigReader<'_>) -> Result<UNet2DConfig, FormatError> {
        let in_channels = r.u32()?;
        let out_channels = r.u32()?;
        let n = r.u32()?;
        if n == 0 || n > 8 {
            return Err(FormatError::BadConfig("1..=8 blocks"));
        }
        let mut c = UNet2DConfig {
            in_channels,
            out_channels,
            layers_per_block: r.u32()?,
            head_dim: r.u32()?,
            groups: r.u32()?,
            attn_groups: r.u32()?,
            eps_q32: r.u32()?,
            flip_sin_to_cos: r.flag()?,
            down_pad: r.u32()?,
            mid_block: r.u32()?,
            sample_size: r.u32()?,
            train_timesteps: r.u32()?,
            timestep_spacing: r.u32()?,
            steps_offset: r.u32()?,
            clip_sample: r.flag()?,
            clip_sample_range_q16: r.u32()?,
            cross_attention_dim: r.u32()?,
            transformer_layers: r.u32()?,
            heads: r.u32()?,
            block_out_channels: Vec::new(),
            down_block_types: Vec::new(),
            up_block_types: Vec::new(),
        };
        c.block_out_channels = r.list(n)?;
        c.down_block_types = r.list(n)?;
        c.up_block_types = r.list(n)?;
        Ok(c)
    }

    /// The config's words (a [`Arch::UNet2D`] file's whole config).
    pub fn to_words(&self) -> Vec<u32> {
        let mut w = ConfigWriter::new();
        self.write(&mut w);
        w.finish()
    }

    /// Read [`UNet2DConfig::to_words`] back, every word used.
    pub fn from_words(words: &[u32]) -> Result<UNet2DConfig, FormatError> {
        let mut r = ConfigReader::new(words);
        let c = UNet2DConfig::read(&mut r)?;
        r.finish()?;
        Ok(c)
    }
}

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

impl<'a> UNet2D<'a> {
    /// Bind a parsed model file of architecture [`Arch::UNet2D`].
    pub fn from_file(f: &ModelFile<'a>) -> Result<Self, FormatError> {
        f.expect_arch(Arch::UNet2D)?;
        let m = Self::bind(f, &UNet2DConfig::from_words(&f.config)?, "")?;
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

    /// Bind the UNet of config `cfg` whose tensor names start with `pre` (`""`,
    /// or `"unet."` in a pipeline file); the DDIM tables are `scheduler.*` in both.
    pub fn bind(f: &ModelFile<'a>, cfg: &UNet2DConfig, pre: &str) -> Result<Self, FormatError> {
        let n = cfg.block_out_channels.len();
        if n == 0 || n > 8 {
            return Err(FormatError::BadConfig("1..=8 blocks"));
        }
        let usizes = |v: &[u32]| -> Vec<usize> { v.iter().map(|&x| x as usize).collect() };
        let boc = usizes(&cfg.block_out_channels);
        let down_t = usizes(&cfg.down_block_types);
        let up_t = usizes(&cfg.up_block_types);
        if down_t.len() != n || up_t.len() != n {
            return Err(FormatError::BadConfig("one type per block"));
        }
        if boc.iter().any(|&c| c == 0 || c > 1 << 14) || !boc[0].is_multiple_of(2) {
            return Err(FormatError::BadConfig(
                "block channels must be even, 1..=16384",
            ));
        }
        let layers = cfg.layers_per_block as usize;
        if layers == 0 || layers > 8 {
            return Err(FormatError::BadConfig("1..=8 layers per block"));
        }
        // The run state from the config alone, before any tensor is bound: a
        // lower bound of [`UNet2D::run_state_bytes`] (every block's convolutions
        // output its channels, so the widest map has at least twice the most).
        let side = (cfg.sample_size as usize).max(1 << (n - 1)) as u64;
        let widest = boc.iter().copied().max().unwrap_or(0) as u64;
        let skips = (1 + n * layers + (n - 1)) as u64;
        check_run_state(conv_net_bytes(2 * widest, side, skips))?;
        let head_dim = cfg.head_dim as usize;
        let cross_dim = cfg.cross_attention_dim;
        let ctx = Ctx {
            groups: cfg.groups as usize,
            attn_groups: cfg.attn_groups as usize,
            eps: cfg.eps_q32,
            temb: boc[0] * 4,
            cross: (cross_dim > 0).then_some(Transformer2DConfig {
                channels: 0,
                heads: cfg.heads,
                layers: cfg.transformer_layers,
                context_dim: cross_dim,
                groups: cfg.groups,
            }),
        };
        let kind = |t: usize| -> Result<u32, FormatError> {
            match t as u32 {
                k @ (KIND_PLAIN | KIND_SPATIAL | KIND_CROSS) => Ok(k),
                _ => Err(FormatError::BadConfig("unknown block type code")),
            }
        };
        let (cin, cout) = (cfg.in_channels as usize, cfg.out_channels as usize);
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
                down_pad: (i + 1 < n).then_some(cfg.down_pad as usize),
                up: false,
            };
            down.push(Block::load(f, &spec, &ctx)?);
        }
        let mid_c = boc[n - 1];
        let mid_kind = match cfg.mid_block {
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
        if ft.dtype != DType::I32
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
        let t = cfg.train_timesteps as usize;
        if !(2..=1 << 12).contains(&t) {
            return Err(FormatError::BadConfig(
                "num_train_timesteps must be 2..=4096",
            ));
        }
        let fin = f.i32s("scheduler.final", 3, 30)?;
        let ddim = Ddim {
            train_t: t,
            spacing: cfg.timestep_spacing,
            offset: cfg.steps_offset as usize,
            clip: cfg.clip_sample.then_some(cfg.clip_sample_range_q16 as i32),
            sa: f.i32s("scheduler.sqrt_alphas_cumprod", t as u64, 30)?,
            s1m: f.i32s("scheduler.sqrt_one_minus_alphas_cumprod", t as u64, 30)?,
            inv_sa: f.i32s("scheduler.inv_sqrt_alphas_cumprod", t as u64, 20)?,
            fin: [fin[0], fin[1], fin[2]],
        };
        check_groups(boc[0], ctx.groups)?;
        let p = |s: &str| format!("{pre}{s}");
        Ok(UNet2D {
            ctx,
            in_channels: cin,
            out_channels: cout,
            sample_size: cfg.sample_size as usize,
            cross_attention_dim: cross_dim as usize,
            flip: cfg.flip_sin_to_cos,
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
        silu_inplace(exec, &mut temb);
        let mut temb = self.linear_2.forward_vec(exec, &temb, 1);
        silu_inplace(exec, &mut temb); // every ResNet takes SiLU(temb)
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
        silu_inplace(exec, &mut a);
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
