//! GGUF (versions 2 and 3): metadata, tensor infos, and llama.cpp's LLaMA tensors.
//!
//! Layout: `GGUF` magic, `u32` version, `u64` tensor count, `u64` metadata count,
//! the metadata key/values, the tensor infos (`name`, `u32 n_dims`, `u64 ne[n_dims]`,
//! `u32 type`, `u64 offset`), then padding to `general.alignment` (default 32) and
//! the tensor data, each tensor at its offset from the start of the data.
//!
//! GGUF lists dimensions fastest-varying first: a `(out, in)` row-major matrix has
//! `ne = [in, out]`. llama.cpp stores LLaMA Q/K in Meta's (llama2.c's) RoPE layout,
//! so no permutation is undone here.
//!
//! **Hostile files.** What the parser keeps is bounded by the bytes behind it:
//! metadata arrays are decoded into typed vectors ([`GgufArray`]: a `u8` array
//! takes one byte per element, not a 32-byte value), counts are checked against
//! the bytes left before anything is reserved, and the tensors' byte ranges may
//! not overlap, so the `f32` data decoded from them is at most
//! `4 · 256 / 84` (Q2_K, the densest type) times the file.

use super::ggml_blocks;
use super::reader::{f16_to_f32, f32s_from_le, Reader};
use super::tokenizer::spm_piece_to_bytes;
use super::{dedup_classifier, validate_config, CheckpointError};
use crate::float_model::{FloatConfig, FloatLayer, FloatModel, FloatQkvBias, FloatTokenizer};

/// Default data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Deepest nesting of metadata arrays accepted (the spec allows nesting; this bound
/// keeps a crafted file from exhausting the stack).
const MAX_ARRAY_DEPTH: u32 = 4;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// Type 0.
    U8(u8),
    /// Type 1.
    I8(i8),
    /// Type 2.
    U16(u16),
    /// Type 3.
    I16(i16),
    /// Type 4.
    U32(u32),
    /// Type 5.
    I32(i32),
    /// Type 6.
    F32(f32),
    /// Type 7.
    Bool(bool),
    /// Type 8 (UTF-8).
    String(String),
    /// Type 9: elements of one type.
    Array(GgufArray),
    /// Type 10.
    U64(u64),
    /// Type 11.
    I64(i64),
    /// Type 12.
    F64(f64),
}

impl GgufValue {
    /// The value as a non-negative integer, whatever its integer type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as an `f32` (from `f32` or `f64`).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            GgufValue::F32(v) => Some(v),
            GgufValue::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&GgufArray> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A metadata array, decoded into a vector of its element type (so it takes no
/// more memory than its bytes in the file, strings and nested arrays aside).
#[derive(Debug, Clone, PartialEq)]
pub enum GgufArray {
    /// Of type 0.
    U8(Vec<u8>),
    /// Of type 1.
    I8(Vec<i8>),
    /// Of type 2.
    U16(Vec<u16>),
    /// Of type 3.
    I16(Vec<i16>),
    /// Of type 4.
    U32(Vec<u32>),
    /// Of type 5.
    I32(Vec<i32>),
    /// Of type 6.
    F32(Vec<f32>),
    /// Of type 7.
    Bool(Vec<bool>),
    /// Of type 8.
    String(Vec<String>),
    /// Of type 9 (arrays of arrays).
    Array(Vec<GgufArray>),
    /// Of type 10.
    U64(Vec<u64>),
    /// Of type 11.
    I64(Vec<i64>),
    /// Of type 12.
    F64(Vec<f64>),
}

impl GgufArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            GgufArray::U8(v) => v.len(),
            GgufArray::I8(v) => v.len(),
            GgufArray::U16(v) => v.len(),
            GgufArray::I16(v) => v.len(),
            GgufArray::U32(v) => v.len(),
            GgufArray::I32(v) => v.len(),
            GgufArray::F32(v) => v.len(),
            GgufArray::Bool(v) => v.len(),
            GgufArray::String(v) => v.len(),
            GgufArray::Array(v) => v.len(),
            GgufArray::U64(v) => v.len(),
            GgufArray::I64(v) => v.len(),
            GgufArray::F64(v) => v.len(),
        }
    }

    /// Whether the array is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as strings, for an array of strings.
    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            GgufArray::String(v) => Some(v),
            _ => None,
        }
    }

    /// The elements as `f32`, for an array of `f32` or `f64`.
    pub fn to_f32s(&self) -> Option<Vec<f32>> {
        match self {
            GgufArray::F32(v) => Some(v.clone()),
            GgufArray::F64(v) => Some(v.iter().map(|&x| x as f32).collect()),
            _ => None,
        }
    }
}

