//! Helpers for the criterion benches: synthetic quantized models with random
//! weights from a fixed seed, and a memory-bandwidth probe.

use std::time::Instant;

use oracle_core::format::{Arch, ModelWriter, TOKENIZER};
use oracle_core::llama::{vocab_bytes, TokenEntry};
use oracle_core::llama::{LlamaConfig, LlamaState, Model};
use oracle_core::quant::QType;
use oracle_core::Exec;

/// xorshift64 stream for synthetic weights.
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// Random quantized matrix data: `(mantissas, values)` for `(rows, cols)` in groups.
pub fn random_quant(
    rng: &mut Xorshift,
    qtype: QType,
    rows: usize,
    cols: usize,
    group: usize,
) -> (Vec<i32>, Vec<u8>) {
    let groups = rows * cols.div_ceil(group);
    // Mantissas around 2^20 with exponent 30: weights of about 1e-3 * q.
    let mantissas = (0..groups)
        .map(|_| (1 << 20) + (rng.next_u64() % (1 << 19)) as i32)
        .collect();
    (mantissas, rng.bytes(rows * qtype.row_bytes(cols as u32)))
}

/// The stories15M shape (dim 288, hidden 768, 6 layers, 6 heads, vocab 32000) with
/// `seq_len` positions.
pub fn stories15m_config(seq_len: u32) -> LlamaConfig {
    LlamaConfig {
        dim: 288,
        hidden_dim: 768,
        n_layers: 6,
        n_heads: 6,
        n_kv_heads: 6,
        ..stories110m_config(seq_len)
    }
}

/// Multiply-accumulates of the matrix-vector products of one position (the
/// attention's own products over past positions not counted).
pub fn matrix_macs_per_position(c: &LlamaConfig) -> u64 {
    let (dim, hidden) = (u64::from(c.dim), u64::from(c.hidden_dim));
    let kv_dim = dim * u64::from(c.n_kv_heads) / u64::from(c.n_heads);
    let layer = 2 * dim * dim + 2 * dim * kv_dim + 3 * dim * hidden;
    u64::from(c.n_layers) * layer + dim * u64::from(c.vocab_size)
}

/// The stories110M shape (dim 768, hidden 2048, 12 layers, 12 heads, vocab 32000)
/// with `seq_len` positions.
pub fn stories110m_config(seq_len: u32) -> LlamaConfig {
    LlamaConfig {
        dim: 768,
        hidden_dim: 2048,
        n_layers: 12,
        n_heads: 12,
        n_kv_heads: 12,
        vocab_size: 32000,
        seq_len,
        shared_classifier: true,
        norm_eps_q32: 42950,
        bos: 1,
        eos: 2,
    }
}

/// The 1.1B shape of TinyLlama (dim 2048, hidden 5632, 22 layers, 32 heads, 4 KV
/// heads, vocab 32000) with `seq_len` positions.
pub fn llama_1b_config(seq_len: u32) -> LlamaConfig {
    LlamaConfig {
        dim: 2048,
        hidden_dim: 5632,
        n_layers: 22,
        n_heads: 32,
        n_kv_heads: 4,
        shared_classifier: false,
        ..stories110m_config(seq_len)
    }
}

/// A model file of `config`'s shape with random weights from `seed`.
pub fn synthetic_model(config: LlamaConfig, qtype: QType, group: usize, seed: u64) -> Vec<u8> {
    let mut rng = Xorshift(seed | 1);
    let mut w = ModelWriter::new(Arch::Llama, config.to_words());
    let pieces: Vec<Vec<u8>> = (0..config.vocab_size)
        .map(|i| format!("t{i}").into_bytes())
        .collect();
    let tokens: Vec<TokenEntry<'_>> = pieces
        .iter()
        .map(|p| TokenEntry { piece: p, score: 0 })
        .collect();
    let (dim, hidden, kv) = (
        config.dim as usize,
        config.hidden_dim as usize,
        config.kv_dim() as usize,
    );
    let mut add = |w: &mut ModelWriter, name: &str, rows: usize, cols: usize| {
        let (m, v) = random_quant(&mut rng, qtype, rows, cols, group);
        w.add_quant(
            name,
            qtype,
            rows as u32,
            cols as u32,
            group as u32,
            30,
            &m,
            &v,
        );
    };
    add(&mut w, "tok_embeddings", config.vocab_size as usize, dim);
    let ones = vec![1 << 16; dim];
    for l in 0..config.n_layers {
        let n = |s: &str| format!("layers.{l}.{s}");
        w.add_i32(&n("attention_norm"), 1, dim as u32, 16, &ones);
        add(&mut w, &n("attention.wq"), dim, dim);
        add(&mut w, &n("attention.wk"), kv, dim);
        add(&mut w, &n("attention.wv"), kv, dim);
        add(&mut w, &n("attention.wo"), dim, dim);
        w.add_i32(&n("ffn_norm"), 1, dim as u32, 16, &ones);
        add(&mut w, &n("feed_forward.w1"), hidden, dim);
        add(&mut w, &n("feed_forward.w2"), dim, hidden);
        add(&mut w, &n("feed_forward.w3"), hidden, dim);
    }
    w.add_i32("norm", 1, dim as u32, 16, &ones);
    if !config.shared_classifier {
        add(&mut w, "output", config.vocab_size as usize, dim);
    }
    let hs = config.head_size() as usize;
    let rope: Vec<i32> = (0..config.seq_len as usize * hs / 2)
        .flat_map(|_| [1 << 30, 0])
        .collect();
    w.add_i32("rope", config.seq_len, hs as u32, 30, &rope);
    w.add_u8(TOKENIZER, &vocab_bytes(&tokens));
    w.finish()
}

/// Decode speed in tokens per second: the fastest of `tokens` single forward passes
/// (positions `0..tokens`) of `model` with `exec`.
pub fn decode_tokens_per_second(model: &Model<'_>, exec: Exec, tokens: u32) -> f64 {
    let mut state = LlamaState::new(&model.weights.config);
    let mut best = f64::MAX;
    for pos in 0..tokens {
        let t = Instant::now();
        let logits = state
            .forward(&model.weights, exec, 1 + pos, pos)
            .expect("forward");
        std::hint::black_box(logits);
        best = best.min(t.elapsed().as_secs_f64());
    }
    1.0 / best
}

/// Single-thread read bandwidth in bytes per second: the best of `passes` sums over a
/// buffer of `bytes` (larger than any cache), with eight independent sums and, on
/// x86_64, a software prefetch 4 KiB ahead (as the kernels do; without it one thread
/// reads about 15% slower here, and the kernels would seem to beat the limit).
pub fn read_bandwidth(bytes: usize, passes: usize) -> f64 {
    let buf: Vec<u64> = (0..bytes / 8).map(|i| i as u64).collect();
    let mut best = f64::MAX;
    let mut sink = 0u64;
    for _ in 0..passes {
        let t = Instant::now();
        sink = sink.wrapping_add(sum_streaming(std::hint::black_box(&buf)));
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    bytes as f64 / best
}

fn sum_streaming(buf: &[u64]) -> u64 {
    const AHEAD: usize = 4096 / 8;
    let mut acc = [0u64; 8];
    for (i, chunk) in buf.chunks_exact(8).enumerate() {
        #[cfg(target_arch = "x86_64")]
        // Safety: a prefetch has no effect on memory and never faults, even past the
        // end of the buffer.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(buf.as_ptr().wrapping_add(i * 8 + AHEAD).cast());
        }
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = a.wrapping_add(v);
        }
    }
    acc.iter().fold(0, |a, &b| a.wrapping_add(b))
}
