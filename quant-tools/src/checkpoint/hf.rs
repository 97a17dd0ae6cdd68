//! Hugging Face `LlamaForCausalLM` checkpoints: `model.safetensors` (or the shards
//! listed in `model.safetensors.index.json`) + `config.json`.
//!
//! Tensor names: `model.embed_tokens.weight`, `model.layers.N.input_layernorm.weight`,
//! `model.layers.N.self_attn.{q,k,v,o}_proj.weight`,
//! `model.layers.N.post_attention_layernorm.weight`,
//! `model.layers.N.mlp.{gate,down,up}_proj.weight`, `model.norm.weight`,
//! `lm_head.weight` (absent, or `tie_word_embeddings`, means shared).
//!
//! HF's conversion script permutes Q and K rows for rotate-half RoPE:
//! `permute(w, n_heads, d1, d2) = w.view(n_heads, d1/n_heads/2, 2, d2).transpose(1, 2)
//! .reshape(d1, d2)`, i.e. `hf[h*hs + j*hs/2 + i] = meta[h*hs + 2*i + j]`.
//! [`unpermute_qk`] inverts it (with `n_kv_heads` for K) back to llama2.c's layout.

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use super::reader::f16_to_f32;
use super::{dedup_classifier, validate_config, CheckpointError};
use crate::float_model::{FloatConfig, FloatLayer, FloatModel, FloatQkvBias, Llama3RopeScaling};

/// Whether the bytes look like a safetensors file: a `u64` header length that fits
/// in the file, then a JSON object.
pub fn looks_like_safetensors(bytes: &[u8]) -> bool {
    if bytes.len() < 10 {
        return false;
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(n);
    n >= 2 && n <= bytes.len() as u64 - 8 && bytes[8] == b'{'
}

/// The fields of `config.json` that the importer reads.
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    /// `dim`.
    pub hidden_size: usize,
    /// `hidden_dim`.
    pub intermediate_size: usize,
    /// `n_layers`.
    pub num_hidden_layers: usize,
    /// `n_heads`.
    pub num_attention_heads: usize,
    /// `n_kv_heads` (defaults to `num_attention_heads`).
    pub num_key_value_heads: Option<usize>,
    /// `vocab_size`.
    pub vocab_size: usize,
    /// `seq_len`.
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon (default 1e-6 as in transformers' LlamaConfig).
    pub rms_norm_eps: Option<f32>,
    /// RoPE base (default 10000).
    pub rope_theta: Option<f32>,
    /// Shared classifier (transformers' default: false).
    pub tie_word_embeddings: Option<bool>,
    /// Activation; only `silu` is supported.
    pub hidden_act: Option<String>,
    /// Absent, null, or Llama 3's `{"rope_type": "llama3", ...}`.
    pub rope_scaling: Option<serde_json::Value>,
    /// transformers 5's form of `rope_theta` + `rope_scaling` in one object
    /// (`rope_type` `"default"` or `"llama3"`).
    pub rope_parameters: Option<serde_json::Value>,
    /// `model_type`: `llama` (or absent) or `qwen2` (a LLaMA with q/k/v biases).
    pub model_type: Option<String>,
    /// Qwen2's sliding-window attention; must be absent or false.
    pub use_sliding_window: Option<bool>,
    /// Must be absent or `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    /// Must be absent or false: biases are not supported.
    pub attention_bias: Option<bool>,
    /// Must be absent or false: biases are not supported.
    pub mlp_bias: Option<bool>,
}

impl HfConfig {
    /// RoPE's base: `rope_theta`, else `rope_parameters.rope_theta`, else 10000.
    fn theta(&self) -> f32 {
        let nested = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.get("rope_theta")?.as_f64());
        self.rope_theta
            .or(nested.map(|t| t as f32))
            .unwrap_or(10_000.0)
    }

    /// The RoPE scaling object, if the model scales: `rope_scaling`, else
    /// `rope_parameters` unless its type is `default`.
    fn scaling(&self) -> Option<&serde_json::Value> {
        let scaling = self.rope_scaling.as_ref().filter(|v| !v.is_null());
        scaling.or_else(|| {
            self.rope_parameters
                .as_ref()
                .filter(|p| p.get("rope_type").and_then(|t| t.as_str()) != Some("default"))
        })
    }

    /// The equivalent [`FloatConfig`].
    pub fn to_float_config(&self) -> Result<FloatConfig, CheckpointError> {
        if let Some(t) = self
            .model_type
            .as_deref()
            .filter(|t| !matches!(*t, "llama" | "qwen2"))
        {
            return Err(CheckpointError::Config(format!(
                "model_type {t:?}, expected llama or qwen2"
            )));
        }
        if self.use_sliding_window == Some(true) {
            return Err(CheckpointError::Config(
                "sliding-window attention is not supported".into(),
            ));
        }
        if let Some(a) = self.hidden_act.as_deref().filter(|a| *a != "silu") {
            return Err(CheckpointError::Config(format!(
                "hidden_act {a:?}, expected silu"
            )));
        }
        if self.attention_bias == Some(true) || self.mlp_bias == Some(true) {
            return Err(CheckpointError::Config(
                "attention/MLP biases are not supported".into(),
            ));
        }
        let mut c = FloatConfig {
            dim: self.hidden_size,
            hidden_dim: self.intermediate_size,
            n_layers: self.num_hidden_layers,
            n_heads: self.num_attention_heads,
            n_kv_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            vocab_size: self.vocab_size,
            seq_len: self.max_position_embeddings,
            norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            rope_theta: self.theta(),
            rope_freq_factors: Vec::new(),
        };
        validate_config(&c)?;
        if let Some(scaling) = self.scaling() {
            c.rope_freq_factors =
                llama3_scaling(scaling)?.freq_factors(c.rope_theta, c.head_size());
        }
        if let Some(h) = self.head_dim.filter(|&h| h != c.head_size()) {
            return Err(CheckpointError::Config(format!(
                "head_dim {h} != hidden_size / num_attention_heads = {}",
                c.head_size()
            )));
        }
        Ok(c)
    }
}

