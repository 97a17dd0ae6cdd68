//! A model's vocabulary ([`Tokenizer`]): llama2.c's SentencePiece-style BPE
//! ([`SpmVocab`], below) or byte-level BPE ([`BpeVocab`]).
//!
//! **llama2.c-style BPE**: pieces with merge scores and byte fallback.
//!
//! Encoding follows llama2.c's `encode`: optional BOS, a dummy-prefix space piece
//! when the text is not empty, one piece per UTF-8 character (or byte-fallback
//! tokens `<0xXX>` = id `byte + 3` for characters not in the vocabulary, and for
//! bytes that are not valid UTF-8), then repeated merging of the adjacent pair with
//! the highest score whose concatenation is a piece (the leftmost pair on ties).
//! Decoding strips the leading space of the piece after BOS and turns `<0xXX>`
//! pieces into raw bytes.
//!
//! **In the model file** the vocabulary is the `u8` tensor
//! [`crate::format::TOKENIZER`] ([`vocab_bytes`]): `u32` token count (=
//! vocab_size), `u32` max token length, then per token an `i32` score key (an
//! order-preserving integer image of the float score, [`score_key`]: only
//! comparisons matter), `u32` length, the piece's bytes; all little-endian.

use alloc::vec::Vec;

use crate::error::FormatError;
use crate::llama::bpe::BpeVocab;
use crate::llama::chat::ChatTemplate;
use crate::llama::merge::merge_best_pairs;

/// A token of the vocabulary for [`vocab_bytes`].
#[derive(Debug, Clone)]
pub struct TokenEntry<'t> {
    /// Piece bytes.
    pub piece: &'t [u8],
    /// Order-preserving score key (see [`score_key`]).
    pub score: i32,
}

/// The order-preserving integer image of an IEEE-754 `f32` bit pattern: for finite
/// non-NaN floats `a < b` exactly when `score_key(a) < score_key(b)`, and `-0.0`
/// maps like `+0.0`. Pure bit manipulation, no float arithmetic.
pub fn score_key(bits: u32) -> i32 {
    let magnitude = (bits & 0x7FFF_FFFF) as i32;
    if bits & 0x8000_0000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// The tokenizer tensor's bytes for `tokens` (layout in the module docs), as
/// [`Tokenizer::parse`] reads them.
pub fn vocab_bytes(tokens: &[TokenEntry<'_>]) -> Vec<u8> {
    let max_len = tokens.iter().map(|t| t.piece.len()).max().unwrap_or(0) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
    out.extend_from_slice(&max_len.to_le_bytes());
    for t in tokens {
        out.extend_from_slice(&t.score.to_le_bytes());
        out.extend_from_slice(&(t.piece.len() as u32).to_le_bytes());
        out.extend_from_slice(t.piece);
    }
    out
}

/// A vocabulary parsed from a model file's tokenizer tensor (borrows the bytes).
#[derive(Debug, Clone)]
pub enum Tokenizer<'a> {
    /// llama2.c's SentencePiece-style vocabulary.
    SentencePiece(SpmVocab<'a>),
    /// A byte-level BPE vocabulary.
    ByteBpe(BpeVocab<'a>),
}

impl<'a> Tokenizer<'a> {
    /// Parse the section, of either layout (told by [`BpeVocab::is_bpe`]);
    /// `vocab_size` must match its token count.
    pub fn parse(
        section: &'a [u8],
        vocab_size: u32,
        bos: u32,
    ) -> Result<Tokenizer<'a>, FormatError> {
        if BpeVocab::is_bpe(section) {
            BpeVocab::parse(section, vocab_size).map(Tokenizer::ByteBpe)
        } else {
            SpmVocab::parse(section, vocab_size, bos).map(Tokenizer::SentencePiece)
        }
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::SentencePiece(t) => t.vocab_size(),
            Tokenizer::ByteBpe(t) => t.vocab_size(),
        }
    }

    /// The raw piece of a token.
    pub fn piece(&self, id: u32) -> &'a [u8] {
        match self {
            Tokenizer::SentencePiece(t) => t.piece(id),
            Tokenizer::ByteBpe(t) => t.piece(id),
        }
    }

    /// The lowest id whose piece is exactly `bytes` (for byte-level BPE, among
    /// the tokens merged from bytes).
    pub fn lookup(&self, bytes: &[u8]) -> Option<u32> {
        match self {
            Tokenizer::SentencePiece(t) => t.lookup(bytes),
            Tokenizer::ByteBpe(t) => t.lookup(bytes),
        }
    }

    /// The longest piece in bytes (every token of an encoding covers at most this
    /// many input bytes).
    pub fn max_piece_len(&self) -> usize {
        match self {
            Tokenizer::SentencePiece(t) => t.max_piece_len(),
            Tokenizer::ByteBpe(t) => t.max_piece_len(),
        }
    }

    /// Encode bytes, `bos` first when given, `eos` last when given.
    pub fn encode(&self, text: &[u8], bos: Option<u32>, eos: Option<u32>) -> Vec<u32> {
        match self {
            Tokenizer::SentencePiece(t) => t.encode(text, bos.is_some(), eos),
            Tokenizer::ByteBpe(t) => {
                let mut tokens = Vec::with_capacity(text.len() / 2 + 2);
                tokens.extend(bos);
                tokens.extend(t.encode(text));
                tokens.extend(eos);
                tokens
            }
        }
    }

    /// Whether generating `id` ends the text: BOS for llama2.c's vocabularies (as
    /// `run.c` stops), the vocabulary's stop tokens for byte-level BPE.
    pub fn is_stop(&self, id: u32, bos: u32) -> bool {
        match self {
            Tokenizer::SentencePiece(_) => id == bos,
            Tokenizer::ByteBpe(t) => t.is_stop(id),
        }
    }

    /// The chat template (byte-level BPE vocabularies may have one).
    pub fn chat_template(&self) -> &ChatTemplate<'a> {
        match self {
            Tokenizer::SentencePiece(_) => &ChatTemplate::None,
            Tokenizer::ByteBpe(t) => t.chat_template(),
        }
    }

    /// The bytes token `id` stands for after token `prev` (see
    /// [`SpmVocab::decode`]; a byte-level BPE token is its bytes).
    pub fn decode(&self, prev: u32, id: u32) -> Piece<'a> {
        match self {
            Tokenizer::SentencePiece(t) => t.decode(prev, id),
            Tokenizer::ByteBpe(t) => Piece::Bytes(t.piece(id)),
        }
    }
}

