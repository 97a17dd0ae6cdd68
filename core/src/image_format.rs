//! The image model file: the same principles as [`crate::format`] (little-endian,
//! versioned magic, zero-copy parse, every offset and shape checked, 64-byte-aligned
//! tensor data in the layouts of [`crate::quant`]), with long tensor names (diffusers'
//! `down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight`) and an
//! architecture-specific config of `u32` words.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `ORCLIMG\0` |
//! | 8 | 4 | version (`1`) |
//! | 12 | 4 | architecture ([`ARCH_DDPM_MNIST`], [`ARCH_UNET2D`], [`ARCH_SD`]) |
//! | 16 | 4 | number of tensors |
//! | 20 | 4 | config words |
//! | 24 | 8 | tensor table offset |
//! | 32 | 8 | data offset (multiple of 64) |
//! | 40 | 8 | file length |
//! | 48 | 16 | reserved, zero |
//!
//! **Config** at 64: `config words` little-endian `u32` (meaning per architecture).
//!
//! **Tensor table**: one [`ENTRY_LEN`]-byte entry per tensor: name ([`NAME_LEN`]
//! bytes, UTF-8, zero-padded), dtype `u32` (1 = `i32`, 2 = Q8, 3 = Q4), group `u32`,
//! exp `i32` (for `i32` tensors: fractional bits), rows `u32`, cols `u32`, reserved
//! `u32`, offset `u64` (absolute, multiple of 64), byte length `u64`, 8 reserved bytes.
//! Names mirror the checkpoint's; a convolution weight `(cout, cin, k, k)` is stored
//! as `cout` rows of `cin·k·k` columns.

use alloc::string::ToString;
use alloc::vec::Vec;

use crate::error::FormatError;
use crate::format::{DType, TensorInfo};
use crate::quant::{QMatrix, QType};
use crate::tensor_table::{
    align, bad_tensor, check_disjoint, data_layout, parse_entry, put_u32, put_u64, slice_at,
    u32_at, u64_at, write_table, PendingTensor,
};

/// File magic.
pub const MAGIC: [u8; 8] = *b"ORCLIMG\0";
/// The version this build reads and writes.
pub const VERSION: u32 = 1;
/// The ddpm-mnist CNN noise predictor with its DDPM schedule.
pub const ARCH_DDPM_MNIST: u32 = 1;
/// A diffusers `UNet2DModel` with a DDIM scheduler.
pub const ARCH_UNET2D: u32 = 2;
/// A Stable-Diffusion-shaped pipeline (tiny-sd): CLIP tokenizer and text encoder,
/// conditional UNet, VAE decoder, DDIM (see [`crate::diffusion::sd`]).
pub const ARCH_SD: u32 = 3;
/// Header length.
pub const HEADER_LEN: usize = 64;
/// Tensor table entry length.
pub const ENTRY_LEN: usize = 176;
/// Longest tensor name.
pub const NAME_LEN: usize = 128;
/// Most config words.
pub const MAX_CONFIG_WORDS: usize = 1024;

/// A parsed, validated image model file borrowing its bytes.
#[derive(Debug, Clone)]
pub struct ImageModelFile<'a> {
    /// The whole file.
    pub bytes: &'a [u8],
    /// Architecture id.
    pub arch: u32,
    /// Architecture-specific config words.
    pub config: Vec<u32>,
    /// The tensor table.
    pub tensors: Vec<TensorInfo<'a>>,
}

/// Whether `bytes` start with the image model magic.
pub fn is_image_model(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..8] == MAGIC
}

