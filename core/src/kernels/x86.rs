//! AVX2 twins of [`super::scalar`]: 16 products per `vpmaddwd`, the same integer
//! sums. [`rows4_total`] runs four rows at once so each activation load and each
//! horizontal reduction serves four rows.

use core::arch::x86_64::*;

use crate::quant::{mantissa, q4_value, QMatrix, QType};

/// AVX2 version of [`super::scalar::row_total`].
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn row_total(m: &QMatrix<'_>, r: usize, x: &[i16]) -> i64 {
    let values = m.row_values(r);
    let scales = m.row_scales(r);
    let group = m.group as usize;
    let cols = x.len();
    let mut total: i64 = 0;
    let mut start = 0;
    let mut g = 0;
    while start < cols {
        let end = (start + group).min(cols);
        // Safety: every load below reads `values[j..j+16]` (Q8), `values[j/2..j/2+16]`
        // (Q4) and `x[j..j+16]` or `x[j..j+32]` with the loop bounds keeping `j + 16`
        // (or `j + 32`) at most `end <= cols`, inside both slices.
        let a = unsafe {
            match m.qtype {
                QType::Q8 => group_q8(values, x, start, end),
                QType::Q4 => group_q4(values, x, start, end),
            }
        };
        total += i64::from(a) * i64::from(mantissa(scales, g));
        start = end;
        g += 1;
    }
    total
}

/// One group's exact dot product of Q8 values and activations, `start..end`.
///
/// # Safety
/// The CPU must support AVX2; `end <= values.len()` and `end <= x.len()`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn group_q8(values: &[u8], x: &[i16], start: usize, end: usize) -> i32 {
    let mut acc = _mm256_setzero_si256();
    let mut j = start;
    while j + 16 <= end {
        // Safety: j + 16 <= end <= len of both slices (see the caller).
        unsafe {
            let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(values.as_ptr().add(j).cast()));
            let xv = _mm256_loadu_si256(x.as_ptr().add(j).cast());
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w, xv));
        }
        j += 16;
    }
    let mut a = hsum(acc);
    while j < end {
        a += i32::from(values[j] as i8) * i32::from(x[j]);
        j += 1;
    }
    a
}

/// One group's exact dot product of Q4 values and activations, `start..end`
/// (`start` even).
///
/// # Safety
/// The CPU must support AVX2; `end <= x.len()` and `end.div_ceil(2) <= values.len()`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn group_q4(values: &[u8], x: &[i16], start: usize, end: usize) -> i32 {
    let mut acc = _mm256_setzero_si256();
    let mut j = start;
    let low = _mm_set1_epi8(0x0F);
    let eight = _mm_set1_epi8(8);
    // Groups start at a multiple of the (even) group size, so `j` is even and
    // element j is the low nibble of byte j / 2.
    while j + 32 <= end {
        // Safety: bytes j/2 .. j/2 + 16 hold elements j .. j + 32 <= end.
        unsafe {
            let b = _mm_loadu_si128(values.as_ptr().add(j / 2).cast());
            let lo = _mm_and_si128(b, low);
            let hi = _mm_and_si128(_mm_srli_epi16(b, 4), low);
            let first = _mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), eight);
            let second = _mm_sub_epi8(_mm_unpackhi_epi8(lo, hi), eight);
            let x0 = _mm256_loadu_si256(x.as_ptr().add(j).cast());
            let x1 = _mm256_loadu_si256(x.as_ptr().add(j + 16).cast());
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_cvtepi8_epi16(first), x0));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_cvtepi8_epi16(second), x1));
        }
        j += 32;
    }
    if j + 16 <= end {
        // Safety: bytes j/2 .. j/2 + 8 hold elements j .. j + 16 <= end.
        unsafe {
            let w = q4_sixteen(values.as_ptr().add(j / 2), low, eight);
            let xv = _mm256_loadu_si256(x.as_ptr().add(j).cast());
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w, xv));
        }
        j += 16;
    }
    let mut a = hsum(acc);
    while j < end {
        a += q4_value(values, j) * i32::from(x[j]);
        j += 1;
    }
    a
}

/// The sixteen Q4 weights packed in the 8 bytes at `bytes`, in element order, as
/// `i16` lanes (groups of 16, Q4's default, are one of these).
///
/// # Safety
/// The CPU must support AVX2; `bytes .. bytes + 8` must be readable.
#[target_feature(enable = "avx2")]
unsafe fn q4_sixteen(bytes: *const u8, low: __m128i, eight: __m128i) -> __m256i {
    // Safety: the caller keeps the 8 bytes inside its row.
    let b = unsafe { _mm_loadl_epi64(bytes.cast()) };
    let lo = _mm_and_si128(b, low);
    let hi = _mm_and_si128(_mm_srli_epi16(b, 4), low);
    _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), eight))
}