/// ggml tensor types this importer decodes (named as ggml names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// 0: `f32`.
    F32,
    /// 1: IEEE half.
    F16,
    /// 2: blocks of 32: `f16 d`, 16 bytes of nibbles; value `(q - 8) * d`.
    Q4_0,
    /// 3: blocks of 32: `f16 d`, `f16 m`, 16 bytes of nibbles; value `q * d + m`.
    Q4_1,
    /// 6: blocks of 32: `f16 d`, `u32` fifth bits, 16 bytes of nibbles.
    Q5_0,
    /// 7: blocks of 32: `f16 d`, `f16 m`, `u32` fifth bits, 16 bytes of nibbles.
    Q5_1,
    /// 8: blocks of 32: `f16 d`, 32 x `i8`; value `q * d`.
    Q8_0,
    /// 10: super-blocks of 256, 2-bit quants with 4-bit scales and mins.
    Q2_K,
    /// 11: super-blocks of 256, 3-bit quants with 6-bit scales.
    Q3_K,
    /// 12: super-blocks of 256, 4-bit quants with 6-bit scales and mins.
    Q4_K,
    /// 13: super-blocks of 256, 5-bit quants with 6-bit scales and mins.
    Q5_K,
    /// 14: super-blocks of 256, 6-bit quants with 8-bit scales.
    Q6_K,
    /// 15: super-blocks of 256, `f32 d`, `i8` quants (and group sums).
    Q8_K,
    /// 20: blocks of 32, non-linear 4-bit levels.
    IQ4_NL,
    /// 23: super-blocks of 256, non-linear 4-bit levels with 6-bit scales.
    IQ4_XS,
    /// 30: bfloat16.
    BF16,
    /// Any other type id (not decoded).
    Other(u32),
}

impl GgmlType {
    /// From the type id in a tensor info.
    pub fn from_id(id: u32) -> Self {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            10 => GgmlType::Q2_K,
            11 => GgmlType::Q3_K,
            12 => GgmlType::Q4_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            15 => GgmlType::Q8_K,
            20 => GgmlType::IQ4_NL,
            23 => GgmlType::IQ4_XS,
            30 => GgmlType::BF16,
            x => GgmlType::Other(x),
        }
    }

    /// `(elements per block, bytes per block)`, or `None` for an unknown type.
    pub fn block(self) -> Option<(u64, u64)> {
        match self {
            GgmlType::F32 => Some((1, 4)),
            GgmlType::F16 | GgmlType::BF16 => Some((1, 2)),
            GgmlType::Q4_0 => Some((32, 18)),
            GgmlType::Q4_1 => Some((32, 20)),
            GgmlType::Q5_0 => Some((32, 22)),
            GgmlType::Q5_1 => Some((32, 24)),
            GgmlType::Q8_0 => Some((32, 34)),
            GgmlType::Q2_K => Some((256, 84)),
            GgmlType::Q3_K => Some((256, 110)),
            GgmlType::Q4_K => Some((256, 144)),
            GgmlType::Q5_K => Some((256, 176)),
            GgmlType::Q6_K => Some((256, 210)),
            GgmlType::Q8_K => Some((256, 292)),
            GgmlType::IQ4_NL => Some((32, 18)),
            GgmlType::IQ4_XS => Some((256, 136)),
            GgmlType::Other(_) => None,
        }
    }
}

/// One tensor info.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions as GGUF stores them: `ne[0]` is the fastest-varying.
    pub ne: Vec<u64>,
    /// Element type.
    pub kind: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl GgufTensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> Option<u64> {
        self.ne.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }
}

