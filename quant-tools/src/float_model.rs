//! A checkpoint in memory as plain `f32` arrays, in llama2.c's layout.
//!
//! Every importer produces this; the quantizer and the float reference consume it.
//! Matrices are row-major `(out, in)`. Q and K use llama2.c's (Meta's) RoPE layout:
//! rotation pairs are adjacent elements `(2i, 2i+1)` within each head.

/// Hyper-parameters of a LLaMA-family model.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatConfig {
    /// Residual stream width.
    pub dim: usize,
    /// FFN hidden width.
    pub hidden_dim: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (GQA when fewer than `n_heads`).
    pub n_kv_heads: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Maximum context length.
    pub seq_len: usize,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// Per-pair divisors of the RoPE frequencies (llama.cpp's `rope_freqs`; Llama
    /// 3's `llama3` scaling), `head_size / 2` of them; empty for plain RoPE.
    pub rope_freq_factors: Vec<f32>,
}

/// A vocabulary: llama2.c-style BPE (pieces and scores), or byte-level BPE
/// (pieces, and the rest in [`FloatTokenizer::byte_bpe`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FloatTokenizer {
    /// Token pieces as raw bytes (e.g. `b" the"`, `b"<0x0A>"`).
    pub pieces: Vec<Vec<u8>>,
    /// Merge scores; higher merges first (zero for byte-level BPE).
    pub scores: Vec<f32>,
    /// Longest piece in bytes.
    pub max_token_length: u32,
    /// For a byte-level BPE vocabulary, everything but the pieces.
    pub byte_bpe: Option<ByteBpe>,
}

impl FloatTokenizer {
    /// Pad a byte-level BPE vocabulary with empty, never-produced tokens up to
    /// `vocab_size` (checkpoints often have more embedding rows than tokens).
    pub fn pad_byte_bpe(&mut self, vocab_size: usize) {
        if let Some(b) = &mut self.byte_bpe {
            while self.pieces.len() < vocab_size {
                self.pieces.push(Vec::new());
                self.scores.push(0.0);
                b.added.push(false);
            }
        }
    }
}

/// The parts of a byte-level BPE vocabulary besides its pieces (see
/// `oracle_core::llama::bpe`).
#[derive(Debug, Clone, PartialEq)]
pub struct ByteBpe {
    /// `oracle_core::llama::pretokenize::PreTokenizer` number.
    pub pre: u32,
    /// `oracle_core::llama::bpe` flags (ignore_merges, NFC).
    pub flags: u32,
    /// `oracle_core::llama::chat::ChatTemplate` number and default system prompt.
    pub chat: (u32, Vec<u8>),
    /// Per token: added (matched whole in text) or merged from bytes.
    pub added: Vec<bool>,
    /// `(left, right, merged)` ids, in rank order.
    pub merges: Vec<(u32, u32, u32)>,
    /// Beginning-of-text token.
    pub bos: u32,
    /// End-of-text token (the model file's `eos`).
    pub eos: u32,
    /// Tokens that end generation.
    pub stops: Vec<u32>,
}

/// One transformer block.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatLayer {
    /// Attention RMSNorm weight: `(dim)`.
    pub rms_att: Vec<f32>,
    /// Query projection: `(n_heads * head_size, dim)`.
    pub wq: Vec<f32>,
    /// Key projection: `(n_kv_heads * head_size, dim)`.
    pub wk: Vec<f32>,
    /// Value projection: `(n_kv_heads * head_size, dim)`.
    pub wv: Vec<f32>,
    /// Output projection: `(dim, n_heads * head_size)`.
    pub wo: Vec<f32>,
    /// FFN RMSNorm weight: `(dim)`.
    pub rms_ffn: Vec<f32>,
    /// Gate projection: `(hidden_dim, dim)`.
    pub w1: Vec<f32>,
    /// Down projection: `(dim, hidden_dim)`.
    pub w2: Vec<f32>,
    /// Up projection: `(hidden_dim, dim)`.
    pub w3: Vec<f32>,
    /// Qwen2's q/k/v projection biases (q and k in the same RoPE layout as the
    /// rows of `wq` and `wk`); `None` in a LLaMA.
    pub qkv_bias: Option<FloatQkvBias>,
}

/// The biases of the query, key and value projections.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatQkvBias {
    /// `(n_heads * head_size)`.
    pub q: Vec<f32>,
    /// `(n_kv_heads * head_size)`.
    pub k: Vec<f32>,
    /// `(n_kv_heads * head_size)`.
    pub v: Vec<f32>,
}

