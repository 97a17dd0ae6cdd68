//! Float32 layers shared by the diffusion references: convolution, linear,
//! GroupNorm/LayerNorm, activations, attention, nearest upsampling, timestep
//! embeddings. Batch 1; images are `(C, H, W)`, token sequences `(N, D)`.

use super::{DiffusionError, Tensor, Vb};

/// SiLU `x * sigmoid(x)`.
pub fn silu(x: f32) -> f32 {
    x / (1.0 + libm::expf(-x))
}

/// GELU, erf form (`torch.nn.GELU()` default): `x/2 * (1 + erf(x / sqrt 2))`.
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// CLIP's quick GELU `x * sigmoid(1.702 x)`.
pub fn quick_gelu(x: f32) -> f32 {
    x / (1.0 + libm::expf(-1.702 * x))
}

/// Applies `f` to every value.
pub fn map_inplace(t: &mut Tensor, f: fn(f32) -> f32) {
    for v in &mut t.data {
        *v = f(*v);
    }
}

/// `a += b` elementwise (same shapes).
///
/// # Panics
/// If the shapes differ (a bug in the caller, never a bad file).
pub fn add_inplace(a: &mut Tensor, b: &Tensor) {
    assert_eq!(a.shape, b.shape, "add of different shapes");
    for (x, y) in a.data.iter_mut().zip(&b.data) {
        *x += y;
    }
}

/// Shape of an image tensor `(C, H, W)`.
///
/// # Panics
/// If `x` is not 3-dimensional (a bug in the caller).
pub fn chw(x: &Tensor) -> (usize, usize, usize) {
    assert_eq!(x.shape.len(), 3, "expected (C, H, W), got {:?}", x.shape);
    (x.shape[0], x.shape[1], x.shape[2])
}

