//! diffusers' `Transformer2DModel` with `BasicTransformerBlock`s, in integers: the
//! cross-attention block of Stable Diffusion's UNet. Both projection styles load:
//! 1x1 convolutions (`use_linear_projection` false, SD 1.x) and linear layers (SD
//! 2.x) are the same `(C, C)` product over pixel tokens, since the file stores a
//! convolution as `cout` rows of `cin·k·k` columns.
//!
//! `out = x + proj_out(blocks(proj_in(group_norm(x))))` over a `[C × HW]` Q16 map,
//! where the 1x1 `proj_in`/`proj_out` convolutions are [`Linear`] layers over the
//! `HW` pixel tokens (`[HW × C]`), and each block is
//! `h += attn1(norm1 h)` (self), `h += attn2(norm2 h, context)` (cross, to the
//! text encoder's `[M × context_dim]` hidden states), `h += ff(norm3 h)` with the
//! GEGLU feed-forward `ff.net.2(a · gelu(g))`, `[a | g] = ff.net.0.proj(x)`.
//!
//! Roundings: every linear output once (see [`crate::nn::linear`]); attention per
//! [`crate::nn::attention`]; GEGLU's product `a · gelu(g)` (`|a · gelu(g)| <
//! 2^62`) once, half up; residual sums saturate.
//!
//! Measured on tiny-sd's three transformers with Q8 weights in groups of 32, fed
//! the float UNet's real activations and CLIP states
//! (`quant-tools/tests/transformer_int.rs`): output SNR 56–59 dB against float32,
//! max abs error below 0.006; the block's own change (output minus input) 41–43 dB.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::FormatError;
use crate::fixed::{round_shift, sat_i32, FRAC};
use crate::format::ModelFile;
use crate::kernels::Exec;
use crate::nn::attention::attention;
use crate::nn::gelu::gelu_q16;
use crate::nn::groupnorm::group_norm;
use crate::nn::layernorm::LayerNorm;
use crate::nn::linear::Linear;

/// diffusers `Attention` without q/k/v biases (`attn1`, `attn2` of a block).
#[derive(Debug, Clone)]
pub struct CrossAttention<'a> {
    /// `to_q: (inner, query_dim)`.
    pub to_q: Linear<'a>,
    /// `to_k: (inner, context_dim)`.
    pub to_k: Linear<'a>,
    /// `to_v: (inner, context_dim)`.
    pub to_v: Linear<'a>,
    /// `to_out.0: (query_dim, inner)`, with bias.
    pub to_out: Linear<'a>,
    /// Number of heads (`inner / heads` is the head size).
    pub heads: u32,
}

impl CrossAttention<'_> {
    /// `x: [n × query_dim]` attending to `context: [m × context_dim]` (or to `x`
    /// itself when `None`) -> `out: [n × query_dim]`.
    pub fn forward(
        &self,
        exec: Exec,
        x: &[i32],
        n: usize,
        context: Option<(&[i32], usize)>,
        out: &mut [i32],
    ) {
        let (c, m) = context.unwrap_or((x, n));
        let inner = self.to_q.out_dim();
        let heads = self.heads as usize;
        let q = self.to_q.forward_vec(exec, x, n);
        let k = self.to_k.forward_vec(exec, c, m);
        let v = self.to_v.forward_vec(exec, c, m);
        let mut a = vec![0i32; n * inner];
        attention(exec, &q, &k, &v, n, m, heads, inner / heads, &mut a);
        self.to_out.forward(exec, &a, n, out);
    }

    fn validate(&self, query_dim: u32, context_dim: u32) -> Result<(), FormatError> {
        let inner = self.to_q.weight.rows;
        let ok = self.heads > 0
            && inner.is_multiple_of(self.heads)
            && self.to_q.weight.cols == query_dim
            && self.to_q.bias.is_none()
            && self.to_k.weight.rows == inner
            && self.to_k.weight.cols == context_dim
            && self.to_k.bias.is_none()
            && self.to_v.weight.rows == inner
            && self.to_v.weight.cols == context_dim
            && self.to_v.bias.is_none()
            && self.to_out.weight.rows == query_dim
            && self.to_out.weight.cols == inner
            && self.to_out.bias.is_some();
        if ok {
            Ok(())
        } else {
            Err(FormatError::BadConfig("transformer attention shapes"))
        }
    }
}

/// `BasicTransformerBlock` (LayerNorms, self- and cross-attention, GEGLU).
#[derive(Debug, Clone)]
pub struct BasicTransformerBlock<'a> {
    /// `norm1`.
    pub norm1: LayerNorm,
    /// `attn1` (self-attention).
    pub attn1: CrossAttention<'a>,
    /// `norm2`.
    pub norm2: LayerNorm,
    /// `attn2` (cross-attention to the text).
    pub attn2: CrossAttention<'a>,
    /// `norm3`.
    pub norm3: LayerNorm,
    /// `ff.net.0.proj: (2 · ff_inner, dim)`, GEGLU's value and gate halves.
    pub ff_proj: Linear<'a>,
    /// `ff.net.2: (dim, ff_inner)`.
    pub ff_out: Linear<'a>,
}

