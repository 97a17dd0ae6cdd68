//! The model file: one little-endian file, parsed zero-copy from `&[u8]`.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `ORCLMDL\0` |
//! | 8 | 4 | version (`1`) |
//! | 12 | 4 | architecture (`1` = LLaMA) |
//! | 16 | 4 | number of tensors |
//! | 20 | 4 | reserved, `0` |
//! | 24 | 8 | config offset (`64`) |
//! | 32 | 8 | tokenizer offset |
//! | 40 | 8 | tensor table offset |
//! | 48 | 8 | data offset (multiple of 64) |
//! | 56 | 8 | file length |
//!
//! **Config** (at 64, [`CONFIG_LEN`] bytes, sixteen `u32`): dim, hidden_dim,
//! n_layers, n_heads, n_kv_heads, vocab_size, seq_len, flags (bit 0: classifier
//! shared with the embedding), norm_eps in Q32, bos id, eos id, then reserved zeros.
//!
//! **Tokenizer**: `u32` token count (= vocab_size), `u32` max token length, then per
//! token `i32` score key (an order-preserving integer image of the float score: only
//! comparisons matter), `u32` length, the piece's bytes.
//!
//! **Tensor table**: one [`ENTRY_LEN`]-byte entry per tensor: name (48 bytes, UTF-8,
//! zero-padded), dtype `u32` (1 = `i32`, 2 = Q8, 3 = Q4), group `u32`, exp `i32`
//! (for `i32` tensors: fractional bits), rows `u32`, cols `u32`, reserved `u32`,
//! offset `u64` (absolute, multiple of 64), byte length `u64`, 8 reserved bytes.
//!
//! **Data**: each tensor at its 64-byte-aligned offset, laid out as described in
//! [`crate::quant`] (Q8/Q4) or as `rows * cols` little-endian `i32`. No two
//! tensors' data may overlap, and the config may not ask for a run state over
//! [`crate::footprint::MAX_RUN_STATE_BYTES`].

use alloc::string::ToString;
use alloc::vec::Vec;

use crate::error::FormatError;
use crate::llama::config::LlamaConfig;
use crate::quant::{QMatrix, QType};
use crate::tensor_table::{
    align, check_disjoint, data_layout, parse_entry, put_u32, put_u64, slice_at, u32_at, u64_at,
    write_table, PendingTensor,
};

/// File magic.
pub const MAGIC: [u8; 8] = *b"ORCLMDL\0";
/// The version this build reads and writes.
pub const VERSION: u32 = 1;
/// Architecture id of LLaMA-family models.
pub const ARCH_LLAMA: u32 = 1;
/// Header length.
pub const HEADER_LEN: usize = 64;
/// Config section length.
pub const CONFIG_LEN: usize = 64;
/// Tensor table entry length.
pub const ENTRY_LEN: usize = 96;
/// Longest tensor name.
pub const NAME_LEN: usize = 48;
/// Alignment of tensor data.
pub const ALIGN: usize = 64;

/// Data type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// Little-endian `i32` (fixed point; `exp` gives the fractional bits).
    I32,
    /// Quantized weights.
    Quant(QType),
}

impl DType {
    /// The dtype of table code `code`.
    pub(crate) fn from_code(code: u32) -> Option<DType> {
        match code {
            1 => Some(DType::I32),
            2 => Some(DType::Quant(QType::Q8)),
            3 => Some(DType::Quant(QType::Q4)),
            _ => None,
        }
    }

    /// The table code of this dtype.
    pub(crate) fn code(self) -> u32 {
        match self {
            DType::I32 => 1,
            DType::Quant(QType::Q8) => 2,
            DType::Quant(QType::Q4) => 3,
        }
    }

    /// A short name for listings.
    pub fn name(self) -> &'static str {
        match self {
            DType::I32 => "i32",
            DType::Quant(q) => q.name(),
        }
    }
}

