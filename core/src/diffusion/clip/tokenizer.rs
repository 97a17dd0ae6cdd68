//! CLIP's byte-level BPE tokenizer, on bytes only (no floats, no tables outside
//! the tokenizer blob), bit-exact with `transformers`' `CLIPTokenizer` on the
//! prompts the tests pin (see `quant-tools/tests/clip_int.rs`).
//!
//! Steps, as in the reference: whitespace runs collapse to one space, the text is
//! trimmed and lowercased; it is split with CLIP's pattern (`'s|'t|'re|'ve|'m|'ll|'d`,
//! a run of letters, one digit, a run of other non-space characters); each piece's
//! UTF-8 bytes are the initial symbols, the last one with `</w>` appended; pairs are
//! merged lowest rank first, all occurrences of that pair left to right, until no
//! pair has a rank. Symbols missing from the vocabulary become the unknown token
//! (`<|endoftext|>` in CLIP). Ids are `[bos] + ids[..max_len - 2] + [eos]`, padded
//! with `pad` to `max_len`.
//!
//! GPT-2's byte-to-unicode table is a bijection, so the tokenizer works on the raw
//! bytes: the blob's vocabulary and merges are stored already mapped back to bytes
//! (`oracle-quant` writes it from `vocab.json` and `merges.txt`). In a model file
//! the blob is the `u8` tensor [`crate::format::TOKENIZER`].
//!
//! Blob layout (little-endian): `b"CLIPBPE1"`; `u32` `max_len`, `bos`, `eos`, `pad`;
//! `u32` vocabulary count, then per entry `u32 id, u16 len, len bytes`; `u32` merge
//! count, then per merge (rank = index) `u16 len, bytes, u16 len, bytes`.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::FormatError;
use crate::format::ModelFile;

/// First eight bytes of a tokenizer blob.
pub const MAGIC: &[u8; 8] = b"CLIPBPE1";
/// Largest `max_len` accepted.
pub const MAX_LEN_LIMIT: u32 = 4096;
/// The end-of-word marker appended to a piece's last symbol.
const END_OF_WORD: &[u8] = b"</w>";

/// CLIP's BPE tokenizer over bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipTokenizer {
    /// Symbol bytes -> id.
    vocab: BTreeMap<Vec<u8>, u32>,
    /// Pair -> merge rank.
    ranks: BTreeMap<(Vec<u8>, Vec<u8>), u32>,
    /// `<|startoftext|>`.
    pub bos: u32,
    /// `<|endoftext|>`, also the unknown token.
    pub eos: u32,
    /// Padding id.
    pub pad: u32,
    /// Sequence length after padding (77).
    pub max_len: u32,
}

/// A bounds-checked little-endian reader over the blob.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.bytes.len() < n {
            return Err(FormatError::BadTokenizer(
                "CLIP tokenizer blob is truncated",
            ));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<Vec<u8>, FormatError> {
        let b = self.take(2)?;
        let n = u16::from_le_bytes([b[0], b[1]]);
        Ok(self.take(usize::from(n))?.to_vec())
    }
}

impl ClipTokenizer {
    /// Parse a tokenizer blob (layout in the module docs).
    pub fn parse(bytes: &[u8]) -> Result<ClipTokenizer, FormatError> {
        let mut r = Reader { bytes };
        if r.take(8)? != MAGIC {
            return Err(FormatError::BadTokenizer("not a CLIP tokenizer blob"));
        }
        let (max_len, bos, eos, pad) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        if !(2..=MAX_LEN_LIMIT).contains(&max_len) {
            return Err(FormatError::BadTokenizer("max_len outside 2..=4096"));
        }
        let n_vocab = r.u32()?;
        let mut vocab = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for _ in 0..n_vocab {
            let id = r.u32()?;
            let s = r.string()?;
            if ids.insert(id, ()).is_some() || vocab.insert(s, id).is_some() {
                return Err(FormatError::BadTokenizer("duplicate vocabulary entry"));
            }
        }
        for special in [bos, eos, pad] {
            if !ids.contains_key(&special) {
                return Err(FormatError::BadTokenizer(
                    "special token id not in the vocabulary",
                ));
            }
        }
        let n_merges = r.u32()?;
        let mut ranks = BTreeMap::new();
        for rank in 0..n_merges {
            let a = r.string()?;
            let b = r.string()?;
            // The first occurrence of a pair keeps its rank (as the reference does).
            ranks.entry((a, b)).or_insert(rank);
        }
        if !r.bytes.is_empty() {
            return Err(FormatError::BadTokenizer("trailing bytes after the merges"));
        }
        Ok(ClipTokenizer {
            vocab,
            ranks,
            bos,
            eos,
            pad,
            max_len,
        })
    }

