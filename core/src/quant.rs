//! Quantized weights and activations.
//!
//! **Weights** are int8 ([`QType::Q8`]) or int4 ([`QType::Q4`]) in groups of
//! `group` consecutive elements of a row. A row whose length is not a multiple of
//! the group size simply ends with a shorter group (stories260K has rows of 172).
//! Each group has a *dyadic* scale `m_g * 2^-exp`: a signed mantissa `|m_g| < 2^24`
//! per group
//! and one exponent `exp` per tensor. Real weight = `q * m_g * 2^-exp`.
//!
//! Layout of a tensor's data (little-endian): `rows * ceil(cols / group)` mantissas
//! as `i32`, row-major; then the quantized values, row-major: Q8 one `i8` per
//! element; Q4 `ceil(cols / 2)` bytes per row, element `2j` in the low nibble and
//! `2j + 1` in the high nibble of byte `j`, each nibble holding `q + 8` for
//! `q` in `[-8, 7]`.
//!
//! **Activations** entering a matrix product are re-expressed as `i16` with one
//! power-of-two scale per vector ([`quantize_activations`]): `x ≈ q * 2^shift` in
//! Q16 units, `|q| <= 32767`. That keeps 15 significant bits of the largest element.
//!
//! **Overflow bound of the products.** For a group, `|sum q_w * q_x| <= G * 128 *
//! 32767 < G * 2^22`, which fits `i32` for `G <= 256` (enforced by the file parser).
//! Multiplied by `|m_g| < 2^24` it is below `G * 2^46`, and the row total is below
//! `cols * 2^46`, which fits `i64` because the parser limits `cols` to `2^16`. So
//! every integer sum is exact and any split of a row (SIMD lanes, threads) gives the
//! same bits.

use crate::fixed::{round_shift, sat_i32, scale_pow2};

/// Largest group size (keeps a group's dot product inside `i32`).
pub const MAX_GROUP: u32 = 256;
/// Largest row length (keeps a row's scaled sum inside `i64`).
pub const MAX_COLS: u32 = 1 << 16;
/// Scale mantissas are below this in magnitude.
pub const MANTISSA_LIMIT: i32 = 1 << 24;

/// A weight tensor's element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    /// int8 values in groups with dyadic scales.
    Q8,
    /// int4 values (`[-8, 7]`) in groups with dyadic scales.
    Q4,
}

impl QType {
    /// Bytes of quantized values in one row of `cols` elements.
    pub const fn row_bytes(self, cols: u32) -> usize {
        match self {
            QType::Q8 => cols as usize,
            QType::Q4 => (cols as usize).div_ceil(2),
        }
    }

    /// A short lowercase name (`q8`, `q4`).
    pub const fn name(self) -> &'static str {
        match self {
            QType::Q8 => "q8",
            QType::Q4 => "q4",
        }
    }
}

/// A borrowed quantized matrix `(rows, cols)`, zero-copy over the model file.
#[derive(Debug, Clone, Copy)]
pub struct QMatrix<'a> {
    /// Element type.
    pub qtype: QType,
    /// Output dimension.
    pub rows: u32,
    /// Input dimension.
    pub cols: u32,
    /// Group size along a row.
    pub group: u32,
    /// Shared scale exponent: a group's scale is `m_g * 2^-exp`.
    pub exp: i32,
    /// `rows * groups_per_row` little-endian `i32` mantissas.
    pub scales: &'a [u8],
    /// Quantized values, `rows * qtype.row_bytes(cols)` bytes.
    pub qs: &'a [u8],
}

impl<'a> QMatrix<'a> {
    /// Groups in one row.
    pub const fn groups_per_row(&self) -> usize {
        (self.cols as usize).div_ceil(self.group as usize)
    }

    /// Bytes of scale data the tensor needs.
    pub const fn scale_bytes(&self) -> usize {
        self.rows as usize * self.groups_per_row() * 4
    }

    /// Bytes of value data the tensor needs.
    pub const fn value_bytes(&self) -> usize {
        self.rows as usize * self.qtype.row_bytes(self.cols)
    }

    /// The mantissa bytes of row `r`.
    #[inline]
    pub fn row_scales(&self, r: usize) -> &'a [u8] {
        let n = self.groups_per_row() * 4;
        &self.scales[r * n..(r + 1) * n]
    }

    /// The value bytes of row `r`.
    #[inline]
    pub fn row_values(&self, r: usize) -> &'a [u8] {
        let n = self.qtype.row_bytes(self.cols);
        &self.qs[r * n..(r + 1) * n]
    }

    /// Row `r` as Q16 activations (used for embedding lookups):
    /// `q * m_g * 2^(16 - exp)`, rounded and saturated.
    pub fn dequantize_row(&self, r: usize, out: &mut [i32]) {
        let scales = self.row_scales(r);
        let values = self.row_values(r);
        let group = self.group as usize;
        for (j, o) in out.iter_mut().enumerate().take(self.cols as usize) {
            let m = i64::from(mantissa(scales, j / group));
            let q = i64::from(self.value(values, j));
            *o = sat_i32(scale_pow2(q * m, self.exp - crate::fixed::FRAC as i32));
        }
    }

    /// Element `j` of a row's value bytes.
    #[inline(always)]
    pub fn value(&self, row_values: &[u8], j: usize) -> i32 {
        match self.qtype {
            QType::Q8 => i32::from(row_values[j] as i8),
            QType::Q4 => q4_value(row_values, j),
        }
    }
}

/// Mantissa `g` of a row's scale bytes.
#[inline(always)]
pub fn mantissa(row_scales: &[u8], g: usize) -> i32 {
    let b = &row_scales[g * 4..g * 4 + 4];
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Element `j` of a Q4 row: the low nibble of byte `j/2` for even `j`, else the high.
#[inline(always)]
pub fn q4_value(row_values: &[u8], j: usize) -> i32 {
    let byte = row_values[j / 2];
    let nibble = if j.is_multiple_of(2) {
        byte & 0x0F
    } else {
        byte >> 4
    };
    i32::from(nibble) - 8
}

/// Re-express Q16 activations as `i16` with one power-of-two scale:
/// `x[i] ≈ out[i] * 2^shift`. Returns `shift`. The shift is the smallest that
/// brings the largest magnitude below `2^15`; values are rounded by the core's rule
/// and clamped to `±32767`.
pub fn quantize_activations(x: &[i32], out: &mut [i16]) -> u32 {
    let max_abs = x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
    let bits = 32 - max_abs.leading_zeros();
    let shift = bits.saturating_sub(15);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = round_shift(i64::from(v), shift).clamp(-32767, 32767) as i16;
    }
    shift
}

/// Turn a row's scaled integer sum into a Q16 output: the sum is
/// `sum_g A_g * m_g`, the value is that times `2^(shift - exp)`.
#[inline(always)]
pub fn finish_row(total: i64, exp: i32, shift: u32) -> i32 {
    sat_i32(scale_pow2(total, exp - shift as i32))
}
