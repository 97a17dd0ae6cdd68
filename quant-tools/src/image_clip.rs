//! The text side of the diffusion family, float -> integer: quantizes the float
//! references' CLIP text encoder (and the transformer blocks' linear layers and
//! LayerNorms) into owned buffers that lend the integer core's structs, and writes
//! the CLIP tokenizer blob that `oracle_core::diffusion::clip::ClipTokenizer` parses.
//!
//! Matrices are quantized with [`crate::quantize::quantize_matrix`] (per-group
//! dyadic scales), vectors (biases, norm weights, position embeddings) become Q16
//! with [`crate::quantize::to_fixed`], epsilons Q32 rounded to nearest.

use oracle_core::diffusion::clip::{ClipLayer, ClipTextConfig, ClipTextModel as IntClip};
use oracle_core::diffusion::transformer::{
    BasicTransformerBlock, CrossAttention as IntCrossAttention, Transformer2D as IntTransformer2D,
};
use oracle_core::format::ModelWriter;
use oracle_core::nn::layernorm::LayerNorm as IntLayerNorm;
use oracle_core::nn::linear::Linear as IntLinear;
use oracle_core::quant::{QMatrix, QType};

use crate::diffusion::blocks::{CrossAttention, Transformer2D};
use crate::diffusion::clip::{ClipTextModel, ClipTokenizer};
use crate::diffusion::ops::{Conv2d, LayerNorm, Linear};
use crate::diffusion::DiffusionError;
use crate::quantize::{quantize_matrix, to_fixed};

/// A quantized matrix that owns its bytes (the model file's layout).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedMatrix {
    /// Element type.
    pub qtype: QType,
    /// Output dimension.
    pub rows: u32,
    /// Input dimension.
    pub cols: u32,
    /// Group size.
    pub group: u32,
    /// Shared scale exponent.
    pub exp: i32,
    /// Little-endian `i32` mantissas, `rows * ceil(cols / group)`.
    pub scales: Vec<u8>,
    /// Quantized values.
    pub qs: Vec<u8>,
}

impl OwnedMatrix {
    /// Quantize a row-major `(rows, cols)` float matrix.
    pub fn quantize(w: &[f32], rows: usize, cols: usize, qtype: QType, group: u32) -> Self {
        let q = quantize_matrix(w, rows, cols, qtype, group as usize);
        OwnedMatrix {
            qtype,
            rows: rows as u32,
            cols: cols as u32,
            group,
            exp: q.exp,
            scales: q.mantissas.iter().flat_map(|m| m.to_le_bytes()).collect(),
            qs: q.values,
        }
    }

    /// The borrowed view the kernels take.
    pub fn matrix(&self) -> QMatrix<'_> {
        QMatrix {
            qtype: self.qtype,
            rows: self.rows,
            cols: self.cols,
            group: self.group,
            exp: self.exp,
            scales: &self.scales,
            qs: &self.qs,
        }
    }
}

/// A quantized linear layer that owns its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedLinear {
    /// `weight: (out, in)`.
    pub weight: OwnedMatrix,
    /// `bias: (out)` in Q16.
    pub bias: Option<Vec<i32>>,
}

impl OwnedLinear {
    /// Quantize a float `Linear` (weight `(out, in)`, optional bias).
    pub fn quantize(l: &Linear, qtype: QType, group: u32) -> Self {
        let (rows, cols) = (l.weight.shape[0], l.weight.shape[1]);
        OwnedLinear {
            weight: OwnedMatrix::quantize(&l.weight.data, rows, cols, qtype, group),
            bias: l.bias.as_ref().map(|b| to_fixed(&b.data, 16)),
        }
    }

    /// Quantize a square 1x1 convolution `(out, in, 1, 1)` with bias as a linear
    /// layer over pixels.
    pub fn quantize_conv1x1(
        weight: &[f32],
        bias: &[f32],
        cout: usize,
        cin: usize,
        qtype: QType,
        group: u32,
    ) -> Self {
        OwnedLinear {
            weight: OwnedMatrix::quantize(weight, cout, cin, qtype, group),
            bias: Some(to_fixed(bias, 16)),
        }
    }