/// Llama 3's `rope_scaling` object; any other scaling is refused.
fn llama3_scaling(v: &serde_json::Value) -> Result<Llama3RopeScaling, CheckpointError> {
    let kind = v
        .get("rope_type")
        .or_else(|| v.get("type"))
        .and_then(|t| t.as_str())
        .unwrap_or("");
    if kind != "llama3" {
        return Err(CheckpointError::Config(format!(
            "rope_scaling {v}: only rope_type \"llama3\" is supported"
        )));
    }
    let number = |key: &str| {
        v.get(key)
            .and_then(|x| x.as_f64())
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| {
                CheckpointError::Config(format!(
                    "rope_scaling.{key} missing or not positive in {v}"
                ))
            })
    };
    let s = Llama3RopeScaling {
        factor: number("factor")?,
        low_freq_factor: number("low_freq_factor")?,
        high_freq_factor: number("high_freq_factor")?,
        original_context: number("original_max_position_embeddings")?,
    };
    if s.high_freq_factor <= s.low_freq_factor {
        return Err(CheckpointError::Config(format!(
            "rope_scaling: high_freq_factor must exceed low_freq_factor in {v}"
        )));
    }
    Ok(s)
}

/// Undoes HF's rotate-half permutation of a Q or K matrix `(n_heads * hs, cols)`:
/// row `h*hs + 2*i + j` of the result is row `h*hs + j*hs/2 + i` of `w`.
pub fn unpermute_qk(w: &[f32], n_heads: usize, cols: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let hs = rows / n_heads;
    let mut out = vec![0.0; w.len()];
    for h in 0..n_heads {
        for i in 0..hs / 2 {
            for j in 0..2 {
                let dst = (h * hs + 2 * i + j) * cols;
                let src = (h * hs + j * hs / 2 + i) * cols;
                out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
            }
        }
    }
    out
}

/// Applies HF's permutation (the inverse of [`unpermute_qk`]).
pub fn permute_qk(w: &[f32], n_heads: usize, cols: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let hs = rows / n_heads;
    let mut out = vec![0.0; w.len()];
    for h in 0..n_heads {
        for i in 0..hs / 2 {
            for j in 0..2 {
                let src = (h * hs + 2 * i + j) * cols;
                let dst = (h * hs + j * hs / 2 + i) * cols;
                out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
            }
        }
    }
    out
}

/// Parses `model.safetensors` bytes with the bytes of its `config.json`.
pub fn parse(safetensors: &[u8], config_json: &[u8]) -> Result<FloatModel, CheckpointError> {
    parse_shards(&[safetensors], config_json)
}

/// The shard file names listed in a `model.safetensors.index.json` (its
/// `weight_map` values, deduplicated, in order of first appearance). A name with a
/// path separator or `..` is refused: shards live beside the index.
pub fn shard_names(index_json: &[u8]) -> Result<Vec<String>, CheckpointError> {
    #[derive(Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let index: Index = serde_json::from_slice(index_json)
        .map_err(|e| CheckpointError::Safetensors(format!("index: {e}")))?;
    let mut names: Vec<String> = Vec::new();
    for file in index.weight_map.values() {
        if file.contains('/') || file.contains('\\') || file.contains("..") || file.is_empty() {
            return Err(CheckpointError::Safetensors(format!(
                "index: shard name {file:?}"
            )));
        }
        if !names.contains(file) {
            names.push(file.clone());
        }
    }
    if names.is_empty() {
        return Err(CheckpointError::Safetensors(
            "index: empty weight_map".into(),
        ));
    }
    Ok(names)
}

