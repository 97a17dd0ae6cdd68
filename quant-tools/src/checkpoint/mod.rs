//! Checkpoint importers: llama2.c, GGUF and Hugging Face safetensors into a
//! [`FloatModel`].
//!
//! [`load`] detects the format from the file's bytes, never from its extension:
//!
//! | first bytes | format |
//! |---|---|
//! | `GGUF` | GGUF v2/v3 ([`gguf`]) |
//! | `u64` header length, then `{` | safetensors + `config.json` beside it ([`hf`]) |
//! | `u32` `0x616b3432` ("ak42"), version 1 or 2 | llama2.c version 1 (f32) or 2 (Q8_0) ([`llama2c`]) |
//! | 7 x `i32` whose implied size equals the file size exactly | llama2.c legacy v0 ([`llama2c`]) |
//!
//! Every parser is bounds-checked: a truncated or corrupted file gives a
//! [`CheckpointError`], never a panic.

pub mod byte_bpe;
pub mod ggml_blocks;
pub mod gguf;
pub mod hf;
pub mod llama2c;
pub(crate) mod reader;
pub mod tokenizer;

use std::path::{Path, PathBuf};

use crate::float_model::{FloatConfig, FloatModel};

/// Why a checkpoint or tokenizer could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes match none of the supported formats.
    #[error("unrecognised checkpoint format ({0})")]
    UnknownFormat(String),
    /// The file ends before a value that its header promises.
    #[error("file truncated while reading {what} at byte {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset of the read.
        offset: u64,
    },
    /// A header field or a piece of metadata is invalid.
    #[error("bad header: {0}")]
    BadHeader(String),
    /// The format is recognised but this version is not supported.
    #[error("unsupported {format} version {version}")]
    UnsupportedVersion {
        /// Format name.
        format: &'static str,
        /// Version found in the file.
        version: u32,
    },
    /// A tensor has the wrong shape for the configuration.
    #[error("tensor {name}: shape {got:?}, expected {expected:?}")]
    BadShape {
        /// Tensor name.
        name: String,
        /// Shape found (outermost first).
        got: Vec<u64>,
        /// Shape the configuration implies (outermost first).
        expected: Vec<u64>,
    },
    /// A required tensor is absent.
    #[error("missing tensor {0}")]
    MissingTensor(String),
    /// A required metadata key is absent.
    #[error("missing metadata key {0}")]
    MissingKey(String),
    /// A tensor is stored in a type this importer does not decode.
    #[error("tensor {name}: unsupported type {kind}")]
    UnsupportedType {
        /// Tensor name.
        name: String,
        /// The type, as the format names it.
        kind: String,
    },
    /// `config.json` is missing or not valid JSON of the expected shape.
    #[error("config.json: {0}")]
    Config(String),
    /// The safetensors container is invalid.
    #[error("safetensors: {0}")]
    Safetensors(String),
    /// The tokenizer file is invalid or does not fit the model.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// A checkpoint format that [`detect`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// llama2.c legacy checkpoint (7 x i32 header, f32 weights, RoPE tables).
    Llama2cV0,
    /// llama2.c version 1 or 2 ("ak42" magic, 256-byte header; f32 or Q8_0 weights).
    Llama2cV1,
    /// GGUF (v2 or v3).
    Gguf,
    /// Hugging Face safetensors.
    Safetensors,
}

/// Reads a whole file.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Recognises the format of a checkpoint from its bytes.
pub fn detect(bytes: &[u8]) -> Result<Format, CheckpointError> {
    if bytes.starts_with(b"GGUF") {
        return Ok(Format::Gguf);
    }
    if bytes.len() >= 4
        && u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == llama2c::V1_MAGIC
    {
        return Ok(Format::Llama2cV1);
    }
    if hf::looks_like_safetensors(bytes) {
        return Ok(Format::Safetensors);
    }
    match llama2c::v0_header(bytes) {
        Ok(_) => Ok(Format::Llama2cV0),
        Err(e) => Err(CheckpointError::UnknownFormat(format!(
            "not GGUF, safetensors or llama2.c v1; as llama2.c v0: {e}"
        ))),
    }
}

/// Loads a checkpoint, detecting its format from its bytes.
///
/// `path` is a llama2.c `.bin`, a GGUF file, or a safetensors file (or the folder
/// holding `model.safetensors`, or a sharded checkpoint's
/// `model.safetensors.index.json` or its folder) with `config.json` beside it. `tokenizer`, when
/// given, is a llama2.c `tokenizer.bin` or a GGUF file with a vocabulary, and takes
/// precedence over a vocabulary embedded in the checkpoint; a Hugging Face
/// `tokenizer.json` (or its folder) is a byte-level BPE vocabulary
/// ([`byte_bpe`]). Without it, a GGUF checkpoint brings its own vocabulary, a
/// Hugging Face folder its `tokenizer.json` when it has one, and the others get
/// `tokenizer: None`.
pub fn load(path: &Path, tokenizer: Option<&Path>) -> Result<FloatModel, CheckpointError> {
    let mut model = load_weights(path)?;
    if let Some(tok) = tokenizer {
        let hf = tok.is_dir() || tok.extension().is_some_and(|e| e == "json");
        model.tokenizer = Some(if hf {
            byte_bpe::load_hf(tok)?
        } else {
            tokenizer::load(tok)?
        });
    } else if model.tokenizer.is_none() {
        let dir = if path.is_dir() {
            path
        } else {
            path.parent().unwrap_or(Path::new("."))
        };
        if dir.join("tokenizer.json").exists() {
            model.tokenizer = Some(byte_bpe::load_hf(dir)?);
        }
    }
    if let Some(tok) = &mut model.tokenizer {
        tok.pad_byte_bpe(model.config.vocab_size);
    }
    if let Some(tok) = &model.tokenizer {
        if tok.pieces.len() != model.config.vocab_size {
            return Err(CheckpointError::Tokenizer(format!(
                "{} tokens for a model with vocab_size {}",
                tok.pieces.len(),
                model.config.vocab_size
            )));
        }
    }
    model.validate().map_err(CheckpointError::BadHeader)?;
    Ok(model)
}