    /// The core layer, borrowing the weight bytes.
    pub fn linear(&self) -> IntLinear<'_> {
        IntLinear {
            weight: self.weight.matrix(),
            bias: self.bias.clone(),
        }
    }
}

/// An epsilon in Q32, rounded to nearest (`1e-5` -> 42950).
pub fn eps_q32(eps: f32) -> u32 {
    (f64::from(eps) * 4_294_967_296.0)
        .round()
        .clamp(0.0, f64::from(u32::MAX)) as u32
}

/// A float LayerNorm in the core's form.
pub fn layer_norm(l: &LayerNorm) -> IntLayerNorm {
    IntLayerNorm {
        weight: to_fixed(&l.weight.data, 16),
        bias: to_fixed(&l.bias.data, 16),
        eps_q32: eps_q32(l.eps),
    }
}

/// One quantized `encoder.layers.N`.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedClipLayer {
    /// `layer_norm1`.
    pub layer_norm1: IntLayerNorm,
    /// `self_attn.q_proj`.
    pub q_proj: OwnedLinear,
    /// `self_attn.k_proj`.
    pub k_proj: OwnedLinear,
    /// `self_attn.v_proj`.
    pub v_proj: OwnedLinear,
    /// `self_attn.out_proj`.
    pub out_proj: OwnedLinear,
    /// `layer_norm2`.
    pub layer_norm2: IntLayerNorm,
    /// `mlp.fc1`.
    pub fc1: OwnedLinear,
    /// `mlp.fc2`.
    pub fc2: OwnedLinear,
}

/// A quantized CLIP text encoder that owns its buffers; [`QuantizedClip::model`]
/// lends the core's [`IntClip`].
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedClip {
    /// Hyper-parameters.
    pub config: ClipTextConfig,
    /// `embeddings.token_embedding`.
    pub token_embedding: OwnedMatrix,
    /// `embeddings.position_embedding`, Q16.
    pub position_embedding: Vec<i32>,
    /// `encoder.layers.N`.
    pub layers: Vec<OwnedClipLayer>,
    /// `final_layer_norm`.
    pub final_layer_norm: IntLayerNorm,
}

impl QuantizedClip {
    /// Quantize the float reference's weights (`qtype` in groups of `group`).
    pub fn quantize(m: &ClipTextModel, qtype: QType, group: u32) -> Self {
        let c = &m.config;
        let lin = |l: &Linear| OwnedLinear::quantize(l, qtype, group);
        QuantizedClip {
            config: ClipTextConfig {
                hidden: c.hidden_size as u32,
                intermediate: c.intermediate_size as u32,
                layers: c.num_hidden_layers as u32,
                heads: c.num_attention_heads as u32,
                vocab: c.vocab_size as u32,
                max_positions: c.max_position_embeddings as u32,
                eps_q32: eps_q32(c.layer_norm_eps),
            },
            token_embedding: OwnedMatrix::quantize(
                &m.token_embedding.data,
                c.vocab_size,
                c.hidden_size,
                qtype,
                group,
            ),
            position_embedding: to_fixed(&m.position_embedding.data, 16),
            layers: m
                .layers
                .iter()
                .map(|l| OwnedClipLayer {
                    layer_norm1: layer_norm(&l.layer_norm1),
                    q_proj: lin(&l.q_proj),
                    k_proj: lin(&l.k_proj),
                    v_proj: lin(&l.v_proj),
                    out_proj: lin(&l.out_proj),
                    layer_norm2: layer_norm(&l.layer_norm2),
                    fc1: lin(&l.fc1),
                    fc2: lin(&l.fc2),
                })
                .collect(),
            final_layer_norm: layer_norm(&m.final_layer_norm),
        }
    }

    /// The core's model, borrowing these buffers.
    pub fn model(&self) -> IntClip<'_> {
        IntClip {
            config: self.config,
            token_embedding: self.token_embedding.matrix(),
            position_embedding: self.position_embedding.clone(),
            layers: self
                .layers
                .iter()
                .map(|l| ClipLayer {
                    layer_norm1: l.layer_norm1.clone(),
                    q_proj: l.q_proj.linear(),
                    k_proj: l.k_proj.linear(),
                    v_proj: l.v_proj.linear(),
                    out_proj: l.out_proj.linear(),
                    layer_norm2: l.layer_norm2.clone(),
                    fc1: l.fc1.linear(),
                    fc2: l.fc2.linear(),
                })
                .collect(),
            final_layer_norm: self.final_layer_norm.clone(),
        }
    }
}