#[target_feature(enable = "avx2")]
fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// [`row_total`] for rows `r..r + 4` at once: the four group sums are reduced
/// together (`vphaddd`), scaled in `i64` lanes and accumulated; the result equals
/// four calls of the scalar kernel exactly (the bound of [`crate::quant`] holds for
/// every partial sum).
///
/// # Safety
/// The CPU must support AVX2 and `r + 4 <= m.rows`.
#[target_feature(enable = "avx2")]
pub unsafe fn rows4_total(m: &QMatrix<'_>, r: usize, x: &[i16]) -> [i64; 4] {
    let vals = [
        m.row_values(r),
        m.row_values(r + 1),
        m.row_values(r + 2),
        m.row_values(r + 3),
    ];
    let scales = [
        m.row_scales(r),
        m.row_scales(r + 1),
        m.row_scales(r + 2),
        m.row_scales(r + 3),
    ];
    let group = m.group as usize;
    let cols = x.len();
    let mut wide = _mm256_setzero_si256();
    let mut start = 0;
    let mut g = 0;
    let low = _mm_set1_epi8(0x0F);
    let eight = _mm_set1_epi8(8);
    let ahead = 4 * m.qtype.row_bytes(m.cols);
    while start < cols {
        let end = (start + group).min(cols);
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut j = start;
        match m.qtype {
            QType::Q8 => {
                while j + 16 <= end {
                    // Safety: j + 16 <= end <= cols, the length of x and of each row.
                    unsafe {
                        let xv = _mm256_loadu_si256(x.as_ptr().add(j).cast());
                        // The next four rows, same column: a prefetch never faults,
                        // even past the end of the tensor.
                        for row in &vals {
                            _mm_prefetch::<_MM_HINT_T0>(
                                row.as_ptr().wrapping_add(j + ahead).cast(),
                            );
                        }
                        for k in 0..4 {
                            let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(
                                vals[k].as_ptr().add(j).cast(),
                            ));
                            acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(w, xv));
                        }
                    }
                    j += 16;
                }
            }
            QType::Q4 => {
                while j + 32 <= end {
                    // Safety: bytes j/2 .. j/2 + 16 of each row hold elements j .. j + 32
                    // <= end <= cols; x[j .. j + 32] is inside x.
                    unsafe {
                        let x0 = _mm256_loadu_si256(x.as_ptr().add(j).cast());
                        let x1 = _mm256_loadu_si256(x.as_ptr().add(j + 16).cast());
                        for k in 0..4 {
                            let b = _mm_loadu_si128(vals[k].as_ptr().add(j / 2).cast());
                            let lo = _mm_and_si128(b, low);
                            let hi = _mm_and_si128(_mm_srli_epi16(b, 4), low);
                            let first = _mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), eight);
                            let second = _mm_sub_epi8(_mm_unpackhi_epi8(lo, hi), eight);
                            let p0 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(first), x0);
                            let p1 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(second), x1);
                            acc[k] = _mm256_add_epi32(acc[k], _mm256_add_epi32(p0, p1));
                        }
                    }
                    j += 32;
                }
                if j + 16 <= end {
                    // Safety: bytes j/2 .. j/2 + 8 of each row hold elements j .. j + 16
                    // <= end <= cols; x[j .. j + 16] is inside x.
                    unsafe {
                        let xv = _mm256_loadu_si256(x.as_ptr().add(j).cast());
                        for k in 0..4 {
                            let w = q4_sixteen(vals[k].as_ptr().add(j / 2), low, eight);
                            acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(w, xv));
                        }
                    }
                    j += 16;
                }
            }
        }
        let mut tails = [0i32; 4];
        for (k, t) in tails.iter_mut().enumerate() {
            for i in j..end {
                let w = match m.qtype {
                    QType::Q8 => i32::from(vals[k][i] as i8),
                    QType::Q4 => q4_value(vals[k], i),
                };
                *t += w * i32::from(x[i]);
            }
        }
        let s01 = _mm256_hadd_epi32(acc[0], acc[1]);
        let s23 = _mm256_hadd_epi32(acc[2], acc[3]);
        let s = _mm256_hadd_epi32(s01, s23);
        let sums = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        let sums = _mm_add_epi32(sums, _mm_setr_epi32(tails[0], tails[1], tails[2], tails[3]));
        let mants = _mm_setr_epi32(
            mantissa(scales[0], g),
            mantissa(scales[1], g),
            mantissa(scales[2], g),
            mantissa(scales[3], g),
        );
        let prod = _mm256_mul_epi32(_mm256_cvtepi32_epi64(sums), _mm256_cvtepi32_epi64(mants));
        wide = _mm256_add_epi64(wide, prod);
        start = end;
        g += 1;
    }
    let mut out = [0i64; 4];
    // Safety: `out` is 32 bytes, the size of one unaligned 256-bit store.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), wide) };
    out
}
