//! Vocabularies: llama2.c `tokenizer.bin` and GGUF-embedded SentencePiece vocabularies.
//!
//! `tokenizer.bin`: `i32 max_token_length`, then per token `f32 score`, `i32 len`,
//! `len` bytes. A GGUF vocabulary (`tokenizer.ggml.tokens`, `tokenizer.ggml.scores`)
//! writes a space as U+2581 (`▁`); it is turned into `b' '` as llama2.c's exporter
//! does. Byte-fallback pieces (`<0x0A>`) stay literal text, as in llama2.c.

use std::path::Path;

use super::reader::Reader;
use super::{gguf, read_file, CheckpointError};
use crate::float_model::FloatTokenizer;

/// Loads a tokenizer file: llama2.c `tokenizer.bin`, or any GGUF with a vocabulary
/// (a vocabulary-only GGUF works). Detected from the bytes.
pub fn load(path: &Path) -> Result<FloatTokenizer, CheckpointError> {
    parse(&read_file(path)?)
}

/// Parses a tokenizer file held in memory (llama2.c `tokenizer.bin` or GGUF).
pub fn parse(bytes: &[u8]) -> Result<FloatTokenizer, CheckpointError> {
    if bytes.starts_with(b"GGUF") {
        let file = gguf::GgufFile::parse(bytes)?;
        gguf::tokenizer_from_gguf(&file)?.ok_or_else(|| {
            CheckpointError::Tokenizer("GGUF file has no tokenizer.ggml.tokens".into())
        })
    } else {
        parse_tokenizer_bin(bytes, None)
    }
}

/// Parses a llama2.c `tokenizer.bin`. With `vocab_size` given, reads exactly that
/// many tokens (as run.c does); otherwise reads tokens until the end of the file.
pub fn parse_tokenizer_bin(
    bytes: &[u8],
    vocab_size: Option<usize>,
) -> Result<FloatTokenizer, CheckpointError> {
    let mut r = Reader::new(bytes);
    let max = r.i32("max_token_length")?;
    let max_token_length = u32::try_from(max)
        .map_err(|_| CheckpointError::Tokenizer(format!("max_token_length = {max}")))?;
    let mut pieces = Vec::new();
    let mut scores = Vec::new();
    while vocab_size.map_or(r.remaining() > 0, |n| pieces.len() < n) {
        let score = r.f32("token score")?;
        let len = r.i32("token length")?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= max_token_length as usize)
            .ok_or_else(|| {
                CheckpointError::Tokenizer(format!(
                    "token {} has length {len} (max_token_length {max_token_length})",
                    pieces.len()
                ))
            })?;
        pieces.push(r.bytes(len, "token bytes")?.to_vec());
        scores.push(score);
    }
    if pieces.is_empty() {
        return Err(CheckpointError::Tokenizer("no tokens".into()));
    }
    Ok(FloatTokenizer {
        pieces,
        scores,
        max_token_length,
        byte_bpe: None,
    })
}

/// Converts a SentencePiece piece as GGUF stores it to llama2.c's bytes
/// (`▁` becomes a space).
pub fn spm_piece_to_bytes(piece: &str) -> Vec<u8> {
    piece.replace('\u{2581}', " ").into_bytes()
}

/// Serialises a vocabulary as llama2.c `tokenizer.bin`.
pub fn write_tokenizer_bin(t: &FloatTokenizer) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(t.max_token_length as i32).to_le_bytes());
    for (p, s) in t.pieces.iter().zip(&t.scores) {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&(p.len() as i32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}