/// A parsed GGUF header: metadata and tensor table (the data stays in the bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct GgufFile {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, GgufValue)>,
    /// Tensor infos in file order.
    pub tensors: Vec<GgufTensorInfo>,
    /// Data alignment (`general.alignment` or 32).
    pub alignment: u64,
    /// Byte offset of the first tensor info (just past the metadata).
    pub infos_offset: u64,
    /// Byte offset of the data section in the file.
    pub data_offset: u64,
    /// Total file length (tensor ranges are checked against it).
    pub file_len: u64,
}

fn read_string(r: &mut Reader<'_>) -> Result<String, CheckpointError> {
    let len = r.u64("string length")?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= r.remaining())
        .ok_or(CheckpointError::Truncated {
            what: "string",
            offset: r.pos() as u64,
        })?;
    let b = r.bytes(len, "string")?;
    String::from_utf8(b.to_vec())
        .map_err(|_| CheckpointError::BadHeader(format!("non-UTF-8 string at byte {}", r.pos())))
}

fn read_value(r: &mut Reader<'_>, ty: u32, depth: u32) -> Result<GgufValue, CheckpointError> {
    Ok(match ty {
        0 => GgufValue::U8(r.u8("u8")?),
        1 => GgufValue::I8(r.u8("i8")? as i8),
        2 => GgufValue::U16(r.u16("u16")?),
        3 => GgufValue::I16(r.u16("i16")? as i16),
        4 => GgufValue::U32(r.u32("u32")?),
        5 => GgufValue::I32(r.i32("i32")?),
        6 => GgufValue::F32(r.f32("f32")?),
        7 => match r.u8("bool")? {
            0 => GgufValue::Bool(false),
            1 => GgufValue::Bool(true),
            x => return Err(CheckpointError::BadHeader(format!("bool value {x}"))),
        },
        8 => GgufValue::String(read_string(r)?),
        9 => GgufValue::Array(read_array(r, depth)?),
        10 => GgufValue::U64(r.u64("u64")?),
        11 => GgufValue::I64(r.u64("i64")? as i64),
        12 => GgufValue::F64(r.f64("f64")?),
        x => return Err(CheckpointError::BadHeader(format!("metadata type {x}"))),
    })
}

/// Smallest encoding of one element of metadata type `ty` (strings: the length;
/// arrays: type and length), or `None` for an unknown type.
fn min_element_bytes(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        _ => return None,
    })
}

/// `n` elements read with `read` into a vector reserved for `n` (the caller has
/// checked that the bytes left can hold them).
fn read_n<T>(
    r: &mut Reader<'_>,
    n: usize,
    mut read: impl FnMut(&mut Reader<'_>) -> Result<T, CheckpointError>,
) -> Result<Vec<T>, CheckpointError> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(read(r)?);
    }
    Ok(v)
}

/// A metadata array (after its type tag): element type, length, elements.
fn read_array(r: &mut Reader<'_>, depth: u32) -> Result<GgufArray, CheckpointError> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(CheckpointError::BadHeader(
            "metadata arrays nested too deep".into(),
        ));
    }
    let elem = r.u32("array type")?;
    let n = r.u64("array length")?;
    let min = min_element_bytes(elem)
        .ok_or_else(|| CheckpointError::BadHeader(format!("metadata type {elem}")))?;
    // An array that its bytes cannot hold is refused before anything is reserved.
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| (n as u64).saturating_mul(min) <= r.remaining() as u64)
        .ok_or(CheckpointError::Truncated {
            what: "array",
            offset: r.pos() as u64,
        })?;
    Ok(match elem {
        0 => GgufArray::U8(r.bytes(n, "u8 array")?.to_vec()),
        1 => GgufArray::I8(read_n(r, n, |r| Ok(r.u8("i8")? as i8))?),
        2 => GgufArray::U16(read_n(r, n, |r| r.u16("u16"))?),
        3 => GgufArray::I16(read_n(r, n, |r| Ok(r.u16("i16")? as i16))?),
        4 => GgufArray::U32(read_n(r, n, |r| r.u32("u32"))?),
        5 => GgufArray::I32(read_n(r, n, |r| r.i32("i32"))?),
        6 => GgufArray::F32(read_n(r, n, |r| r.f32("f32"))?),
        7 => GgufArray::Bool(read_n(r, n, |r| match r.u8("bool")? {
            0 => Ok(false),
            1 => Ok(true),
            x => Err(CheckpointError::BadHeader(format!("bool value {x}"))),
        })?),
        8 => GgufArray::String(read_n(r, n, read_string)?),
        9 => GgufArray::Array(read_n(r, n, |r| read_array(r, depth + 1))?),
        10 => GgufArray::U64(read_n(r, n, |r| r.u64("u64"))?),
        11 => GgufArray::I64(read_n(r, n, |r| Ok(r.u64("i64")? as i64))?),
        _ => GgufArray::F64(read_n(r, n, |r| r.f64("f64"))?),
    })
}

