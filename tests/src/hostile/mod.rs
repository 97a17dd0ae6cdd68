//! The hostile-input corpus (`tests/hostile/`): crafted model files, checkpoints,
//! tokenizers and ELF programs that once crashed, stalled or exhausted a tool, and
//! more of their kind. [`corpus`] builds every file from code (no downloads, only
//! the bundled tokenizer `tok512.bin` and the core's and the tool's own writers),
//! `cargo run -p oracle-tests --bin gen-hostile` writes them, and the test
//! `hostile_corpus_is_current` checks the committed files against [`corpus`].
//!
//! Folders, and what the tests run on each file (see [`Class`]):
//!
//! | folder | tools |
//! |---|---|
//! | `model/` | `oracle-quant inspect`, `oracle run`, `fpvm run --model` (and `--position 1`) |
//! | `budget/` | models that load but exceed the guest's budget: `fpvm run --model` and the node refuse them |
//! | `image/` | `oracle-quant inspect`, `oracle run --output`, `fpvm run --model` |
//! | `llama2c/`, `gguf/` | `oracle-quant convert` (with `tok512.bin` as `--tokenizer`) |
//! | `safetensors/<case>/` | `oracle-quant convert` on the folder (`model.safetensors` + `config.json`) |
//! | `pth/` | `oracle-quant convert` (ddpm-mnist `.pth`) |
//! | `tokenizer/` | `oracle-quant convert` of stories260K with the file as `--tokenizer` |
//! | `elf/` | `fpvm run --elf` |
//!
//! Every file must give a clean error: a non-zero exit with a message, no panic,
//! no abort, no signal, within a time and a peak RSS bound ([`run`]). The files
//! in `budget/` load (so `oracle-quant inspect` prints them) but are refused by
//! every budgeted check.

use std::path::{Path, PathBuf};

mod checkpoints;
mod elf;
mod image;
mod llama;
mod model_file;
mod pth;
pub mod run;

pub use image::small_unet;
pub use llama::{tiny_config, tiny_model};

/// One crafted file.
#[derive(Debug, Clone)]
pub struct Hostile {
    /// Path under `tests/hostile/`.
    pub path: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// What it does to a tool that trusts it.
    pub what: &'static str,
}

impl Hostile {
    /// A file at `path` with `bytes`.
    pub fn new(path: impl Into<String>, what: &'static str, bytes: Vec<u8>) -> Hostile {
        Hostile {
            path: path.into(),
            bytes,
            what,
        }
    }

    /// Its class, from its folder.
    pub fn class(&self) -> Class {
        Class::of(&self.path)
    }
}

/// What a hostile file is, by its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `model/`: a text model file that must not load.
    Model,
    /// `budget/`: a model file that loads but is over the guest's budget.
    Budget,
    /// `image/`: an image model file that must not load.
    Image,
    /// `llama2c/`: a llama2.c checkpoint.
    Llama2c,
    /// `gguf/`: a GGUF checkpoint.
    Gguf,
    /// `safetensors/<case>/`: a Hugging Face folder.
    Safetensors,
    /// `pth/`: a PyTorch zip checkpoint.
    Pth,
    /// `tokenizer/`: a tokenizer file.
    Tokenizer,
    /// `elf/`: a program for the VM.
    Elf,
}

impl Class {
    /// The class of the file at `path` (relative to `tests/hostile/`).
    pub fn of(path: &str) -> Class {
        match path.split('/').next().unwrap_or("") {
            "model" => Class::Model,
            "budget" => Class::Budget,
            "image" => Class::Image,
            "llama2c" => Class::Llama2c,
            "gguf" => Class::Gguf,
            "safetensors" => Class::Safetensors,
            "pth" => Class::Pth,
            "tokenizer" => Class::Tokenizer,
            "elf" => Class::Elf,
            other => panic!("unknown hostile folder {other:?}"),
        }
    }
}

/// The folder of the committed corpus.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hostile")
}

/// The bundled stories260K tokenizer (512 tokens), which several checkpoints of
/// the corpus are paired with.
pub fn tok512() -> PathBuf {
    crate::fixtures().join("models/stories260K/tok512.bin")
}

/// Every file of the corpus, in a fixed order.
pub fn corpus() -> Vec<Hostile> {
    let mut all = Vec::new();
    all.extend(llama::files());
    all.extend(image::files());
    all.extend(checkpoints::files());
    all.extend(pth::files());
    all.extend(elf::files());
    all
}

/// One committed file (or safetensors folder) of the corpus.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Absolute path (for a `safetensors` case, its folder).
    pub path: PathBuf,
    /// What it does to a trusting tool.
    pub what: &'static str,
    /// What every tool's error must contain ([`expected_error`]).
    pub error: &'static str,
}

/// The committed files of one class, in corpus order.
pub fn committed(class: Class) -> Vec<Committed> {
    let mut out: Vec<Committed> = Vec::new();
    for h in corpus().into_iter().filter(|h| h.class() == class) {
        let rel = if class == Class::Safetensors {
            Path::new(&h.path)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            h.path.clone()
        };
        let path = dir().join(&rel);
        if !out.iter().any(|c| c.path == path) {
            out.push(Committed {
                path,
                what: h.what,
                error: expected_error(&rel),
            });
        }
    }
    out
}

