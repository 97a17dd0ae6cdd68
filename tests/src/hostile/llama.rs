//! Crafted text model files (`model/`, `budget/`): a valid tiny LLaMA built with
//! the core's writer, then patched.

use oracle_core::format::{Arch, ModelWriter, TOKENIZER};
use oracle_core::llama::{vocab_bytes, LlamaConfig, TokenEntry};

use super::model_file::{
    entry_field, tensor_count, u64_at, zero_matrix, CONFIG, DATA_OFF, FILE_LEN, N_TENSORS,
    TABLE_OFF, WORDS,
};
use super::{put_u32, put_u64, Hostile};

/// A tiny valid config: dim 8, 2 heads, 1 layer, 8 tokens, context 8.
pub fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        dim: 8,
        hidden_dim: 16,
        n_layers: 1,
        n_heads: 2,
        n_kv_heads: 2,
        vocab_size: 8,
        seq_len: 8,
        shared_classifier: true,
        norm_eps_q32: 42_950,
        bos: 1,
        eos: 2,
    }
}

/// A valid model file of config `c` (zero weights, a vocabulary of `c.vocab_size`
/// one-byte pieces; the tokenizer is the last tensor, as the converter writes it).
pub fn tiny_model(c: LlamaConfig) -> Vec<u8> {
    let mut w = ModelWriter::new(Arch::Llama, c.to_words());
    let pieces: Vec<Vec<u8>> = (0..c.vocab_size)
        .map(|i| vec![b'a' + (i % 26) as u8])
        .collect();
    let tokens: Vec<TokenEntry<'_>> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| TokenEntry {
            piece: p,
            score: i as i32,
        })
        .collect();
    let (dim, hidden) = (c.dim, c.hidden_dim);
    let kv_dim = dim / c.n_heads * c.n_kv_heads;
    zero_matrix(&mut w, "tok_embeddings", c.vocab_size, dim);
    for l in 0..c.n_layers {
        let n = |s: &str| format!("layers.{l}.{s}");
        w.add_i32(
            &n("attention_norm"),
            1,
            dim,
            16,
            &vec![1 << 16; dim as usize],
        );
        zero_matrix(&mut w, &n("attention.wq"), dim, dim);
        zero_matrix(&mut w, &n("attention.wk"), kv_dim, dim);
        zero_matrix(&mut w, &n("attention.wv"), kv_dim, dim);
        zero_matrix(&mut w, &n("attention.wo"), dim, dim);
        w.add_i32(&n("ffn_norm"), 1, dim, 16, &vec![1 << 16; dim as usize]);
        zero_matrix(&mut w, &n("feed_forward.w1"), hidden, dim);
        zero_matrix(&mut w, &n("feed_forward.w2"), dim, hidden);
        zero_matrix(&mut w, &n("feed_forward.w3"), hidden, dim);
    }
    w.add_i32("norm", 1, dim, 16, &vec![1 << 16; dim as usize]);
    let hs = dim / c.n_heads;
    let rope: Vec<i32> = (0..c.seq_len * hs)
        .map(|i| if i % 2 == 0 { 1 << 30 } else { 0 })
        .collect();
    w.add_i32("rope", c.seq_len, hs, 30, &rope);
    w.add_u8(TOKENIZER, &vocab_bytes(&tokens));
    w.finish()
}

/// A config written over the tiny model's (the tensors then disagree, but the
/// config is checked first).
fn with_config(c: LlamaConfig) -> Vec<u8> {
    let mut b = tiny_model(tiny_config());
    for (i, w) in c.to_words().iter().enumerate() {
        put_u32(&mut b, CONFIG + 4 * i, *w);
    }
    b
}

/// Where the tokenizer tensor's data starts (the last tensor).
fn tokenizer_at(b: &[u8]) -> usize {
    let n = tensor_count(b) as usize;
    u64_at(b, entry_field(b, n - 1, 24)) as usize
}

