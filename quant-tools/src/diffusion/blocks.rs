//! diffusers building blocks shared by the UNets and the VAE: `ResnetBlock2D`,
//! `Downsample2D`, `Upsample2D`, `TimestepEmbedding`, the spatial self-attention
//! of the attention blocks (`Attention` with a group norm and a residual), and
//! the cross-attention transformer (`Transformer2DModel` with
//! `BasicTransformerBlock`s).

use super::ops::{
    attention, chw, gelu, image_to_tokens, silu, tokens_to_image, upsample_nearest2x, Conv2d,
    GroupNorm, LayerNorm, Linear,
};
use super::{DiffusionError, Tensor, Vb};

/// `ResnetBlock2D` (time_embedding_norm "default", SiLU):
/// `out = (shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) + proj(silu(temb)))))) / scale`.
#[derive(Debug, Clone)]
pub struct ResnetBlock2D {
    /// `norm1` over the input channels.
    pub norm1: GroupNorm,
    /// `conv1` 3x3.
    pub conv1: Conv2d,
    /// `time_emb_proj`, absent in the VAE.
    pub time_emb_proj: Option<Linear>,
    /// `norm2`.
    pub norm2: GroupNorm,
    /// `conv2` 3x3.
    pub conv2: Conv2d,
    /// `conv_shortcut` 1x1 when the channel count changes.
    pub conv_shortcut: Option<Conv2d>,
    /// `output_scale_factor`.
    pub output_scale_factor: f32,
}

impl ResnetBlock2D {
    /// Loads a block `cin -> cout` with `temb` time-embedding channels (or none).
    pub fn load(
        vb: &Vb,
        cin: usize,
        cout: usize,
        temb: Option<usize>,
        groups: usize,
        eps: f32,
        output_scale_factor: f32,
    ) -> Result<Self, DiffusionError> {
        Ok(Self {
            norm1: GroupNorm::load(&vb.pp("norm1"), groups, cin, eps)?,
            conv1: Conv2d::load(&vb.pp("conv1"), cin, cout, 3, 1, 1)?,
            time_emb_proj: temb
                .map(|t| Linear::load(&vb.pp("time_emb_proj"), t, cout))
                .transpose()?,
            norm2: GroupNorm::load(&vb.pp("norm2"), groups, cout, eps)?,
            conv2: Conv2d::load(&vb.pp("conv2"), cout, cout, 3, 1, 1)?,
            conv_shortcut: if cin != cout {
                Some(Conv2d::load(&vb.pp("conv_shortcut"), cin, cout, 1, 1, 0)?)
            } else {
                None
            },
            output_scale_factor,
        })
    }

    /// `(cin, H, W) -> (cout, H, W)`; `temb` is the time embedding (before SiLU).
    pub fn forward(&self, x: &Tensor, temb: Option<&[f32]>) -> Tensor {
        let mut h = self.norm1.forward(x);
        h.data.iter_mut().for_each(|v| *v = silu(*v));
        h = self.conv1.forward(&h);
        if let (Some(proj), Some(t)) = (&self.time_emb_proj, temb) {
            let t: Vec<f32> = t.iter().map(|&v| silu(v)).collect();
            let t = proj.forward_vec(&t);
            let plane = h.data.len() / t.len();
            for (c, chunk) in h.data.chunks_exact_mut(plane).enumerate() {
                chunk.iter_mut().for_each(|v| *v += t[c]);
            }
        }
        h = self.norm2.forward(&h);
        h.data.iter_mut().for_each(|v| *v = silu(*v));
        h = self.conv2.forward(&h);
        let short = match &self.conv_shortcut {
            Some(c) => c.forward(x),
            None => x.clone(),
        };
        for (v, s) in h.data.iter_mut().zip(&short.data) {
            *v = (s + *v) / self.output_scale_factor;
        }
        h
    }
}

/// `Downsample2D` with a conv: 3x3, stride 2, padding `downsample_padding`.
#[derive(Debug, Clone)]
pub struct Downsample2D {
    /// `conv`.
    pub conv: Conv2d,
}

impl Downsample2D {
    /// Loads `conv` under `vb`.
    pub fn load(vb: &Vb, channels: usize, padding: usize) -> Result<Self, DiffusionError> {
        Ok(Self {
            conv: Conv2d::load(&vb.pp("conv"), channels, channels, 3, 2, padding)?,
        })
    }

    /// `(C, H, W) -> (C, H/2, W/2)`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.conv.forward(x)
    }
}

/// `Upsample2D` with a conv: nearest 2x, then 3x3 padding 1.
#[derive(Debug, Clone)]
pub struct Upsample2D {
    /// `conv`.
    pub conv: Conv2d,
}

impl Upsample2D {
    /// Loads `conv` under `vb`.
    pub fn load(vb: &Vb, channels: usize) -> Result<Self, DiffusionError> {
        Ok(Self {
            conv: Conv2d::load(&vb.pp("conv"), channels, channels, 3, 1, 1)?,
        })
    }

    /// `(C, H, W) -> (C, 2H, 2W)`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.conv.forward(&upsample_nearest2x(x))
    }
}

