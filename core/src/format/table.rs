//! The model file's tensor table ([`crate::format`]): bounds-checked
//! little-endian reads and writes, the checked parse of one table entry and the
//! writing of entries and their data.
//!
//! An entry is the tensor name ([`NAME_LEN`] bytes, UTF-8, zero-padded), then
//! dtype `u32`, group `u32`, exp `i32`, rows `u32`, cols `u32`, reserved `u32`,
//! offset `u64`, byte length `u64`, 8 reserved bytes ([`ENTRY_LEN`] in all).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{DType, TensorInfo, ALIGN, ENTRY_LEN, NAME_LEN};
use crate::error::FormatError;
use crate::quant::{QType, MANTISSA_LIMIT, MAX_COLS, MAX_GROUP};

/// Where the fields after the name start, relative to the end of the name.
const DTYPE: usize = 0;
const GROUP: usize = 4;
const EXP: usize = 8;
const ROWS: usize = 12;
const COLS: usize = 16;
const OFFSET: usize = 24;
const LEN: usize = 32;

/// The little-endian `u32` at `at`, if `b` holds it.
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The little-endian `u64` at `at`, if `b` holds it.
pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// Write `v` little-endian at `at`.
pub(crate) fn put_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Write `v` little-endian at `at`.
pub(crate) fn put_u64(out: &mut [u8], at: usize, v: u64) {
    out[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A `BadTensor` error for `name`.
pub(crate) fn bad_tensor(name: &str, reason: &'static str) -> FormatError {
    FormatError::BadTensor {
        name: name.to_string(),
        reason,
    }
}

/// Parse and check the table entry `e` against the
/// whole file `bytes`, whose data section starts at `data_off`: the shape, the
/// exponent, the group size, the data's place and length, and every scale
/// mantissa against the overflow bound.
///
/// Every offset and length from the file is checked in `u64` before it becomes a
/// slice index, so no value wraps on a 32-bit target.
pub(crate) fn parse_entry<'a>(
    bytes: &'a [u8],
    e: &'a [u8],
    data_off: u64,
) -> Result<TensorInfo<'a>, FormatError> {
    let name_raw = e.get(..NAME_LEN).ok_or_else(|| FormatError::BadTensor {
        name: String::from("<truncated>"),
        reason: "entry truncated",
    })?;
    let end = name_raw.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    let name = core::str::from_utf8(&name_raw[..end]).map_err(|_| FormatError::BadTensor {
        name: String::from("<non-UTF-8>"),
        reason: "name is not UTF-8",
    })?;
    let bad = |reason| bad_tensor(name, reason);
    let field = |at| u32_at(e, NAME_LEN + at).ok_or_else(|| bad("entry truncated"));
    let dtype = DType::from_code(field(DTYPE)?).ok_or_else(|| bad("unknown dtype"))?;
    let group = field(GROUP)?;
    let exp = field(EXP)? as i32;
    let rows = field(ROWS)?;
    let cols = field(COLS)?;
    let offset = u64_at(e, NAME_LEN + OFFSET).ok_or_else(|| bad("entry truncated"))?;
    let len = u64_at(e, NAME_LEN + LEN).ok_or_else(|| bad("entry truncated"))?;
    // Matrices are bounded by the kernels' widest row; vectors, tables and
    // byte blobs only by the file.
    if rows == 0 || cols == 0 || cols > MAX_COLS && matches!(dtype, DType::Quant(_)) {
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
    if offset < data_off || !offset.is_multiple_of(ALIGN as u64) {
        return Err(bad("offset not in the data section or not 64-byte aligned"));
    }
    if expected_len(dtype, rows, cols, group) != Some(len) {
        return Err(bad("byte length does not match dtype and shape"));
    }
    let data = slice_at(bytes, offset, len).ok_or_else(|| bad("data lies outside the file"))?;
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

/// `BadTensor` unless the tensors' data ranges are disjoint: aliased tensors
/// would let a small file stand for many times its weights (and decode its `i32`
/// tensors many times over), so the weights a model computes with are bounded
/// by its file.
pub(crate) fn check_disjoint(tensors: &[TensorInfo<'_>]) -> Result<(), FormatError> {
    let mut ranges: Vec<(u64, u64, &str)> = tensors
        .iter()
        .map(|t| (t.offset, t.offset + t.data.len() as u64, t.name))
        .collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(bad_tensor(w[1].2, "data overlaps another tensor's"));
        }
    }
    Ok(())
}

/// The `len` bytes of `bytes` at `offset`, when they lie inside it (`u64`
/// arithmetic, checked: an offset near `2^64` cannot wrap around).
pub(crate) fn slice_at(bytes: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let end = offset.checked_add(len)?;
    if end > bytes.len() as u64 {
        return None;
    }
    // Both fit `usize`: they are at most `bytes.len()`.
    bytes.get(offset as usize..end as usize)
}

/// Bytes of a tensor of `dtype` and shape `(rows, cols)`, in `u64` (`None` on
/// overflow).
pub(crate) fn expected_len(dtype: DType, rows: u32, cols: u32, group: u32) -> Option<u64> {
    let (r, c) = (u64::from(rows), u64::from(cols));
    match dtype {
        DType::I32 => r.checked_mul(c)?.checked_mul(4),
        DType::U8 => r.checked_mul(c),
        DType::Quant(q) => {
            if group == 0 {
                return None;
            }
            let groups = c.div_ceil(u64::from(group));
            let row_bytes = match q {
                QType::Q8 => c,
                QType::Q4 => c.div_ceil(2),
            };
            r.checked_mul(groups)?
                .checked_mul(4)?
                .checked_add(r.checked_mul(row_bytes)?)
        }
    }
}

/// A tensor added to a writer, waiting for the file to be laid out.
#[derive(Debug)]
pub(crate) struct PendingTensor {
    name: String,
    dtype: DType,
    group: u32,
    exp: i32,
    rows: u32,
    cols: u32,
    data: Vec<u8>,
}

impl PendingTensor {
    /// An `i32` tensor `(rows, cols)` with `frac` fractional bits.
    pub(crate) fn i32(name: &str, rows: u32, cols: u32, frac: i32, values: &[i32]) -> Self {
        PendingTensor {
            name: name.to_string(),
            dtype: DType::I32,
            group: 0,
            exp: frac,
            rows,
            cols,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// A `u8` tensor of one row.
    pub(crate) fn u8(name: &str, bytes: &[u8]) -> Self {
        PendingTensor {
            name: name.to_string(),
            dtype: DType::U8,
            group: 0,
            exp: 0,
            rows: 1,
            cols: bytes.len() as u32,
            data: bytes.to_vec(),
        }
    }

    /// A quantized tensor: `mantissas` (one per group, row-major), then `values`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn quant(
        name: &str,
        qtype: QType,
        rows: u32,
        cols: u32,
        group: u32,
        exp: i32,
        mantissas: &[i32],
        values: &[u8],
    ) -> Self {
        let mut data: Vec<u8> = mantissas.iter().flat_map(|m| m.to_le_bytes()).collect();
        data.extend_from_slice(values);
        PendingTensor {
            name: name.to_string(),
            dtype: DType::Quant(qtype),
            group,
            exp,
            rows,
            cols,
            data,
        }
    }
}

/// Round `x` up to the data alignment.
pub(crate) fn align(x: usize) -> usize {
    x.div_ceil(ALIGN) * ALIGN
}

/// The aligned data offset of each of `entries` when the data section starts at
/// `data_off`, and the file length after the last one.
pub(crate) fn data_layout(entries: &[PendingTensor], data_off: usize) -> (Vec<usize>, usize) {
    let mut offsets = Vec::with_capacity(entries.len());
    let mut end = data_off;
    for e in entries {
        offsets.push(end);
        end = align(end + e.data.len());
    }
    (offsets, end)
}

/// Write the table of `entries` at `table_off` and their data at `offsets` (from
/// [`data_layout`]) into the file `out`.
pub(crate) fn write_table(
    out: &mut [u8],
    entries: &[PendingTensor],
    offsets: &[usize],
    table_off: usize,
) {
    for (i, (e, &off)) in entries.iter().zip(offsets).enumerate() {
        let at = table_off + i * ENTRY_LEN;
        let name = e.name.as_bytes();
        let n = name.len().min(NAME_LEN);
        out[at..at + n].copy_from_slice(&name[..n]);
        let fields = at + NAME_LEN;
        put_u32(out, fields + DTYPE, e.dtype.code());
        put_u32(out, fields + GROUP, e.group);
        put_u32(out, fields + EXP, e.exp as u32);
        put_u32(out, fields + ROWS, e.rows);
        put_u32(out, fields + COLS, e.cols);
        put_u64(out, fields + OFFSET, off as u64);
        put_u64(out, fields + LEN, e.data.len() as u64);
        out[off..off + e.data.len()].copy_from_slice(&e.data);
    }
}
