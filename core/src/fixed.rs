//! Fixed-point conventions and the one rounding rule of the core.
//!
//! Activations (the residual stream and every intermediate vector) are `i32` in
//! **Q16.16**: the real value is `x / 2^16`. Probabilities and rotation tables are
//! Q30. Every right shift that drops bits goes through [`round_shift`] (or its
//! 128-bit twin [`round_shift_wide`], which applies the same rule) so that there is
//! exactly one rounding rule in the whole core: **round half up** (towards +inf),
//! computed as `(x + 2^(s-1)) >> s` with an arithmetic shift.
//!
//! Narrowing to `i32` saturates ([`sat_i32`]); nothing in the core wraps silently.

/// Fractional bits of an activation.
pub const FRAC: u32 = 16;
/// `1.0` in Q16.16.
pub const ONE: i32 = 1 << FRAC;
/// Fractional bits of probabilities and RoPE tables.
pub const FRAC30: u32 = 30;
/// `1.0` in Q30.
pub const ONE30: i64 = 1 << FRAC30;

/// Shift `x` right by `s` bits, rounding half up: `floor((x + 2^(s-1)) / 2^s)`.
/// Defined for every `s` (large shifts give `0`, or `-1` for `s = 63` and
/// `x < -2^62`, as the formula says); exact for every `x`, no overflow.
#[inline(always)]
pub const fn round_shift(x: i64, s: u32) -> i64 {
    if s == 0 {
        x
    } else if s >= 63 {
        // (x + 2^(s-1)) >> s for |x| < 2^63 is 0 unless x is below -2^(s-1).
        if x < -(1i64 << 62) && s == 63 {
            -1
        } else {
            0
        }
    } else {
        // floor((x + 2^(s-1)) / 2^s) without forming the sum (no overflow).
        (x >> s) + ((x >> (s - 1)) & 1)
    }
}

/// [`round_shift`] for `i128` intermediates (norms, attention dots): the same rule.
#[inline(always)]
pub const fn round_shift_wide(x: i128, s: u32) -> i128 {
    if s == 0 {
        x
    } else if s >= 127 {
        if x < -(1i128 << 126) && s == 127 {
            -1
        } else {
            0
        }
    } else {
        (x >> s) + ((x >> (s - 1)) & 1)
    }
}

/// Shift left by `s`, saturating at the `i64` range (used where a scale exponent is
/// coarser than the target format).
#[inline(always)]
pub const fn sat_shl(x: i64, s: u32) -> i64 {
    if x == 0 {
        return 0;
    }
    if s >= 63 {
        return if x > 0 { i64::MAX } else { i64::MIN };
    }
    let limit = i64::MAX >> s;
    if x > limit {
        i64::MAX
    } else if x < -limit {
        i64::MIN
    } else {
        x << s
    }
}

/// Scale `x` by `2^-s` for any signed `s`: right shifts round per [`round_shift`],
/// left shifts saturate.
#[inline(always)]
pub const fn scale_pow2(x: i64, s: i32) -> i64 {
    if s >= 0 {
        round_shift(x, s as u32)
    } else {
        sat_shl(x, s.unsigned_abs())
    }
}

/// Narrow to `i32`, saturating.
#[inline(always)]
pub const fn sat_i32(x: i64) -> i32 {
    if x > i32::MAX as i64 {
        i32::MAX
    } else if x < i32::MIN as i64 {
        i32::MIN
    } else {
        x as i32
    }
}

/// Narrow an `i128` to `i32`, saturating.
#[inline(always)]
pub const fn sat_i32_wide(x: i128) -> i32 {
    if x > i32::MAX as i128 {
        i32::MAX
    } else if x < i32::MIN as i128 {
        i32::MIN
    } else {
        x as i32
    }
}

/// Parse a non-negative decimal such as `"0.9"`, `"1"`, `"1.25"` or `".5"` into Q16.16,
/// rounding half up at the 17th fractional bit. Integer only, so every host and the
/// guest turn the same text into the same number. Returns `None` for anything else
/// (signs, exponents, empty strings, values of 32768 or more).
pub fn parse_q16(text: &str) -> Option<u32> {
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(int_part) || !digits_ok(frac_part) {
        return None;
    }
    let mut int_val: u64 = 0;
    for b in int_part.bytes() {
        int_val = int_val * 10 + u64::from(b - b'0');
        if int_val >= 1 << 15 {
            return None;
        }
    }
    // Keep up to 18 fractional digits: num / 10^k exactly, then one rounding.
    let mut num: u128 = 0;
    let mut den: u128 = 1;
    for b in frac_part.bytes().take(18) {
        num = num * 10 + u128::from(b - b'0');
        den *= 10;
    }
    let frac_q16 = ((num << 16) + den / 2) / den;
    let value = (int_val << 16) + frac_q16 as u64;
    u32::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_shift_rounds_half_up() {
        assert_eq!(round_shift(5, 1), 3); // 2.5 -> 3
        assert_eq!(round_shift(-5, 1), -2); // -2.5 -> -2
        assert_eq!(round_shift(4, 1), 2);
        assert_eq!(round_shift(-6, 2), -1); // -1.5 -> -1
        assert_eq!(round_shift(7, 0), 7);
        assert_eq!(round_shift(i64::MAX, 1), 1 << 62);
        assert_eq!(round_shift(i64::MIN, 63), -1);
        assert_eq!(round_shift(123, 80), 0);
        assert_eq!(round_shift_wide(-5, 1), -2);
    }

    #[test]
    fn scale_pow2_saturates_left() {
        assert_eq!(scale_pow2(3, -2), 12);
        assert_eq!(scale_pow2(1 << 62, -4), i64::MAX);
        assert_eq!(scale_pow2(-(1 << 62), -4), i64::MIN);
        assert_eq!(sat_i32(1 << 40), i32::MAX);
        assert_eq!(sat_i32(-(1 << 40)), i32::MIN);
    }

    #[test]
    fn parse_q16_decimals() {
        assert_eq!(parse_q16("1"), Some(65536));
        assert_eq!(parse_q16("0.5"), Some(32768));
        assert_eq!(parse_q16(".5"), Some(32768));
        assert_eq!(parse_q16("0.9"), Some(58982)); // 58982.4
        assert_eq!(parse_q16("0.00001"), Some(1)); // 0.65536 rounds up
        assert_eq!(parse_q16("2."), Some(131072));
        assert_eq!(parse_q16(""), None);
        assert_eq!(parse_q16("."), None);
        assert_eq!(parse_q16("-1"), None);
        assert_eq!(parse_q16("1e3"), None);
        assert_eq!(parse_q16("40000"), None);
    }
}