/// `TimestepEmbedding`: `linear_2(silu(linear_1(x)))`.
#[derive(Debug, Clone)]
pub struct TimestepEmbedding {
    /// `linear_1`.
    pub linear_1: Linear,
    /// `linear_2`.
    pub linear_2: Linear,
}

impl TimestepEmbedding {
    /// Loads `linear_1 (cin -> dim)` and `linear_2 (dim -> dim)`.
    pub fn load(vb: &Vb, cin: usize, dim: usize) -> Result<Self, DiffusionError> {
        Ok(Self {
            linear_1: Linear::load(&vb.pp("linear_1"), cin, dim)?,
            linear_2: Linear::load(&vb.pp("linear_2"), dim, dim)?,
        })
    }

    /// `(cin) -> (dim)`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let h: Vec<f32> = self.linear_1.forward_vec(x).into_iter().map(silu).collect();
        self.linear_2.forward_vec(&h)
    }
}

/// The spatial self-attention of `AttnDownBlock2D`/`UNetMidBlock2D`/the VAE mid
/// block (diffusers `Attention` with `group_norm`, `residual_connection`, biased
/// projections): `(x + to_out(attn(q, k, v of group_norm(x)))) / rescale`.
#[derive(Debug, Clone)]
pub struct SpatialAttention {
    /// `group_norm`.
    pub group_norm: GroupNorm,
    /// `to_q`.
    pub to_q: Linear,
    /// `to_k`.
    pub to_k: Linear,
    /// `to_v`.
    pub to_v: Linear,
    /// `to_out.0`.
    pub to_out: Linear,
    /// Number of heads.
    pub heads: usize,
    /// `rescale_output_factor`.
    pub rescale: f32,
}

impl SpatialAttention {
    /// Loads an attention over `channels` with heads of `head_dim` channels.
    pub fn load(
        vb: &Vb,
        channels: usize,
        head_dim: usize,
        groups: usize,
        eps: f32,
        rescale: f32,
    ) -> Result<Self, DiffusionError> {
        if head_dim == 0 || !channels.is_multiple_of(head_dim) {
            return Err(DiffusionError::Input(format!(
                "{}: head dim {head_dim} does not divide {channels} channels",
                vb.full_name("")
            )));
        }
        Ok(Self {
            group_norm: GroupNorm::load(&vb.pp("group_norm"), groups, channels, eps)?,
            to_q: Linear::load(&vb.pp("to_q"), channels, channels)?,
            to_k: Linear::load(&vb.pp("to_k"), channels, channels)?,
            to_v: Linear::load(&vb.pp("to_v"), channels, channels)?,
            to_out: Linear::load(&vb.pp("to_out.0"), channels, channels)?,
            heads: channels / head_dim,
            rescale,
        })
    }

    /// `(C, H, W) -> (C, H, W)`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (_, h, w) = chw(x);
        let t = image_to_tokens(&self.group_norm.forward(x));
        let q = self.to_q.forward_rows(&t);
        let k = self.to_k.forward_rows(&t);
        let v = self.to_v.forward_rows(&t);
        let a = self.to_out.forward_rows(&attention(&q, &k, &v, self.heads));
        let mut out = tokens_to_image(&a, h, w);
        for (o, r) in out.data.iter_mut().zip(&x.data) {
            *o = (*o + r) / self.rescale;
        }
        out
    }
}

/// diffusers `Attention` on token sequences without biases on q/k/v (the
/// transformer blocks' `attn1`/`attn2`): `to_out(attn(to_q(x), to_k(c), to_v(c)))`.
#[derive(Debug, Clone)]
pub struct CrossAttention {
    /// `to_q (inner, query_dim)`.
    pub to_q: Linear,
    /// `to_k (inner, context_dim)`.
    pub to_k: Linear,
    /// `to_v (inner, context_dim)`.
    pub to_v: Linear,
    /// `to_out.0 (query_dim, inner)` with bias.
    pub to_out: Linear,
    /// Number of heads.
    pub heads: usize,
}

impl CrossAttention {
    /// Loads an attention with `heads` heads of `head_dim` over queries of
    /// `query_dim` and a context of `context_dim`.
    pub fn load(
        vb: &Vb,
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        head_dim: usize,
    ) -> Result<Self, DiffusionError> {
        let inner = heads * head_dim;
        Ok(Self {
            to_q: Linear::load_no_bias(&vb.pp("to_q"), query_dim, inner)?,
            to_k: Linear::load_no_bias(&vb.pp("to_k"), context_dim, inner)?,
            to_v: Linear::load_no_bias(&vb.pp("to_v"), context_dim, inner)?,
            to_out: Linear::load(&vb.pp("to_out.0"), inner, query_dim)?,
            heads,
        })
    }

    /// `x (N, query_dim)`, `context (M, context_dim)` (or `x` itself) -> `(N, query_dim)`.
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> Tensor {
        let c = context.unwrap_or(x);
        let q = self.to_q.forward_rows(x);
        let k = self.to_k.forward_rows(c);
        let v = self.to_v.forward_rows(c);
        self.to_out.forward_rows(&attention(&q, &k, &v, self.heads))
    }
}

