//! `CLIPTextModel` in integers: token + position embeddings, pre-norm causal
//! self-attention layers with a quick-GELU MLP, a final LayerNorm; the output is
//! `last_hidden_state [tokens × hidden]` in Q16.
//!
//! Layer `l` (names as in the checkpoint, `text_model.encoder.layers.l.*`):
//! `h += out_proj(attn(q_proj, k_proj, v_proj of layer_norm1(h)))`, then
//! `h += fc2(quick_gelu(fc1(layer_norm2(h))))`. Residual additions saturate.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use crate::diffusion::clip::tokenizer::ClipTokenizer;
use crate::error::{FormatError, RequestError};
use crate::fixed::FRAC;
use crate::format::{ConfigReader, ConfigWriter, ModelFile};
use crate::kernels::Exec;
use crate::nn::attention::attention_masked;
use crate::nn::gelu::quick_gelu_q16;
use crate::nn::layernorm::{LayerNorm, MAX_LEN};
use crate::nn::linear::Linear;
use crate::quant::QMatrix;

/// Hyper-parameters of the text encoder (`text_encoder/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipTextConfig {
    /// `hidden_size`.
    pub hidden: u32,
    /// `intermediate_size` (37 in tiny-sd: ragged quantization groups).
    pub intermediate: u32,
    /// `num_hidden_layers`.
    pub layers: u32,
    /// `num_attention_heads`.
    pub heads: u32,
    /// `vocab_size`.
    pub vocab: u32,
    /// `max_position_embeddings`.
    pub max_positions: u32,
    /// `layer_norm_eps` in Q32.
    pub eps_q32: u32,
}

impl ClipTextConfig {
    /// Append the config's fields, in order: hidden, intermediate, layers, heads,
    /// vocab, max_positions, eps_q32.
    pub fn write(&self, w: &mut ConfigWriter) {
        w.u32(self.hidden)
            .u32(self.intermediate)
            .u32(self.layers)
            .u32(self.heads)
            .u32(self.vocab)
            .u32(self.max_positions)
            .u32(self.eps_q32);
    }

    /// Read the fields [`ClipTextConfig::write`] appends.
    pub fn read(r: &mut ConfigReader<'_>) -> Result<ClipTextConfig, FormatError> {
        Ok(ClipTextConfig {
            hidden: r.u32()?,
            intermediate: r.u32()?,
            layers: r.u32()?,
            heads: r.u32()?,
            vocab: r.u32()?,
            max_positions: r.u32()?,
            eps_q32: r.u32()?,
        })
    }

    /// The config's words alone ([`ClipTextConfig::write`]).
    pub fn to_words(&self) -> Vec<u32> {
        let mut w = ConfigWriter::new();
        self.write(&mut w);
        w.finish()
    }

    /// Read [`ClipTextConfig::to_words`] back, every word used.
    pub fn from_words(words: &[u32]) -> Result<ClipTextConfig, FormatError> {
        let mut r = ConfigReader::new(words);
        let c = ClipTextConfig::read(&mut r)?;
        r.finish()?;
        Ok(c)
    }
}

/// `encoder.layers.N`.
#[derive(Debug, Clone)]
pub struct ClipLayer<'a> {
    /// `layer_norm1`.
    pub layer_norm1: LayerNorm,
    /// `self_attn.q_proj: (hidden, hidden)`.
    pub q_proj: Linear<'a>,
    /// `self_attn.k_proj: (hidden, hidden)`.
    pub k_proj: Linear<'a>,
    /// `self_attn.v_proj: (hidden, hidden)`.
    pub v_proj: Linear<'a>,
    /// `self_attn.out_proj: (hidden, hidden)`.
    pub out_proj: Linear<'a>,
    /// `layer_norm2`.
    pub layer_norm2: LayerNorm,
    /// `mlp.fc1: (intermediate, hidden)`.
    pub fc1: Linear<'a>,
    /// `mlp.fc2: (hidden, intermediate)`.
    pub fc2: Linear<'a>,
}

