//! A [`FloatModel`] to the integer model file: quantized matrices, Q16 norm
//! weights, the Q30 RoPE table and the tokenizer with order-preserving score keys.

use oracle_core::format::{Arch, ModelWriter, TOKENIZER};
use oracle_core::llama::bpe::{self, BpeParts, BpeToken, BpeVocab, KIND_ADDED, KIND_BPE};
use oracle_core::llama::pretokenize::PreTokenizer;
use oracle_core::llama::{score_key, vocab_bytes, LlamaConfig, TokenEntry};
use oracle_core::quant::{QType, MAX_GROUP};

use crate::float_model::{FloatConfig, FloatModel, FloatTokenizer};
use crate::quantize::{quantize_matrix, to_fixed, Quantized};

/// Errors turning a float model into a model file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No vocabulary was found or given.
    #[error("the checkpoint has no tokenizer: pass --tokenizer <tokenizer.bin>")]
    NoTokenizer,
    /// The tokenizer and the model disagree.
    #[error("tokenizer has {tokenizer} tokens but the model's vocabulary is {model}")]
    VocabMismatch {
        /// Tokens in the tokenizer.
        tokenizer: usize,
        /// The model's vocab_size.
        model: usize,
    },
    /// An unusable group size.
    #[error("group size {0} is not supported (1..=256, even for q4)")]
    BadGroup(usize),
    /// The configuration does not fit the file format.
    #[error("config not supported: {0}")]
    Config(#[from] oracle_core::FormatError),
    /// The byte-level BPE vocabulary does not make a valid tokenizer tensor.
    #[error("vocabulary: {0}")]
    Tokenizer(oracle_core::FormatError),
    /// The RoPE table the header asks for outnumbers the weights it would serve.
    #[error("seq_len {seq_len} x head size {head_size} RoPE entries for {weights} weights: refusing a table larger than the model (max(weights, 2^20) entries)")]
    RopeTooLarge {
        /// The config's context length.
        seq_len: usize,
        /// The config's head size.
        head_size: usize,
        /// Weights of the checkpoint.
        weights: u64,
    },
}

/// Most RoPE entries (`seq_len · head_size`) a model of `weights` weights may ask
/// the exporter to compute: the table is generated from two header values, not
/// read from the checkpoint, so it is bounded by the weights it serves (with a
/// floor of 2^20 entries, 4 MiB, for small models with long contexts).
pub fn max_rope_entries(weights: u64) -> u64 {
    weights.max(1 << 20)
}

/// Quantization choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantOptions {
    /// Element type of every matrix.
    pub qtype: QType,
    /// Group size along a row.
    pub group: usize,
}

impl QuantOptions {
    /// The defaults: Q8 in groups of 32 (ggml's block size, so GGUF Q8_0 imports
    /// without loss; on stories260K it keeps the float greedy text for 115 tokens
    /// where groups of 64 keep 62), Q4 in groups of 16 (perplexity +7% on
    /// stories260K where groups of 32 give +10%; pass `--group 32` to import GGUF
    /// Q4_0 blocks without loss).
    pub fn for_type(qtype: QType) -> QuantOptions {
        let group = match qtype {
            QType::Q8 => 32,
            QType::Q4 => 16,
        };
        QuantOptions { qtype, group }
    }
}

/// What happened to one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorReport {
    /// Tensor name in the file.
    pub name: String,
    /// Largest absolute error of a weight.
    pub max_abs_error: f64,
    /// Every weight reproduced exactly.
    pub exact: bool,
}

/// The file and a per-tensor report.
#[derive(Debug, Clone)]
pub struct Export {
    /// The model file's bytes.
    pub bytes: Vec<u8>,
    /// One entry per quantized matrix.
    pub report: Vec<TensorReport>,
}