/// llama2.c's vocabulary, parsed from a model file's tokenizer tensor.
#[derive(Debug, Clone)]
pub struct SpmVocab<'a> {
    pieces: Vec<&'a [u8]>,
    scores: Vec<i32>,
    /// Token ids sorted by piece bytes (lowest id first among equal pieces).
    sorted: Vec<u32>,
    bos: u32,
    max_piece_len: usize,
}

impl<'a> SpmVocab<'a> {
    /// Parse the section; `vocab_size` must match its token count.
    pub fn parse(
        section: &'a [u8],
        vocab_size: u32,
        bos: u32,
    ) -> Result<SpmVocab<'a>, FormatError> {
        let bad = FormatError::BadTokenizer;
        let read_u32 = |at: usize| -> Result<u32, FormatError> {
            let b = at
                .checked_add(4)
                .and_then(|end| section.get(at..end))
                .ok_or(bad("truncated"))?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let count = read_u32(0)?;
        if count != vocab_size {
            return Err(bad("token count differs from vocab_size"));
        }
        let max_len = read_u32(4)? as usize;
        // Every token takes at least 8 bytes of the section: reserve no more
        // entries than the bytes can hold.
        let fits = (section.len() / 8).min(count as usize);
        let mut pieces = Vec::with_capacity(fits);
        let mut scores = Vec::with_capacity(fits);
        let mut at = 8usize;
        for _ in 0..count {
            let score = read_u32(at)? as i32;
            let len = read_u32(at + 4)? as usize;
            if len > max_len {
                return Err(bad("piece longer than the declared maximum"));
            }
            let start = at + 8;
            let piece = start
                .checked_add(len)
                .and_then(|end| section.get(start..end))
                .ok_or(bad("truncated"))?;
            pieces.push(piece);
            scores.push(score);
            at = start + len;
        }
        if at != section.len() {
            return Err(bad("trailing bytes"));
        }
        let mut sorted: Vec<u32> = (0..count).collect();
        sorted.sort_by(|&a, &b| pieces[a as usize].cmp(pieces[b as usize]).then(a.cmp(&b)));
        let max_piece_len = pieces.iter().map(|p| p.len()).max().unwrap_or(0).max(1);
        Ok(SpmVocab {
            pieces,
            scores,
            sorted,
            bos,
            max_piece_len,
        })
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// The raw piece of a token.
    pub fn piece(&self, id: u32) -> &'a [u8] {
        self.pieces.get(id as usize).copied().unwrap_or_default()
    }