/// `BasicTransformerBlock` (layer_norm, GEGLU feed-forward):
/// `x += attn1(norm1 x); x += attn2(norm2 x, context); x += ff(norm3 x)`.
#[derive(Debug, Clone)]
pub struct BasicTransformerBlock {
    /// `norm1`.
    pub norm1: LayerNorm,
    /// `attn1` (self).
    pub attn1: CrossAttention,
    /// `norm2`.
    pub norm2: LayerNorm,
    /// `attn2` (cross).
    pub attn2: CrossAttention,
    /// `norm3`.
    pub norm3: LayerNorm,
    /// `ff.net.0.proj (2 * 4 dim, dim)`: GEGLU.
    pub ff_proj: Linear,
    /// `ff.net.2 (dim, 4 dim)`.
    pub ff_out: Linear,
}

impl BasicTransformerBlock {
    /// Loads a block of width `dim = heads * head_dim`.
    pub fn load(
        vb: &Vb,
        dim: usize,
        heads: usize,
        head_dim: usize,
        context_dim: usize,
    ) -> Result<Self, DiffusionError> {
        let ff = 4 * dim;
        Ok(Self {
            norm1: LayerNorm::load(&vb.pp("norm1"), dim, 1e-5)?,
            attn1: CrossAttention::load(&vb.pp("attn1"), dim, dim, heads, head_dim)?,
            norm2: LayerNorm::load(&vb.pp("norm2"), dim, 1e-5)?,
            attn2: CrossAttention::load(&vb.pp("attn2"), dim, context_dim, heads, head_dim)?,
            norm3: LayerNorm::load(&vb.pp("norm3"), dim, 1e-5)?,
            ff_proj: Linear::load(&vb.pp("ff.net.0.proj"), dim, 2 * ff)?,
            ff_out: Linear::load(&vb.pp("ff.net.2"), ff, dim)?,
        })
    }

    /// `x (N, dim)`, `context (M, context_dim)` -> `(N, dim)`.
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> Tensor {
        let mut x = x.clone();
        let a = self.attn1.forward(&self.norm1.forward(&x), None);
        super::ops::add_inplace(&mut x, &a);
        let a = self.attn2.forward(&self.norm2.forward(&x), Some(context));
        super::ops::add_inplace(&mut x, &a);
        let p = self.ff_proj.forward_rows(&self.norm3.forward(&x));
        let inner = p.shape[1] / 2;
        let mut g = Tensor::zeros(&[p.shape[0], inner]);
        for (row, out) in p
            .data
            .chunks_exact(2 * inner)
            .zip(g.data.chunks_exact_mut(inner))
        {
            for i in 0..inner {
                out[i] = row[i] * gelu(row[inner + i]);
            }
        }
        let f = self.ff_out.forward_rows(&g);
        super::ops::add_inplace(&mut x, &f);
        x
    }
}

/// `Transformer2DModel` (conv projections, `use_linear_projection` false):
/// `x + proj_out(blocks(proj_in(norm(x))))`, norm a GroupNorm with eps 1e-6.
#[derive(Debug, Clone)]
pub struct Transformer2D {
    /// `norm`.
    pub norm: GroupNorm,
    /// `proj_in` 1x1.
    pub proj_in: Conv2d,
    /// `transformer_blocks.N`.
    pub transformer_blocks: Vec<BasicTransformerBlock>,
    /// `proj_out` 1x1.
    pub proj_out: Conv2d,
}

impl Transformer2D {
    /// Loads a transformer over `channels` with `heads` heads and `layers` blocks.
    pub fn load(
        vb: &Vb,
        channels: usize,
        heads: usize,
        layers: usize,
        context_dim: usize,
        groups: usize,
    ) -> Result<Self, DiffusionError> {
        if heads == 0 || !channels.is_multiple_of(heads) {
            return Err(DiffusionError::Input(format!(
                "{}: {heads} heads do not divide {channels} channels",
                vb.full_name("")
            )));
        }
        let head_dim = channels / heads;
        let mut transformer_blocks = Vec::with_capacity(layers);
        for i in 0..layers {
            transformer_blocks.push(BasicTransformerBlock::load(
                &vb.pp("transformer_blocks").pp(i),
                channels,
                heads,
                head_dim,
                context_dim,
            )?);
        }
        Ok(Self {
            norm: GroupNorm::load(&vb.pp("norm"), groups, channels, 1e-6)?,
            proj_in: Conv2d::load(&vb.pp("proj_in"), channels, channels, 1, 1, 0)?,
            transformer_blocks,
            proj_out: Conv2d::load(&vb.pp("proj_out"), channels, channels, 1, 1, 0)?,
        })
    }

    /// `(C, H, W)` with `context (M, context_dim)` -> `(C, H, W)`.
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> Tensor {
        let (_, h, w) = chw(x);
        let mut t = image_to_tokens(&self.proj_in.forward(&self.norm.forward(x)));
        for b in &self.transformer_blocks {
            t = b.forward(&t, context);
        }
        let mut out = self.proj_out.forward(&tokens_to_image(&t, h, w));
        super::ops::add_inplace(&mut out, x);
        out
    }
}
