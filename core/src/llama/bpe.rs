//! Byte-level BPE (GPT-2's scheme, as Llama 3, Qwen2 and SmolLM use it), bit-exact
//! with the `tokenizers` package's `encode(text, add_special_tokens=False)`.
//!
//! Encoding: the text is first cut at every added token (the vocabulary's special
//! and user-defined tokens, matched leftmost-longest in the raw text); each
//! stretch between them is NFC-normalized when the vocabulary asks for it, split
//! into words by its [`PreTokenizer`], and every word becomes the tokens of its
//! bytes merged by rank: the adjacent pair with the lowest merge rank first (the
//! leftmost on ties), until no pair has a merge. With `ignore_merges` (Llama 3) a
//! word that is itself a token is that token. Bytes that are not valid UTF-8 are
//! not text to split: each becomes its byte's token, in place.
//!
//! GPT-2's byte-to-unicode table is a bijection, so the vocabulary is stored
//! already mapped back to raw bytes (`oracle-quant` does it on import) and decoding
//! a token is its bytes.
//!
//! **In the model file** it is the [`crate::format::TOKENIZER`] tensor, told from
//! llama2.c's layout by its first eight bytes, [`MAGIC`]. Layout (little-endian
//! `u32`s unless said): `MAGIC`; the [`PreTokenizer`] number; flags (bit 0
//! `ignore_merges`, bit 1 NFC); the [`ChatTemplate`] number and its default system
//! prompt (`u32` length, bytes); the token count (= vocab_size), then per token a
//! `u8` kind (0 = a BPE token, 1 = an added token, matched in text) and its bytes
//! (`u32` length, bytes); the merge count, then per merge (rank = index) the left,
//! right and merged token ids; the stop-token count, then the ids that end
//! generation.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use unicode_normalization::UnicodeNormalization;

use crate::error::FormatError;
use crate::llama::chat::ChatTemplate;
use crate::llama::merge::merge_best_pairs;
use crate::llama::pretokenize::PreTokenizer;

/// First eight bytes of a byte-level BPE tokenizer tensor.
pub const MAGIC: &[u8; 8] = b"BYTEBPE1";
/// Flag bit: a word that is a token is not merged from its bytes.
pub const FLAG_IGNORE_MERGES: u32 = 1;
/// Flag bit: the text is NFC-normalized before it is split into words.
pub const FLAG_NFC: u32 = 2;
/// Longest token piece accepted, in bytes.
pub const MAX_PIECE_LEN: usize = 1 << 16;

/// Token kind: a BPE token (merged from bytes).
pub const KIND_BPE: u8 = 0;
/// Token kind: an added token, matched as a whole in the text.
pub const KIND_ADDED: u8 = 1;

/// A byte-level BPE vocabulary, parsed from a model file (borrows the bytes).
#[derive(Debug, Clone)]
pub struct BpeVocab<'a> {
    pieces: Vec<&'a [u8]>,
    /// BPE-token ids sorted by piece (lowest id first among equal pieces).
    sorted: Vec<u32>,
    /// Added-token ids sorted by piece.
    added: Vec<u32>,
    /// The token of each byte value (256 entries).
    byte_token: Vec<u32>,
    /// `(left, right, rank, merged)`, sorted by `(left, right)`.
    merges: Vec<(u32, u32, u32, u32)>,
    pre: PreTokenizer,
    flags: u32,
    chat: ChatTemplate<'a>,
    stops: Vec<u32>,
    max_piece_len: usize,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(FormatError::BadTokenizer("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn bytes(&mut self) -> Result<&'a [u8], FormatError> {
        let len = self.u32()? as usize;
        if len > MAX_PIECE_LEN {
            return Err(FormatError::BadTokenizer("piece longer than 65536 bytes"));
        }
        self.take(len)
    }

    /// A count of items of at least `min_size` bytes each, checked against the
    /// bytes left (so no allocation is larger than the section).
    fn count(&mut self, min_size: usize) -> Result<usize, FormatError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.bytes.len() - self.at {
            return Err(FormatError::BadTokenizer("count exceeds the section"));
        }
        Ok(n)
    }
}

impl<'a> BpeVocab<'a> {
    /// Whether a tokenizer tensor holds a byte-level BPE vocabulary.
    pub fn is_bpe(section: &[u8]) -> bool {
        section.starts_with(MAGIC)
    }

