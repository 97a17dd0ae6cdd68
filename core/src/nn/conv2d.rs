//! 2-D convolution over a Q16 `[C × H × W]` map with quantized weights.
//!
//! The weight `(cout, cin, k, k)` is stored as a [`QMatrix`] of `cout` rows and
//! `cin·k·k` columns (PyTorch's order, so a row is one output channel's filter),
//! quantized in groups along the row with dyadic scales. With a group of the whole
//! row (when `cin·k·k ≤ 256`) that is one scale per output channel; longer rows get
//! one scale per group of the row, which is finer still.
//!
//! The input map is re-expressed as `i16` with **one** power-of-two scale for the
//! whole map ([`quantize_activations`], as the LLaMA GEMV does per vector). Each
//! output pixel is then one matrix-vector product of the filter matrix with the
//! pixel's receptive field (zero outside the map: padding), run by
//! [`crate::kernels::matvec`]'s row kernels. So the **accumulator bound** is the
//! one of [`crate::quant`]: a group sum below `G · 2^22` in `i32`, a row total below
//! `cols · 2^46` in `i64`, `cols ≤ 2^16` checked at load ([`Conv2d::new`]).
//! The bias (Q16) is added with saturation after the product's one rounding.
//!
//! Threads split the output pixels; each pixel's sums are the same exact integers
//! whatever the split or the kernel (scalar, AVX2, NEON), so every mode gives the
//! same bits ([`Exec::SCALAR`] is the reference; the tests compare them).

use alloc::vec;
use alloc::vec::Vec;

use crate::error::FormatError;
use crate::kernels::{matmul, Exec};
use crate::quant::{quantize_activations, QMatrix, MAX_COLS};

/// A convolution layer `(cout, cin, k, k)` with stride and zero padding.
#[derive(Debug, Clone)]
pub struct Conv2d<'a> {
    /// `weight: (cout, cin·k·k)`.
    pub weight: QMatrix<'a>,
    /// `bias: (cout)`, Q16.
    pub bias: Vec<i32>,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
}

/// Output side of a convolution: `(n + 2·pad − k) / stride + 1`.
pub const fn out_size(n: usize, k: usize, stride: usize, pad: usize) -> usize {
    (n + 2 * pad - k) / stride + 1
}