impl GgufFile {
    /// Parses the header and tensor table, checking every tensor's byte range
    /// (inside the file, and no two overlapping).
    pub fn parse(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let mut r = Reader::new(bytes);
        if r.bytes(4, "magic")? != b"GGUF" {
            return Err(CheckpointError::BadHeader("GGUF magic".into()));
        }
        let version = r.u32("version")?;
        if !(version == 2 || version == 3) {
            return Err(CheckpointError::UnsupportedVersion {
                format: "GGUF",
                version,
            });
        }
        let n_tensors = r.u64("tensor count")?;
        let n_kv = r.u64("metadata count")?;
        // A key/value takes at least 13 bytes, a tensor info at least 24.
        let too_many = |n: u64, min: u64| n > (bytes.len() as u64) / min;
        if too_many(n_kv, 13) || too_many(n_tensors, 24) {
            return Err(CheckpointError::BadHeader(format!(
                "{n_kv} metadata entries / {n_tensors} tensors cannot fit in {} bytes",
                bytes.len()
            )));
        }
        let mut metadata = Vec::with_capacity(n_kv as usize);
        for _ in 0..n_kv {
            let key = read_string(&mut r)?;
            let ty = r.u32("value type")?;
            let value = read_value(&mut r, ty, 0)?;
            metadata.push((key, value));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => v
                .as_u64()
                .filter(|a| *a > 0 && a.is_power_of_two() && *a <= 1 << 20)
                .ok_or_else(|| CheckpointError::BadHeader(format!("general.alignment = {v:?}")))?,
        };
        let infos_offset = r.pos() as u64;
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = read_string(&mut r)?;
            let n_dims = r.u32("n_dims")?;
            if n_dims > 4 {
                return Err(CheckpointError::BadHeader(format!(
                    "tensor {name}: {n_dims} dims"
                )));
            }
            let mut ne = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                ne.push(r.u64("tensor dim")?);
            }
            let kind = GgmlType::from_id(r.u32("tensor type")?);
            let offset = r.u64("tensor offset")?;
            tensors.push(GgufTensorInfo {
                name,
                ne,
                kind,
                offset,
            });
        }
        let pos = r.pos() as u64;
        let data_offset = pos.div_ceil(alignment) * alignment;
        let file = GgufFile {
            version,
            metadata,
            tensors,
            alignment,
            infos_offset,
            data_offset,
            file_len: bytes.len() as u64,
        };
        if data_offset > file.file_len && !file.tensors.is_empty() {
            return Err(CheckpointError::Truncated {
                what: "tensor data",
                offset: data_offset,
            });
        }
        let mut ranges = Vec::with_capacity(file.tensors.len());
        for t in &file.tensors {
            if let Some(range) = file.byte_range(t)? {
                if range.1 > file.file_len {
                    return Err(CheckpointError::Truncated {
                        what: "tensor data",
                        offset: range.0,
                    });
                }
                if range.1 > range.0 {
                    ranges.push((range, t.name.as_str()));
                }
            }
        }
        // Tensors sharing bytes would be decoded once each: refuse any overlap, so
        // the decoded data is bounded by the file.
        ranges.sort_unstable();
        for w in ranges.windows(2) {
            if w[1].0 .0 < w[0].0 .1 {
                return Err(CheckpointError::BadHeader(format!(
                    "tensors {} and {} overlap (bytes {}..{} and {}..{})",
                    w[0].1, w[1].1, w[0].0 .0, w[0].0 .1, w[1].0 .0, w[1].0 .1
                )));
            }
        }
        Ok(file)
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A tensor info by name.
    pub fn tensor(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Absolute `[start, end)` of a tensor's bytes, or `None` for an unknown type.
    fn byte_range(&self, t: &GgufTensorInfo) -> Result<Option<(u64, u64)>, CheckpointError> {
        let Some((per_block, block_bytes)) = t.kind.block() else {
            return Ok(None);
        };
        let bad = || CheckpointError::BadHeader(format!("tensor {}: bad size {:?}", t.name, t.ne));
        let n = t.n_elements().ok_or_else(bad)?;
        if !t.ne.first().copied().unwrap_or(1).is_multiple_of(per_block) {
            return Err(bad());
        }
        let size = (n / per_block).checked_mul(block_bytes).ok_or_else(bad)?;
        let start = self.data_offset.checked_add(t.offset).ok_or_else(bad)?;
        let end = start.checked_add(size).ok_or_else(bad)?;
        Ok(Some((start, end)))
    }

    /// A tensor's elements dequantized to `f32`, in storage order (`ne[0]` fastest).
    pub fn tensor_f32(
        &self,
        bytes: &[u8],
        t: &GgufTensorInfo,
    ) -> Result<Vec<f32>, CheckpointError> {
        let unsupported = || CheckpointError::UnsupportedType {
            name: t.name.clone(),
            kind: format!("{:?}", t.kind),
        };
        let (start, end) = self.byte_range(t)?.ok_or_else(unsupported)?;
        if bytes.len() as u64 != self.file_len || end > self.file_len {
            return Err(CheckpointError::Truncated {
                what: "tensor data",
                offset: start,
            });
        }
        let data = &bytes[start as usize..end as usize];
        dequantize(t.kind, data).ok_or_else(unsupported)
    }
}