    /// Parse the section (layout in the module docs); `vocab_size` must match its
    /// token count. Checks every id, every merge (the merged token's piece is the
    /// left's followed by the right's; no pair twice) and that every byte has a
    /// token.
    pub fn parse(section: &'a [u8], vocab_size: u32) -> Result<BpeVocab<'a>, FormatError> {
        let bad = FormatError::BadTokenizer;
        let mut r = Cursor {
            bytes: section,
            at: 0,
        };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(bad("not a byte-level BPE vocabulary"));
        }
        let pre = PreTokenizer::from_u32(r.u32()?).ok_or(bad("unknown pre-tokenizer"))?;
        let flags = r.u32()?;
        if flags & !(FLAG_IGNORE_MERGES | FLAG_NFC) != 0 {
            return Err(bad("unknown flags"));
        }
        let chat_kind = r.u32()?;
        let system = r.bytes()?;
        let chat =
            ChatTemplate::from_parts(chat_kind, system).ok_or(bad("unknown chat template"))?;
        let count = r.count(5)?;
        if count != vocab_size as usize {
            return Err(bad("token count differs from vocab_size"));
        }
        let mut pieces = Vec::with_capacity(count);
        let mut kinds = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = r.take(1)?[0];
            if kind != KIND_BPE && kind != KIND_ADDED {
                return Err(bad("unknown token kind"));
            }
            let piece = r.bytes()?;
            if kind == KIND_ADDED && piece.is_empty() {
                return Err(bad("empty added token"));
            }
            kinds.push(kind);
            pieces.push(piece);
        }
        let ids = |kind: u8| -> Vec<u32> {
            let mut ids: Vec<u32> = (0..count as u32)
                .filter(|&i| kinds[i as usize] == kind)
                .collect();
            ids.sort_by(|&a, &b| pieces[a as usize].cmp(pieces[b as usize]).then(a.cmp(&b)));
            ids
        };
        let sorted = ids(KIND_BPE);
        let added = ids(KIND_ADDED);
        let mut byte_token = vec![0u32; 256];
        for (b, slot) in byte_token.iter_mut().enumerate() {
            *slot = find(&pieces, &sorted, &[b as u8]).ok_or(bad("a byte has no token"))?;
        }
        let n_merges = r.count(12)?;
        let mut merges = Vec::with_capacity(n_merges);
        for rank in 0..n_merges as u32 {
            let (left, right, merged) = (r.u32()?, r.u32()?, r.u32()?);
            let piece = |id: u32| pieces.get(id as usize).ok_or(bad("merge id out of range"));
            let (l, rt, m) = (piece(left)?, piece(right)?, piece(merged)?);
            if m.len() != l.len() + rt.len() || !m.starts_with(l) || !m.ends_with(rt) {
                return Err(bad("a merge's token is not its pair's bytes"));
            }
            merges.push((left, right, rank, merged));
        }
        merges.sort_unstable();
        if merges
            .windows(2)
            .any(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1))
        {
            return Err(bad("a pair is merged twice"));
        }
        let n_stops = r.count(4)?;
        let mut stops = Vec::with_capacity(n_stops);
        for _ in 0..n_stops {
            let id = r.u32()?;
            if id as usize >= count {
                return Err(bad("stop token out of range"));
            }
            stops.push(id);
        }
        if r.at != section.len() {
            return Err(bad("trailing bytes"));
        }
        let max_piece_len = pieces.iter().map(|p| p.len()).max().unwrap_or(0).max(1);
        Ok(BpeVocab {
            pieces,
            sorted,
            added,
            byte_token,
            merges,
            pre,
            flags,
            chat,
            stops,
            max_piece_len,
        })
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// The bytes of a token (empty outside the vocabulary).
    pub fn piece(&self, id: u32) -> &'a [u8] {
        self.pieces.get(id as usize).copied().unwrap_or_default()
    }

    /// The lowest-id BPE token whose piece is exactly `bytes`.
    pub fn lookup(&self, bytes: &[u8]) -> Option<u32> {
        find(&self.pieces, &self.sorted, bytes)
    }

    /// The longest piece in bytes.
    pub fn max_piece_len(&self) -> usize {
        self.max_piece_len
    }

    /// The pre-tokenizer.
    pub fn pre_tokenizer(&self) -> PreTokenizer {
        self.pre
    }

    /// The chat template.
    pub fn chat_template(&self) -> &ChatTemplate<'a> {
        &self.chat
    }

    /// The tokens that end generation.
    pub fn stops(&self) -> &[u32] {
        &self.stops
    }

    /// Whether generating `id` ends the text.
    pub fn is_stop(&self, id: u32) -> bool {
        self.stops.contains(&id)
    }

    /// Encode bytes (any bytes: see the module docs for what is not UTF-8).
    pub fn encode(&self, text: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut from = 0;
        let mut i = 0;
        while i < text.len() {
            match self.added_at(&text[i..]) {
                Some((id, len)) => {
                    self.encode_plain(&text[from..i], &mut out);
                    out.push(id);
                    i += len;
                    from = i;
                }
                None => i += 1,
            }
        }
        self.encode_plain(&text[from..], &mut out);
        out
    }

    /// The longest added token that `text` starts with.
    fn added_at(&self, text: &[u8]) -> Option<(u32, usize)> {
        // Added tokens that are prefixes of `text` sort at or before the point
        // where `text` itself would go: scan back from there while they share
        // the first byte.
        let first = *text.first()?;
        let end = self
            .added
            .partition_point(|&id| self.pieces[id as usize] <= text);
        let mut best: Option<(u32, usize)> = None;
        for &id in self.added[..end].iter().rev() {
            let p = self.pieces[id as usize];
            if p[0] != first {
                break;
            }
            if text.starts_with(p) && best.is_none_or(|(_, len)| p.len() > len) {
                best = Some((id, p.len()));
            }
        }
        best
    }

    /// Encode text holding no added token.
    fn encode_plain(&self, text: &[u8], out: &mut Vec<u32>) {
        for chunk in text.utf8_chunks() {
            self.encode_str(chunk.valid(), out);
            out.extend(chunk.invalid().iter().map(|&b| self.byte_token[b as usize]));
        }
    }

    fn encode_str(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let normalized: String;
        let text = if self.flags & FLAG_NFC != 0 {
            normalized = text.nfc().collect();
            normalized.as_str()
        } else {
            text
        };
        for (from, to) in self.pre.split(text) {
            self.encode_word(&text.as_bytes()[from..to], out);
        }
    }

    /// One word's tokens: its bytes merged by rank.
    fn encode_word(&self, word: &[u8], out: &mut Vec<u32>) {
        if self.flags & FLAG_IGNORE_MERGES != 0 {
            if let Some(id) = self.lookup(word) {
                out.push(id);
                return;
            }
        }
        let mut tokens: Vec<u32> = word.iter().map(|&b| self.byte_token[b as usize]).collect();
        self.merge(&mut tokens);
        out.extend_from_slice(&tokens);
    }

    /// The merge of the pair `(left, right)`: its rank and merged token.
    fn merge_of(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        let i = self
            .merges
            .binary_search_by(|m| (m.0, m.1).cmp(&(left, right)))
            .ok()?;
        let m = self.merges[i];
        Some((m.2, m.3))
    }

    /// Merge the lowest-ranked pair (leftmost on ties) until no pair merges
    /// ([`merge_best_pairs`], the rank negated as its priority).
    fn merge(&self, tokens: &mut Vec<u32>) {
        merge_best_pairs(tokens, |left, right| {
            let (rank, merged) = self.merge_of(left, right)?;
            Some((-i64::from(rank), merged))
        });
    }
}

