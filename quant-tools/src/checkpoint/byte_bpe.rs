//! Byte-level BPE vocabularies (GPT-2's scheme: Llama 3, Qwen2, SmolLM), from a
//! Hugging Face `tokenizer.json` (with `tokenizer_config.json`,
//! `generation_config.json` and `config.json` beside it when present) or from
//! GGUF metadata with `tokenizer.ggml.model = gpt2`.
//!
//! Pieces are stored as raw bytes: GPT-2's byte-to-unicode mapping is undone here
//! (added tokens are literal text and kept as they are). The pre-tokenizer is
//! recognised from the `tokenizer.json` pipeline (or GGUF's `tokenizer.ggml.pre`)
//! and must be one the core implements
//! (`oracle_core::llama::pretokenize::PreTokenizer`); the chat template is
//! recognised from its Jinja source (`oracle_core::llama::chat`).

use std::collections::HashMap;
use std::path::Path;

use oracle_core::llama::bpe::{FLAG_IGNORE_MERGES, FLAG_NFC};
use oracle_core::llama::pretokenize::PreTokenizer;
use serde_json::Value;

use super::gguf::{GgufArray, GgufFile};
use super::{read_file, CheckpointError};
use crate::float_model::{ByteBpe, FloatTokenizer};

/// Llama 3's split pattern as `tokenizer.json` spells it.
pub const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split pattern.
pub const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn err(m: impl Into<String>) -> CheckpointError {
    CheckpointError::Tokenizer(m.into())
}

/// GPT-2's `bytes_to_unicode`, inverted: the byte each of its 256 characters stands for.
pub fn unicode_to_byte() -> HashMap<char, u8> {
    let mut map = HashMap::new();
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, 33..=126 | 161..=172 | 174..=255);
        let c = if printable {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('\0')
        };
        map.insert(c, b);
    }
    map
}

/// A piece as byte-level vocabularies write it, back to its raw bytes.
fn unmap(piece: &str, table: &HashMap<char, u8>) -> Result<Vec<u8>, CheckpointError> {
    piece
        .chars()
        .map(|c| table.get(&c).copied())
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| err(format!("token {piece:?} is not byte-level BPE text")))
}

/// What both sources give: pieces as the vocabulary writes them, which are added
/// tokens, merges as pairs of pieces.
struct Source<'s> {
    tokens: Vec<Option<(String, bool)>>,
    merges: Vec<(&'s str, &'s str)>,
    pre: PreTokenizer,
    flags: u32,
    template: Option<String>,
    bos: Option<u32>,
    stops: Vec<u32>,
}

impl Source<'_> {
    fn build(self) -> Result<FloatTokenizer, CheckpointError> {
        let table = unicode_to_byte();
        let mut pieces = Vec::with_capacity(self.tokens.len());
        let mut added = Vec::with_capacity(self.tokens.len());
        let mut ids: HashMap<&str, u32> = HashMap::new();
        for (id, t) in self.tokens.iter().enumerate() {
            let (text, is_added) = t
                .as_ref()
                .ok_or_else(|| err(format!("no token has id {id}")))?;
            pieces.push(if *is_added {
                text.as_bytes().to_vec()
            } else {
                ids.entry(text.as_str()).or_insert(id as u32);
                unmap(text, &table)?
            });
            added.push(*is_added);
        }
        let mut merges = Vec::with_capacity(self.merges.len());
        let mut joined = String::new();
        for (l, r) in &self.merges {
            let id = |s: &str| {
                ids.get(s)
                    .copied()
                    .ok_or_else(|| err(format!("merge {l:?} {r:?}: {s:?} is not a token")))
            };
            joined.clear();
            joined.push_str(l);
            joined.push_str(r);
            merges.push((id(l)?, id(r)?, id(&joined)?));
        }
        let chat = self
            .template
            .as_deref()
            .map(chat_template)
            .unwrap_or((0, Vec::new()));
        let eos = self.stops.first().copied();
        let bos = self
            .bos
            .or(eos)
            .ok_or_else(|| err("the vocabulary names no BOS or EOS token"))?;
        let max_token_length = pieces.iter().map(Vec::len).max().unwrap_or(0) as u32;
        Ok(FloatTokenizer {
            scores: vec![0.0; pieces.len()],
            pieces,
            max_token_length,
            byte_bpe: Some(ByteBpe {
                pre: self.pre as u32,
                flags: self.flags,
                chat,
                added,
                merges,
                bos,
                eos: eos.unwrap_or(bos),
                stops: self.stops,
            }),
        })
    }
}

