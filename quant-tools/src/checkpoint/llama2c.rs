//! llama2.c checkpoints: the legacy format (version 0) and version 1.
//!
//! Legacy v0: 7 x `i32` header `dim, hidden_dim, n_layers, n_heads, n_kv_heads,
//! vocab_size, seq_len` (a negative `vocab_size` means a separate classifier), then
//! `f32` weights: `token_embedding (vocab, dim)`, `rms_att (layer, dim)`,
//! `wq (layer, dim, dim)`, `wk (layer, kv_dim, dim)`, `wv (layer, kv_dim, dim)`,
//! `wo (layer, dim, dim)`, `rms_ffn (layer, dim)`, `w1 (layer, hidden, dim)`,
//! `w2 (layer, dim, hidden)`, `w3 (layer, hidden, dim)`, `rms_final (dim)`,
//! `freq_cis_real (seq_len, head_size/2)`, `freq_cis_imag (seq_len, head_size/2)`
//! (both skipped), and `wcls (vocab, dim)` when unshared. v0 has no magic, so it is
//! only accepted when the file size equals exactly what the header implies.
//!
//! Version 1 (export.py `version1_export`): 256-byte header (`u32` magic
//! `0x616b3432`, `i32` version 1, the 7 `i32` above with a positive vocab size,
//! `u8` shared_classifier, zero padding), then `f32`: all `rms_att`, all `rms_ffn`,
//! `rms_final`, `token_embedding`, all `wq`, `wk`, `wv`, `wo`, `w1`, `w2`, `w3`, and
//! `wcls` when unshared.
//!
//! Version 2 (export.py `version2_export`, read by `runq.c`): the same header plus
//! an `i32` group size after the shared flag; then `f32` `rms_att` (all layers),
//! `rms_ffn`, `rms_final`; then `token_embedding`, all `wq`, `wk`, `wv`, `wo`, `w1`,
//! `w2`, `w3` (and `wcls` when unshared) each as `i8 q[numel]` followed by
//! `f32 s[numel / group_size]`, groups running over the flattened tensor. It is
//! dequantized to `q * s` as runq.c does.

use super::reader::Reader;
use super::{validate_config, CheckpointError};
use crate::float_model::{FloatConfig, FloatLayer, FloatModel};

/// "ak42" as a little-endian `u32`: the magic of llama2.c's versioned exports.
pub const V1_MAGIC: u32 = 0x616b_3432;

/// Size of the version-1 header in bytes.
pub const V1_HEADER_BYTES: usize = 256;

/// llama2.c's default RMSNorm epsilon and RoPE base (not stored in its files).
const NORM_EPS: f32 = 1e-5;
const ROPE_THETA: f32 = 10_000.0;

/// Reads the 7-int config; returns it and whether the classifier is shared.
fn read_config(r: &mut Reader<'_>) -> Result<(FloatConfig, bool), CheckpointError> {
    let mut v = [0i32; 7];
    for x in &mut v {
        *x = r.i32("llama2.c header")?;
    }
    let [dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab, seq_len] = v;
    let pos = |x: i32, name: &str| {
        usize::try_from(x)
            .ok()
            .filter(|&u| u > 0)
            .ok_or_else(|| CheckpointError::BadHeader(format!("{name} = {x}")))
    };
    let shared = vocab > 0;
    let config = FloatConfig {
        dim: pos(dim, "dim")?,
        hidden_dim: pos(hidden_dim, "hidden_dim")?,
        n_layers: pos(n_layers, "n_layers")?,
        n_heads: pos(n_heads, "n_heads")?,
        n_kv_heads: pos(n_kv_heads, "n_kv_heads")?,
        vocab_size: pos(vocab.checked_abs().unwrap_or(0), "vocab_size")?,
        seq_len: pos(seq_len, "seq_len")?,
        norm_eps: NORM_EPS,
        rope_theta: ROPE_THETA,
        rope_freq_factors: Vec::new(),
    };
    validate_config(&config)?;
    Ok((config, shared))
}

/// Number of `f32` weights after the header (`rope_tables` for v0's freq_cis).
fn weight_count(c: &FloatConfig, shared: bool, rope_tables: bool) -> Option<u64> {
    let (dim, hidden, layers, vocab) = (
        c.dim as u64,
        c.hidden_dim as u64,
        c.n_layers as u64,
        c.vocab_size as u64,
    );
    let kv_dim = c.kv_dim() as u64;
    let per_layer = dim * 2 + dim * dim * 2 + kv_dim * dim * 2 + hidden * dim * 3;
    let mut n = vocab * dim + layers.checked_mul(per_layer)? + dim;
    if rope_tables {
        n += (c.seq_len as u64).checked_mul(c.head_size() as u64)?;
    }
    if !shared {
        n += vocab * dim;
    }
    Some(n)
}