/// Decodes a run of whole blocks of `kind` to `f32`.
pub fn dequantize(kind: GgmlType, data: &[u8]) -> Option<Vec<f32>> {
    let out = match kind {
        GgmlType::F32 => f32s_from_le(data),
        GgmlType::F16 => data
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        GgmlType::BF16 => data
            .chunks_exact(2)
            .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
            .collect(),
        GgmlType::Q8_0 => {
            let mut out = Vec::with_capacity(data.len() / 34 * 32);
            for b in data.chunks_exact(34) {
                let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                out.extend(b[2..].iter().map(|&q| f32::from(q as i8) * d));
            }
            out
        }
        GgmlType::Q4_0 => {
            let mut out = Vec::with_capacity(data.len() / 18 * 32);
            for b in data.chunks_exact(18) {
                let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                let qs = &b[2..];
                out.extend(qs.iter().map(|&q| f32::from((q & 0x0f) as i8 - 8) * d));
                out.extend(qs.iter().map(|&q| f32::from((q >> 4) as i8 - 8) * d));
            }
            out
        }
        GgmlType::Q4_1 => {
            let mut out = Vec::with_capacity(data.len() / 20 * 32);
            for b in data.chunks_exact(20) {
                let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                let m = f16_to_f32(u16::from_le_bytes([b[2], b[3]]));
                let qs = &b[4..];
                out.extend(qs.iter().map(|&q| f32::from(q & 0x0f) * d + m));
                out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
            }
            out
        }
        GgmlType::Other(_) => return None,
        GgmlType::Q5_0 => decoded(kind, data, ggml_blocks::q5_0)?,
        GgmlType::Q5_1 => decoded(kind, data, ggml_blocks::q5_1)?,
        GgmlType::Q2_K => decoded(kind, data, ggml_blocks::q2_k)?,
        GgmlType::Q3_K => decoded(kind, data, ggml_blocks::q3_k)?,
        GgmlType::Q4_K => decoded(kind, data, ggml_blocks::q4_k)?,
        GgmlType::Q5_K => decoded(kind, data, ggml_blocks::q5_k)?,
        GgmlType::Q6_K => decoded(kind, data, ggml_blocks::q6_k)?,
        GgmlType::Q8_K => decoded(kind, data, ggml_blocks::q8_k)?,
        GgmlType::IQ4_NL => decoded(kind, data, ggml_blocks::iq4_nl)?,
        GgmlType::IQ4_XS => decoded(kind, data, ggml_blocks::iq4_xs)?,
    };
    Some(out)
}