impl<'a> Conv2d<'a> {
    /// A layer from its weight matrix and bias, checking the shapes against
    /// `(cin, k, stride, pad)`.
    pub fn new(
        weight: QMatrix<'a>,
        bias: Vec<i32>,
        cin: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Self, FormatError> {
        let bad = FormatError::BadConfig;
        if k == 0 || stride == 0 || cin == 0 {
            return Err(bad("conv2d: zero kernel, stride or channels"));
        }
        let cols = k.checked_mul(k).and_then(|kk| kk.checked_mul(cin));
        if cols != Some(weight.cols as usize) || weight.cols > MAX_COLS {
            return Err(bad("conv2d: weight columns differ from cin·k·k"));
        }
        if bias.len() != weight.rows as usize {
            return Err(bad("conv2d: bias length differs from the output channels"));
        }
        Ok(Conv2d {
            cout: weight.rows as usize,
            weight,
            bias,
            cin,
            k,
            stride,
            pad,
        })
    }

    /// Output `(height, width)` for an input of `(h, w)`, `None` if the kernel does
    /// not fit.
    pub fn out_shape(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        (h + 2 * self.pad >= self.k && w + 2 * self.pad >= self.k).then(|| {
            (
                out_size(h, self.k, self.stride, self.pad),
                out_size(w, self.k, self.stride, self.pad),
            )
        })
    }

    /// `x: [cin × h × w]` → `[cout × ho × wo]` (see [`Conv2d::out_shape`]).
    ///
    /// # Panics
    /// If `x` is not `cin·h·w` long or the kernel does not fit (caller bugs: the
    /// model loaders check shapes).
    pub fn forward(&self, exec: Exec, x: &[i32], h: usize, w: usize) -> Vec<i32> {
        assert_eq!(x.len(), self.cin * h * w, "conv2d: input length");
        let (ho, wo) = self
            .out_shape(h, w)
            .expect("conv2d: kernel larger than map");
        let mut xq = vec![0i16; x.len()];
        let shift = quantize_activations(x, &mut xq);
        let pixels = ho * wo;
        let cout = self.cout;
        // Pixel-major products, transposed into the channel-major output at the end.
        let mut tmp = vec![0i32; pixels * cout];
        let one = Exec {
            simd: exec.simd,
            threads: 1,
        };
        // Receptive fields of `BLOCK` pixels at a time, one product over all of them
        // (the weights are read once per block).
        const BLOCK: usize = 16;
        let run = |first: usize, chunk: &mut [i32]| {
            let field = self.cin * self.k * self.k;
            let mut cols = vec![0i16; BLOCK * field];
            for (b, o) in chunk.chunks_mut(BLOCK * cout).enumerate() {
                let n = o.len() / cout;
                for (p, col) in cols.chunks_exact_mut(field).take(n).enumerate() {
                    let pix = first + b * BLOCK + p;
                    self.gather(&xq, h, w, pix / wo, pix % wo, col);
                }
                matmul(
                    one,
                    &self.weight,
                    &cols[..n * field],
                    &[shift; BLOCK][..n],
                    o,
                );
            }
        };
        #[cfg(feature = "std")]
        {
            if exec.threads > 1 && pixels > 1 {
                let per = pixels.div_ceil(exec.threads);
                crate::kernels::pool::run_parts(exec.threads, &mut tmp, per * cout, &|i, part| {
                    run(i * per, part)
                });
            } else {
                run(0, &mut tmp);
            }
        }
        #[cfg(not(feature = "std"))]
        run(0, &mut tmp);
        let mut out = vec![0i32; cout * pixels];
        for (p, row) in tmp.chunks_exact(cout).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                out[c * pixels + p] = v.saturating_add(self.bias[c]);
            }
        }
        out
    }

    /// The receptive field of output pixel `(oy, ox)` in the weight's column order
    /// `(cin, ky, kx)`, zero outside the map.
    fn gather(&self, xq: &[i16], h: usize, w: usize, oy: usize, ox: usize, col: &mut [i16]) {
        let k = self.k;
        let (y0, x0) = (oy * self.stride, ox * self.stride);
        for c in 0..self.cin {
            let plane = &xq[c * h * w..(c + 1) * h * w];
            for ky in 0..k {
                let dst = &mut col[(c * k + ky) * k..(c * k + ky + 1) * k];
                let yy = y0 + ky;
                if yy < self.pad || yy - self.pad >= h {
                    dst.fill(0);
                    continue;
                }
                let row = &plane[(yy - self.pad) * w..(yy - self.pad + 1) * w];
                for (kx, d) in dst.iter_mut().enumerate() {
                    let xx = x0 + kx;
                    *d = if xx < self.pad || xx - self.pad >= w {
                        0
                    } else {
                        row[xx - self.pad]
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::ONE;
    use crate::kernels::Simd;
    use crate::quant::QType;

    fn weights(rows: usize, cols: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let scales = (0..rows)
            .flat_map(|_| ((next() % (1 << 20)) as i32 + 1).to_le_bytes())
            .collect();
        let qs = (0..rows * cols).map(|_| next() as u8).collect();
        (scales, qs)
    }

    #[test]
    fn identity_kernel_copies_with_bias() {
        // 1x1 conv, weight 1 (scale 2^-0 · mantissa 1), bias 3.
        let (scales, qs) = (1i32.to_le_bytes().to_vec(), vec![1u8]);
        let m = QMatrix {
            qtype: QType::Q8,
            rows: 1,
            cols: 1,
            group: 1,
            exp: 0,
            scales: &scales,
            qs: &qs,
        };
        let conv = Conv2d::new(m, vec![3], 1, 1, 1, 0).unwrap();
        let x: Vec<i32> = (0..12).map(|i| i * ONE).collect();
        let y = conv.forward(Exec::SCALAR, &x, 3, 4);
        assert_eq!(y, x.iter().map(|v| v + 3).collect::<Vec<_>>());
    }

    #[test]
    fn padding_and_stride_shapes_and_modes_agree() {
        for (cin, cout, k, stride, pad, h, w) in [
            (3, 5, 3, 1, 1, 7, 6),
            (4, 8, 3, 2, 1, 9, 8),
            (2, 3, 7, 1, 3, 11, 11),
            (6, 4, 1, 1, 0, 5, 5),
        ] {
            let cols = cin * k * k;
            let (scales, qs) = weights(cout, cols, (cin * 31 + k) as u64);
            let m = QMatrix {
                qtype: QType::Q8,
                rows: cout as u32,
                cols: cols as u32,
                group: cols as u32,
                exp: 28,
                scales: &scales,
                qs: &qs,
            };
            let bias: Vec<i32> = (0..cout as i32).map(|c| c * 1000 - 2000).collect();
            let conv = Conv2d::new(m, bias, cin, k, stride, pad).unwrap();
            let x: Vec<i32> = (0..(cin * h * w) as i64)
                .map(|i| ((i * 7919) % 300_001 - 150_000) as i32)
                .collect();
            let want = conv.forward(Exec::SCALAR, &x, h, w);
            let (ho, wo) = conv.out_shape(h, w).unwrap();
            assert_eq!(want.len(), cout * ho * wo);
            for exec in [
                Exec {
                    simd: Simd::Best,
                    threads: 1,
                },
                Exec {
                    simd: Simd::Best,
                    threads: 3,
                },
                Exec {
                    simd: Simd::Off,
                    threads: 2,
                },
            ] {
                assert_eq!(conv.forward(exec, &x, h, w), want);
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let (scales, qs) = weights(2, 9, 1);
        let m = QMatrix {
            qtype: QType::Q8,
            rows: 2,
            cols: 9,
            group: 9,
            exp: 20,
            scales: &scales,
            qs: &qs,
        };
        assert!(Conv2d::new(m, vec![0; 2], 2, 3, 1, 1).is_err());
        assert!(Conv2d::new(m, vec![0; 3], 1, 3, 1, 1).is_err());
        assert!(Conv2d::new(m, vec![0; 2], 1, 3, 1, 1).is_ok());
    }
}
