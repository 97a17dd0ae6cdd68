//! Exact integer division without wide division instructions.
//!
//! rv32im divides 32-bit words only: a `u64` division is a ~360-step library call in
//! the VM and a `u128` one far more. The normalisations (RMSNorm, softmax, sigmoid)
//! divide per element, so they use these instead. Both give exactly the quotient
//! `/` gives (floor), so every target computes the same bits; the property tests at
//! the bottom check them against `/`.

/// A divisor `d` in `[1, 2^64)` used for many numerators: one wide division when it
/// is made, then each quotient below `2^32` from two multiplications.
#[derive(Debug, Clone, Copy)]
pub struct Divisor {
    d: u64,
    /// `d * 2^32`: numerators from here up have quotients of at least `2^32`.
    limit: u128,
    /// `floor(2^shift / d)`, in `(2^31, 2^32]`.
    recip: u64,
    /// `bitlen(d) + 31`.
    shift: u32,
}

/// The full product of two `u64`s (written so that a 32-bit target multiplies
/// only the 64-bit halves it has).
#[inline(always)]
fn mul_wide(a: u64, b: u64) -> u128 {
    u128::from(a) * u128::from(b)
}

impl Divisor {
    /// The divisor `d` (`0` is taken as `1`).
    pub fn new(d: u64) -> Divisor {
        let d = d.max(1);
        let shift = (u64::BITS - d.leading_zeros()) + 31;
        Divisor {
            d,
            limit: u128::from(d) << 32,
            recip: ((1u128 << shift) / u128::from(d)) as u64,
            shift,
        }
    }

    /// `floor(n / d)` when it is below `2^32`, else `None`.
    #[inline]
    pub fn quotient_u32(&self, n: u128) -> Option<u32> {
        if n >= self.limit {
            return None;
        }
        // n < 2^(shift + 1) <= 2^96 and recip <= 2^32, so the product fits; it is at
        // most n / d and more than n / d - 2, so the estimate is the quotient or up
        // to two below it.
        let (high, low) = ((n >> 64) as u64, n as u64);
        let product = mul_wide(low, self.recip) + (mul_wide(high, self.recip) << 64);
        let mut q = (product >> self.shift) as u64;
        while mul_wide(q + 1, self.d) <= n {
            q += 1;
        }
        Some(q as u32)
    }

    /// `floor((num + floor(d / 2)) / d)`, the core's division rounded half up
    /// ([`crate::math::div_round_i128`]), clamped to `[-2^32, 2^32]`: exact wherever a
    /// caller narrowing it (plus at most an `i32`) to `i32` can tell, so
    /// `sat_i32(q)` and `sat_i32(q + b)` are what they are on the exact quotient.
    #[inline]
    pub fn div_round_clamped(&self, num: i128) -> i64 {
        const LIMIT: i64 = 1 << 32;
        let Some(n) = num.checked_add(i128::from(self.d / 2)) else {
            return LIMIT;
        };
        if n >= 0 {
            self.quotient_u32(n as u128).map_or(LIMIT, i64::from)
        } else {
            // floor(n / d) = -ceil(|n| / d) = -floor((|n| + d - 1) / d).
            n.unsigned_abs()
                .checked_add(u128::from(self.d - 1))
                .and_then(|a| self.quotient_u32(a))
                .map_or(-LIMIT, |q| -i64::from(q))
        }
    }
}

/// `floor(n / d)` for `n < d * 2^32` (a quotient that fits `u32`; `d > 0`).
#[inline]
pub fn div_u64_by_u32(n: u64, d: u32) -> u32 {
    debug_assert!(d > 0 && n >> 32 < u64::from(d));
    #[cfg(target_pointer_width = "64")]
    {
        (n / u64::from(d)) as u32
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        div_u64_by_u32_narrow(n, d)
    }
}