/// A whole model in float.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatModel {
    /// Hyper-parameters.
    pub config: FloatConfig,
    /// Token embedding table: `(vocab_size, dim)`.
    pub token_embedding: Vec<f32>,
    /// Transformer blocks.
    pub layers: Vec<FloatLayer>,
    /// Final RMSNorm weight: `(dim)`.
    pub rms_final: Vec<f32>,
    /// Classifier `(vocab_size, dim)`; `None` when shared with the embedding.
    pub wcls: Option<Vec<f32>>,
    /// Vocabulary, when the checkpoint carries one or one was given.
    pub tokenizer: Option<FloatTokenizer>,
}

impl FloatConfig {
    /// Width of one attention head.
    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }

    /// Width of the key/value projections.
    pub fn kv_dim(&self) -> usize {
        self.head_size() * self.n_kv_heads
    }

    /// The divisor of pair `i`'s RoPE frequency (1 without scaling).
    pub fn rope_freq_factor(&self, i: usize) -> f32 {
        self.rope_freq_factors.get(i).copied().unwrap_or(1.0)
    }
}

/// Llama 3's `llama3` RoPE scaling (transformers' `rope_scaling` with
/// `rope_type = "llama3"`): long wavelengths slowed by `factor`, short ones kept,
/// the band between interpolated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3RopeScaling {
    /// `factor`.
    pub factor: f64,
    /// `low_freq_factor`.
    pub low_freq_factor: f64,
    /// `high_freq_factor`.
    pub high_freq_factor: f64,
    /// `original_max_position_embeddings`.
    pub original_context: f64,
}

impl Llama3RopeScaling {
    /// The divisors of the `head_size / 2` pair frequencies of base `theta`
    /// (what llama.cpp stores as `rope_freqs.weight` for these models).
    pub fn freq_factors(&self, theta: f32, head_size: usize) -> Vec<f32> {
        let low_wavelen = self.original_context / self.low_freq_factor;
        let high_wavelen = self.original_context / self.high_freq_factor;
        (0..head_size / 2)
            .map(|i| {
                let freq = 1.0 / f64::from(theta).powf((2 * i) as f64 / head_size as f64);
                let wavelen = 2.0 * core::f64::consts::PI / freq;
                let factor = if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    self.factor
                } else {
                    let smooth = (self.original_context / wavelen - self.low_freq_factor)
                        / (self.high_freq_factor - self.low_freq_factor);
                    1.0 / ((1.0 - smooth) / self.factor + smooth)
                };
                factor as f32
            })
            .collect()
    }
}

impl FloatModel {
    /// Checks every array's length against the configuration, and the vocabulary's
    /// size when there is one. The importers guarantee this; a hand-built model may
    /// not, and the float reference indexes by these shapes.
    pub fn validate(&self) -> Result<(), String> {
        let c = &self.config;
        let (dim, hidden, kv, vocab) = (c.dim, c.hidden_dim, c.kv_dim(), c.vocab_size);
        let check = |name: &str, len: usize, want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(format!("{name}: {len} values, expected {want}"))
            }
        };
        if self.layers.len() != c.n_layers {
            return Err(format!(
                "{} layers, expected {}",
                self.layers.len(),
                c.n_layers
            ));
        }
        check("token_embedding", self.token_embedding.len(), vocab * dim)?;
        for (i, l) in self.layers.iter().enumerate() {
            check(&format!("layer {i} rms_att"), l.rms_att.len(), dim)?;
            check(&format!("layer {i} wq"), l.wq.len(), dim * dim)?;
            check(&format!("layer {i} wk"), l.wk.len(), kv * dim)?;
            check(&format!("layer {i} wv"), l.wv.len(), kv * dim)?;
            check(&format!("layer {i} wo"), l.wo.len(), dim * dim)?;
            check(&format!("layer {i} rms_ffn"), l.rms_ffn.len(), dim)?;
            check(&format!("layer {i} w1"), l.w1.len(), hidden * dim)?;
            check(&format!("layer {i} w2"), l.w2.len(), dim * hidden)?;
            check(&format!("layer {i} w3"), l.w3.len(), hidden * dim)?;
            if let Some(b) = &l.qkv_bias {
                check(&format!("layer {i} q bias"), b.q.len(), dim)?;
                check(&format!("layer {i} k bias"), b.k.len(), kv)?;
                check(&format!("layer {i} v bias"), b.v.len(), kv)?;
            }
        }
        check("rms_final", self.rms_final.len(), dim)?;
        if let Some(w) = &self.wcls {
            check("wcls", w.len(), vocab * dim)?;
        }
        if let Some(t) = &self.tokenizer {
            check("tokenizer pieces", t.pieces.len(), vocab)?;
            check("tokenizer scores", t.scores.len(), vocab)?;
        }
        Ok(())
    }
}