/// A 2-D convolution, weight `(out, in, k, k)`, bias `(out)`, square kernel,
/// stride and zero padding.
#[derive(Debug, Clone)]
pub struct Conv2d {
    /// `(out, in, k, k)`.
    pub weight: Tensor,
    /// `(out)`.
    pub bias: Tensor,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl Conv2d {
    /// Loads `weight` and `bias` under `vb`.
    pub fn load(
        vb: &Vb,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self, DiffusionError> {
        Ok(Self {
            weight: vb.get("weight", &[cout, cin, k, k])?,
            bias: vb.get("bias", &[cout])?,
            stride,
            padding,
        })
    }

    /// `(in, H, W) -> (out, H', W')`, `H' = (H + 2 pad - k) / stride + 1`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (cin, h, w) = chw(x);
        let (cout, k) = (self.weight.shape[0], self.weight.shape[2]);
        assert_eq!(cin, self.weight.shape[1], "conv input channels");
        let (s, p) = (self.stride, self.padding);
        let ho = (h + 2 * p - k) / s + 1;
        let wo = (w + 2 * p - k) / s + 1;
        let mut out = Tensor::zeros(&[cout, ho, wo]);
        for o in 0..cout {
            let plane = &mut out.data[o * ho * wo..(o + 1) * ho * wo];
            plane.fill(self.bias.data[o]);
            for c in 0..cin {
                let xin = &x.data[c * h * w..(c + 1) * h * w];
                let wk = &self.weight.data[(o * cin + c) * k * k..(o * cin + c + 1) * k * k];
                for ky in 0..k {
                    for kx in 0..k {
                        let wv = wk[ky * k + kx];
                        for oy in 0..ho {
                            let iy = (oy * s + ky) as isize - p as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let row = &xin[iy as usize * w..(iy as usize + 1) * w];
                            let orow = &mut plane[oy * wo..(oy + 1) * wo];
                            if s == 1 {
                                // ix = ox + kx - p must lie in 0..w.
                                let lo = p.saturating_sub(kx);
                                let hi = (w + p - kx).min(wo);
                                if lo < hi {
                                    let off = lo + kx - p;
                                    for (ov, &iv) in
                                        orow[lo..hi].iter_mut().zip(&row[off..off + hi - lo])
                                    {
                                        *ov += wv * iv;
                                    }
                                }
                            } else {
                                for (ox, ov) in orow.iter_mut().enumerate() {
                                    let ix = (ox * s + kx) as isize - p as isize;
                                    if ix >= 0 && ix < w as isize {
                                        *ov += wv * row[ix as usize];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// A linear layer `y = W x + b`, weight `(out, in)`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `(out, in)`.
    pub weight: Tensor,
    /// `(out)`, absent for bias-free projections.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Loads `weight` and `bias` under `vb`.
    pub fn load(vb: &Vb, cin: usize, cout: usize) -> Result<Self, DiffusionError> {
        Ok(Self {
            weight: vb.get("weight", &[cout, cin])?,
            bias: Some(vb.get("bias", &[cout])?),
        })
    }

    /// Loads `weight` only (no bias).
    pub fn load_no_bias(vb: &Vb, cin: usize, cout: usize) -> Result<Self, DiffusionError> {
        Ok(Self {
            weight: vb.get("weight", &[cout, cin])?,
            bias: None,
        })
    }

    /// Output size.
    pub fn out_dim(&self) -> usize {
        self.weight.shape[0]
    }

    /// One vector `(in) -> (out)`.
    pub fn forward_vec(&self, x: &[f32]) -> Vec<f32> {
        let n = self.weight.shape[1];
        assert_eq!(x.len(), n, "linear input size");
        self.weight
            .data
            .chunks_exact(n)
            .enumerate()
            .map(|(o, row)| {
                let mut acc = self.bias.as_ref().map_or(0.0, |b| b.data[o]);
                for (&a, &b) in row.iter().zip(x) {
                    acc += a * b;
                }
                acc
            })
            .collect()
    }

    /// Each row of `(N, in)` -> `(N, out)`.
    pub fn forward_rows(&self, x: &Tensor) -> Tensor {
        let n = self.weight.shape[1];
        let rows = x.data.len() / n;
        let mut data = Vec::with_capacity(rows * self.out_dim());
        for r in x.data.chunks_exact(n) {
            data.extend(self.forward_vec(r));
        }
        Tensor {
            shape: vec![rows, self.out_dim()],
            data,
        }
    }
}

/// `torch.nn.GroupNorm` with affine weight and bias `(C)` over `(C, ...)`.
#[derive(Debug, Clone)]
pub struct GroupNorm {
    /// `(C)`.
    pub weight: Tensor,
    /// `(C)`.
    pub bias: Tensor,
    /// Number of groups (divides C).
    pub groups: usize,
    /// Epsilon added to the variance.
    pub eps: f32,
}

impl GroupNorm {
    /// Loads `weight` and `bias` under `vb`; `groups` must divide `channels`.
    pub fn load(vb: &Vb, groups: usize, channels: usize, eps: f32) -> Result<Self, DiffusionError> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(DiffusionError::Input(format!(
                "{}: {groups} groups do not divide {channels} channels",
                vb.full_name("")
            )));
        }
        Ok(Self {
            weight: vb.get("weight", &[channels])?,
            bias: vb.get("bias", &[channels])?,
            groups,
            eps,
        })
    }

    /// Normalises `(C, ...)` per group of channels (mean and biased variance in f64).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let c = x.shape[0];
        let per_c = x.data.len() / c;
        let cg = c / self.groups;
        let mut out = x.clone();
        for g in 0..self.groups {
            let span = &x.data[g * cg * per_c..(g + 1) * cg * per_c];
            let (mean, var) = mean_var(span);
            let inv = 1.0 / (var + f64::from(self.eps)).sqrt();
            for ci in g * cg..(g + 1) * cg {
                let (wv, bv) = (self.weight.data[ci], self.bias.data[ci]);
                for v in &mut out.data[ci * per_c..(ci + 1) * per_c] {
                    *v = ((f64::from(*v) - mean) * inv) as f32 * wv + bv;
                }
            }
        }
        out
    }
}

/// Mean and biased variance, accumulated in f64.
pub fn mean_var(x: &[f32]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean) * (f64::from(v) - mean))
        .sum::<f64>()
        / n;
    (mean, var)
}

/// `torch.nn.LayerNorm` over the last dimension of `(N, D)` rows, affine `(D)`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    /// `(D)`.
    pub weight: Tensor,
    /// `(D)`.
    pub bias: Tensor,
    /// Epsilon added to the variance.
    pub eps: f32,
}

impl LayerNorm {
    /// Loads `weight` and `bias` `(dim)` under `vb`.
    pub fn load(vb: &Vb, dim: usize, eps: f32) -> Result<Self, DiffusionError> {
        Ok(Self {
            weight: vb.get("weight", &[dim])?,
            bias: vb.get("bias", &[dim])?,
            eps,
        })
    }

    /// Normalises each row of `(N, D)`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let d = self.weight.len();
        let mut out = x.clone();
        for row in out.data.chunks_exact_mut(d) {
            let (mean, var) = mean_var(row);
            let inv = 1.0 / (var + f64::from(self.eps)).sqrt();
            for ((v, &w), &b) in row.iter_mut().zip(&self.weight.data).zip(&self.bias.data) {
                *v = ((f64::from(*v) - mean) * inv) as f32 * w + b;
            }
        }
        out
    }
}

/// `(C, H, W)` -> `(H*W, C)`.
pub fn image_to_tokens(x: &Tensor) -> Tensor {
    let (c, h, w) = chw(x);
    let n = h * w;
    let mut data = vec![0.0; n * c];
    for ci in 0..c {
        for p in 0..n {
            data[p * c + ci] = x.data[ci * n + p];
        }
    }
    Tensor {
        shape: vec![n, c],
        data,
    }
}

/// `(H*W, C)` -> `(C, H, W)`.
pub fn tokens_to_image(t: &Tensor, h: usize, w: usize) -> Tensor {
    let (n, c) = (t.shape[0], t.shape[1]);
    let mut data = vec![0.0; n * c];
    for p in 0..n {
        for ci in 0..c {
            data[ci * n + p] = t.data[p * c + ci];
        }
    }
    Tensor {
        shape: vec![c, h, w],
        data,
    }
}

/// Scaled dot-product attention over heads: `q (Nq, D)`, `k, v (Nk, D)`, `D =
/// heads * head_dim`; softmax(q k^T / sqrt(head_dim)) v per head, in f32 with
/// max subtraction. Returns `(Nq, D)`.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize) -> Tensor {
    attention_masked(q, k, v, heads, false)
}

/// [`attention`], with a causal mask when `causal` (query `i` sees keys `0..=i`).
pub fn attention_masked(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Tensor {
    let (nq, d) = (q.shape[0], q.shape[1]);
    let nk = k.shape[0];
    let hd = d / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = Tensor::zeros(&[nq, d]);
    let mut scores = vec![0.0f32; nk];
    for h in 0..heads {
        for i in 0..nq {
            let qi = &q.data[i * d + h * hd..i * d + (h + 1) * hd];
            let mut max = f32::NEG_INFINITY;
            let seen = if causal { (i + 1).min(nk) } else { nk };
            let scores = &mut scores[..seen];
            for (j, s) in scores.iter_mut().enumerate() {
                let kj = &k.data[j * d + h * hd..j * d + (h + 1) * hd];
                let mut acc = 0.0f32;
                for (&a, &b) in qi.iter().zip(kj) {
                    acc += a * b;
                }
                *s = acc * scale;
                max = max.max(*s);
            }
            let mut sum = 0.0f32;
            for s in scores.iter_mut() {
                *s = libm::expf(*s - max);
                sum += *s;
            }
            let o = &mut out.data[i * d + h * hd..i * d + (h + 1) * hd];
            for (j, &s) in scores.iter().enumerate() {
                let p = s / sum;
                let vj = &v.data[j * d + h * hd..j * d + (h + 1) * hd];
                for (ov, &vv) in o.iter_mut().zip(vj) {
                    *ov += p * vv;
                }
            }
        }
    }
    out
}

/// Nearest-neighbour 2x upsampling of `(C, H, W)`.
pub fn upsample_nearest2x(x: &Tensor) -> Tensor {
    let (c, h, w) = chw(x);
    let mut out = Tensor::zeros(&[c, 2 * h, 2 * w]);
    for ci in 0..c {
        for y in 0..2 * h {
            for xx in 0..2 * w {
                out.data[(ci * 2 * h + y) * 2 * w + xx] = x.data[(ci * h + y / 2) * w + xx / 2];
            }
        }
    }
    out
}

/// Concatenates `(Ca, H, W)` and `(Cb, H, W)` along channels.
///
/// # Panics
/// If the spatial sizes differ (a bug in the caller).
pub fn cat_channels(a: &Tensor, b: &Tensor) -> Tensor {
    let (ca, h, w) = chw(a);
    let (cb, hb, wb) = chw(b);
    assert_eq!((h, w), (hb, wb), "cat of different spatial sizes");
    let mut data = a.data.clone();
    data.extend_from_slice(&b.data);
    Tensor {
        shape: vec![ca + cb, h, w],
        data,
    }
}

/// diffusers' `get_timestep_embedding` for one timestep: `half = dim / 2`
/// frequencies `exp(-ln(10000) * i / (half - freq_shift))`, then `[sin, cos]`
/// (or `[cos, sin]` with `flip_sin_to_cos`) of `t * freq`, computed in f32 as
/// torch does.
pub fn timestep_embedding(t: f32, dim: usize, flip_sin_to_cos: bool, freq_shift: f32) -> Vec<f32> {
    let half = dim / 2;
    let ln = -libm::logf(10000.0);
    let mut sin = Vec::with_capacity(half);
    let mut cos = Vec::with_capacity(half);
    for i in 0..half {
        let exponent = ln * i as f32 / (half as f32 - freq_shift);
        let a = t * libm::expf(exponent);
        sin.push(libm::sinf(a));
        cos.push(libm::cosf(a));
    }
    let mut out = if flip_sin_to_cos {
        [cos, sin].concat()
    } else {
        [sin, cos].concat()
    };
    out.resize(dim, 0.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], data: Vec<f32>) -> Tensor {
        Tensor::new(shape.to_vec(), data).unwrap()
    }

    #[test]
    fn conv_matches_direct_sum() {
        // 2 in, 3 out, k3, both strides and paddings, against a direct formula.
        let x = t(
            &[2, 5, 4],
            (0..40).map(|i| (i as f32 * 0.37).sin()).collect(),
        );
        let wdata: Vec<f32> = (0..54).map(|i| (i as f32 * 0.11).cos()).collect();
        for (s, p) in [(1, 1), (2, 1), (1, 0), (2, 0)] {
            let conv = Conv2d {
                weight: t(&[3, 2, 3, 3], wdata.clone()),
                bias: t(&[3], vec![0.1, -0.2, 0.3]),
                stride: s,
                padding: p,
            };
            let y = conv.forward(&x);
            let (ho, wo) = ((5 + 2 * p - 3) / s + 1, (4 + 2 * p - 3) / s + 1);
            assert_eq!(y.shape, vec![3, ho, wo]);
            for o in 0..3 {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut acc = conv.bias.data[o] as f64;
                        for c in 0..2 {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let iy = (oy * s + ky) as isize - p as isize;
                                    let ix = (ox * s + kx) as isize - p as isize;
                                    if (0..5).contains(&iy) && (0..4).contains(&ix) {
                                        acc += wdata[((o * 2 + c) * 3 + ky) * 3 + kx] as f64
                                            * x.data[(c * 5 + iy as usize) * 4 + ix as usize]
                                                as f64;
                                    }
                                }
                            }
                        }
                        let got = y.data[(o * ho + oy) * wo + ox] as f64;
                        assert!((got - acc).abs() < 1e-5, "s{s} p{p}: {got} vs {acc}");
                    }
                }
            }
        }
    }

    #[test]
    fn group_norm_normalises_each_group() {
        let x = t(&[4, 2, 2], (0..16).map(|i| i as f32 * i as f32).collect());
        let gn = GroupNorm {
            weight: t(&[4], vec![1.0; 4]),
            bias: t(&[4], vec![0.0; 4]),
            groups: 2,
            eps: 0.0,
        };
        let y = gn.forward(&x);
        for g in 0..2 {
            let (m, v) = mean_var(&y.data[g * 8..(g + 1) * 8]);
            assert!(m.abs() < 1e-6 && (v - 1.0).abs() < 1e-5, "{m} {v}");
        }
    }

    #[test]
    fn attention_of_one_key_is_its_value() {
        let q = t(&[3, 4], vec![0.5; 12]);
        let k = t(&[1, 4], vec![1.0; 4]);
        let v = t(&[1, 4], vec![1.0, 2.0, 3.0, 4.0]);
        let o = attention(&q, &k, &v, 2);
        assert_eq!(o.data, [1.0, 2.0, 3.0, 4.0].repeat(3));
    }

    #[test]
    fn activations_known_values() {
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert_eq!(gelu(0.0), 0.0);
        let e = timestep_embedding(0.0, 8, true, 0.0);
        assert_eq!(e, vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
