//! The model file: one little-endian container for every architecture, parsed
//! zero-copy from `&[u8]`.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `ORCLMDL\0` |
//! | 8 | 4 | version ([`VERSION`]) |
//! | 12 | 4 | architecture ([`Arch`]: 1 LLaMA, 2 ddpm-mnist, 3 UNet2D, 4 Stable Diffusion) |
//! | 16 | 4 | number of tensors |
//! | 20 | 4 | config words (at most [`MAX_CONFIG_WORDS`]) |
//! | 24 | 8 | tensor table offset |
//! | 32 | 8 | data offset (multiple of 64) |
//! | 40 | 8 | file length |
//! | 48 | 16 | reserved, zero |
//!
//! **Config** at 64: `config words` little-endian `u32`, the architecture's typed
//! config written field by field ([`ConfigWriter`]) and read back the same way
//! ([`ConfigReader`], which refuses a config with words missing or left over):
//! [`crate::llama::LlamaConfig`], [`crate::diffusion::unet2d::UNet2DConfig`],
//! [`crate::diffusion::sd::SdConfig`]; ddpm-mnist has none (its shapes are fixed).
//!
//! **Tensor table** at its offset (the writer puts it at the next multiple of 64
//! after the config): one [`ENTRY_LEN`]-byte entry per tensor: name ([`NAME_LEN`]
//! bytes, UTF-8, zero-padded), dtype `u32` ([`DType`]: 1 = `i32`, 2 = Q8, 3 = Q4,
//! 4 = `u8`), group `u32`, exp `i32` (for `i32` tensors: fractional bits), rows
//! `u32`, cols `u32`, reserved `u32`, offset `u64` (absolute, multiple of 64), byte
//! length `u64`, 8 reserved bytes (the checked parse: `format/table.rs`).
//! Names mirror the checkpoint's (`layers.3.attention.wq`, diffusers'
//! `down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight`); a
//! convolution weight `(cout, cin, k, k)` is stored as `cout` rows of `cin·k·k`
//! columns.
//!
//! **Tokenizer**: a tensor like any other, named [`TOKENIZER`], of dtype `u8`
//! (one row of its bytes): the family's own layout, llama2.c's vocabulary
//! ([`crate::llama::tokenizer`]) or CLIP's BPE blob
//! ([`crate::diffusion::clip::tokenizer`]).
//!
//! **Data**: each tensor at its 64-byte-aligned offset, laid out as described in
//! [`crate::quant`] (Q8/Q4), as `rows * cols` little-endian `i32`, or as raw
//! bytes. No two tensors' data may overlap, and no config may ask for a run state
//! over [`crate::footprint::MAX_RUN_STATE_BYTES`] (each family's loader checks).
//!
//! Every offset, length and count from the file is checked in `u64` before it
//! indexes anything, so nothing wraps on the 32-bit guest.

mod table;

use alloc::string::ToString;
use alloc::vec::Vec;

use crate::error::FormatError;
use crate::quant::{QMatrix, QType};
use table::{
    align, bad_tensor, check_disjoint, data_layout, parse_entry, put_u32, put_u64, slice_at,
    u32_at, u64_at, write_table, PendingTensor,
};

/// File magic.
pub const MAGIC: [u8; 8] = *b"ORCLMDL\0";
/// The version this build reads and writes (version 1 had one format for text
/// models and another, `ORCLIMG\0`, for image models).
pub const VERSION: u32 = 2;
/// Header length.
pub const HEADER_LEN: usize = 64;
/// Tensor table entry length.
pub const ENTRY_LEN: usize = 176;
/// Longest tensor name.
pub const NAME_LEN: usize = 128;
/// Alignment of the tensor table and of tensor data.
pub const ALIGN: usize = 64;
/// Most config words.
pub const MAX_CONFIG_WORDS: usize = 1024;
/// Name of the tokenizer tensor (`u8`), in every family that has one.
pub const TOKENIZER: &str = "tokenizer";