/// The integer `CLIPTextModel`.
#[derive(Debug, Clone)]
pub struct ClipTextModel<'a> {
    /// Hyper-parameters.
    pub config: ClipTextConfig,
    /// `embeddings.token_embedding: (vocab, hidden)`.
    pub token_embedding: QMatrix<'a>,
    /// `embeddings.position_embedding: (max_positions, hidden)`, Q16.
    pub position_embedding: Vec<i32>,
    /// `encoder.layers.N`.
    pub layers: Vec<ClipLayer<'a>>,
    /// `final_layer_norm`.
    pub final_layer_norm: LayerNorm,
}

fn check(ok: bool, what: &'static str) -> Result<(), FormatError> {
    if ok {
        Ok(())
    } else {
        Err(FormatError::BadConfig(what))
    }
}

fn check_linear(
    l: &Linear<'_>,
    rows: u32,
    cols: u32,
    what: &'static str,
) -> Result<(), FormatError> {
    check(l.weight.rows == rows && l.weight.cols == cols, what)?;
    check(
        l.bias.as_ref().is_some_and(|b| b.len() == rows as usize),
        what,
    )
}

fn check_norm(n: &LayerNorm, dim: u32, what: &'static str) -> Result<(), FormatError> {
    check(
        n.weight.len() == dim as usize && n.bias.len() == dim as usize,
        what,
    )
}

impl<'a> ClipTextModel<'a> {
    /// Bind the weights from an image model file, names as in the checkpoint under
    /// `prefix` (e.g. `"text_encoder.text_model."`):
    /// `embeddings.token_embedding.weight` (quantized),
    /// `embeddings.position_embedding.weight` (`i32` Q16), `encoder.layers.N.*`,
    /// `final_layer_norm.*`. Shapes are checked against `config`.
    pub fn load(
        file: &ModelFile<'a>,
        prefix: &str,
        config: ClipTextConfig,
    ) -> Result<Self, FormatError> {
        let c = config;
        let (d, f) = (c.hidden as usize, c.intermediate as usize);
        if d == 0 || d > MAX_LEN || f == 0 || c.heads == 0 || d % c.heads as usize != 0 {
            return Err(FormatError::BadConfig(
                "CLIP hidden size, heads or intermediate size",
            ));
        }
        let n = |s: &str| format!("{prefix}{s}");
        let mut layers = Vec::new();
        for i in 0..c.layers {
            let l = |s: &str| format!("{prefix}encoder.layers.{i}.{s}");
            layers.push(ClipLayer {
                layer_norm1: LayerNorm::load(file, &l("layer_norm1"), d, c.eps_q32)?,
                q_proj: Linear::load(file, &l("self_attn.q_proj"), d, d, true)?,
                k_proj: Linear::load(file, &l("self_attn.k_proj"), d, d, true)?,
                v_proj: Linear::load(file, &l("self_attn.v_proj"), d, d, true)?,
                out_proj: Linear::load(file, &l("self_attn.out_proj"), d, d, true)?,
                layer_norm2: LayerNorm::load(file, &l("layer_norm2"), d, c.eps_q32)?,
                fc1: Linear::load(file, &l("mlp.fc1"), f, d, true)?,
                fc2: Linear::load(file, &l("mlp.fc2"), d, f, true)?,
            });
        }
        let model = ClipTextModel {
            config: c,
            token_embedding: file.qmatrix(
                &n("embeddings.token_embedding.weight"),
                c.vocab as usize,
                d,
            )?,
            position_embedding: file.i32s(
                &n("embeddings.position_embedding.weight"),
                u64::from(c.max_positions) * d as u64,
                FRAC as i32,
            )?,
            layers,
            final_layer_norm: LayerNorm::load(file, &n("final_layer_norm"), d, c.eps_q32)?,
        };
        model.validate()?;
        Ok(model)
    }