/// Parses and checks a legacy v0 header against the file size.
pub fn v0_header(bytes: &[u8]) -> Result<(FloatConfig, bool), CheckpointError> {
    let mut r = Reader::new(bytes);
    let (config, shared) = read_config(&mut r)?;
    let expected = weight_count(&config, shared, true)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(28))
        .ok_or_else(|| CheckpointError::BadHeader("size overflows".into()))?;
    check_size(expected, bytes, "v0")?;
    Ok((config, shared))
}

/// Reads `n` weights called `what` (as `f32`, or dequantized from Q8_0).
trait ReadWeights:
    FnMut(&mut Reader<'_>, usize, &'static str) -> Result<Vec<f32>, CheckpointError>
{
}

impl<F> ReadWeights for F where
    F: FnMut(&mut Reader<'_>, usize, &'static str) -> Result<Vec<f32>, CheckpointError>
{
}

/// Reads plain `f32` weights.
fn read_f32(r: &mut Reader<'_>, n: usize, what: &'static str) -> Result<Vec<f32>, CheckpointError> {
    r.f32s(n, what)
}

/// The tensor `what` of `n` weights for every layer in turn, into `slot`.
fn read_per_layer(
    r: &mut Reader<'_>,
    layers: &mut [FloatLayer],
    n: usize,
    what: &'static str,
    slot: fn(&mut FloatLayer) -> &mut Vec<f32>,
    read: &mut impl ReadWeights,
) -> Result<(), CheckpointError> {
    for l in layers.iter_mut() {
        *slot(l) = read(r, n, what)?;
    }
    Ok(())
}

/// `wq, wk, wv, wo` of every layer, each matrix kind for all layers in turn (the
/// order of llama2.c's exports).
fn read_attention(
    r: &mut Reader<'_>,
    layers: &mut [FloatLayer],
    c: &FloatConfig,
    read: &mut impl ReadWeights,
) -> Result<(), CheckpointError> {
    let (dim, kv_dim) = (c.dim, c.kv_dim());
    read_per_layer(r, layers, dim * dim, "wq", |l| &mut l.wq, read)?;
    read_per_layer(r, layers, kv_dim * dim, "wk", |l| &mut l.wk, read)?;
    read_per_layer(r, layers, kv_dim * dim, "wv", |l| &mut l.wv, read)?;
    read_per_layer(r, layers, dim * dim, "wo", |l| &mut l.wo, read)
}

/// `w1, w2, w3` of every layer, in the same order.
fn read_ffn(
    r: &mut Reader<'_>,
    layers: &mut [FloatLayer],
    c: &FloatConfig,
    read: &mut impl ReadWeights,
) -> Result<(), CheckpointError> {
    let (dim, hidden) = (c.dim, c.hidden_dim);
    read_per_layer(r, layers, hidden * dim, "w1", |l| &mut l.w1, read)?;
    read_per_layer(r, layers, dim * hidden, "w2", |l| &mut l.w2, read)?;
    read_per_layer(r, layers, hidden * dim, "w3", |l| &mut l.w3, read)
}

/// The norms of the versioned layouts: all `rms_att`, all `rms_ffn`, then
/// `rms_final` (returned).
fn read_versioned_norms(
    r: &mut Reader<'_>,
    layers: &mut [FloatLayer],
    dim: usize,
) -> Result<Vec<f32>, CheckpointError> {
    read_per_layer(r, layers, dim, "rms_att", |l| &mut l.rms_att, &mut read_f32)?;
    read_per_layer(r, layers, dim, "rms_ffn", |l| &mut l.rms_ffn, &mut read_f32)?;
    r.f32s(dim, "rms_final")
}

/// The model, reading the separate classifier `wcls` last when not `shared`.
fn finish(
    r: &mut Reader<'_>,
    (config, shared): (FloatConfig, bool),
    token_embedding: Vec<f32>,
    layers: Vec<FloatLayer>,
    rms_final: Vec<f32>,
    read: &mut impl ReadWeights,
) -> Result<FloatModel, CheckpointError> {
    let wcls = if shared {
        None
    } else {
        Some(read(r, config.vocab_size * config.dim, "wcls")?)
    };
    Ok(FloatModel {
        config,
        token_embedding,
        layers,
        rms_final,
        wcls,
        tokenizer: None,
    })
}