/// [`div_u64_by_u32`] from 32-bit divisions: long division in base `2^16` with a
/// normalised divisor (Knuth's algorithm D for two quotient digits, each estimated
/// from the divisor's top digit and corrected at most twice).
#[cfg_attr(target_pointer_width = "64", allow(dead_code))]
#[inline]
fn div_u64_by_u32_narrow(n: u64, d: u32) -> u32 {
    const B: u32 = 1 << 16;
    let s = d.leading_zeros();
    let d = d << s;
    let (d1, d0) = (d >> 16, d & 0xFFFF);
    // n << s keeps its quotient below 2^32 and fits 96 bits: split into the top
    // word and two 16-bit digits.
    let n = u128::from(n) << s;
    let top = (n >> 32) as u32;
    let low = n as u32;
    let (n1, n0) = (low >> 16, low & 0xFFFF);
    // One quotient digit of `(rem * B + digit) / d`, where `rem < d`.
    let digit = |rem: u32, next: u32| -> (u32, u32) {
        let mut q = rem / d1;
        let mut r = rem - q * d1;
        while q >= B || q * d0 > (r << 16) + next {
            q -= 1;
            r += d1;
            if r >= B {
                break;
            }
        }
        // (rem * B + next) - q * d, computed modulo 2^32 (the true value is < d).
        let rest = (rem << 16)
            .wrapping_add(next)
            .wrapping_sub(q.wrapping_mul(d));
        (q, rest)
    };
    let (q1, rest) = digit(top, n1);
    let (q0, _) = digit(rest, n0);
    (q1 << 16) | q0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{sat_i32, sat_i32_wide};
    use crate::math::div_round_i128;
    use proptest::prelude::*;

    /// A divisor of every size, powers of two and their neighbours included.
    fn divisor() -> impl Strategy<Value = u64> {
        prop_oneof![
            1u64..1000,
            any::<u64>(),
            (0u32..64, -2i64..=2).prop_map(|(p, k)| (1u64 << p).wrapping_add(k as u64).max(1)),
            (0u32..64).prop_flat_map(|p| 1u64..=(u64::MAX >> p)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn quotient_u32_equals_division(d in divisor(), q in any::<u32>(), r in any::<u64>(), wide in any::<u128>()) {
            let dv = Divisor::new(d);
            let d = u128::from(d);
            // A numerator with quotient q and any remainder, then one of any size.
            let n = u128::from(q) * d + u128::from(r) % d;
            prop_assert_eq!(dv.quotient_u32(n), Some(q));
            let want = u32::try_from(wide / d).ok();
            prop_assert_eq!(dv.quotient_u32(wide), want);
            for n in [d * (1 << 32) - 1, d * (1 << 32), d - 1, d, 0] {
                prop_assert_eq!(dv.quotient_u32(n), u32::try_from(n / d).ok());
            }
        }

        #[test]
        fn div_round_clamped_equals_the_rounded_division(d in divisor(), q in any::<i64>(), r in any::<u64>(), num in any::<i128>()) {
            let dv = Divisor::new(d);
            let den = i128::from(d);
            // Numerators near every quotient (the saturation edges included), then any.
            let near = i128::from(q >> (q as u64 % 40)) * den + i128::from(r) % den - den / 2;
            for n in [near, num >> (r % 128), num] {
                if n.checked_add(den / 2).is_some() {
                    let want = div_round_i128(n, den);
                    let got = dv.div_round_clamped(n);
                    prop_assert_eq!(i128::from(got), want.clamp(-(1 << 32), 1 << 32), "n = {}", n);
                    prop_assert_eq!(sat_i32(got), sat_i32_wide(want), "n = {}", n);
                }
            }
        }

        #[test]
        fn div_u64_by_u32_equals_division(d in 1u32.., q in any::<u32>(), r in any::<u32>(), shift in 0u32..32) {
            for d in [d, d >> shift.min(31), 1 << shift, (1u32 << shift).wrapping_sub(1).max(1)] {
                let d = d.max(1);
                let n = u64::from(q) * u64::from(d) + u64::from(r % d);
                prop_assert_eq!(div_u64_by_u32_narrow(n, d), q, "{} / {}", n, d);
                prop_assert_eq!(div_u64_by_u32(n, d), q);
                let top = u64::from(d) << 32;
                prop_assert_eq!(div_u64_by_u32_narrow(top - 1, d), ((top - 1) / u64::from(d)) as u32);
            }
        }
    }
}