    /// Check every shape against the config (call once after binding weights).
    pub fn validate(&self) -> Result<(), FormatError> {
        let c = self.config;
        let (d, f) = (c.hidden, c.intermediate);
        check(
            c.heads > 0 && d > 0 && d % c.heads == 0 && (d as usize) <= MAX_LEN,
            "CLIP heads must divide hidden_size",
        )?;
        check(c.layers as usize == self.layers.len(), "CLIP layer count")?;
        check(
            self.token_embedding.rows == c.vocab && self.token_embedding.cols == d,
            "CLIP token_embedding shape",
        )?;
        check(
            self.position_embedding.len() == c.max_positions as usize * d as usize,
            "CLIP position_embedding shape",
        )?;
        check_norm(&self.final_layer_norm, d, "CLIP final_layer_norm shape")?;
        for l in &self.layers {
            check_norm(&l.layer_norm1, d, "CLIP layer_norm1 shape")?;
            check_norm(&l.layer_norm2, d, "CLIP layer_norm2 shape")?;
            check_linear(&l.q_proj, d, d, "CLIP q_proj shape")?;
            check_linear(&l.k_proj, d, d, "CLIP k_proj shape")?;
            check_linear(&l.v_proj, d, d, "CLIP v_proj shape")?;
            check_linear(&l.out_proj, d, d, "CLIP out_proj shape")?;
            check_linear(&l.fc1, f, d, "CLIP fc1 shape")?;
            check_linear(&l.fc2, d, f, "CLIP fc2 shape")?;
        }
        Ok(())
    }

    /// Tokenize prompt bytes (padded to the tokenizer's `max_len`) and encode them:
    /// the conditioning of one classifier-free-guidance branch; the empty prompt
    /// gives the unconditional one, as the Stable Diffusion pipeline does.
    pub fn encode_prompt(
        &self,
        exec: Exec,
        tokenizer: &ClipTokenizer,
        prompt: &[u8],
    ) -> Result<Vec<i32>, RequestError> {
        self.forward(exec, &tokenizer.encode_padded_bytes(prompt))
    }

    /// `last_hidden_state [ids.len() × hidden]` (Q16) for token ids, causal
    /// attention. Fails on an empty or over-long sequence or an id outside the
    /// vocabulary; shapes must have passed [`ClipTextModel::validate`].
    pub fn forward(&self, exec: Exec, ids: &[u32]) -> Result<Vec<i32>, RequestError> {
        let c = self.config;
        let n = ids.len();
        if n == 0 || n > c.max_positions as usize {
            return Err(RequestError::PromptTooLong {
                tokens: n,
                seq_len: c.max_positions as usize,
            });
        }
        let d = c.hidden as usize;
        let f = c.intermediate as usize;
        let heads = c.heads as usize;
        let mut h = vec![0i32; n * d];
        for (p, &id) in ids.iter().enumerate() {
            if id >= c.vocab {
                return Err(RequestError::TokenOutOfRange(id));
            }
            let row = &mut h[p * d..(p + 1) * d];
            self.token_embedding.dequantize_row(id as usize, row);
            for (o, &e) in row
                .iter_mut()
                .zip(&self.position_embedding[p * d..(p + 1) * d])
            {
                *o = o.saturating_add(e);
            }
        }
        // Scratch: x [n × d], q/k/v/a [n × d], m [n × f].
        let mut x = vec![0i32; n * d];
        let (mut q, mut k, mut v, mut a) = (x.clone(), x.clone(), x.clone(), x.clone());
        let mut m = vec![0i32; n * f];
        for l in &self.layers {
            l.layer_norm1.forward(&h, &mut x);
            l.q_proj.forward(exec, &x, n, &mut q);
            l.k_proj.forward(exec, &x, n, &mut k);
            l.v_proj.forward(exec, &x, n, &mut v);
            attention_masked(exec, &q, &k, &v, n, n, heads, d / heads, true, &mut a);
            l.out_proj.forward(exec, &a, n, &mut x);
            add_residual(&mut h, &x);
            l.layer_norm2.forward(&h, &mut x);
            l.fc1.forward(exec, &x, n, &mut m);
            m.iter_mut().for_each(|v| *v = quick_gelu_q16(*v));
            l.fc2.forward(exec, &m, n, &mut x);
            add_residual(&mut h, &x);
        }
        self.final_layer_norm.forward(&h, &mut x);
        Ok(x)
    }
}

fn add_residual(h: &mut [i32], y: &[i32]) {
    for (a, &b) in h.iter_mut().zip(y) {
        *a = a.saturating_add(b);
    }
}