/// GPT-2's bytes-to-unicode table, inverted: the byte each symbol char stands for.
fn unicode_to_byte(c: char) -> Option<u8> {
    let mut n = 0u32;
    for b in 0..=255u8 {
        let v = u32::from(b);
        let printable =
            (33..=126).contains(&v) || (161..=172).contains(&v) || (174..=255).contains(&v);
        let mapped = if printable {
            v
        } else {
            n += 1;
            255 + n
        };
        if mapped == u32::from(c) {
            return Some(b);
        }
    }
    None
}

/// A vocabulary or merge string mapped back to the bytes it stands for.
fn symbol_bytes(s: &str) -> Result<Vec<u8>, DiffusionError> {
    let bytes = s
        .chars()
        .map(|c| {
            unicode_to_byte(c).ok_or_else(|| {
                DiffusionError::Input(format!(
                    "tokenizer symbol {s:?} has a char outside the byte table"
                ))
            })
        })
        .collect::<Result<Vec<u8>, _>>()?;
    if bytes.len() > usize::from(u16::MAX) {
        return Err(DiffusionError::Input(format!(
            "tokenizer symbol of {} bytes",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s);
}

/// The tokenizer blob of `oracle_core::diffusion::clip::tokenizer` (layout in its docs):
/// vocabulary sorted by id, merges by rank, every symbol as its bytes.
pub fn tokenizer_blob(t: &ClipTokenizer) -> Result<Vec<u8>, DiffusionError> {
    let mut out = oracle_core::diffusion::clip::tokenizer::MAGIC.to_vec();
    for v in [t.max_len as u32, t.bos, t.eos, t.pad] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut vocab: Vec<(&String, &u32)> = t.vocab.iter().collect();
    vocab.sort_by_key(|&(_, &id)| id);
    out.extend_from_slice(&(vocab.len() as u32).to_le_bytes());
    for (s, &id) in vocab {
        out.extend_from_slice(&id.to_le_bytes());
        put_str(&mut out, &symbol_bytes(s)?);
    }
    let mut merges: Vec<(&(String, String), &usize)> = t.ranks.iter().collect();
    merges.sort_by_key(|&(_, &r)| r);
    out.extend_from_slice(&(merges.len() as u32).to_le_bytes());
    for ((a, b), _) in merges {
        put_str(&mut out, &symbol_bytes(a)?);
        put_str(&mut out, &symbol_bytes(b)?);
    }
    Ok(out)
}

/// A quantized `Attention` (`attn1`/`attn2`) that owns its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedCrossAttention {
    /// `to_q`.
    pub to_q: OwnedLinear,
    /// `to_k`.
    pub to_k: OwnedLinear,
    /// `to_v`.
    pub to_v: OwnedLinear,
    /// `to_out.0`.
    pub to_out: OwnedLinear,
    /// Heads.
    pub heads: u32,
}

impl OwnedCrossAttention {
    fn quantize(a: &CrossAttention, qtype: QType, group: u32) -> Self {
        let lin = |l: &Linear| OwnedLinear::quantize(l, qtype, group);
        OwnedCrossAttention {
            to_q: lin(&a.to_q),
            to_k: lin(&a.to_k),
            to_v: lin(&a.to_v),
            to_out: lin(&a.to_out),
            heads: a.heads as u32,
        }
    }

    fn attention(&self) -> IntCrossAttention<'_> {
        IntCrossAttention {
            to_q: self.to_q.linear(),
            to_k: self.to_k.linear(),
            to_v: self.to_v.linear(),
            to_out: self.to_out.linear(),
            heads: self.heads,
        }
    }
}

/// A quantized `BasicTransformerBlock` that owns its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedTransformerBlock {
    /// `norm1`.
    pub norm1: IntLayerNorm,
    /// `attn1`.
    pub attn1: OwnedCrossAttention,
    /// `norm2`.
    pub norm2: IntLayerNorm,
    /// `attn2`.
    pub attn2: OwnedCrossAttention,
    /// `norm3`.
    pub norm3: IntLayerNorm,
    /// `ff.net.0.proj`.
    pub ff_proj: OwnedLinear,
    /// `ff.net.2`.
    pub ff_out: OwnedLinear,
}