/// One entry of the tensor table, resolved against the file.
#[derive(Debug, Clone, Copy)]
pub struct TensorInfo<'a> {
    /// Name (`layers.3.attention.wq`, ...).
    pub name: &'a str,
    /// Element type.
    pub dtype: DType,
    /// Group size (quantized types).
    pub group: u32,
    /// Scale exponent (quantized) or fractional bits (`i32`).
    pub exp: i32,
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// Absolute offset of the data.
    pub offset: u64,
    /// The data.
    pub data: &'a [u8],
}

impl<'a> TensorInfo<'a> {
    /// The tensor as a quantized matrix, when it is one. The scales are the first
    /// `rows · ⌈cols / group⌉ · 4` bytes of the data (all of it, if shorter), the
    /// values the rest; a parsed tensor has exactly the bytes its shape needs.
    pub fn as_qmatrix(&self) -> Option<QMatrix<'a>> {
        let DType::Quant(qtype) = self.dtype else {
            return None;
        };
        let groups = u64::from(self.cols).div_ceil(u64::from(self.group.max(1)));
        let scale_len = u64::from(self.rows)
            .saturating_mul(groups)
            .saturating_mul(4)
            .min(self.data.len() as u64);
        // At most `data.len()`, so it fits `usize`.
        let (scales, qs) = self.data.split_at(scale_len as usize);
        Some(QMatrix {
            qtype,
            rows: self.rows,
            cols: self.cols,
            group: self.group,
            exp: self.exp,
            scales,
            qs,
        })
    }

    /// Element `i` of an `i32` tensor (`None` past its end).
    pub fn i32_at(&self, i: usize) -> Option<i32> {
        let at = i.checked_mul(4)?;
        let b = self.data.get(at..at.checked_add(4)?)?;
        Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An `i32` tensor decoded into a vector.
    pub fn to_i32_vec(&self) -> Vec<i32> {
        self.data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

/// A parsed, validated model file borrowing its bytes.
#[derive(Debug, Clone)]
pub struct ModelFile<'a> {
    /// The whole file.
    pub bytes: &'a [u8],
    /// Architecture id.
    pub arch: u32,
    /// Hyper-parameters.
    pub config: LlamaConfig,
    /// The tokenizer section.
    pub tokenizer: &'a [u8],
    /// The tensor table.
    pub tensors: Vec<TensorInfo<'a>>,
}

impl<'a> ModelFile<'a> {
    /// Parse and validate a model file. Every offset, length and shape is checked
    /// (in `u64`, so nothing wraps on a 32-bit target), and every scale mantissa
    /// against the overflow bound, so the kernels may index without further checks.
    pub fn parse(bytes: &'a [u8]) -> Result<ModelFile<'a>, FormatError> {
        if bytes.len() < HEADER_LEN {
            return Err(FormatError::TooShort(bytes.len()));
        }
        if bytes[..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let hdr = |at| u32_at(bytes, at).ok_or(FormatError::TooShort(bytes.len()));
        let hdr64 = |at| u64_at(bytes, at).ok_or(FormatError::TooShort(bytes.len()));
        let version = hdr(8)?;
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version, VERSION));
        }
        let len = bytes.len() as u64;
        let file_len = hdr64(56)?;
        if file_len != len {
            return Err(FormatError::LengthMismatch {
                expected: file_len,
                actual: len,
            });
        }
        let arch = hdr(12)?;
        if arch != ARCH_LLAMA {
            return Err(FormatError::UnsupportedArch(arch));
        }
        let n_tensors = u64::from(hdr(16)?);
        let config_off = hdr64(24)?;
        let tok_off = hdr64(32)?;
        let table_off = hdr64(40)?;
        let data_off = hdr64(48)?;
        let config_end = config_off.checked_add(CONFIG_LEN as u64);
        let in_order = HEADER_LEN as u64 <= config_off
            && config_end.is_some_and(|end| end <= tok_off)
            && tok_off <= table_off
            && table_off <= data_off
            && data_off <= len;
        if !in_order {
            return Err(FormatError::SectionOutOfBounds("header"));
        }
        let section = |from: u64, to: u64, what| {
            slice_at(bytes, from, to - from).ok_or(FormatError::SectionOutOfBounds(what))
        };
        let config = LlamaConfig::from_bytes(section(
            config_off,
            config_off + CONFIG_LEN as u64,
            "config",
        )?)?;
        let tokenizer = section(tok_off, table_off, "tokenizer")?;
        let table_end = n_tensors
            .checked_mul(ENTRY_LEN as u64)
            .and_then(|l| l.checked_add(table_off))
            .filter(|&end| end <= data_off)
            .ok_or(FormatError::SectionOutOfBounds("tensor table"))?;
        let table = section(table_off, table_end, "tensor table")?;
        let mut tensors = Vec::with_capacity(table.len() / ENTRY_LEN);
        for e in table.chunks_exact(ENTRY_LEN) {
            tensors.push(parse_entry(bytes, e, NAME_LEN, data_off)?);
        }
        check_disjoint(&tensors)?;
        Ok(ModelFile {
            bytes,
            arch,
            config,
            tokenizer,
            tensors,
        })
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo<'a>, FormatError> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| FormatError::MissingTensor(name.to_string()))
    }
}