/// `BadHeader` unless the file has the `expected` size its `version` header implies.
fn check_size(expected: u64, bytes: &[u8], version: &str) -> Result<(), CheckpointError> {
    if expected != bytes.len() as u64 {
        return Err(CheckpointError::BadHeader(format!(
            "llama2.c {version} header implies {expected} bytes, file has {}",
            bytes.len()
        )));
    }
    Ok(())
}

fn empty_layer() -> FloatLayer {
    FloatLayer {
        rms_att: Vec::new(),
        wq: Vec::new(),
        wk: Vec::new(),
        wv: Vec::new(),
        wo: Vec::new(),
        rms_ffn: Vec::new(),
        w1: Vec::new(),
        w2: Vec::new(),
        w3: Vec::new(),
        qkv_bias: None,
    }
}

/// Parses a legacy (version 0) llama2.c checkpoint.
pub fn parse_v0(bytes: &[u8]) -> Result<FloatModel, CheckpointError> {
    let (c, shared) = v0_header(bytes)?;
    let mut r = Reader::new(bytes);
    r.skip(28, "llama2.c header")?;
    let (dim, vocab) = (c.dim, c.vocab_size);
    let token_embedding = r.f32s(vocab * dim, "token_embedding")?;
    let mut layers: Vec<FloatLayer> = (0..c.n_layers).map(|_| empty_layer()).collect();
    let read = &mut read_f32;
    read_per_layer(
        &mut r,
        &mut layers,
        dim,
        "rms_att",
        |l| &mut l.rms_att,
        read,
    )?;
    read_attention(&mut r, &mut layers, &c, read)?;
    read_per_layer(
        &mut r,
        &mut layers,
        dim,
        "rms_ffn",
        |l| &mut l.rms_ffn,
        read,
    )?;
    read_ffn(&mut r, &mut layers, &c, read)?;
    let rms_final = r.f32s(dim, "rms_final")?;
    r.skip(c.seq_len * c.head_size() / 2 * 4 * 2, "freq_cis")?;
    finish(
        &mut r,
        (c, shared),
        token_embedding,
        layers,
        rms_final,
        read,
    )
}

/// Parses a versioned ("ak42") llama2.c checkpoint: version 1 (f32) or 2 (Q8_0).
pub fn parse_versioned(bytes: &[u8]) -> Result<FloatModel, CheckpointError> {
    let mut r = Reader::new(bytes);
    let _magic = r.u32("magic")?;
    match r.i32("version")? {
        2 => parse_v2(bytes),
        _ => parse_v1(bytes),
    }
}

/// The magic, version, config and shared-classifier flag that open a version-1 or
/// version-2 checkpoint (the vocabulary size must be positive there).
fn read_versioned_header(
    r: &mut Reader<'_>,
    want: i32,
) -> Result<(FloatConfig, bool), CheckpointError> {
    let magic = r.u32("magic")?;
    if magic != V1_MAGIC {
        return Err(CheckpointError::BadHeader(format!("magic {magic:#x}")));
    }
    let version = r.i32("version")?;
    if version != want {
        return Err(CheckpointError::UnsupportedVersion {
            format: "llama2.c",
            version: version as u32,
        });
    }
    let (c, vocab_positive) = read_config(r)?;
    let shared = match r.u8("shared_classifier")? {
        0 => false,
        1 => true,
        x => {
            return Err(CheckpointError::BadHeader(format!(
                "shared_classifier = {x}"
            )))
        }
    };
    if !vocab_positive {
        return Err(CheckpointError::BadHeader(format!(
            "negative vocab_size in v{want} header"
        )));
    }
    Ok((c, shared))
}

/// Parses a version-1 llama2.c checkpoint.
pub fn parse_v1(bytes: &[u8]) -> Result<FloatModel, CheckpointError> {
    let mut r = Reader::new(bytes);
    let (c, shared) = read_versioned_header(&mut r, 1)?;
    let expected = weight_count(&c, shared, false)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(V1_HEADER_BYTES as u64))
        .ok_or_else(|| CheckpointError::BadHeader("size overflows".into()))?;
    check_size(expected, bytes, "v1")?;
    r.skip(V1_HEADER_BYTES - r.pos(), "header padding")?;
    let (dim, vocab) = (c.dim, c.vocab_size);
    let mut layers: Vec<FloatLayer> = (0..c.n_layers).map(|_| empty_layer()).collect();
    let rms_final = read_versioned_norms(&mut r, &mut layers, dim)?;
    let token_embedding = r.f32s(vocab * dim, "token_embedding")?;
    let read = &mut read_f32;
    read_attention(&mut r, &mut layers, &c, read)?;
    read_ffn(&mut r, &mut layers, &c, read)?;
    finish(
        &mut r,
        (c, shared),
        token_embedding,
        layers,
        rms_final,
        read,
    )
}