/// Header field offsets.
mod at {
    pub const VERSION: usize = 8;
    pub const ARCH: usize = 12;
    pub const TENSORS: usize = 16;
    pub const WORDS: usize = 20;
    pub const TABLE: usize = 24;
    pub const DATA: usize = 32;
    pub const FILE_LEN: usize = 40;
}

/// The architecture a model file holds (header word at 12). Each has its typed
/// config and its loader; `crate::model::AnyModel` has one variant per
/// architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// A LLaMA-family text model ([`crate::llama`]).
    Llama,
    /// The ddpm-mnist CNN noise predictor with its DDPM schedule
    /// ([`crate::diffusion::ddpm_mnist`]).
    DdpmMnist,
    /// A diffusers `UNet2DModel` with a DDIM scheduler
    /// ([`crate::diffusion::unet2d`]).
    UNet2D,
    /// A Stable-Diffusion-shaped pipeline (tiny-sd): CLIP tokenizer and text
    /// encoder, conditional UNet, VAE decoder, DDIM ([`crate::diffusion::sd`]).
    StableDiffusion,
}

impl Arch {
    /// Every architecture, in id order.
    pub const ALL: [Arch; 4] = [
        Arch::Llama,
        Arch::DdpmMnist,
        Arch::UNet2D,
        Arch::StableDiffusion,
    ];

    /// The header's id of this architecture.
    pub const fn id(self) -> u32 {
        match self {
            Arch::Llama => 1,
            Arch::DdpmMnist => 2,
            Arch::UNet2D => 3,
            Arch::StableDiffusion => 4,
        }
    }

    /// The architecture of header id `id`, if this build has it.
    pub fn from_id(id: u32) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.id() == id)
    }

    /// A short name for listings.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::DdpmMnist => "ddpm-mnist",
            Arch::UNet2D => "unet2d",
            Arch::StableDiffusion => "stable-diffusion",
        }
    }
}

/// Data type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// Little-endian `i32` (fixed point; `exp` gives the fractional bits).
    I32,
    /// Quantized weights.
    Quant(QType),
    /// Raw bytes (a tokenizer).
    U8,
}

impl DType {
    /// The dtype of table code `code`.
    pub(crate) fn from_code(code: u32) -> Option<DType> {
        match code {
            1 => Some(DType::I32),
            2 => Some(DType::Quant(QType::Q8)),
            3 => Some(DType::Quant(QType::Q4)),
            4 => Some(DType::U8),
            _ => None,
        }
    }

    /// The table code of this dtype.
    pub(crate) fn code(self) -> u32 {
        match self {
            DType::I32 => 1,
            DType::Quant(QType::Q8) => 2,
            DType::Quant(QType::Q4) => 3,
            DType::U8 => 4,
        }
    }