impl<'a> ImageModelFile<'a> {
    /// Parse and validate. Every offset, length and shape is checked, and every
    /// scale mantissa against the overflow bound, so the layers may index freely.
    pub fn parse(bytes: &'a [u8]) -> Result<ImageModelFile<'a>, FormatError> {
        if bytes.len() < HEADER_LEN {
            return Err(FormatError::TooShort(bytes.len()));
        }
        if !is_image_model(bytes) {
            return Err(FormatError::BadMagic);
        }
        let short = FormatError::TooShort(bytes.len());
        let version = u32_at(bytes, 8).ok_or(short.clone())?;
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version, VERSION));
        }
        let file_len = u64_at(bytes, 40).ok_or(short.clone())?;
        if file_len != bytes.len() as u64 {
            return Err(FormatError::LengthMismatch {
                expected: file_len,
                actual: bytes.len() as u64,
            });
        }
        let arch = u32_at(bytes, 12).ok_or(short.clone())?;
        if ![ARCH_DDPM_MNIST, ARCH_UNET2D, ARCH_SD].contains(&arch) {
            return Err(FormatError::UnsupportedArch(arch));
        }
        let n_tensors = u64::from(u32_at(bytes, 16).ok_or(short.clone())?);
        let words = u64::from(u32_at(bytes, 20).ok_or(short.clone())?);
        let table_off = u64_at(bytes, 24).ok_or(short.clone())?;
        let data_off = u64_at(bytes, 32).ok_or(short)?;
        let len = bytes.len() as u64;
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
            tensors.push(parse_entry(bytes, e, NAME_LEN, data_off)?);
        }
        check_disjoint(&tensors)?;
        Ok(ImageModelFile {
            bytes,
            arch,
            config,
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
            .ok_or_else(|| bad_tensor(name, "expected a quantized tensor"))?;
        if u64::from(m.rows) != rows as u64 || u64::from(m.cols) != cols as u64 {
            return Err(bad_tensor(name, "shape differs from the config"));
        }
        Ok(m)
    }

    /// The `i32` tensor `name` with `len` elements and `frac` fractional bits.
    pub fn i32s(&self, name: &str, len: usize, frac: i32) -> Result<Vec<i32>, FormatError> {
        let t = self.tensor(name)?;
        if t.dtype != DType::I32 || t.exp != frac {
            return Err(bad_tensor(
                name,
                "expected an i32 tensor of the agreed fixed point",
            ));
        }
        if u64::from(t.rows) * u64::from(t.cols) != len as u64 {
            return Err(bad_tensor(name, "length differs from the config"));
        }
        Ok(t.to_i32_vec())
    }

    /// Config word `i` (`BadConfig` if absent).
    pub fn word(&self, i: usize) -> Result<u32, FormatError> {
        self.config
            .get(i)
            .copied()
            .ok_or(FormatError::BadConfig("config too short"))
    }
}

/// Builds an image model file in memory (used by the offline tool and by tests).
#[derive(Debug)]
pub struct ImageModelWriter {
    arch: u32,
    config: Vec<u32>,
    entries: Vec<PendingTensor>,
}

impl ImageModelWriter {
    /// Start a file of architecture `arch` with its config words.
    pub fn new(arch: u32, config: Vec<u32>) -> ImageModelWriter {
        ImageModelWriter {
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

    /// Add a quantized tensor (mantissas per group, row-major, then values).
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
        let table_off = align(HEADER_LEN + self.config.len() * 4);
        let data_off = align(table_off + self.entries.len() * ENTRY_LEN);
        let (offsets, end) = data_layout(&self.entries, data_off);
        let mut out = alloc::vec![0u8; end];
        out[..8].copy_from_slice(&MAGIC);
        put_u32(&mut out, 8, VERSION);
        put_u32(&mut out, 12, self.arch);
        put_u32(&mut out, 16, self.entries.len() as u32);
        put_u32(&mut out, 20, self.config.len() as u32);
        put_u64(&mut out, 24, table_off as u64);
        put_u64(&mut out, 32, data_off as u64);
        put_u64(&mut out, 40, end as u64);
        for (i, w) in self.config.iter().enumerate() {
            put_u32(&mut out, HEADER_LEN + 4 * i, *w);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = ImageModelWriter::new(ARCH_DDPM_MNIST, alloc::vec![7, 9]);
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
        w.finish()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let f = ImageModelFile::parse(&bytes).unwrap();
        assert_eq!(f.arch, ARCH_DDPM_MNIST);
        assert_eq!(f.config, alloc::vec![7, 9]);
        let name = "a.very.long.name.that.is.longer.than.forty.eight.bytes.for.sure.bias";
        assert_eq!(f.i32s(name, 3, 16).unwrap(), alloc::vec![1, -2, 3]);
        let m = f.qmatrix("conv.weight", 2, 3).unwrap();
        assert_eq!(m.exp, 20);
        assert!(f.qmatrix("conv.weight", 3, 2).is_err());
        assert!(matches!(
            f.tensor("nope"),
            Err(FormatError::MissingTensor(_))
        ));
    }

    #[test]
    fn corrupt_files_are_errors() {
        let bytes = sample();
        assert!(matches!(
            ImageModelFile::parse(&bytes[..bytes.len() - 1]),
            Err(FormatError::LengthMismatch { .. })
        ));
        let mut b = bytes.clone();
        b[0] = b'X';
        assert_eq!(
            ImageModelFile::parse(&b).unwrap_err(),
            FormatError::BadMagic
        );
        let mut b = bytes.clone();
        b[12] = 99;
        assert_eq!(
            ImageModelFile::parse(&b).unwrap_err(),
            FormatError::UnsupportedArch(99)
        );
        let mut b = bytes.clone();
        b[16] = 200; // too many tensors for the table
        assert!(ImageModelFile::parse(&b).is_err());
        for cut in [0, 10, 63] {
            assert!(ImageModelFile::parse(&bytes[..cut]).is_err());
        }
    }
}
