//! CLIP's text side, float32: the byte-level BPE tokenizer (`vocab.json` +
//! `merges.txt`) and `CLIPTextModel` (`last_hidden_state`).
//!
//! Tokenizer: text is whitespace-collapsed, trimmed and lowercased (the fast
//! tokenizer's normalizer; NFC is the identity on ASCII and is not applied
//! here), split with CLIP's pattern (`'s|'t|'re|'ve|'m|'ll|'d|letters+|one
//! digit|other non-space+`: the integer core's [`pieces`]), each piece mapped through GPT-2's bytes-to-unicode
//! table with `</w>` on its last symbol, then merged by rank. The ids are
//! `[bos] + ids[..max - 2] + [eos]`, padded with the pad token to `max` (77).

use std::collections::HashMap;
use std::path::Path;

use oracle_core::diffusion::clip::tokenizer::pieces;
use serde::Deserialize;

use super::diffusers::{read_config, read_weights};
use super::ops::{attention_masked, quick_gelu, LayerNorm, Linear};
use super::{read_file, DiffusionError, Tensor, Vb, Weights};

/// CLIP's byte-level BPE tokenizer.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    /// Token -> id.
    pub vocab: HashMap<String, u32>,
    /// Pair -> merge rank.
    pub ranks: HashMap<(String, String), usize>,
    /// `<|startoftext|>`.
    pub bos: u32,
    /// `<|endoftext|>`.
    pub eos: u32,
    /// Padding id (`<|endoftext|>` in SD).
    pub pad: u32,
    /// `model_max_length` (77).
    pub max_len: usize,
    byte_to_char: [char; 256],
}

/// The fields of `tokenizer_config.json` read.
#[derive(Debug, Deserialize)]
struct TokenizerConfig {
    #[serde(default = "max_len")]
    model_max_length: usize,
    #[serde(default = "bos")]
    bos_token: String,
    #[serde(default = "eos")]
    eos_token: String,
    #[serde(default)]
    pad_token: Option<String>,
}

fn max_len() -> usize {
    77
}
fn bos() -> String {
    "<|startoftext|>".into()
}
fn eos() -> String {
    "<|endoftext|>".into()
}

/// GPT-2's table: printable bytes map to themselves, the others to U+0100 on.
fn bytes_to_unicode() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        out[b as usize] = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    out
}