/// A quantized `Transformer2DModel` that owns its buffers;
/// [`QuantizedTransformer2D::model`] lends the core's struct.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedTransformer2D {
    /// `norm.weight`, Q16.
    pub norm_weight: Vec<i32>,
    /// `norm.bias`, Q16.
    pub norm_bias: Vec<i32>,
    /// GroupNorm groups.
    pub norm_groups: u32,
    /// GroupNorm epsilon, Q32.
    pub norm_eps_q32: u32,
    /// `proj_in` (1x1 convolution as a linear layer).
    pub proj_in: OwnedLinear,
    /// `transformer_blocks.N`.
    pub blocks: Vec<OwnedTransformerBlock>,
    /// `proj_out`.
    pub proj_out: OwnedLinear,
}

fn conv1x1(c: &Conv2d, qtype: QType, group: u32) -> OwnedLinear {
    let (cout, cin) = (c.weight.shape[0], c.weight.shape[1]);
    OwnedLinear::quantize_conv1x1(&c.weight.data, &c.bias.data, cout, cin, qtype, group)
}

impl QuantizedTransformer2D {
    /// Quantize the float reference's `Transformer2D`.
    pub fn quantize(t: &Transformer2D, qtype: QType, group: u32) -> Self {
        let lin = |l: &Linear| OwnedLinear::quantize(l, qtype, group);
        QuantizedTransformer2D {
            norm_weight: to_fixed(&t.norm.weight.data, 16),
            norm_bias: to_fixed(&t.norm.bias.data, 16),
            norm_groups: t.norm.groups as u32,
            norm_eps_q32: eps_q32(t.norm.eps),
            proj_in: conv1x1(&t.proj_in, qtype, group),
            blocks: t
                .transformer_blocks
                .iter()
                .map(|b| OwnedTransformerBlock {
                    norm1: layer_norm(&b.norm1),
                    attn1: OwnedCrossAttention::quantize(&b.attn1, qtype, group),
                    norm2: layer_norm(&b.norm2),
                    attn2: OwnedCrossAttention::quantize(&b.attn2, qtype, group),
                    norm3: layer_norm(&b.norm3),
                    ff_proj: lin(&b.ff_proj),
                    ff_out: lin(&b.ff_out),
                })
                .collect(),
            proj_out: conv1x1(&t.proj_out, qtype, group),
        }
    }

    /// The core's `Transformer2D`, borrowing these buffers.
    pub fn model(&self) -> IntTransformer2D<'_> {
        IntTransformer2D {
            norm_weight: self.norm_weight.clone(),
            norm_bias: self.norm_bias.clone(),
            norm_groups: self.norm_groups,
            norm_eps_q32: self.norm_eps_q32,
            proj_in: self.proj_in.linear(),
            transformer_blocks: self
                .blocks
                .iter()
                .map(|b| BasicTransformerBlock {
                    norm1: b.norm1.clone(),
                    attn1: b.attn1.attention(),
                    norm2: b.norm2.clone(),
                    attn2: b.attn2.attention(),
                    norm3: b.norm3.clone(),
                    ff_proj: b.ff_proj.linear(),
                    ff_out: b.ff_out.linear(),
                })
                .collect(),
            proj_out: self.proj_out.linear(),
        }
    }
}

/// Add a quantized matrix as `name`.
fn write_matrix(w: &mut ModelWriter, name: &str, m: &OwnedMatrix) {
    let mantissas: Vec<i32> = m
        .scales
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    w.add_quant(
        name, m.qtype, m.rows, m.cols, m.group, m.exp, &mantissas, &m.qs,
    );
}