    /// A short name for listings.
    pub fn name(self) -> &'static str {
        match self {
            DType::I32 => "i32",
            DType::Quant(q) => q.name(),
            DType::U8 => "u8",
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

/// A parsed, validated model file borrowing its bytes: the header, the raw config
/// words (each family reads its typed config from them) and the tensor table.
#[derive(Debug, Clone)]
pub struct ModelFile<'a> {
    /// The whole file.
    pub bytes: &'a [u8],
    /// The architecture.
    pub arch: Arch,
    /// The config words.
    pub config: Vec<u32>,
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
        let hdr = |i| u32_at(bytes, i).ok_or(FormatError::TooShort(bytes.len()));
        let hdr64 = |i| u64_at(bytes, i).ok_or(FormatError::TooShort(bytes.len()));
        let version = hdr(at::VERSION)?;
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version, VERSION));
        }
        let len = bytes.len() as u64;
        let file_len = hdr64(at::FILE_LEN)?;
        if file_len != len {
            return Err(FormatError::LengthMismatch {
                expected: file_len,
                actual: len,
            });
        }
        let id = hdr(at::ARCH)?;
        let arch = Arch::from_id(id).ok_or(FormatError::UnsupportedArch(id))?;
        let n_tensors = u64::from(hdr(at::TENSORS)?);
        let words = u64::from(hdr(at::WORDS)?);
        let table_off = hdr64(at::TABLE)?;
        let data_off = hdr64(at::DATA)?;
        // words <= 1024 is checked first, so the sum cannot overflow.
        if words > MAX_CONFIG_WORDS as u64
            || HEADER_LEN as u64 + words * 4 > table_off
            || table_off > data_off
            || data_off > len
        {
            return Err(FormatError::SectionOutOfBounds("header"));
        }
        let config = slice_at(bytes, HEADER_LEN as u64, words * 4)
            .ok_or(FormatError::SectionOutOfBounds("config"))?
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let table = n_tensors
            .checked_mul(ENTRY_LEN as u64)
            .filter(|&l| table_off.checked_add(l).is_some_and(|end| end <= data_off))
            .and_then(|l| slice_at(bytes, table_off, l))
            .ok_or(FormatError::SectionOutOfBounds("tensor table"))?;
        let mut tensors = Vec::with_capacity(table.len() / ENTRY_LEN);
        for e in table.chunks_exact(ENTRY_LEN) {
            tensors.push(parse_entry(bytes, e, data_off)?);
        }
        check_disjoint(&tensors)?;
        Ok(ModelFile {
            bytes,
            arch,
            config,
            tensors,
        })
    }

    /// The architecture named by the header of `bytes`, without parsing the rest
    /// (`None` for bytes that are not a model file of this version, or of an
    /// architecture this build does not have).
    pub fn peek_arch(bytes: &[u8]) -> Option<Arch> {
        if bytes.len() < HEADER_LEN || bytes[..8] != MAGIC {
            return None;
        }
        if u32_at(bytes, at::VERSION)? != VERSION {
            return None;
        }
        Arch::from_id(u32_at(bytes, at::ARCH)?)
    }

    /// `WrongArch` unless the file holds an `arch` model.
    pub fn expect_arch(&self, arch: Arch) -> Result<(), FormatError> {
        if self.arch == arch {
            Ok(())
        } else {
            Err(FormatError::WrongArch {
                expected: arch,
                found: self.arch,
            })
        }
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo<'a>, FormatError> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| FormatError::MissingTensor(name.to_string()))
    }

    /// The quantized matrix `name` of shape `(rows, cols)`.
    pub fn qmatrix(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<QMatrix<'a>, FormatError> {
        let t = self.tensor(name)?;
        let m = t
            .as_qmatrix()
            .ok_or_else(|| bad_tensor(name, "expected a quantized matrix"))?;
        if u64::from(m.rows) != rows as u64 || u64::from(m.cols) != cols as u64 {
            return Err(bad_tensor(name, "shape does not match the config"));
        }
        Ok(m)
    }

    /// The `i32` tensor `name` with `len` elements and `frac` fractional bits,
    /// decoded.
    pub fn i32s(&self, name: &str, len: u64, frac: i32) -> Result<Vec<i32>, FormatError> {
        let t = self.tensor(name)?;
        if t.dtype != DType::I32 || t.exp != frac || u64::from(t.rows) * u64::from(t.cols) != len {
            return Err(bad_tensor(
                name,
                "expected an i32 tensor of the config's length and precision",
            ));
        }
        Ok(t.to_i32_vec())
    }

    /// The bytes of the `u8` tensor `name` (a tokenizer).
    pub fn u8s(&self, name: &str) -> Result<&'a [u8], FormatError> {
        let t = self.tensor(name)?;
        if t.dtype != DType::U8 {
            return Err(bad_tensor(name, "expected a u8 tensor"));
        }
        Ok(t.data)
    }

    /// A reader over the config words (see [`ConfigReader`]).
    pub fn config_reader(&self) -> ConfigReader<'_> {
        ConfigReader::new(&self.config)
    }
}

/// Reads a typed config from its words, field by field in the order its writer
/// used ([`ConfigWriter`]): no word indices, and a config with words missing or
/// left over is refused.
#[derive(Debug, Clone)]
pub struct ConfigReader<'c> {
    words: &'c [u32],
}