/// The text model files.
pub fn files() -> Vec<Hostile> {
    let mut out = Vec::new();
    let base = tiny_model(tiny_config());
    let patched = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        b
    };
    out.push(Hostile::new(
        "model/huge-config-words.bin",
        "2^32 - 1 config words: `64 + 4 · words` wrapped on 32-bit (the version 1 text format's config offset 2^64 - 8 panicked in inspect, run and the node's model scan)",
        patched(&|b| put_u32(b, WORDS, u32::MAX)),
    ));
    out.push(Hostile::new(
        "model/short-config.bin",
        "10 config words for LLaMA's 11: the last field would be read from the tensor table",
        patched(&|b| put_u32(b, WORDS, 10)),
    ));
    out.push(Hostile::new(
        "model/wrapped-section-offsets.bin",
        "table and data offsets near 2^64: section bounds wrapped",
        patched(&|b| {
            put_u64(b, TABLE_OFF, u64::MAX - 50);
            put_u64(b, DATA_OFF, u64::MAX);
        }),
    ));
    out.push(Hostile::new(
        "model/wrapped-table-length.bin",
        "4 billion tensors: the table's end wrapped past the data offset",
        patched(&|b| put_u32(b, N_TENSORS, u32::MAX)),
    ));
    out.push(Hostile::new(
        "model/wrapped-tensor-offset.bin",
        "a tensor at offset 2^64 - 64: `offset + len` wrapped to a small number",
        patched(&|b| {
            let at = entry_field(b, 0, 24);
            put_u64(b, at, u64::MAX - 63);
        }),
    ));
    out.push(Hostile::new(
        "model/tensor-length-overflow.bin",
        "an i32 tensor of 2^32 x 2^32 elements whose byte length wraps to 64",
        patched(&|b| {
            // The norm vector after the first four matrices: entry 1.
            let (rows, cols, len) = (
                entry_field(b, 1, 12),
                entry_field(b, 1, 16),
                entry_field(b, 1, 32),
            );
            put_u32(b, rows, u32::MAX);
            put_u32(b, cols, u32::MAX);
            let wrapped = (u64::from(u32::MAX) * u64::from(u32::MAX)).wrapping_mul(4);
            put_u64(b, len, wrapped);
        }),
    ));
    out.push(Hostile::new(
        "model/overlapping-tensors.bin",
        "every tensor at the first tensor's offset: aliased weights multiply the work per token",
        patched(&|b| {
            let n = tensor_count(b);
            let first = u64_at(b, entry_field(b, 0, 24));
            for i in 1..n as usize {
                let at = entry_field(b, i, 24);
                put_u64(b, at, first);
            }
        }),
    ));
    out.push(Hostile::new(
        "model/truncated-tensor.bin",
        "the last tensor's data (the tokenizer's) cut off, the header's length adjusted to match",
        {
            let mut b = base.clone();
            b.truncate(b.len() - 64);
            let len = b.len() as u64;
            put_u64(&mut b, FILE_LEN, len);
            b
        },
    ));
    out.push(Hostile::new(
        "model/length-mismatch.bin",
        "the header's file length differs from the file",
        patched(&|b| put_u64(b, FILE_LEN, 1 << 40)),
    ));
    out.push(Hostile::new(
        "model/short.bin",
        "shorter than the header",
        base[..40].to_vec(),
    ));
    let mut kv = tiny_config();
    kv.n_layers = 1024;
    kv.seq_len = 1 << 20;
    kv.dim = 2;
    kv.hidden_dim = 2;
    kv.n_heads = 1;
    kv.n_kv_heads = 1;
    out.push(Hostile::new(
        "model/huge-kv-cache.bin",
        "1024 layers x 2^20 positions: a 16 GiB KV cache (and a 64 GiB KV tree) from a tiny header, asked for on the first request",
        with_config(kv),
    ));
    out.push(Hostile::new(
        "model/kv-cache-bomb.bin",
        "a valid 9.5 MB model (1024 layers of width 2, context 2^20) that loaded: its first request asked for a 16 GiB KV cache, and a two-phase position run built a 64 GiB KV tree natively (fpvm OOM at 24 GB)",
        tiny_model(kv),
    ));
    let mut dims = tiny_config();
    dims.dim = 1 << 16;
    dims.hidden_dim = 1 << 16;
    dims.n_heads = 1;
    dims.n_kv_heads = 1;
    dims.seq_len = 1 << 20;
    out.push(Hostile::new(
        "model/huge-dims.bin",
        "dim 65536 x seq_len 2^20: `seq_len * head_size` overflowed u32 when binding RoPE",
        with_config(dims),
    ));
    let mut vocab = tiny_config();
    vocab.vocab_size = 1 << 20;
    out.push(Hostile::new(
        "model/huge-vocab.bin",
        "a vocabulary of 2^20 tokens over an 8-token model and section (the tokenizer reserved 24 MiB for them before reading one)",
        with_config(vocab),
    ));
    out.push(Hostile::new(
        "model/bad-tokenizer-count.bin",
        "the tokenizer's count differs from vocab_size",
        patched(&|b| {
            let at = tokenizer_at(b);
            put_u32(b, at, 7);
        }),
    ));
    out.push(Hostile::new(
        "model/bad-tokenizer-piece.bin",
        "a piece length of 2^32 - 1: `at + 8 + len` wrapped on 32-bit",
        patched(&|b| {
            let at = tokenizer_at(b);
            put_u32(b, at + 4, u32::MAX);
            put_u32(b, at + 12, u32::MAX);
        }),
    ));
    let mut budget = tiny_config();
    budget.n_layers = 128;
    budget.seq_len = 1 << 16;
    out.push(Hostile::new(
        "budget/kv-over-guest-budget.bin",
        "a loadable model whose KV cache and KV tree (about 1 GiB) exceed the guest's 1 GiB budget: the guest, the VM host and the node refuse it before running",
        tiny_model(budget),
    ));
    out
}