/// `data`'s whole blocks of `kind` decoded by `decode` into a vector sized for them.
fn decoded(kind: GgmlType, data: &[u8], decode: fn(&[u8], &mut Vec<f32>)) -> Option<Vec<f32>> {
    let (per_block, block_bytes) = kind.block()?;
    let blocks = data.len() / usize::try_from(block_bytes).ok()?;
    let mut out = Vec::with_capacity(blocks * usize::try_from(per_block).ok()?);
    decode(data, &mut out);
    Some(out)
}

/// The vocabulary in `tokenizer.ggml.tokens` / `tokenizer.ggml.scores`, with `▁`
/// turned into a space (`tokenizer.ggml.model = llama`), or a byte-level BPE
/// vocabulary (`gpt2`: [`super::byte_bpe::from_gguf`]); `None` when the file has
/// no token list.
pub fn tokenizer_from_gguf(file: &GgufFile) -> Result<Option<FloatTokenizer>, CheckpointError> {
    let Some(tokens) = file.get("tokenizer.ggml.tokens") else {
        return Ok(None);
    };
    match file.get("tokenizer.ggml.model").map(|m| m.as_str()) {
        None | Some(Some("llama")) => {}
        Some(Some("gpt2")) => return super::byte_bpe::from_gguf(file).map(Some),
        Some(other) => {
            return Err(CheckpointError::Tokenizer(format!(
                "tokenizer.ggml.model = {other:?} is not supported (llama, gpt2)"
            )))
        }
    }
    let tokens = tokens
        .as_array()
        .and_then(GgufArray::as_strings)
        .ok_or_else(|| {
            CheckpointError::Tokenizer("tokenizer.ggml.tokens is not an array of strings".into())
        })?;
    let pieces: Vec<Vec<u8>> = tokens.iter().map(|s| spm_piece_to_bytes(s)).collect();
    let scores = match file.get("tokenizer.ggml.scores") {
        None => vec![0.0; pieces.len()],
        Some(v) => {
            let s = v.as_array().and_then(GgufArray::to_f32s).ok_or_else(|| {
                CheckpointError::Tokenizer("tokenizer.ggml.scores is not an array of floats".into())
            })?;
            if s.len() != pieces.len() {
                return Err(CheckpointError::Tokenizer(format!(
                    "{} scores for {} tokens",
                    s.len(),
                    pieces.len()
                )));
            }
            s
        }
    };
    if pieces.is_empty() {
        return Err(CheckpointError::Tokenizer("empty vocabulary".into()));
    }
    let max_token_length = pieces.iter().map(Vec::len).max().unwrap_or(0) as u32;
    Ok(Some(FloatTokenizer {
        pieces,
        scores,
        max_token_length,
        byte_bpe: None,
    }))
}