    /// Parse the blob stored in a model file as the `u8` tensor `name`
    /// ([`crate::format::TOKENIZER`]).
    pub fn load(file: &ModelFile<'_>, name: &str) -> Result<ClipTokenizer, FormatError> {
        ClipTokenizer::parse(file.u8s(name)?)
    }

    /// Number of vocabulary entries.
    pub fn vocab_len(&self) -> usize {
        self.vocab.len()
    }

    /// Token ids of `text` without special tokens.
    pub fn encode_raw(&self, text: &str) -> Vec<u32> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let norm = words.join(" ").to_lowercase();
        let mut ids = Vec::new();
        for piece in pieces(&norm) {
            for sym in self.bpe(piece.as_bytes()) {
                ids.push(self.vocab.get(&sym).copied().unwrap_or(self.eos));
            }
        }
        ids
    }

    /// `[bos] + ids + [eos]`, truncated and padded to `max_len` (the Stable
    /// Diffusion pipeline's `padding="max_length", truncation=True`).
    pub fn encode_padded(&self, text: &str) -> Vec<u32> {
        let max = self.max_len as usize;
        let mut ids = vec![self.bos];
        ids.extend(self.encode_raw(text).into_iter().take(max - 2));
        ids.push(self.eos);
        ids.resize(max, self.pad);
        ids
    }

    /// [`ClipTokenizer::encode_padded`] of raw prompt bytes (from a request or the
    /// chain): invalid UTF-8 sequences become U+FFFD first, deterministically.
    pub fn encode_padded_bytes(&self, prompt: &[u8]) -> Vec<u32> {
        self.encode_padded(&String::from_utf8_lossy(prompt))
    }

    /// BPE of one piece's bytes; the last symbol carries `</w>`.
    fn bpe(&self, piece: &[u8]) -> Vec<Vec<u8>> {
        let mut syms: Vec<Vec<u8>> = piece.iter().map(|&b| vec![b]).collect();
        if let Some(last) = syms.last_mut() {
            last.extend_from_slice(END_OF_WORD);
        }
        loop {
            let best = syms
                .windows(2)
                .filter_map(|w| self.rank(&w[0], &w[1]))
                .min();
            let Some(rank) = best else { break };
            let mut merged = Vec::with_capacity(syms.len());
            let mut i = 0;
            while i < syms.len() {
                if i + 1 < syms.len() && self.rank(&syms[i], &syms[i + 1]) == Some(rank) {
                    let mut s = syms[i].clone();
                    s.extend_from_slice(&syms[i + 1]);
                    merged.push(s);
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

    fn rank(&self, a: &[u8], b: &[u8]) -> Option<u32> {
        self.ranks.get(&(a.to_owned(), b.to_owned())).copied()
    }
}

/// Split normalised text with CLIP's pre-tokenizer pattern (`'s|'t|'re|'ve|'m|'ll|'d`,
/// a run of letters, one digit, a run of other non-space characters; whitespace
/// separates). The float reference tokenizer of `oracle-quant` splits with it too.
pub fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' {
            if let Some(n) = contraction(&chars[i + 1..]) {
                out.push(chars[i..=i + n].iter().collect());
                i += n + 1;
                continue;
            }
        }
        let start = i;
        if c.is_alphabetic() {
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
        } else if c.is_numeric() {
            i += 1;
        } else {
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !chars[i].is_alphabetic()
                && !chars[i].is_numeric()
            {
                i += 1;
            }
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

/// Length of the contraction (`re`, `ve`, `ll`, then `s`, `t`, `m`, `d`) that
/// follows an apostrophe, if any.
fn contraction(rest: &[char]) -> Option<usize> {
    let two = |a: char, b: char| rest.len() >= 2 && rest[0] == a && rest[1] == b;
    if two('r', 'e') || two('v', 'e') || two('l', 'l') {
        return Some(2);
    }
    rest.first()
        .filter(|ch| matches!(ch, 's' | 't' | 'm' | 'd'))
        .map(|_| 1)
}