/// The chat format of a Jinja template (see `oracle_core::llama::chat`): its number
/// and, for ChatML, the default system prompt the template writes when the
/// conversation has none (a quoted literal after `<|im_start|>system\n`).
pub fn chat_template(source: &str) -> (u32, Vec<u8>) {
    if source.contains("<|start_header_id|>") && source.contains("<|eot_id|>") {
        return (1, Vec::new());
    }
    if !source.contains("<|im_start|>") {
        return (0, Vec::new());
    }
    let marker = "<|im_start|>system\\n";
    let mut system = Vec::new();
    for (at, _) in source.match_indices(marker) {
        let rest = &source[at + marker.len()..];
        if let Some(end) = rest.find("<|im_end|>") {
            let literal = &rest[..end];
            if !literal.is_empty() && !literal.contains(['\'', '"', '{', '}', '+']) {
                system = unescape(literal).into_bytes();
                break;
            }
        }
    }
    (2, system)
}

/// Jinja string-literal escapes (`\n`, `\t`, `\\`, quotes).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Reads a Hugging Face tokenizer: `path` is `tokenizer.json` or its folder.
pub fn load_hf(path: &Path) -> Result<FloatTokenizer, CheckpointError> {
    let (dir, file) = if path.is_dir() {
        (path.to_path_buf(), path.join("tokenizer.json"))
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        (dir, path.to_path_buf())
    };
    let optional = |name: &str| -> Result<Option<Vec<u8>>, CheckpointError> {
        let p = dir.join(name);
        if p.exists() {
            read_file(&p).map(Some)
        } else {
            Ok(None)
        }
    };
    parse_hf(
        &read_file(&file)?,
        optional("tokenizer_config.json")?.as_deref(),
        optional("generation_config.json")?.as_deref(),
        optional("config.json")?.as_deref(),
    )
}

fn json(bytes: &[u8], name: &str) -> Result<Value, CheckpointError> {
    serde_json::from_slice(bytes).map_err(|e| err(format!("{name}: {e}")))
}

/// The ids in a config's `eos_token_id` / `bos_token_id` (a number or a list).
fn ids_of(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| n as u32).into_iter().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|n| n.as_u64())
            .map(|n| n as u32)
            .collect(),
        _ => Vec::new(),
    }
}

/// A special token named in `tokenizer_config.json` (a string or `{content}`).
fn token_name(v: Option<&Value>) -> Option<&str> {
    match v? {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("content")?.as_str(),
        _ => None,
    }
}

