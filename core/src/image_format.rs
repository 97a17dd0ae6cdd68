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

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::FormatError;
use crate::format::{DType, TensorInfo, ALIGN};
use crate::quant::{QMatrix, QType, MANTISSA_LIMIT, MAX_COLS, MAX_GROUP};

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

fn dtype_from_code(code: u32) -> Option<DType> {
    match code {
        1 => Some(DType::I32),
        2 => Some(DType::Quant(QType::Q8)),
        3 => Some(DType::Quant(QType::Q4)),
        _ => None,
    }
}

fn dtype_code(d: DType) -> u32 {
    match d {
        DType::I32 => 1,
        DType::Quant(QType::Q8) => 2,
        DType::Quant(QType::Q4) => 3,
    }
}

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

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
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
        let n_tensors = u32_at(bytes, 16).ok_or(short.clone())? as usize;
        let words = u32_at(bytes, 20).ok_or(short.clone())? as usize;
        let table_off = usize::try_from(u64_at(bytes, 24).ok_or(short.clone())?)
            .map_err(|_| FormatError::SectionOutOfBounds("tensor table"))?;
        let data_off = usize::try_from(u64_at(bytes, 32).ok_or(short)?)
            .map_err(|_| FormatError::SectionOutOfBounds("data"))?;
        if words > MAX_CONFIG_WORDS
            || HEADER_LEN + words * 4 > table_off
            || table_off > data_off
            || data_off > bytes.len()
        {
            return Err(FormatError::SectionOutOfBounds("header"));
        }
        let config = bytes[HEADER_LEN..HEADER_LEN + words * 4]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let table_len = n_tensors
            .checked_mul(ENTRY_LEN)
            .filter(|&l| table_off + l <= data_off)
            .ok_or(FormatError::SectionOutOfBounds("tensor table"))?;
        let mut tensors = Vec::with_capacity(n_tensors);
        for e in bytes[table_off..table_off + table_len].chunks_exact(ENTRY_LEN) {
            tensors.push(parse_entry(bytes, e, data_off)?);
        }
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
        if m.rows as usize != rows || m.cols as usize != cols {
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
        if t.rows as usize * t.cols as usize != len {
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

fn bad_tensor(name: &str, reason: &'static str) -> FormatError {
    FormatError::BadTensor {
        name: name.to_string(),
        reason,
    }
}

fn expected_len(dtype: DType, rows: u32, cols: u32, group: u32) -> Option<usize> {
    let (r, c) = (rows as usize, cols as usize);
    match dtype {
        DType::I32 => r.checked_mul(c)?.checked_mul(4),
        DType::Quant(q) => {
            let groups = c.div_ceil(group as usize);
            r.checked_mul(groups)?
                .checked_mul(4)?
                .checked_add(r.checked_mul(q.row_bytes(cols))?)
        }
    }
}

fn parse_entry<'a>(
    bytes: &'a [u8],
    e: &'a [u8],
    data_off: usize,
) -> Result<TensorInfo<'a>, FormatError> {
    let name_raw = &e[..NAME_LEN];
    let end = name_raw.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    let name = core::str::from_utf8(&name_raw[..end]).map_err(|_| FormatError::BadTensor {
        name: String::from("<non-UTF-8>"),
        reason: "name is not UTF-8",
    })?;
    let bad = |reason| bad_tensor(name, reason);
    let field = |at| u32_at(e, NAME_LEN + at).ok_or_else(|| bad("entry truncated"));
    let dtype = dtype_from_code(field(0)?).ok_or_else(|| bad("unknown dtype"))?;
    let group = field(4)?;
    let exp = field(8)? as i32;
    let rows = field(12)?;
    let cols = field(16)?;
    let offset = u64_at(e, NAME_LEN + 24).ok_or_else(|| bad("entry truncated"))?;
    let len = u64_at(e, NAME_LEN + 32).ok_or_else(|| bad("entry truncated"))?;
    if rows == 0 || cols == 0 || cols > MAX_COLS && dtype != DType::I32 {
        return Err(bad("bad shape"));
    }
    if !(-64..=64).contains(&exp) {
        return Err(bad("exponent out of range"));
    }
    if let DType::Quant(q) = dtype {
        if !(1..=MAX_GROUP).contains(&group) || q == QType::Q4 && !group.is_multiple_of(2) {
            return Err(bad("group size must be 1..=256 (even for q4)"));
        }
    }
    let start = usize::try_from(offset).map_err(|_| bad("offset out of range"))?;
    let len = usize::try_from(len).map_err(|_| bad("length out of range"))?;
    if start < data_off || !start.is_multiple_of(ALIGN) {
        return Err(bad("offset not in the data section or not 64-byte aligned"));
    }
    if expected_len(dtype, rows, cols, group) != Some(len) {
        return Err(bad("byte length does not match dtype and shape"));
    }
    let data = start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(|| bad("data lies outside the file"))?;
    let info = TensorInfo {
        name,
        dtype,
        group,
        exp,
        rows,
        cols,
        offset,
        data,
    };
    if let Some(m) = info.as_qmatrix() {
        let ok = m.scales.chunks_exact(4).all(|b| {
            i32::from_le_bytes([b[0], b[1], b[2], b[3]]).unsigned_abs() < MANTISSA_LIMIT as u32
        });
        if !ok {
            return Err(bad("scale mantissa of 2^24 or more"));
        }
    }
    Ok(info)
}