impl ClipTokenizer {
    /// Loads `vocab.json`, `merges.txt` and `tokenizer_config.json` from `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, DiffusionError> {
        let missing = |f: &str| DiffusionError::MissingComponent {
            component: "tokenizer".into(),
            path: dir.join(f),
        };
        let cfg_err = |f: &str, msg: String| DiffusionError::Config {
            file: dir.join(f),
            msg,
        };
        for f in ["vocab.json", "merges.txt"] {
            if !dir.join(f).exists() {
                return Err(missing(f));
            }
        }
        let cfg: TokenizerConfig = if dir.join("tokenizer_config.json").exists() {
            let b = read_file(&dir.join("tokenizer_config.json"))?;
            serde_json::from_slice(&b)
                .map_err(|e| cfg_err("tokenizer_config.json", e.to_string()))?
        } else {
            serde_json::from_str("{}")
                .map_err(|e| cfg_err("tokenizer_config.json", e.to_string()))?
        };
        let vocab: HashMap<String, u32> =
            serde_json::from_slice(&read_file(&dir.join("vocab.json"))?)
                .map_err(|e| cfg_err("vocab.json", e.to_string()))?;
        let merges = String::from_utf8(read_file(&dir.join("merges.txt"))?)
            .map_err(|e| cfg_err("merges.txt", e.to_string()))?;
        let mut ranks = HashMap::new();
        for line in merges.lines() {
            if line.starts_with("#version") || line.trim().is_empty() {
                continue;
            }
            let mut it = line.split(' ');
            match (it.next(), it.next(), it.next()) {
                (Some(a), Some(b), None) => {
                    let r = ranks.len();
                    ranks.entry((a.to_string(), b.to_string())).or_insert(r);
                }
                _ => return Err(cfg_err("merges.txt", format!("bad line {line:?}"))),
            }
        }
        let id = |t: &str| {
            vocab
                .get(t)
                .copied()
                .ok_or_else(|| cfg_err("vocab.json", format!("no id for {t:?}")))
        };
        let bos = id(&cfg.bos_token)?;
        let eos = id(&cfg.eos_token)?;
        let pad = id(cfg.pad_token.as_deref().unwrap_or(&cfg.eos_token))?;
        if cfg.model_max_length < 2 || cfg.model_max_length > 4096 {
            return Err(cfg_err(
                "tokenizer_config.json",
                format!("model_max_length {}", cfg.model_max_length),
            ));
        }
        Ok(Self {
            vocab,
            ranks,
            bos,
            eos,
            pad,
            max_len: cfg.model_max_length,
            byte_to_char: bytes_to_unicode(),
        })
    }

    /// BPE of one piece (already in byte-unicode form), last symbol with `</w>`.
    fn bpe(&self, piece: &str) -> Vec<String> {
        let mut syms: Vec<String> = piece.chars().map(String::from).collect();
        if let Some(last) = syms.last_mut() {
            last.push_str("</w>");
        }
        loop {
            let best = syms
                .windows(2)
                .filter_map(|w| self.ranks.get(&(w[0].clone(), w[1].clone())).copied())
                .min();
            let Some(rank) = best else { break };
            let mut merged = Vec::with_capacity(syms.len());
            let mut i = 0;
            while i < syms.len() {
                if i + 1 < syms.len()
                    && self.ranks.get(&(syms[i].clone(), syms[i + 1].clone())) == Some(&rank)
                {
                    merged.push(format!("{}{}", syms[i], syms[i + 1]));
                    i += 2;
                } else {
                    merged.push(syms[i].clone());
                    i += 1;
                }
            }
            syms = merged;
        }
        syms
    }

    /// Token ids of `text` without special tokens.
    pub fn encode_raw(&self, text: &str) -> Vec<u32> {
        let norm = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        let mut ids = Vec::new();
        for p in pieces(&norm) {
            let mapped: String = p.bytes().map(|b| self.byte_to_char[b as usize]).collect();
            for s in self.bpe(&mapped) {
                ids.push(self.vocab.get(&s).copied().unwrap_or(self.eos));
            }
        }
        ids
    }

    /// `[bos] + ids + [eos]`, truncated and padded to `max_len`, as the SD
    /// pipeline calls the tokenizer (`padding="max_length"`, `truncation=True`).
    pub fn encode_padded(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.bos];
        ids.extend(self.encode_raw(text).into_iter().take(self.max_len - 2));
        ids.push(self.eos);
        ids.resize(self.max_len, self.pad);
        ids
    }
}

/// The fields of `text_encoder/config.json` read.
#[derive(Debug, Clone, Deserialize)]
pub struct ClipTextConfig {
    /// Width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Heads.
    pub num_attention_heads: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Positions.
    pub max_position_embeddings: usize,
    /// `quick_gelu` or `gelu`.
    #[serde(default = "quick")]
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[serde(default = "ln_eps")]
    pub layer_norm_eps: f32,
}

fn quick() -> String {
    "quick_gelu".into()
}
fn ln_eps() -> f32 {
    1e-5
}

/// `encoder.layers.N`.
#[derive(Debug, Clone)]
pub struct ClipLayer {
    /// `layer_norm1`.
    pub layer_norm1: LayerNorm,
    /// `self_attn.q_proj`.
    pub q_proj: Linear,
    /// `self_attn.k_proj`.
    pub k_proj: Linear,
    /// `self_attn.v_proj`.
    pub v_proj: Linear,
    /// `self_attn.out_proj`.
    pub out_proj: Linear,
    /// `layer_norm2`.
    pub layer_norm2: LayerNorm,
    /// `mlp.fc1`.
    pub fc1: Linear,
    /// `mlp.fc2`.
    pub fc2: Linear,
}

/// The float `CLIPTextModel`.
#[derive(Debug, Clone)]
pub struct ClipTextModel {
    /// The configuration.
    pub config: ClipTextConfig,
    /// `embeddings.token_embedding (vocab, hidden)`.
    pub token_embedding: Tensor,
    /// `embeddings.position_embedding (positions, hidden)`.
    pub position_embedding: Tensor,
    /// `encoder.layers.N`.
    pub layers: Vec<ClipLayer>,
    /// `final_layer_norm`.
    pub final_layer_norm: LayerNorm,
}