impl BasicTransformerBlock<'_> {
    /// One block over `h: [n × dim]` in place, with `context: [m × context_dim]`.
    pub fn forward(&self, exec: Exec, h: &mut [i32], n: usize, context: &[i32], m: usize) {
        let dim = self.norm1.dim();
        let mut x = vec![0i32; n * dim];
        let mut y = vec![0i32; n * dim];
        self.norm1.forward(h, &mut x);
        self.attn1.forward(exec, &x, n, None, &mut y);
        add_residual(h, &y);
        self.norm2.forward(h, &mut x);
        self.attn2.forward(exec, &x, n, Some((context, m)), &mut y);
        add_residual(h, &y);
        self.norm3.forward(h, &mut x);
        let p = self.ff_proj.forward_vec(exec, &x, n);
        let inner = self.ff_out.in_dim();
        let mut g = vec![0i32; n * inner];
        for (row, o) in p.chunks_exact(2 * inner).zip(g.chunks_exact_mut(inner)) {
            let (a, gate) = row.split_at(inner);
            for ((ov, &av), &gv) in o.iter_mut().zip(a).zip(gate) {
                // |a · gelu(g)| < 2^31 · 2^31.
                *ov = sat_i32(round_shift(i64::from(av) * i64::from(gelu_q16(gv)), FRAC));
            }
        }
        self.ff_out.forward(exec, &g, n, &mut y);
        add_residual(h, &y);
    }

    fn validate(&self, dim: u32, context_dim: u32) -> Result<(), FormatError> {
        for n in [&self.norm1, &self.norm2, &self.norm3] {
            if n.weight.len() != dim as usize || n.bias.len() != dim as usize {
                return Err(FormatError::BadConfig("transformer LayerNorm shape"));
            }
        }
        self.attn1.validate(dim, dim)?;
        self.attn2.validate(dim, context_dim)?;
        let inner = self.ff_out.weight.cols;
        let ok = self.ff_proj.weight.rows == 2 * inner
            && self.ff_proj.weight.cols == dim
            && self.ff_proj.bias.is_some()
            && self.ff_out.weight.rows == dim
            && self.ff_out.bias.is_some();
        if ok {
            Ok(())
        } else {
            Err(FormatError::BadConfig("transformer feed-forward shapes"))
        }
    }
}

/// `Transformer2DModel` over a `[channels × hw]` Q16 feature map.
#[derive(Debug, Clone)]
pub struct Transformer2D<'a> {
    /// `norm.weight: (channels)`, Q16.
    pub norm_weight: Vec<i32>,
    /// `norm.bias: (channels)`, Q16.
    pub norm_bias: Vec<i32>,
    /// GroupNorm groups (`norm_num_groups`).
    pub norm_groups: u32,
    /// GroupNorm epsilon in Q32 (diffusers uses `1e-6` here: 4295).
    pub norm_eps_q32: u32,
    /// `proj_in`, the 1x1 convolution `(channels, channels, 1, 1)` as a linear layer.
    pub proj_in: Linear<'a>,
    /// `transformer_blocks.N`.
    pub transformer_blocks: Vec<BasicTransformerBlock<'a>>,
    /// `proj_out`, 1x1 convolution as a linear layer.
    pub proj_out: Linear<'a>,
}

/// Shapes of a `Transformer2DModel` (from the UNet's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transformer2DConfig {
    /// Channels of the map (`inner_dim`, as `use_linear_projection` is false).
    pub channels: u32,
    /// Heads (diffusers' `attention_head_dim` in SD 1.x configs).
    pub heads: u32,
    /// `transformer_layers_per_block`.
    pub layers: u32,
    /// `cross_attention_dim`.
    pub context_dim: u32,
    /// `norm_num_groups`.
    pub groups: u32,
}

/// diffusers' fixed epsilons of the blocks: GroupNorm `1e-6`, LayerNorms `1e-5`, in Q32.
const NORM_EPS_Q32: u32 = 4295;
const LAYER_NORM_EPS_Q32: u32 = 42950;

fn load_attention<'a>(
    file: &ModelFile<'a>,
    name: &str,
    dim: usize,
    context_dim: usize,
    heads: u32,
) -> Result<CrossAttention<'a>, FormatError> {
    let l =
        |s: &str, rows, cols, bias| Linear::load(file, &format!("{name}.{s}"), rows, cols, bias);
    Ok(CrossAttention {
        to_q: l("to_q", dim, dim, false)?,
        to_k: l("to_k", dim, context_dim, false)?,
        to_v: l("to_v", dim, context_dim, false)?,
        to_out: l("to_out.0", dim, dim, true)?,
        heads,
    })
}