/// A tensor waiting for [`ImageModelWriter::finish`]: name, dtype, group, exp,
/// rows, cols, data.
type PendingTensor = (String, DType, u32, i32, u32, u32, Vec<u8>);

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
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.entries
            .push((name.to_string(), DType::I32, 0, frac, rows, cols, data));
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
        let mut data: Vec<u8> = mantissas.iter().flat_map(|m| m.to_le_bytes()).collect();
        data.extend_from_slice(values);
        self.entries.push((
            name.to_string(),
            DType::Quant(qtype),
            group,
            exp,
            rows,
            cols,
            data,
        ));
    }

    /// Lay the file out and return its bytes.
    pub fn finish(self) -> Vec<u8> {
        let align = |x: usize| x.div_ceil(ALIGN) * ALIGN;
        let table_off = align(HEADER_LEN + self.config.len() * 4);
        let data_off = align(table_off + self.entries.len() * ENTRY_LEN);
        let mut offsets = Vec::with_capacity(self.entries.len());
        let mut end = data_off;
        for e in &self.entries {
            offsets.push(end);
            end = align(end + e.6.len());
        }
        let mut out = alloc::vec![0u8; end];
        let put32 =
            |o: &mut [u8], at: usize, v: u32| o[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put64 =
            |o: &mut [u8], at: usize, v: u64| o[at..at + 8].copy_from_slice(&v.to_le_bytes());
        out[..8].copy_from_slice(&MAGIC);
        put32(&mut out, 8, VERSION);
        put32(&mut out, 12, self.arch);
        put32(&mut out, 16, self.entries.len() as u32);
        put32(&mut out, 20, self.config.len() as u32);
        put64(&mut out, 24, table_off as u64);
        put64(&mut out, 32, data_off as u64);
        put64(&mut out, 40, end as u64);
        for (i, w) in self.config.iter().enumerate() {
            put32(&mut out, HEADER_LEN + 4 * i, *w);
        }
        for (i, (e, &off)) in self.entries.iter().zip(&offsets).enumerate() {
            let at = table_off + i * ENTRY_LEN;
            let name = e.0.as_bytes();
            let n = name.len().min(NAME_LEN);
            out[at..at + n].copy_from_slice(&name[..n]);
            put32(&mut out, at + NAME_LEN, dtype_code(e.1));
            put32(&mut out, at + NAME_LEN + 4, e.2);
            put32(&mut out, at + NAME_LEN + 8, e.3 as u32);
            put32(&mut out, at + NAME_LEN + 12, e.4);
            put32(&mut out, at + NAME_LEN + 16, e.5);
            put64(&mut out, at + NAME_LEN + 24, off as u64);
            put64(&mut out, at + NAME_LEN + 32, e.6.len() as u64);
            out[off..off + e.6.len()].copy_from_slice(&e.6);
        }
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