/// Builds a [`FloatModel`] from a GGUF file with llama.cpp's LLaMA tensor names.
pub fn model_from_gguf(file: &GgufFile, bytes: &[u8]) -> Result<FloatModel, CheckpointError> {
    let arch = match file.get("general.architecture") {
        None => "llama".to_string(),
        Some(v) => v
            .as_str()
            .ok_or_else(|| {
                CheckpointError::BadHeader("general.architecture is not a string".into())
            })?
            .to_string(),
    };
    if arch != "llama" {
        return Err(CheckpointError::BadHeader(format!(
            "architecture {arch:?}, expected llama"
        )));
    }
    let int = |key: &str| -> Result<usize, CheckpointError> {
        let full = format!("{arch}.{key}");
        let v = file
            .get(&full)
            .ok_or_else(|| CheckpointError::MissingKey(full.clone()))?;
        v.as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| CheckpointError::BadHeader(format!("{full} = {v:?}")))
    };
    let float = |key: &str, default: f32| -> Result<f32, CheckpointError> {
        let full = format!("{arch}.{key}");
        match file.get(&full) {
            None => Ok(default),
            Some(v) => v
                .as_f32()
                .ok_or_else(|| CheckpointError::BadHeader(format!("{full} = {v:?}"))),
        }
    };
    let tokenizer = tokenizer_from_gguf(file)?;
    let dim = int("embedding_length")?;
    let n_heads = int("attention.head_count")?;
    let vocab_size = match (&tokenizer, file.tensor("token_embd.weight")) {
        (Some(t), _) => t.pieces.len(),
        (None, Some(t)) if t.ne.len() == 2 => {
            usize::try_from(t.ne[1]).map_err(|_| CheckpointError::BadHeader("vocab size".into()))?
        }
        _ => int("vocab_size")?,
    };
    let mut config = FloatConfig {
        dim,
        hidden_dim: int("feed_forward_length")?,
        n_layers: int("block_count")?,
        n_heads,
        n_kv_heads: match file.get(&format!("{arch}.attention.head_count_kv")) {
            None => n_heads,
            Some(_) => int("attention.head_count_kv")?,
        },
        vocab_size,
        seq_len: int("context_length")?,
        norm_eps: float("attention.layer_norm_rms_epsilon", 1e-5)?,
        rope_theta: float("rope.freq_base", 10_000.0)?,
        rope_freq_factors: Vec::new(),
    };
    validate_config(&config)?;
    if let Some(v) = file.get(&format!("{arch}.rope.dimension_count")) {
        if v.as_u64() != Some(config.head_size() as u64) {
            return Err(CheckpointError::BadHeader(format!(
                "{arch}.rope.dimension_count = {v:?}: partial RoPE is not supported (head size {})",
                config.head_size()
            )));
        }
    }
    let c = &config;
    // `shape` is outermost first, as in FloatModel's docs; GGUF's ne is reversed.
    let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, CheckpointError> {
        let t = file
            .tensor(name)
            .ok_or_else(|| CheckpointError::MissingTensor(name.to_string()))?;
        let expected: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let got: Vec<u64> = t.ne.iter().rev().copied().collect();
        if got != expected {
            return Err(CheckpointError::BadShape {
                name: name.to_string(),
                got,
                expected,
            });
        }
        file.tensor_f32(bytes, t)
    };
    // Llama 3's scaled RoPE: llama.cpp stores the per-pair frequency divisors.
    let rope_freq_factors = match file.tensor("rope_freqs.weight") {
        None => Vec::new(),
        Some(_) => {
            let factors = get("rope_freqs.weight", &[c.head_size() / 2])?;
            if let Some(bad) = factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
                return Err(CheckpointError::BadHeader(format!(
                    "rope_freqs.weight holds {bad}: frequency divisors must be positive"
                )));
            }
            factors
        }
    };
    let (dim, hidden, kv_dim, vocab) = (c.dim, c.hidden_dim, c.kv_dim(), c.vocab_size);
    let mut layers = Vec::with_capacity(c.n_layers);
    for i in 0..c.n_layers {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        layers.push(FloatLayer {
            rms_att: get(&n("attn_norm"), &[dim])?,
            wq: get(&n("attn_q"), &[dim, dim])?,
            wk: get(&n("attn_k"), &[kv_dim, dim])?,
            wv: get(&n("attn_v"), &[kv_dim, dim])?,
            wo: get(&n("attn_output"), &[dim, dim])?,
            rms_ffn: get(&n("ffn_norm"), &[dim])?,
            w1: get(&n("ffn_gate"), &[hidden, dim])?,
            w2: get(&n("ffn_down"), &[dim, hidden])?,
            w3: get(&n("ffn_up"), &[hidden, dim])?,
            qkv_bias: match file.tensor(&format!("blk.{i}.attn_q.bias")) {
                None => None,
                Some(_) => {
                    let b = |s: &str, len: usize| get(&format!("blk.{i}.{s}.bias"), &[len]);
                    Some(FloatQkvBias {
                        q: b("attn_q", dim)?,
                        k: b("attn_k", kv_dim)?,
                        v: b("attn_v", kv_dim)?,
                    })
                }
            },
        });
    }
    let token_embedding = get("token_embd.weight", &[vocab, dim])?;
    let wcls = match file.tensor("output.weight") {
        None => None,
        Some(_) => dedup_classifier(&token_embedding, get("output.weight", &[vocab, dim])?),
    };
    let rms_final = get("output_norm.weight", &[dim])?;
    config.rope_freq_factors = rope_freq_factors;
    Ok(FloatModel {
        rms_final,
        config,
        token_embedding,
        layers,
        wcls,
        tokenizer,
    })
}