/// Reads the weights of a checkpoint file or folder (see [`load`]).
fn load_weights(path: &Path) -> Result<FloatModel, CheckpointError> {
    let (dir, file) = if path.is_dir() {
        let single = path.join("model.safetensors");
        let index = path.join("model.safetensors.index.json");
        if !single.exists() && index.exists() {
            (path.to_path_buf(), index)
        } else {
            (path.to_path_buf(), single)
        }
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        (dir, path.to_path_buf())
    };
    let bytes = read_file(&file)?;
    if bytes.first() == Some(&b'{') {
        // A sharded Hugging Face checkpoint's index.
        let config = read_file(&dir.join("config.json"))?;
        let mut shards = Vec::new();
        for name in hf::shard_names(&bytes)? {
            shards.push(read_file(&dir.join(name))?);
        }
        let views: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
        return hf::parse_shards(&views, &config);
    }
    let config = if detect(&bytes)? == Format::Safetensors {
        Some(read_file(&dir.join("config.json"))?)
    } else {
        None
    };
    parse_bytes(&bytes, config.as_deref())
}

/// Parses a checkpoint held in memory, detecting its format. A safetensors
/// checkpoint needs the bytes of its `config.json`; the other formats ignore it.
pub fn parse_bytes(
    bytes: &[u8],
    config_json: Option<&[u8]>,
) -> Result<FloatModel, CheckpointError> {
    match detect(bytes)? {
        Format::Llama2cV0 => llama2c::parse_v0(bytes),
        Format::Llama2cV1 => llama2c::parse_versioned(bytes),
        Format::Gguf => gguf::model_from_gguf(&gguf::GgufFile::parse(bytes)?, bytes),
        Format::Safetensors => match config_json {
            Some(config) => hf::parse(bytes, config),
            None => Err(CheckpointError::Config(
                "safetensors checkpoint without config.json".into(),
            )),
        },
    }
}

/// Checks that a configuration is usable: positive sizes, heads dividing `dim`,
/// KV heads dividing heads, an even head size.
pub(crate) fn validate_config(c: &FloatConfig) -> Result<(), CheckpointError> {
    let bad = |m: String| Err(CheckpointError::BadHeader(m));
    if c.dim == 0
        || c.hidden_dim == 0
        || c.n_layers == 0
        || c.n_heads == 0
        || c.n_kv_heads == 0
        || c.vocab_size == 0
        || c.seq_len == 0
    {
        return bad(format!("zero size in {c:?}"));
    }
    if !c.dim.is_multiple_of(c.n_heads) {
        return bad(format!(
            "dim {} not divisible by n_heads {}",
            c.dim, c.n_heads
        ));
    }
    if !c.n_heads.is_multiple_of(c.n_kv_heads) {
        return bad(format!(
            "n_heads {} not divisible by n_kv_heads {}",
            c.n_heads, c.n_kv_heads
        ));
    }
    if !c.head_size().is_multiple_of(2) {
        return bad(format!("odd head size {}", c.head_size()));
    }
    // Keep every tensor size well inside usize on 64-bit and 32-bit hosts.
    let limit = 1usize << 31;
    let big = [c.dim, c.hidden_dim, c.n_layers, c.vocab_size, c.seq_len];
    if big.iter().any(|&v| v >= limit)
        || c.n_layers >= 1 << 16
        || c.dim.checked_mul(c.dim).is_none_or(|v| v >= limit)
        || c.dim.checked_mul(c.vocab_size).is_none_or(|v| v >= limit)
        || c.dim.checked_mul(c.hidden_dim).is_none_or(|v| v >= limit)
    {
        return bad(format!("sizes too large in {c:?}"));
    }
    if !(c.norm_eps.is_finite()
        && c.norm_eps >= 0.0
        && c.rope_theta.is_finite()
        && c.rope_theta > 0.0)
    {
        return bad(format!("bad norm_eps/rope_theta in {c:?}"));
    }
    Ok(())
}

/// Returns `None` when a separate classifier is bit-identical to the embedding, so
/// that a shared classifier written out twice (as some converters do) imports the
/// same as one stored once.
pub(crate) fn dedup_classifier(embedding: &[f32], wcls: Vec<f32>) -> Option<Vec<f32>> {
    let same = embedding.len() == wcls.len()
        && embedding
            .iter()
            .zip(&wcls)
            .all(|(a, b)| a.to_bits() == b.to_bits());
    if same {
        None
    } else {
        Some(wcls)
    }
}