/// The corpus's index (`tests/hostile/README.md`): every file and what it does.
pub fn index() -> String {
    let mut s = String::from(
        "# Hostile inputs\n\nGenerated by `cargo run -p oracle-tests --bin gen-hostile` \
         (source: `tests/src/hostile/`); do not edit by hand. Each file must give a clean \
         error (non-zero exit, a message, no panic or abort) with a bounded peak RSS in \
         every tool that reads it; `budget/` holds models that load but exceed the \
         guest's memory budget.\n\n| file | bytes | what it does to a trusting tool |\n|---|---:|---|\n",
    );
    for h in corpus() {
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            h.path,
            h.bytes.len(),
            h.what
        ));
    }
    s
}

/// The text every tool's error on the file at `path` (under `tests/hostile/`; a
/// `safetensors` case by its folder) must contain: the reason the file was
/// crafted for, so that an earlier, unrelated error cannot pass for it.
pub fn expected_error(path: &str) -> &'static str {
    match path {
        "model/huge-config-words.bin" => "header section lies outside",
        "model/short-config.bin" => "config too short",
        "model/wrapped-section-offsets.bin" => "header section lies outside",
        "model/wrapped-table-length.bin" => "tensor table section lies outside",
        "model/wrapped-tensor-offset.bin" => "data lies outside the file",
        "model/tensor-length-overflow.bin" => "byte length does not match",
        "model/overlapping-tensors.bin" => "overlaps another tensor",
        "model/truncated-tensor.bin" => "data lies outside the file",
        "model/length-mismatch.bin" => "does not match the header",
        "model/short.bin" => "shorter than the 64-byte header",
        "model/huge-kv-cache.bin" => "exceed 2 GiB",
        "model/kv-cache-bomb.bin" => "exceed 2 GiB",
        "model/huge-dims.bin" => "exceed 2 GiB",
        "model/huge-vocab.bin" => "shape does not match the config",
        "model/bad-tokenizer-count.bin" => "token count differs",
        "model/bad-tokenizer-piece.bin" => "bad tokenizer: truncated",
        "budget/kv-over-guest-budget.bin" => "over the budget",
        "image/huge-sample-size.img" => "exceed 2 GiB",
        "image/huge-transformer-layers.img" => "transformer_blocks.0.norm1",
        "image/huge-config-words.img" => "header section lies outside",
        "image/wrapped-table-offset.img" => "header section lies outside",
        "image/wrapped-table-length.img" => "tensor table section lies outside",
        "image/wrapped-tensor-offset.img" => "data lies outside the file",
        "image/overlapping-tensors.img" => "overlaps another tensor",
        "image/unknown-arch.img" => "unsupported architecture id 77",
        "image/length-mismatch.img" => "does not match the header",
        "image/short.img" => "shorter than the 64-byte header",
        "llama2c/rope-table-bomb.bin" => "RoPE entries",
        "llama2c/huge-dims.bin" => "bad header",
        "llama2c/negative-dims.bin" => "dim = -8",
        "llama2c/v2-group-zero.bin" => "group_size = 0",
        "gguf/big-u8-array.gguf" => "missing metadata key",
        "gguf/aliased-tensors.gguf" => "overlap",
        "gguf/array-count-vs-bytes.gguf" => "reading array",
        "gguf/deep-arrays.gguf" => "nested too deep",
        "gguf/huge-counts.gguf" => "cannot fit",
        "gguf/string-length-overflow.gguf" => "reading string",
        "gguf/tensor-offset-overflow.gguf" => "bad size",
        "pth/stride-zero-view.pth" => "stride 0",
        "pth/memo-doubling.pth" => "not a dict",
        "pth/deep-tuple.pth" => "builds more than",
        "pth/storage-aliasing.pth" => "budget",
        "pth/entry-size-lie.pth" => "more than",
        "tokenizer/negative-max-length.bin" => "max_token_length = -5",
        "tokenizer/piece-length-overflow.bin" => "has length 2147483647",
        "tokenizer/gguf-tokens-not-strings.gguf" => "not an array of strings",
        "safetensors/overlapping-offsets" => "InvalidOffset",
        "safetensors/shape-overflow" => "ValidationOverflow",
        "safetensors/not-json" => "InvalidHeaderDeserialization",
        "safetensors/header-length-overflow" => "unrecognised checkpoint format",
        "safetensors/config-huge" => "sizes too large",
        "elf/touch-every-page.elf" => "memory budget",
        "elf/aliased-segments.elf" => "segments load",
        "elf/program-headers-past-end.elf" => "truncated",
        "elf/truncated.elf" => "truncated",
        other => panic!("no expected error for hostile file {other}"),
    }
}

/// Little-endian helpers for the builders.
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Write a little-endian `u64` at `at`.
pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