/// The lowest id among `sorted` (ids sorted by piece, then id) whose piece is `bytes`.
fn find(pieces: &[&[u8]], sorted: &[u32], bytes: &[u8]) -> Option<u32> {
    let i = sorted.partition_point(|&id| pieces[id as usize] < bytes);
    let id = *sorted.get(i)?;
    (pieces[id as usize] == bytes).then_some(id)
}

/// A token for [`vocab_bytes`].
#[derive(Debug, Clone)]
pub struct BpeToken<'t> {
    /// [`KIND_BPE`] or [`KIND_ADDED`].
    pub kind: u8,
    /// Raw bytes.
    pub piece: &'t [u8],
}

/// The parts of a byte-level BPE vocabulary, as [`vocab_bytes`] writes them.
#[derive(Debug, Clone)]
pub struct BpeParts<'t> {
    /// The pre-tokenizer.
    pub pre: PreTokenizer,
    /// [`FLAG_IGNORE_MERGES`] | [`FLAG_NFC`].
    pub flags: u32,
    /// The chat template's number ([`ChatTemplate::kind`]) and default system prompt.
    pub chat: (u32, &'t [u8]),
    /// Every token, by id.
    pub tokens: Vec<BpeToken<'t>>,
    /// `(left, right, merged)` ids in rank order.
    pub merges: Vec<(u32, u32, u32)>,
    /// Tokens that end generation.
    pub stops: Vec<u32>,
}

/// The tokenizer tensor's bytes (layout in the module docs).
pub fn vocab_bytes(parts: &BpeParts<'_>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let u32 = |out: &mut Vec<u8>, v: usize| out.extend_from_slice(&(v as u32).to_le_bytes());
    u32(&mut out, parts.pre as usize);
    u32(&mut out, parts.flags as usize);
    u32(&mut out, parts.chat.0 as usize);
    u32(&mut out, parts.chat.1.len());
    out.extend_from_slice(parts.chat.1);
    u32(&mut out, parts.tokens.len());
    for t in &parts.tokens {
        out.push(t.kind);
        u32(&mut out, t.piece.len());
        out.extend_from_slice(t.piece);
    }
    u32(&mut out, parts.merges.len());
    for &(l, r, m) in &parts.merges {
        for v in [l, r, m] {
            u32(&mut out, v as usize);
        }
    }
    u32(&mut out, parts.stops.len());
    for &s in &parts.stops {
        u32(&mut out, s as usize);
    }
    out
}
