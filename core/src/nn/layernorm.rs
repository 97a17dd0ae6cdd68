//! LayerNorm over the last dimension, in integers:
//! `out = (x - mean) / sqrt(var + eps) * gamma + beta` (biased variance, as
//! `torch.nn.LayerNorm`).
//!
//! Exact form. With `X` the Q16 integers of a row of `n` values, `S = Σ X` and
//! `Q = Σ X²`, the centred value is `(n X - S) / n` and `n² (var + eps) · 2^32 =
//! n Q - S² + eps_q32 · n²` =: `D`, an exact integer. So
//! `(x - mean) / sqrt(var + eps) = (n X - S) / sqrt(D)` with no intermediate
//! rounding; the only roundings are the floor of `r = isqrt(D · 2^32)` (relative
//! error below `1 / r`, and `r >= n · 2^16 · sqrt(eps_q32)`) and the final
//! division, rounded half up. So an output is within `1/2 + |y| / r` Q16 units of
//! the exact value with the same Q16 `gamma`, `beta`, where `y` is the output
//! without `beta` in Q16 units: within one unit unless the row's variance is tiny
//! (a few Q16 units) and `|y|` large (property test in
//! `core/tests/layernorm_vs_f64.rs`; a row of 22 values in `-2..=1` Q16 units with
//! `eps = 0` and `gamma` near 8 is 1.03 units off).
//!
//! Bounds, for `n <= MAX_LEN = 2^15` (so 25,088 = 4·80·80 values fit):
//! `|S| < n · 2^31 <= 2^46` (`i64`); `Q < n · 2^62` and `n Q < 2^92` (`u128`);
//! `D · 2^32 < 2^124`; `|n X - S| < n · 2^32 <= 2^47`, times `|gamma| < 2^31` and
//! `2^16` is below `2^94` (`i128`).

use alloc::format;

use crate::divide::Divisor;
use crate::error::FormatError;
use crate::fixed::{sat_i32, FRAC};
use crate::format::ModelFile;
use crate::math::isqrt_u128;

/// Longest row [`layer_norm`] accepts (keeps every intermediate in its type).
pub const MAX_LEN: usize = 1 << 15;

/// `torch.nn.LayerNorm` epsilon in Q32, rounded to nearest: `1e-5` is `42950`,
/// `1e-6` is `4295`.
pub type EpsQ32 = u32;

/// Normalise one row `x` (Q16) with affine `gamma`, `beta` (Q16) into `out`.
///
/// # Panics
/// If the slices differ in length or exceed [`MAX_LEN`] (a caller bug).
pub fn layer_norm(x: &[i32], gamma: &[i32], beta: &[i32], eps_q32: EpsQ32, out: &mut [i32]) {
    let n = x.len();
    assert!(
        gamma.len() == n && beta.len() == n && out.len() == n && n <= MAX_LEN,
        "layer_norm: lengths {n}, {}, {}, {} (max {MAX_LEN})",
        gamma.len(),
        beta.len(),
        out.len()
    );
    if n == 0 {
        return;
    }
    let s: i64 = x.iter().map(|&v| i64::from(v)).sum();
    let q: u128 = x
        .iter()
        .map(|&v| {
            let a = i64::from(v).unsigned_abs();
            u128::from(a * a)
        })
        .sum();
    let n_wide = n as u128;
    let s_sq = u128::from(s.unsigned_abs()) * u128::from(s.unsigned_abs());
    // n Q >= S² (Cauchy–Schwarz), so the difference is exact and non-negative.
    let d = n_wide * q - s_sq + u128::from(eps_q32) * n_wide * n_wide;
    // r < 2^64 (the root of a u128), and at least 1.
    let r = Divisor::new(isqrt_u128(d << 32).max(1) as u64);
    let n_i = n as i128;
    for ((o, &v), (&g, &b)) in out.iter_mut().zip(x).zip(gamma.iter().zip(beta)) {
        let centred = n_i * i128::from(v) - i128::from(s);
        // |y| is clamped to 2^32, beyond which y + b saturates the same way.
        let y = r.div_round_clamped((centred * i128::from(g)) << FRAC);
        *o = sat_i32(y + i64::from(b));
    }
}

/// A LayerNorm layer: affine weights and epsilon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerNorm {
    /// `weight: (dim)`, Q16.
    pub weight: alloc::vec::Vec<i32>,
    /// `bias: (dim)`, Q16.
    pub bias: alloc::vec::Vec<i32>,
    /// Epsilon in Q32.
    pub eps_q32: EpsQ32,
}

impl LayerNorm {
    /// Bind `{name}.weight` and `{name}.bias` `(dim)`, Q16, from an image model file.
    pub fn load(
        file: &ModelFile<'_>,
        name: &str,
        dim: usize,
        eps_q32: EpsQ32,
    ) -> Result<LayerNorm, FormatError> {
        if dim == 0 || dim > MAX_LEN {
            return Err(FormatError::BadConfig("LayerNorm width outside 1..=32768"));
        }
        Ok(LayerNorm {
            weight: file.i32s(&format!("{name}.weight"), dim as u64, FRAC as i32)?,
            bias: file.i32s(&format!("{name}.bias"), dim as u64, FRAC as i32)?,
            eps_q32,
        })
    }

    /// Width.
    pub fn dim(&self) -> usize {
        self.weight.len()
    }

    /// Normalise each row of `x: [tokens × dim]` into `out`.
    ///
    /// # Panics
    /// If the slices are not whole rows of the same count (a caller bug).
    pub fn forward(&self, x: &[i32], out: &mut [i32]) {
        let d = self.dim();
        assert!(x.len() == out.len() && d > 0 && x.len().is_multiple_of(d));
        for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            layer_norm(xr, &self.weight, &self.bias, self.eps_q32, or);
        }
    }
}
