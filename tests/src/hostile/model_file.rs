//! What the text and image model builders share: the header offsets of the one
//! model file format, a table entry's fields, and a zero quantized matrix.

use oracle_core::format::{ModelWriter, ENTRY_LEN, NAME_LEN};
use oracle_core::quant::QType;

/// Header field offsets of the model file.
pub(crate) const N_TENSORS: usize = 16;
/// Offset of the config word count.
pub(crate) const WORDS: usize = 20;
/// Offset of the tensor table's offset.
pub(crate) const TABLE_OFF: usize = 24;
/// Offset of the data section's offset.
pub(crate) const DATA_OFF: usize = 32;
/// Offset of the file length.
pub(crate) const FILE_LEN: usize = 40;
/// Where the config words start.
pub(crate) const CONFIG: usize = 64;

/// The little-endian `u64` at `at`.
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The tensor count of the header.
pub(crate) fn tensor_count(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[N_TENSORS..N_TENSORS + 4].try_into().expect("4 bytes"))
}

/// Offset of table entry `i`'s field at `field` (past the name).
pub(crate) fn entry_field(b: &[u8], i: usize, field: usize) -> usize {
    u64_at(b, TABLE_OFF) as usize + i * ENTRY_LEN + NAME_LEN + field
}

/// A zero quantized matrix (Q8, one group per row up to 256 columns, mantissas 1).
pub(crate) fn zero_matrix(w: &mut ModelWriter, name: &str, rows: u32, cols: u32) {
    let group = cols.min(256);
    let groups = cols.div_ceil(group);
    w.add_quant(
        name,
        QType::Q8,
        rows,
        cols,
        group,
        0,
        &vec![1; (rows * groups) as usize],
        &vec![0; (rows * cols) as usize],
    );
}