impl<'c> ConfigReader<'c> {
    /// A reader over `words`.
    pub fn new(words: &'c [u32]) -> ConfigReader<'c> {
        ConfigReader { words }
    }

    /// The next word.
    pub fn u32(&mut self) -> Result<u32, FormatError> {
        let (&w, rest) = self
            .words
            .split_first()
            .ok_or(FormatError::BadConfig("config too short"))?;
        self.words = rest;
        Ok(w)
    }

    /// The next word as a flag: `0` or `1`.
    pub fn flag(&mut self) -> Result<bool, FormatError> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(FormatError::BadConfig("a config flag is neither 0 nor 1")),
        }
    }

    /// The next `n` words (refused before anything is reserved when fewer are
    /// left).
    pub fn list(&mut self, n: u32) -> Result<Vec<u32>, FormatError> {
        if u64::from(n) > self.words.len() as u64 {
            return Err(FormatError::BadConfig("config too short"));
        }
        let (head, rest) = self.words.split_at(n as usize);
        self.words = rest;
        Ok(head.to_vec())
    }

    /// The end of the config: no word may be left.
    pub fn finish(self) -> Result<(), FormatError> {
        if self.words.is_empty() {
            Ok(())
        } else {
            Err(FormatError::BadConfig(
                "config has words past its last field",
            ))
        }
    }
}

/// Writes a typed config as words, field by field (read back by
/// [`ConfigReader`]).
#[derive(Debug, Clone, Default)]
pub struct ConfigWriter {
    words: Vec<u32>,
}

impl ConfigWriter {
    /// An empty config.
    pub fn new() -> ConfigWriter {
        ConfigWriter::default()
    }

    /// Append a word.
    pub fn u32(&mut self, w: u32) -> &mut ConfigWriter {
        self.words.push(w);
        self
    }

    /// Append a flag (`0` or `1`).
    pub fn flag(&mut self, b: bool) -> &mut ConfigWriter {
        self.words.push(u32::from(b));
        self
    }

    /// Append words.
    pub fn list(&mut self, ws: &[u32]) -> &mut ConfigWriter {
        self.words.extend_from_slice(ws);
        self
    }

    /// The words.
    pub fn finish(&mut self) -> Vec<u32> {
        core::mem::take(&mut self.words)
    }
}

/// Builds a model file in memory (used by the offline tool and by tests).
#[derive(Debug)]
pub struct ModelWriter {
    arch: Arch,
    config: Vec<u32>,
    entries: Vec<PendingTensor>,
}

impl ModelWriter {
    /// Start a file of architecture `arch` with its config words.
    pub fn new(arch: Arch, config: Vec<u32>) -> ModelWriter {
        ModelWriter {
            arch,
            config,
            entries: Vec::new(),
        }
    }

    /// Add an `i32` tensor `(rows, cols)` with `frac` fractional bits.
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

    /// Add a `u8` tensor of one row (a tokenizer: [`TOKENIZER`]).
    pub fn add_u8(&mut self, name: &str, bytes: &[u8]) {
        self.entries.push(PendingTensor::u8(name, bytes));
    }