    /// The merge score of a token (0 outside the vocabulary).
    pub fn score(&self, id: u32) -> i32 {
        self.scores.get(id as usize).copied().unwrap_or_default()
    }

    /// The lowest id whose piece is exactly `bytes`.
    pub fn lookup(&self, bytes: &[u8]) -> Option<u32> {
        let i = self
            .sorted
            .partition_point(|&id| self.pieces[id as usize] < bytes);
        let id = *self.sorted.get(i)?;
        (self.pieces[id as usize] == bytes).then_some(id)
    }

    /// Encode bytes (any bytes; invalid UTF-8 goes through byte fallback).
    pub fn encode(&self, text: &[u8], bos: bool, eos: Option<u32>) -> Vec<u32> {
        let mut tokens: Vec<u32> = Vec::with_capacity(text.len() + 3);
        if bos {
            tokens.push(self.bos);
        }
        if !text.is_empty() {
            if let Some(space) = self.lookup(b" ") {
                tokens.push(space);
            }
        }
        let mut i = 0;
        while i < text.len() {
            let len = utf8_char_len(&text[i..]);
            let ch = &text[i..i + len];
            match self.lookup(ch) {
                Some(id) => tokens.push(id),
                None => tokens.extend(ch.iter().map(|&b| u32::from(b) + 3)),
            }
            i += len;
        }
        self.merge(&mut tokens);
        if let Some(eos) = eos {
            tokens.push(eos);
        }
        tokens
    }

    /// Apply the best-scoring merges until none applies (BOS included, as llama2.c
    /// does; no piece starts with BOS's text in practice): the leftmost of the
    /// best-scoring pairs whose concatenation is a piece, as llama2.c's rescan
    /// picks it ([`merge_best_pairs`]).
    fn merge(&self, tokens: &mut Vec<u32>) {
        let mut buf: Vec<u8> = Vec::new();
        merge_best_pairs(tokens, |left, right| {
            buf.clear();
            buf.extend_from_slice(self.piece(left));
            buf.extend_from_slice(self.piece(right));
            let id = self.lookup(&buf)?;
            Some((i64::from(self.scores[id as usize]), id))
        });
    }

    /// The longest piece in bytes (every token of an encoding covers at most this
    /// many input bytes, byte-fallback tokens one).
    pub fn max_piece_len(&self) -> usize {
        self.max_piece_len
    }

    /// The bytes token `id` stands for after token `prev`, as llama2.c prints them:
    /// the leading space dropped after BOS, `<0xXX>` turned into the byte.
    pub fn decode(&self, prev: u32, id: u32) -> Piece<'a> {
        let mut piece = self.piece(id);
        if prev == self.bos && piece.first() == Some(&b' ') {
            piece = &piece[1..];
        }
        if let Some(byte) = parse_byte_piece(piece) {
            return Piece::Byte(byte);
        }
        Piece::Text(piece)
    }
}

/// What one token decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Ordinary piece bytes.
    Text(&'a [u8]),
    /// A byte-level BPE token's bytes (printed whole: a lone byte may be part of
    /// a character).
    Bytes(&'a [u8]),
    /// A byte-fallback token.
    Byte(u8),
}

impl Piece<'_> {
    /// Append what llama2.c's `safe_printf` would print: everything except a lone
    /// byte that is neither printable ASCII nor whitespace.
    pub fn push_printable(&self, out: &mut Vec<u8>) {
        match *self {
            Piece::Text(t) if t.len() == 1 => push_if_printable(t[0], out),
            Piece::Text(t) | Piece::Bytes(t) => out.extend_from_slice(t),
            Piece::Byte(b) => push_if_printable(b, out),
        }
    }
}

fn push_if_printable(b: u8, out: &mut Vec<u8>) {
    // C's isprint || isspace in the "C" locale.
    if (0x20..0x7F).contains(&b) || matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r') {
        out.push(b);
    }
}

/// `<0xAB>` -> `0xAB`.
fn parse_byte_piece(p: &[u8]) -> Option<u8> {
    if p.len() != 6 || &p[..3] != b"<0x" || p[5] != b'>' {
        return None;
    }
    let hex = |c: u8| (c as char).to_digit(16);
    Some((hex(p[3])? * 16 + hex(p[4])?) as u8)
}

/// Length of the UTF-8 character starting `s` the way llama2.c groups bytes: a
/// lead byte followed by up to three continuation bytes (`10xxxxxx`).
fn utf8_char_len(s: &[u8]) -> usize {
    let mut n = 1;
    while n < s.len() && n < 4 && s[n] & 0xC0 == 0x80 {
        n += 1;
    }
    n
}