/// Reads `n` Q8_0 values (`i8 q[n]`, then `f32 s[n / group]`) as `q * s`.
fn read_q8(
    r: &mut Reader<'_>,
    n: usize,
    group: usize,
    what: &'static str,
) -> Result<Vec<f32>, CheckpointError> {
    if !n.is_multiple_of(group) {
        return Err(CheckpointError::BadHeader(format!(
            "{what}: {n} values not a multiple of group size {group}"
        )));
    }
    let q = r.bytes(n, what)?;
    let s = r.f32s(n / group, what)?;
    Ok(q.iter()
        .enumerate()
        .map(|(i, &q)| f32::from(q as i8) * s[i / group])
        .collect())
}

/// Parses a version-2 (Q8_0) llama2.c checkpoint, dequantizing to `f32`.
pub fn parse_v2(bytes: &[u8]) -> Result<FloatModel, CheckpointError> {
    let mut r = Reader::new(bytes);
    let (c, shared) = read_versioned_header(&mut r, 2)?;
    let group = r.i32("group_size")?;
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| CheckpointError::BadHeader(format!("group_size = {group}")))?;
    // Exact size: norms in f32, every matrix as n bytes + n/group f32 scales.
    let (dim, hidden, kv_dim, vocab, nl) =
        (c.dim, c.hidden_dim, c.kv_dim(), c.vocab_size, c.n_layers);
    let mut mats = vec![vocab * dim];
    for n in [
        dim * dim,
        kv_dim * dim,
        kv_dim * dim,
        dim * dim,
        hidden * dim,
        dim * hidden,
        hidden * dim,
    ] {
        mats.extend(std::iter::repeat_n(n, nl));
    }
    if !shared {
        mats.push(vocab * dim);
    }
    let norms = (2 * nl as u64 + 1) * dim as u64 * 4;
    let expected = mats
        .iter()
        .try_fold(V1_HEADER_BYTES as u64 + norms, |acc, &n| {
            acc.checked_add(n as u64 + n as u64 / group as u64 * 4)
        })
        .ok_or_else(|| CheckpointError::BadHeader("size overflows".into()))?;
    check_size(expected, bytes, "v2")?;
    r.skip(V1_HEADER_BYTES - r.pos(), "header padding")?;
    let mut layers: Vec<FloatLayer> = (0..nl).map(|_| empty_layer()).collect();
    let rms_final = read_versioned_norms(&mut r, &mut layers, dim)?;
    let read = &mut |r: &mut Reader<'_>, n: usize, what: &'static str| read_q8(r, n, group, what);
    let token_embedding = read(&mut r, vocab * dim, "token_embedding")?;
    read_attention(&mut r, &mut layers, &c, read)?;
    read_ffn(&mut r, &mut layers, &c, read)?;
    finish(
        &mut r,
        (c, shared),
        token_embedding,
        layers,
        rms_final,
        read,
    )
}

/// Serialises a model in llama2.c's version-1 layout (the tests use it to check
/// the version-1 importer, since the fixtures are all version 0).
pub fn write_v1(m: &FloatModel) -> Vec<u8> {
    let c = &m.config;
    let mut out = Vec::new();
    out.extend_from_slice(&V1_MAGIC.to_le_bytes());
    out.extend_from_slice(&1i32.to_le_bytes());
    for v in [
        c.dim,
        c.hidden_dim,
        c.n_layers,
        c.n_heads,
        c.n_kv_heads,
        c.vocab_size,
        c.seq_len,
    ] {
        out.extend_from_slice(&(v as i32).to_le_bytes());
    }
    out.push(u8::from(m.wcls.is_none()));
    out.resize(V1_HEADER_BYTES, 0);
    let mut put = |w: &[f32]| {
        for x in w {
            out.extend_from_slice(&x.to_le_bytes());
        }
    };
    m.layers.iter().for_each(|l| put(&l.rms_att));
    m.layers.iter().for_each(|l| put(&l.rms_ffn));
    put(&m.rms_final);
    put(&m.token_embedding);
    m.layers.iter().for_each(|l| put(&l.wq));
    m.layers.iter().for_each(|l| put(&l.wk));
    m.layers.iter().for_each(|l| put(&l.wv));
    m.layers.iter().for_each(|l| put(&l.wo));
    m.layers.iter().for_each(|l| put(&l.w1));
    m.layers.iter().for_each(|l| put(&l.w2));
    m.layers.iter().for_each(|l| put(&l.w3));
    if let Some(w) = &m.wcls {
        put(w);
    }
    out
}