/// Add `{name}.weight` and, if present, `{name}.bias` (Q16).
pub fn write_linear(w: &mut ModelWriter, name: &str, l: &OwnedLinear) {
    write_matrix(w, &format!("{name}.weight"), &l.weight);
    if let Some(b) = &l.bias {
        w.add_i32(&format!("{name}.bias"), 1, b.len() as u32, 16, b);
    }
}

/// Add `{name}.weight` and `{name}.bias` of a LayerNorm (Q16).
pub fn write_layer_norm(w: &mut ModelWriter, name: &str, n: &IntLayerNorm) {
    w.add_i32(
        &format!("{name}.weight"),
        1,
        n.weight.len() as u32,
        16,
        &n.weight,
    );
    w.add_i32(&format!("{name}.bias"), 1, n.bias.len() as u32, 16, &n.bias);
}

/// Add the tokenizer blob as the `u8` tensor `name` that
/// `oracle_core::diffusion::clip::ClipTokenizer::load` reads.
pub fn write_tokenizer(w: &mut ModelWriter, name: &str, blob: &[u8]) {
    w.add_u8(name, blob);
}

impl QuantizedClip {
    /// Add every tensor under `prefix` (e.g. `"text_encoder.text_model."`), names
    /// as in the checkpoint, as `oracle_core::diffusion::clip::ClipTextModel::load` reads them.
    pub fn write(&self, w: &mut ModelWriter, prefix: &str) {
        let c = &self.config;
        write_matrix(
            w,
            &format!("{prefix}embeddings.token_embedding.weight"),
            &self.token_embedding,
        );
        w.add_i32(
            &format!("{prefix}embeddings.position_embedding.weight"),
            c.max_positions,
            c.hidden,
            16,
            &self.position_embedding,
        );
        for (i, l) in self.layers.iter().enumerate() {
            let n = |s: &str| format!("{prefix}encoder.layers.{i}.{s}");
            write_layer_norm(w, &n("layer_norm1"), &l.layer_norm1);
            write_linear(w, &n("self_attn.q_proj"), &l.q_proj);
            write_linear(w, &n("self_attn.k_proj"), &l.k_proj);
            write_linear(w, &n("self_attn.v_proj"), &l.v_proj);
            write_linear(w, &n("self_attn.out_proj"), &l.out_proj);
            write_layer_norm(w, &n("layer_norm2"), &l.layer_norm2);
            write_linear(w, &n("mlp.fc1"), &l.fc1);
            write_linear(w, &n("mlp.fc2"), &l.fc2);
        }
        write_layer_norm(
            w,
            &format!("{prefix}final_layer_norm"),
            &self.final_layer_norm,
        );
    }
}

impl QuantizedTransformer2D {
    /// Add every tensor under `prefix` (e.g. `"unet.mid_block.attentions.0."`), as
    /// `oracle_core::diffusion::transformer::Transformer2D::load` reads them.
    pub fn write(&self, w: &mut ModelWriter, prefix: &str) {
        let c = self.norm_weight.len() as u32;
        w.add_i32(&format!("{prefix}norm.weight"), 1, c, 16, &self.norm_weight);
        w.add_i32(&format!("{prefix}norm.bias"), 1, c, 16, &self.norm_bias);
        write_linear(w, &format!("{prefix}proj_in"), &self.proj_in);
        for (i, b) in self.blocks.iter().enumerate() {
            let n = |s: &str| format!("{prefix}transformer_blocks.{i}.{s}");
            write_layer_norm(w, &n("norm1"), &b.norm1);
            for (a, att) in [("attn1", &b.attn1), ("attn2", &b.attn2)] {
                write_linear(w, &n(&format!("{a}.to_q")), &att.to_q);
                write_linear(w, &n(&format!("{a}.to_k")), &att.to_k);
                write_linear(w, &n(&format!("{a}.to_v")), &att.to_v);
                write_linear(w, &n(&format!("{a}.to_out.0")), &att.to_out);
            }
            write_layer_norm(w, &n("norm2"), &b.norm2);
            write_layer_norm(w, &n("norm3"), &b.norm3);
            write_linear(w, &n("ff.net.0.proj"), &b.ff_proj);
            write_linear(w, &n("ff.net.2"), &b.ff_out);
        }
        write_linear(w, &format!("{prefix}proj_out"), &self.proj_out);
    }
}