impl ClipTextModel {
    /// Loads a `text_encoder` component folder.
    pub fn load_dir(dir: &Path) -> Result<Self, DiffusionError> {
        let cfg: ClipTextConfig = read_config(dir, "config.json", "text_encoder", "CLIPTextModel")?;
        Self::load(&read_weights(dir, "text_encoder")?, cfg)
    }

    /// Builds the model; tensor names with or without the `text_model.` prefix.
    pub fn load(w: &Weights, cfg: ClipTextConfig) -> Result<Self, DiffusionError> {
        if cfg.hidden_act != "quick_gelu" {
            return Err(DiffusionError::Unsupported {
                what: "hidden_act",
                name: cfg.hidden_act.clone(),
            });
        }
        let (d, f) = (cfg.hidden_size, cfg.intermediate_size);
        if cfg.num_attention_heads == 0 || !d.is_multiple_of(cfg.num_attention_heads) {
            return Err(DiffusionError::Input(format!(
                "{} heads for width {d}",
                cfg.num_attention_heads
            )));
        }
        let root = w.root();
        let vb: Vb = if root.contains("text_model.final_layer_norm.weight") {
            root.pp("text_model")
        } else {
            root
        };
        let eps = cfg.layer_norm_eps;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp("encoder.layers").pp(i);
            let a = l.pp("self_attn");
            layers.push(ClipLayer {
                layer_norm1: LayerNorm::load(&l.pp("layer_norm1"), d, eps)?,
                q_proj: Linear::load(&a.pp("q_proj"), d, d)?,
                k_proj: Linear::load(&a.pp("k_proj"), d, d)?,
                v_proj: Linear::load(&a.pp("v_proj"), d, d)?,
                out_proj: Linear::load(&a.pp("out_proj"), d, d)?,
                layer_norm2: LayerNorm::load(&l.pp("layer_norm2"), d, eps)?,
                fc1: Linear::load(&l.pp("mlp.fc1"), d, f)?,
                fc2: Linear::load(&l.pp("mlp.fc2"), f, d)?,
            });
        }
        Ok(Self {
            token_embedding: vb.get("embeddings.token_embedding.weight", &[cfg.vocab_size, d])?,
            position_embedding: vb.get(
                "embeddings.position_embedding.weight",
                &[cfg.max_position_embeddings, d],
            )?,
            layers,
            final_layer_norm: LayerNorm::load(&vb.pp("final_layer_norm"), d, eps)?,
            config: cfg,
        })
    }

    /// `last_hidden_state (ids.len(), hidden)` for token ids (causal attention).
    pub fn forward(&self, ids: &[u32]) -> Result<Tensor, DiffusionError> {
        let c = &self.config;
        let d = c.hidden_size;
        if ids.is_empty() || ids.len() > c.max_position_embeddings {
            return Err(DiffusionError::Input(format!(
                "{} tokens for {} positions",
                ids.len(),
                c.max_position_embeddings
            )));
        }
        let mut h = Tensor::zeros(&[ids.len(), d]);
        for (p, &id) in ids.iter().enumerate() {
            let id = id as usize;
            if id >= c.vocab_size {
                return Err(DiffusionError::Input(format!(
                    "token id {id} out of vocabulary"
                )));
            }
            let row = &mut h.data[p * d..(p + 1) * d];
            let tok = &self.token_embedding.data[id * d..(id + 1) * d];
            let pos = &self.position_embedding.data[p * d..(p + 1) * d];
            for ((o, &t), &q) in row.iter_mut().zip(tok).zip(pos) {
                *o = t + q;
            }
        }
        for l in &self.layers {
            let x = l.layer_norm1.forward(&h);
            let q = l.q_proj.forward_rows(&x);
            let k = l.k_proj.forward_rows(&x);
            let v = l.v_proj.forward_rows(&x);
            let a =
                l.out_proj
                    .forward_rows(&attention_masked(&q, &k, &v, c.num_attention_heads, true));
            super::ops::add_inplace(&mut h, &a);
            let x = l.layer_norm2.forward(&h);
            let mut m = l.fc1.forward_rows(&x);
            m.data.iter_mut().for_each(|v| *v = quick_gelu(*v));
            let m = l.fc2.forward_rows(&m);
            super::ops::add_inplace(&mut h, &m);
        }
        Ok(self.final_layer_norm.forward(&h))
    }
}