    /// Lay the file out and return its bytes.
    pub fn finish(self) -> Vec<u8> {
        let table_off = align(HEADER_LEN + self.config.len() * 4);
        let data_off = align(table_off + self.entries.len() * ENTRY_LEN);
        let (offsets, end) = data_layout(&self.entries, data_off);
        let mut out = alloc::vec![0u8; end];
        out[..8].copy_from_slice(&MAGIC);
        put_u32(&mut out, at::VERSION, VERSION);
        put_u32(&mut out, at::ARCH, self.arch.id());
        put_u32(&mut out, at::TENSORS, self.entries.len() as u32);
        put_u32(&mut out, at::WORDS, self.config.len() as u32);
        put_u64(&mut out, at::TABLE, table_off as u64);
        put_u64(&mut out, at::DATA, data_off as u64);
        put_u64(&mut out, at::FILE_LEN, end as u64);
        for (i, w) in self.config.iter().enumerate() {
            put_u32(&mut out, HEADER_LEN + 4 * i, *w);
        }
        write_table(&mut out, &self.entries, &offsets, table_off);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = ModelWriter::new(Arch::DdpmMnist, alloc::vec![7, 9]);
        w.add_i32(
            "a.very.long.name.that.is.longer.than.forty.eight.bytes.for.sure.bias",
            1,
            3,
            16,
            &[1, -2, 3],
        );
        w.add_quant(
            "conv.weight",
            QType::Q8,
            2,
            3,
            3,
            20,
            &[5, -6],
            &[1, 2, 3, 4, 5, 6],
        );
        w.add_u8(TOKENIZER, b"pieces");
        w.finish()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let f = ModelFile::parse(&bytes).unwrap();
        assert_eq!(f.arch, Arch::DdpmMnist);
        assert_eq!(ModelFile::peek_arch(&bytes), Some(Arch::DdpmMnist));
        assert_eq!(f.config, alloc::vec![7, 9]);
        let name = "a.very.long.name.that.is.longer.than.forty.eight.bytes.for.sure.bias";
        assert_eq!(f.i32s(name, 3, 16).unwrap(), alloc::vec![1, -2, 3]);
        assert!(f.i32s(name, 3, 15).is_err());
        let m = f.qmatrix("conv.weight", 2, 3).unwrap();
        assert_eq!(m.exp, 20);
        assert!(f.qmatrix("conv.weight", 3, 2).is_err());
        assert_eq!(f.u8s(TOKENIZER).unwrap(), b"pieces");
        assert!(f.u8s("conv.weight").is_err());
        assert!(matches!(
            f.tensor("nope"),
            Err(FormatError::MissingTensor(_))
        ));
    }

    #[test]
    fn configs_are_read_field_by_field() {
        let words = ConfigWriter::new().u32(3).flag(true).list(&[4, 5]).finish();
        let mut r = ConfigReader::new(&words);
        assert_eq!(r.u32(), Ok(3));
        assert_eq!(r.flag(), Ok(true));
        assert!(r.clone().list(3).is_err());
        assert_eq!(r.list(1), Ok(alloc::vec![4]));
        assert!(r.clone().finish().is_err());
        assert_eq!(r.u32(), Ok(5));
        assert!(r.clone().u32().is_err());
        assert_eq!(r.finish(), Ok(()));
        assert!(ConfigReader::new(&[2]).flag().is_err());
    }

    #[test]
    fn arch_ids_round_trip() {
        for a in Arch::ALL {
            assert_eq!(Arch::from_id(a.id()), Some(a));
        }
        assert_eq!(Arch::from_id(0), None);
        assert_eq!(Arch::from_id(5), None);
    }

    #[test]
    fn corrupt_files_are_errors() {
        let bytes = sample();
        assert!(matches!(
            ModelFile::parse(&bytes[..bytes.len() - 1]),
            Err(FormatError::LengthMismatch { .. })
        ));
        let mut b = bytes.clone();
        b[0] = b'X';
        assert_eq!(ModelFile::parse(&b).unwrap_err(), FormatError::BadMagic);
        assert_eq!(ModelFile::peek_arch(&b), None);
        let mut b = bytes.clone();
        b[12] = 99;
        assert_eq!(
            ModelFile::parse(&b).unwrap_err(),
            FormatError::UnsupportedArch(99)
        );
        let mut b = bytes.clone();
        b[8] = 1; // version 1
        assert_eq!(
            ModelFile::parse(&b).unwrap_err(),
            FormatError::UnsupportedVersion(1, VERSION)
        );
        let mut b = bytes.clone();
        b[16] = 200; // too many tensors for the table
        assert!(ModelFile::parse(&b).is_err());
        for cut in [0, 10, 63] {
            assert!(ModelFile::parse(&bytes[..cut]).is_err());
        }
    }
}
