//! A linear layer over token rows: `out[t] = W x[t] + b` for each row `t` of a
//! `[tokens × in]` Q16 tensor, giving `[tokens × out]`.
//!
//! Each row goes through [`quantize_activations`] and [`matvec`], exactly as in the
//! LLaMA path, so SIMD and threads apply and never change a bit (the bounds are
//! the ones stated in [`crate::quant`]). The bias is Q16 and is added with
//! saturation after the product's own rounding: one rounding per output.

use alloc::vec;
use alloc::vec::Vec;

use alloc::format;

use crate::error::FormatError;
use crate::format::ModelFile;
use crate::kernels::{matmul, matvec, Exec};
use crate::quant::{quantize_activations, QMatrix};

/// `y = W x + b` with quantized `W: (out, in)` and an optional Q16 bias `(out)`.
#[derive(Debug, Clone)]
pub struct Linear<'a> {
    /// `weight: (out, in)`.
    pub weight: QMatrix<'a>,
    /// `bias: (out)`, Q16; `None` for bias-free projections (`to_q`, ...).
    pub bias: Option<Vec<i32>>,
}

impl<'a> Linear<'a> {
    /// A layer from its weight and bias, checking that the bias has one entry
    /// per output.
    pub fn new(weight: QMatrix<'a>, bias: Option<Vec<i32>>) -> Result<Self, FormatError> {
        if let Some(b) = &bias {
            if b.len() != weight.rows as usize {
                return Err(FormatError::BadConfig(
                    "linear bias length differs from the weight's rows",
                ));
            }
        }
        Ok(Linear { weight, bias })
    }

    /// Bind `{name}.weight` `(rows, cols)` (quantized) and, when `bias`,
    /// `{name}.bias` `(rows)` (Q16) from an image model file.
    pub fn load(
        file: &ModelFile<'a>,
        name: &str,
        rows: usize,
        cols: usize,
        bias: bool,
    ) -> Result<Self, FormatError> {
        let weight = file.qmatrix(&format!("{name}.weight"), rows, cols)?;
        let bias = if bias {
            Some(file.i32s(
                &format!("{name}.bias"),
                rows as u64,
                crate::fixed::FRAC as i32,
            )?)
        } else {
            None
        };
        Linear::new(weight, bias)
    }

    /// Input width.
    pub fn in_dim(&self) -> usize {
        self.weight.cols as usize
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.weight.rows as usize
    }

    /// `x: [tokens × in]` -> `out: [tokens × out]`, Q16.
    ///
    /// # Panics
    /// If `x` or `out` is shorter than its shape (a caller bug, not bad input).
    pub fn forward(&self, exec: Exec, x: &[i32], tokens: usize, out: &mut [i32]) {
        let (cin, cout) = (self.in_dim(), self.out_dim());
        assert!(
            x.len() >= tokens * cin && out.len() >= tokens * cout,
            "linear: slices shorter than [{tokens} × {cin}] -> [{tokens} × {cout}]"
        );
        // Every token with its own scale, then one product over all of them.
        let mut xq = vec![0i16; tokens * cin];
        let shifts: Vec<u32> = x[..tokens * cin]
            .chunks_exact(cin.max(1))
            .zip(xq.chunks_exact_mut(cin.max(1)))
            .map(|(row, q)| quantize_activations(row, q))
            .collect();
        let out = &mut out[..tokens * cout];
        if cin == 0 {
            for o in out.chunks_exact_mut(cout.max(1)) {
                matvec(exec, &self.weight, &[], 0, o);
            }
        } else {
            matmul(exec, &self.weight, &xq, &shifts, out);
        }
        if let Some(b) = &self.bias {
            for o in out.chunks_exact_mut(cout.max(1)) {
                for (v, &bv) in o.iter_mut().zip(b) {
                    *v = v.saturating_add(bv);
                }
            }
        }
    }

    /// [`Linear::forward`] into a new vector.
    pub fn forward_vec(&self, exec: Exec, x: &[i32], tokens: usize) -> Vec<i32> {
        let mut out = vec![0; tokens * self.out_dim()];
        self.forward(exec, x, tokens, &mut out);
        out
    }
}