/// The tokenizer tensor: llama2.c's layout with order-preserving score keys, or
/// the byte-level BPE layout (`oracle_core::llama::bpe`), checked by parsing it.
pub fn tokenizer_bytes(tok: &FloatTokenizer) -> Result<Vec<u8>, ExportError> {
    let Some(b) = &tok.byte_bpe else {
        let entries: Vec<TokenEntry<'_>> = tok
            .pieces
            .iter()
            .zip(&tok.scores)
            .map(|(p, s)| TokenEntry {
                piece: p,
                score: score_key(s.to_bits()),
            })
            .collect();
        return Ok(vocab_bytes(&entries));
    };
    let pre = PreTokenizer::from_u32(b.pre).ok_or(ExportError::Tokenizer(
        oracle_core::FormatError::BadTokenizer("unknown pre-tokenizer"),
    ))?;
    let parts = BpeParts {
        pre,
        flags: b.flags,
        chat: (b.chat.0, &b.chat.1),
        tokens: tok
            .pieces
            .iter()
            .zip(&b.added)
            .map(|(p, &added)| BpeToken {
                kind: if added { KIND_ADDED } else { KIND_BPE },
                piece: p,
            })
            .collect(),
        merges: b.merges.clone(),
        stops: b.stops.clone(),
    };
    let bytes = bpe::vocab_bytes(&parts);
    BpeVocab::parse(&bytes, u32::try_from(tok.pieces.len()).unwrap_or(u32::MAX))
        .map_err(ExportError::Tokenizer)?;
    Ok(bytes)
}