/// Parses `tokenizer.json` and, when given, its folder's `tokenizer_config.json`
/// (BOS/EOS names, chat template), `generation_config.json` and `config.json`
/// (BOS/EOS ids: every EOS id stops generation).
pub fn parse_hf(
    tokenizer_json: &[u8],
    tokenizer_config: Option<&[u8]>,
    generation_config: Option<&[u8]>,
    config: Option<&[u8]>,
) -> Result<FloatTokenizer, CheckpointError> {
    let t = json(tokenizer_json, "tokenizer.json")?;
    let model = &t["model"];
    if model["type"].as_str() != Some("BPE") {
        return Err(err("tokenizer.json: not a BPE model"));
    }
    if model["byte_fallback"].as_bool() == Some(true)
        || !model["continuing_subword_prefix"].is_null() && model["continuing_subword_prefix"] != ""
        || !model["end_of_word_suffix"].is_null() && model["end_of_word_suffix"] != ""
    {
        return Err(err(
            "tokenizer.json: byte fallback and subword affixes are not byte-level BPE",
        ));
    }
    if !matches!(t["decoder"]["type"].as_str(), Some("ByteLevel")) {
        return Err(err("tokenizer.json: the decoder is not ByteLevel"));
    }
    let pre = hf_pre_tokenizer(&t["pre_tokenizer"])?;
    let mut flags = 0;
    if model["ignore_merges"].as_bool() == Some(true) {
        flags |= FLAG_IGNORE_MERGES;
    }
    match &t["normalizer"] {
        Value::Null => {}
        n if n["type"] == "NFC" => flags |= FLAG_NFC,
        n => return Err(err(format!("tokenizer.json: unsupported normalizer {n}"))),
    }
    let vocab = model["vocab"]
        .as_object()
        .ok_or_else(|| err("tokenizer.json: model.vocab is not an object"))?;
    let mut tokens: Vec<Option<(String, bool)>> = Vec::new();
    let mut put = |id: u64, text: &str, added: bool| -> Result<(), CheckpointError> {
        let id = usize::try_from(id)
            .ok()
            .filter(|&i| i < 1 << 24)
            .ok_or_else(|| err(format!("token id {id} out of range")))?;
        if tokens.len() <= id {
            tokens.resize(id + 1, None);
        }
        tokens[id] = Some((text.to_owned(), added));
        Ok(())
    };
    for (piece, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| err(format!("token {piece:?}: id is not a number")))?;
        put(id, piece, false)?;
    }
    let mut by_name: HashMap<String, u32> = HashMap::new();
    for a in t["added_tokens"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let (Some(id), Some(content)) = (a["id"].as_u64(), a["content"].as_str()) else {
            return Err(err("tokenizer.json: an added token lacks id or content"));
        };
        if a["lstrip"].as_bool() == Some(true)
            || a["rstrip"].as_bool() == Some(true)
            || a["single_word"].as_bool() == Some(true)
        {
            return Err(err(format!(
                "added token {content:?}: lstrip/rstrip/single_word are not supported"
            )));
        }
        put(id, content, true)?;
        by_name.insert(content.to_owned(), id as u32);
    }
    for (piece, id) in vocab {
        by_name
            .entry(piece.clone())
            .or_insert(id.as_u64().unwrap_or(0) as u32);
    }
    let merges = model["merges"]
        .as_array()
        .ok_or_else(|| err("tokenizer.json: model.merges is not a list"))?
        .iter()
        .map(|m| match m {
            Value::String(s) => s.split_once(' '),
            Value::Array(pair) => match (pair.first()?.as_str(), pair.get(1)?.as_str()) {
                (Some(l), Some(r)) => Some((l, r)),
                _ => None,
            },
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| err("tokenizer.json: a merge is not a pair"))?;
    let tc = tokenizer_config
        .map(|b| json(b, "tokenizer_config.json"))
        .transpose()?;
    let gc = generation_config
        .map(|b| json(b, "generation_config.json"))
        .transpose()?;
    let cfg = config.map(|b| json(b, "config.json")).transpose()?;
    let named = |key: &str| {
        let name = token_name(tc.as_ref().and_then(|c| c.get(key)))?;
        by_name.get(name).copied()
    };
    let mut stops = Vec::new();
    let mut add_stop = |id: u32| {
        if !stops.contains(&id) {
            stops.push(id);
        }
    };
    named("eos_token").into_iter().for_each(&mut add_stop);
    for c in [&gc, &cfg].into_iter().flatten() {
        ids_of(c.get("eos_token_id"))
            .into_iter()
            .for_each(&mut add_stop);
    }
    let bos = named("bos_token").or_else(|| {
        [&gc, &cfg]
            .into_iter()
            .flatten()
            .find_map(|c| ids_of(c.get("bos_token_id")).first().copied())
    });
    let template = tc
        .as_ref()
        .and_then(|c| c.get("chat_template"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Source {
        tokens,
        merges,
        pre,
        flags,
        template,
        bos,
        stops,
    }
    .build()
}

/// The core's pre-tokenizer for a `tokenizer.json` `pre_tokenizer`.
fn hf_pre_tokenizer(p: &Value) -> Result<PreTokenizer, CheckpointError> {
    let byte_level = |v: &Value, regex: bool| {
        v["type"] == "ByteLevel"
            && v["add_prefix_space"].as_bool() != Some(true)
            && v["use_regex"].as_bool().unwrap_or(true) == regex
    };
    if byte_level(p, true) {
        return Ok(PreTokenizer::Gpt2);
    }
    let steps = match (p["type"].as_str(), p["pretokenizers"].as_array()) {
        (Some("Sequence"), Some(steps)) => steps.as_slice(),
        _ => &[],
    };
    if let [first, second] = steps {
        let pattern = first["pattern"]["Regex"].as_str();
        let isolated = first["type"] == "Split"
            && first["behavior"] == "Isolated"
            && first["invert"].as_bool() != Some(true);
        if isolated && byte_level(second, false) {
            match pattern {
                Some(LLAMA3_PATTERN) => return Ok(PreTokenizer::Llama3),
                Some(QWEN2_PATTERN) => return Ok(PreTokenizer::Qwen2),
                _ => {}
            }
        }
        if first["type"] == "Digits"
            && first["individual_digits"].as_bool() == Some(true)
            && byte_level(second, true)
        {
            return Ok(PreTokenizer::SmolLm);
        }
    }
    Err(err(format!(
        "tokenizer.json: unsupported pre-tokenizer {p} (supported: GPT-2's ByteLevel, \
         Llama 3's and Qwen2's split patterns, SmolLM's digits + ByteLevel)"
    )))
}

/// The core's pre-tokenizer for GGUF's `tokenizer.ggml.pre`.
fn gguf_pre_tokenizer(name: &str) -> Result<PreTokenizer, CheckpointError> {
    Ok(match name {
        "gpt-2" | "gpt2" | "default" => PreTokenizer::Gpt2,
        "llama-bpe" | "llama3" => PreTokenizer::Llama3,
        "qwen2" => PreTokenizer::Qwen2,
        "smollm" => PreTokenizer::SmolLm,
        other => {
            return Err(err(format!(
                "tokenizer.ggml.pre = {other:?} is not supported \
                 (gpt-2, llama-bpe, qwen2, smollm)"
            )))
        }
    })
}

/// A GGUF byte-level vocabulary (`tokenizer.ggml.model = gpt2`): tokens, types
/// (control and user-defined tokens are added tokens), merges, `pre`, BOS, and
/// EOS/EOT/EOM as stop tokens.
pub fn from_gguf(file: &GgufFile) -> Result<FloatTokenizer, CheckpointError> {
    let strings = |key: &str| -> Result<&[String], CheckpointError> {
        file.get(key)
            .and_then(|v| v.as_array())
            .and_then(GgufArray::as_strings)
            .ok_or_else(|| err(format!("{key} is missing or not a list of strings")))
    };
    let id = |key: &str| file.get(key).and_then(|v| v.as_u64()).map(|v| v as u32);
    let names = strings("tokenizer.ggml.tokens")?;
    let types: Vec<u64> = match file
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.as_array())
    {
        Some(GgufArray::I32(v)) => v.iter().map(|&t| t as u64).collect(),
        Some(GgufArray::U32(v)) => v.iter().map(|&t| u64::from(t)).collect(),
        Some(_) => return Err(err("tokenizer.ggml.token_type is not a list of integers")),
        None => vec![1; names.len()],
    };
    if types.len() != names.len() {
        return Err(err("tokenizer.ggml.token_type and tokens differ in length"));
    }
    // llama.cpp's types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    let tokens = names
        .iter()
        .zip(&types)
        .map(|(n, &t)| Some((n.clone(), matches!(t, 3 | 4))))
        .collect();
    let merges = strings("tokenizer.ggml.merges")?
        .iter()
        .map(|m| m.split_once(' '))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| err("a tokenizer.ggml.merges entry is not a pair"))?;
    let pre = match file.get("tokenizer.ggml.pre").and_then(|v| v.as_str()) {
        Some(name) => gguf_pre_tokenizer(name)?,
        None => PreTokenizer::Gpt2,
    };
    let mut stops = Vec::new();
    for key in [
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
    ] {
        if let Some(i) = id(key).filter(|i| !stops.contains(i)) {
            stops.push(i);
        }
    }
    let flags = match pre {
        PreTokenizer::Llama3 => FLAG_IGNORE_MERGES,
        PreTokenizer::Qwen2 => FLAG_NFC,
        _ => 0,
    };
    Source {
        tokens,
        merges,
        pre,
        flags,
        template: file
            .get("tokenizer.chat_template")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        bos: id("tokenizer.ggml.bos_token_id"),
        stops,
    }
    .build()
}