/// Parses a checkpoint split over several safetensors files (the shards of a
/// `model.safetensors.index.json`) with the bytes of its `config.json`. A tensor
/// name present in two shards is an error.
pub fn parse_shards(shards: &[&[u8]], config_json: &[u8]) -> Result<FloatModel, CheckpointError> {
    let hf: HfConfig =
        serde_json::from_slice(config_json).map_err(|e| CheckpointError::Config(e.to_string()))?;
    let config = hf.to_float_config()?;
    let mut tensors = std::collections::HashMap::new();
    for bytes in shards {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| CheckpointError::Safetensors(e.to_string()))?;
        for (name, view) in st.tensors() {
            if tensors.insert(name.clone(), view).is_some() {
                return Err(CheckpointError::Safetensors(format!(
                    "{name} in two shards"
                )));
            }
        }
    }
    let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, CheckpointError> {
        let t = tensors
            .get(name)
            .ok_or_else(|| CheckpointError::MissingTensor(name.to_string()))?;
        if t.shape() != shape {
            return Err(CheckpointError::BadShape {
                name: name.to_string(),
                got: t.shape().iter().map(|&d| d as u64).collect(),
                expected: shape.iter().map(|&d| d as u64).collect(),
            });
        }
        let d = t.data();
        let v: Vec<f32> = match t.dtype() {
            Dtype::F32 => super::reader::f32s_from_le(d),
            Dtype::F16 => d
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::BF16 => d
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect(),
            other => {
                return Err(CheckpointError::UnsupportedType {
                    name: name.to_string(),
                    kind: format!("{other:?}"),
                })
            }
        };
        if v.len() != shape.iter().product::<usize>() {
            return Err(CheckpointError::Safetensors(format!("{name}: data length")));
        }
        Ok(v)
    };
    let c = &config;
    let (dim, hidden, kv_dim, vocab) = (c.dim, c.hidden_dim, c.kv_dim(), c.vocab_size);
    let mut layers = Vec::with_capacity(c.n_layers);
    for i in 0..c.n_layers {
        let n = |s: &str| format!("model.layers.{i}.{s}.weight");
        let b = |s: &str| format!("model.layers.{i}.{s}.bias");
        if tensors.contains_key(&b("self_attn.o_proj")) || tensors.contains_key(&b("mlp.up_proj")) {
            return Err(CheckpointError::Config(
                "output-projection and MLP biases are not supported (only Qwen2's q/k/v biases)"
                    .into(),
            ));
        }
        layers.push(FloatLayer {
            rms_att: get(&n("input_layernorm"), &[dim])?,
            wq: unpermute_qk(&get(&n("self_attn.q_proj"), &[dim, dim])?, c.n_heads, dim),
            wk: unpermute_qk(
                &get(&n("self_attn.k_proj"), &[kv_dim, dim])?,
                c.n_kv_heads,
                dim,
            ),
            wv: get(&n("self_attn.v_proj"), &[kv_dim, dim])?,
            wo: get(&n("self_attn.o_proj"), &[dim, dim])?,
            rms_ffn: get(&n("post_attention_layernorm"), &[dim])?,
            w1: get(&n("mlp.gate_proj"), &[hidden, dim])?,
            w2: get(&n("mlp.down_proj"), &[dim, hidden])?,
            w3: get(&n("mlp.up_proj"), &[hidden, dim])?,
            qkv_bias: if tensors.contains_key(&b("self_attn.q_proj")) {
                Some(FloatQkvBias {
                    q: unpermute_qk(&get(&b("self_attn.q_proj"), &[dim])?, c.n_heads, 1),
                    k: unpermute_qk(&get(&b("self_attn.k_proj"), &[kv_dim])?, c.n_kv_heads, 1),
                    v: get(&b("self_attn.v_proj"), &[kv_dim])?,
                })
            } else {
                None
            },
        });
    }
    let token_embedding = get("model.embed_tokens.weight", &[vocab, dim])?;
    let tied = hf.tie_word_embeddings.unwrap_or(false);
    let wcls = if tied || !tensors.contains_key("lm_head.weight") {
        None
    } else {
        dedup_classifier(&token_embedding, get("lm_head.weight", &[vocab, dim])?)
    };
    Ok(FloatModel {
        rms_final: get("model.norm.weight", &[dim])?,
        config,
        token_embedding,
        layers,
        wcls,
        tokenizer: None,
    })
}