/// Builds a model file in memory (used by the offline tool and by tests).
#[derive(Debug)]
pub struct ModelWriter {
    config: LlamaConfig,
    tokenizer: Vec<u8>,
    entries: Vec<PendingTensor>,
}

/// A token of the vocabulary for [`ModelWriter::set_tokenizer`].
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

impl ModelWriter {
    /// Start a file for `config`.
    pub fn new(config: LlamaConfig) -> ModelWriter {
        ModelWriter {
            config,
            tokenizer: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Set the vocabulary (must have `vocab_size` entries).
    pub fn set_tokenizer(&mut self, tokens: &[TokenEntry<'_>]) {
        let max_len = tokens.iter().map(|t| t.piece.len()).max().unwrap_or(0) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
        out.extend_from_slice(&max_len.to_le_bytes());
        for t in tokens {
            out.extend_from_slice(&t.score.to_le_bytes());
            out.extend_from_slice(&(t.piece.len() as u32).to_le_bytes());
            out.extend_from_slice(t.piece);
        }
        self.tokenizer = out;
    }

    /// Add an `i32` tensor with `frac` fractional bits.
    pub fn add_i32(&mut self, name: &str, rows: u32, cols: u32, frac: i32, values: &[i32]) {
        self.entries
            .push(PendingTensor::i32(name, rows, cols, frac, values));
    }

    /// Add a quantized tensor: `mantissas` (one per group, row-major) and `values`
    /// in the layout of [`crate::quant`].
    #[allow(clippy::too_many_arguments)]
    pub fn add_quant(
        &mut self,
        name: &str,
        qtype: QType,
        rows: u32,
        cols: u32,
        group: u32,
        exp: i32,
        mantissas: &[i32],
        values: &[u8],
    ) {
        self.entries.push(PendingTensor::quant(
            name, qtype, rows, cols, group, exp, mantissas, values,
        ));
    }

    /// Lay the file out and return its bytes.
    pub fn finish(self) -> Vec<u8> {
        let config_off = HEADER_LEN;
        let tok_off = config_off + CONFIG_LEN;
        let table_off = tok_off + self.tokenizer.len();
        let data_off = align(table_off + self.entries.len() * ENTRY_LEN);
        let (offsets, file_len) = data_layout(&self.entries, data_off);
        let mut out = alloc::vec![0u8; file_len];
        out[..8].copy_from_slice(&MAGIC);
        put_u32(&mut out, 8, VERSION);
        put_u32(&mut out, 12, ARCH_LLAMA);
        put_u32(&mut out, 16, self.entries.len() as u32);
        put_u64(&mut out, 24, config_off as u64);
        put_u64(&mut out, 32, tok_off as u64);
        put_u64(&mut out, 40, table_off as u64);
        put_u64(&mut out, 48, data_off as u64);
        put_u64(&mut out, 56, file_len as u64);
        out[config_off..config_off + CONFIG_LEN].copy_from_slice(&self.config.to_bytes());
        out[tok_off..table_off].copy_from_slice(&self.tokenizer);
        write_table(
            &mut out,
            &self.entries,
            &offsets,
            table_off,
            NAME_LEN,
            ENTRY_LEN,
        );
        out
    }
}