/// Write `model` as a model file. `progress(done, total)` is called after each
/// tensor.
pub fn export(
    model: &FloatModel,
    opts: QuantOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<Export, ExportError> {
    let c = &model.config;
    if opts.group == 0
        || opts.group > MAX_GROUP as usize
        || (opts.qtype == QType::Q4 && !opts.group.is_multiple_of(2))
    {
        return Err(ExportError::BadGroup(opts.group));
    }
    let tok = model.tokenizer.as_ref().ok_or(ExportError::NoTokenizer)?;
    if tok.pieces.len() != c.vocab_size {
        return Err(ExportError::VocabMismatch {
            tokenizer: tok.pieces.len(),
            model: c.vocab_size,
        });
    }
    let u = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    let config = LlamaConfig {
        dim: u(c.dim),
        hidden_dim: u(c.hidden_dim),
        n_layers: u(c.n_layers),
        n_heads: u(c.n_heads),
        n_kv_heads: u(c.n_kv_heads),
        vocab_size: u(c.vocab_size),
        seq_len: u(c.seq_len),
        shared_classifier: model.wcls.is_none(),
        norm_eps_q32: (f64::from(c.norm_eps) * 4_294_967_296.0)
            .round()
            .clamp(0.0, f64::from(u32::MAX)) as u32,
        bos: tok.byte_bpe.as_ref().map_or(1, |b| b.bos),
        eos: tok.byte_bpe.as_ref().map_or(2, |b| b.eos),
    };
    config.validate()?;
    let weights = model.token_embedding.len() as u64
        + model.wcls.as_ref().map_or(0, |w| w.len() as u64)
        + model
            .layers
            .iter()
            .map(|l| (l.wq.len() + l.wk.len() + l.wv.len() + l.wo.len()) as u64)
            .chain(
                model
                    .layers
                    .iter()
                    .map(|l| (l.w1.len() + l.w2.len() + l.w3.len()) as u64),
            )
            .sum::<u64>();
    let rope = (c.seq_len as u64).saturating_mul(c.head_size() as u64);
    if rope > max_rope_entries(weights) {
        return Err(ExportError::RopeTooLarge {
            seq_len: c.seq_len,
            head_size: c.head_size(),
            weights,
        });
    }
    let mut w = ModelWriter::new(Arch::Llama, config.to_words());
    let vocabulary = tokenizer_bytes(tok)?;

    let total = 3 + 9 * c.n_layers + usize::from(model.wcls.is_some());
    let mut done = 0;
    let mut report = Vec::new();
    let mut step = |done: &mut usize| {
        *done += 1;
        progress(*done, total);
    };
    let mut add_matrix =
        |w: &mut ModelWriter, name: &str, data: &[f32], rows: usize, cols: usize| {
            // The embedding / classifier stays int8 in a Q4 model (as llama.cpp keeps
            // its output matrix at higher precision): it decides every logit directly
            // and is small next to the layers of a large model.
            let qtype = if name == "tok_embeddings" || name == "output" {
                QType::Q8
            } else {
                opts.qtype
            };
            let q: Quantized = quantize_matrix(data, rows, cols, qtype, opts.group);
            w.add_quant(
                name,
                qtype,
                u(rows),
                u(cols),
                u(opts.group),
                q.exp,
                &q.mantissas,
                &q.values,
            );
            report.push(TensorReport {
                name: name.to_string(),
                max_abs_error: q.max_abs_error,
                exact: q.exact,
            });
        };
    let (dim, hidden, kv_dim) = (c.dim, c.hidden_dim, c.kv_dim());
    add_matrix(
        &mut w,
        "tok_embeddings",
        &model.token_embedding,
        c.vocab_size,
        dim,
    );
    step(&mut done);
    for (l, layer) in model.layers.iter().enumerate() {
        let n = |s: &str| format!("layers.{l}.{s}");
        w.add_i32(
            &n("attention_norm"),
            1,
            u(dim),
            16,
            &to_fixed(&layer.rms_att, 16),
        );
        add_matrix(&mut w, &n("attention.wq"), &layer.wq, dim, dim);
        step(&mut done);
        add_matrix(&mut w, &n("attention.wk"), &layer.wk, kv_dim, dim);
        step(&mut done);
        add_matrix(&mut w, &n("attention.wv"), &layer.wv, kv_dim, dim);
        step(&mut done);
        if let Some(b) = &layer.qkv_bias {
            w.add_i32(&n("attention.bq"), 1, u(dim), 16, &to_fixed(&b.q, 16));
            w.add_i32(&n("attention.bk"), 1, u(kv_dim), 16, &to_fixed(&b.k, 16));
            w.add_i32(&n("attention.bv"), 1, u(kv_dim), 16, &to_fixed(&b.v, 16));
        }
        add_matrix(&mut w, &n("attention.wo"), &layer.wo, dim, dim);
        step(&mut done);
        w.add_i32(&n("ffn_norm"), 1, u(dim), 16, &to_fixed(&layer.rms_ffn, 16));
        step(&mut done);
        add_matrix(&mut w, &n("feed_forward.w1"), &layer.w1, hidden, dim);
        step(&mut done);
        add_matrix(&mut w, &n("feed_forward.w2"), &layer.w2, dim, hidden);
        step(&mut done);
        add_matrix(&mut w, &n("feed_forward.w3"), &layer.w3, hidden, dim);
        step(&mut done);
        step(&mut done);
    }
    w.add_i32("norm", 1, u(dim), 16, &to_fixed(&model.rms_final, 16));
    step(&mut done);
    if let Some(wcls) = &model.wcls {
        add_matrix(&mut w, "output", wcls, c.vocab_size, dim);
        step(&mut done);
    }
    w.add_i32("rope", u(c.seq_len), u(c.head_size()), 30, &rope_table(c));
    step(&mut done);
    w.add_u8(TOKENIZER, &vocabulary);
    Ok(Export {
        bytes: w.finish(),
        report,
    })
}

/// `[cos, sin]` of `pos * theta^(-2i / head_size) / factor_i` for every position and
/// pair of `c`, Q30.
pub fn rope_table(c: &FloatConfig) -> Vec<i32> {
    let (seq_len, head_size, theta) = (c.seq_len, c.head_size(), c.rope_theta);
    let mut out = Vec::with_capacity(seq_len * head_size);
    let one = libm::ldexp(1.0, 30);
    for pos in 0..seq_len {
        for i in 0..head_size / 2 {
            let freq = 1.0
                / libm::pow(f64::from(theta), (2 * i) as f64 / head_size as f64)
                / f64::from(c.rope_freq_factor(i));
            let angle = pos as f64 * freq;
            out.push((libm::cos(angle) * one).round() as i32);
            out.push((libm::sin(angle) * one).round() as i32);
        }
    }
    out
}