impl<'a> Transformer2D<'a> {
    /// Bind the weights under `prefix` (e.g.
    /// `"unet.down_blocks.0.attentions.0."`), names as in the checkpoint; the 1x1
    /// convolutions `proj_in`/`proj_out` are `(C, C)` matrices. Shapes are checked.
    pub fn load(
        file: &ModelFile<'a>,
        prefix: &str,
        cfg: Transformer2DConfig,
    ) -> Result<Self, FormatError> {
        let (c, ctx) = (cfg.channels as usize, cfg.context_dim as usize);
        if c == 0 || c > crate::nn::layernorm::MAX_LEN || cfg.heads == 0 || cfg.groups == 0 {
            return Err(FormatError::BadConfig(
                "Transformer2D channels, heads or groups",
            ));
        }
        let ff = 4 * c;
        let mut transformer_blocks = Vec::new();
        for i in 0..cfg.layers {
            let b = |s: &str| format!("{prefix}transformer_blocks.{i}.{s}");
            let ln = |s: &str| LayerNorm::load(file, &b(s), c, LAYER_NORM_EPS_Q32);
            transformer_blocks.push(BasicTransformerBlock {
                norm1: ln("norm1")?,
                attn1: load_attention(file, &b("attn1"), c, c, cfg.heads)?,
                norm2: ln("norm2")?,
                attn2: load_attention(file, &b("attn2"), c, ctx, cfg.heads)?,
                norm3: ln("norm3")?,
                ff_proj: Linear::load(file, &b("ff.net.0.proj"), 2 * ff, c, true)?,
                ff_out: Linear::load(file, &b("ff.net.2"), c, ff, true)?,
            });
        }
        let n = |s: &str| format!("{prefix}{s}");
        let t = Transformer2D {
            norm_weight: file.i32s(&n("norm.weight"), c as u64, FRAC as i32)?,
            norm_bias: file.i32s(&n("norm.bias"), c as u64, FRAC as i32)?,
            norm_groups: cfg.groups,
            norm_eps_q32: NORM_EPS_Q32,
            proj_in: Linear::load(file, &n("proj_in"), c, c, true)?,
            transformer_blocks,
            proj_out: Linear::load(file, &n("proj_out"), c, c, true)?,
        };
        t.validate(cfg.context_dim)?;
        Ok(t)
    }

    /// Channels of the map.
    pub fn channels(&self) -> usize {
        self.norm_weight.len()
    }

    /// Check every shape (call once after binding weights).
    pub fn validate(&self, context_dim: u32) -> Result<(), FormatError> {
        let c = self.norm_weight.len() as u32;
        let ok = c > 0
            && self.norm_bias.len() == c as usize
            && self.norm_groups > 0
            && c.is_multiple_of(self.norm_groups)
            && self.proj_in.weight.rows == c
            && self.proj_in.weight.cols == c
            && self.proj_in.bias.is_some()
            && self.proj_out.weight.rows == c
            && self.proj_out.weight.cols == c
            && self.proj_out.bias.is_some();
        if !ok {
            return Err(FormatError::BadConfig(
                "Transformer2D norm or projection shapes",
            ));
        }
        for b in &self.transformer_blocks {
            b.validate(c, context_dim)?;
        }
        Ok(())
    }

    /// `x: [channels × hw]` with `context: [m × context_dim]` -> `out: [channels × hw]`.
    ///
    /// # Panics
    /// If the slices are shorter than their shapes (a caller bug).
    pub fn forward(
        &self,
        exec: Exec,
        x: &[i32],
        hw: usize,
        context: &[i32],
        m: usize,
        out: &mut [i32],
    ) {
        let c = self.channels();
        assert!(
            x.len() == c * hw && out.len() == c * hw,
            "Transformer2D: map of {c} × {hw}"
        );
        let mut normed = vec![0i32; c * hw];
        group_norm(
            x,
            c,
            hw,
            self.norm_groups as usize,
            &self.norm_weight,
            &self.norm_bias,
            self.norm_eps_q32,
            &mut normed,
        );
        let tokens = transpose(&normed, c, hw);
        let mut h = self.proj_in.forward_vec(exec, &tokens, hw);
        for b in &self.transformer_blocks {
            b.forward(exec, &mut h, hw, context, m);
        }
        let t = self.proj_out.forward_vec(exec, &h, hw);
        // Back to [C × HW], plus the input.
        for ci in 0..c {
            for p in 0..hw {
                out[ci * hw + p] = t[p * c + ci].saturating_add(x[ci * hw + p]);
            }
        }
    }
}

/// `[rows × cols]` -> `[cols × rows]`.
fn transpose(x: &[i32], rows: usize, cols: usize) -> Vec<i32> {
    let mut t = vec![0i32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = x[r * cols + c];
        }
    }
    t
}

fn add_residual(h: &mut [i32], y: &[i32]) {
    for (a, &b) in h.iter_mut().zip(y) {
        *a = a.saturating_add(b);
    }
}
