//! The ddpm-mnist noise predictor (MaxTalberg/Diffusion-Model's `CNN` inside its
//! `DDPM`), float32, and its DDPM sampling loop.
//!
//! State-dict names (all under `gt.` except the schedule):
//! - `blocks.{0,1,2,3}.net.0.{weight,bias}`: Conv2d k7 pad 3, channels
//!   1 -> 16 -> 32 -> 32 -> 16;
//! - `blocks.{0..3}.net.1.{weight,bias}`: LayerNorm over the whole `(C, 28, 28)`
//!   map (eps 1e-5), elementwise affine `(C, 28, 28)`; then GELU;
//! - `blocks.4.{weight,bias}`: Conv2d 16 -> 1, k3 pad 1;
//! - `frequencies (16)`, `time_embed.{0,2,4,6}`: Linear(32,128) GELU
//!   Linear(128,128) GELU Linear(128,128) GELU Linear(128,16);
//! - `beta_t`, `alpha_t (1001)`: the schedule, `alpha_t` the cumulative product.
//!
//! GELU is the erf form: the upstream model uses `torch.nn.GELU()` with its default
//! `approximate='none'`, and nothing in the checkpoint implies otherwise.

use std::path::Path;

use super::ops::{gelu, Conv2d, Linear};
use super::pth::{parse_state_dict, read_state_dict, to_weights};
use super::{DiffusionError, Tensor, Vb, Weights};

/// Image side.
pub const SIZE: usize = 28;
/// Diffusion steps `T`.
pub const STEPS: usize = 1000;
/// Channels of `blocks.0..3` outputs.
pub const CHANNELS: [usize; 5] = [1, 16, 32, 32, 16];
/// LayerNorm epsilon (torch's default).
pub const LN_EPS: f32 = 1e-5;

/// `blocks.N` for N in 0..4: conv k7 -> LayerNorm over `(C, 28, 28)` -> GELU.
#[derive(Debug, Clone)]
pub struct CnnBlock {
    /// `net.0`: Conv2d k7 pad 3.
    pub conv: Conv2d,
    /// `net.1.weight (C, 28, 28)`.
    pub ln_weight: Tensor,
    /// `net.1.bias (C, 28, 28)`.
    pub ln_bias: Tensor,
}

impl CnnBlock {
    /// Loads `net.0` and `net.1` under `vb`.
    pub fn load(vb: &Vb, cin: usize, cout: usize) -> Result<Self, DiffusionError> {
        Ok(Self {
            conv: Conv2d::load(&vb.pp("net.0"), cin, cout, 7, 1, 3)?,
            ln_weight: vb.pp("net.1").get("weight", &[cout, SIZE, SIZE])?,
            ln_bias: vb.pp("net.1").get("bias", &[cout, SIZE, SIZE])?,
        })
    }

    /// `(cin, 28, 28) -> (cout, 28, 28)`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.conv.forward(x);
        let (mean, var) = super::ops::mean_var(&h.data);
        let inv = 1.0 / (var + f64::from(LN_EPS)).sqrt();
        for ((v, &w), &b) in h
            .data
            .iter_mut()
            .zip(&self.ln_weight.data)
            .zip(&self.ln_bias.data)
        {
            *v = gelu(((f64::from(*v) - mean) * inv) as f32 * w + b);
        }
        h
    }
}

/// The float ddpm-mnist model: noise predictor and schedule.
#[derive(Debug, Clone)]
pub struct DdpmMnist {
    /// `gt.blocks.0..3`.
    pub blocks: Vec<CnnBlock>,
    /// `gt.blocks.4`: Conv2d 16 -> 1, k3 pad 1.
    pub out: Conv2d,
    /// `gt.frequencies (16)`.
    pub frequencies: Vec<f32>,
    /// `gt.time_embed.{0,2,4,6}`.
    pub time_embed: [Linear; 4],
    /// `beta_t (1001)`.
    pub beta_t: Vec<f32>,
    /// `alpha_t (1001)`: cumulative product of `1 - beta_t`.
    pub alpha_t: Vec<f32>,
    /// Number of values loaded (every tensor of the state dict).
    pub num_values: usize,
}

impl DdpmMnist {
    /// Loads `ddpm_mnist.pth`.
    pub fn load_pth(path: &Path) -> Result<Self, DiffusionError> {
        Self::load(&to_weights(read_state_dict(path)?)?)
    }

    /// Loads from the bytes of `ddpm_mnist.pth`.
    pub fn parse_pth(bytes: &[u8]) -> Result<Self, DiffusionError> {
        Self::load(&to_weights(parse_state_dict(bytes)?)?)
    }

    /// Builds the model from a state dict (names as in the checkpoint).
    pub fn load(w: &Weights) -> Result<Self, DiffusionError> {
        let root = w.root();
        let gt = root.pp("gt");
        let mut blocks = Vec::with_capacity(4);
        for i in 0..4 {
            blocks.push(CnnBlock::load(
                &gt.pp("blocks").pp(i),
                CHANNELS[i],
                CHANNELS[i + 1],
            )?);
        }
        let te = gt.pp("time_embed");
        let n_freq = 16;
        Ok(Self {
            blocks,
            out: Conv2d::load(&gt.pp("blocks.4"), 16, 1, 3, 1, 1)?,
            frequencies: gt.get("frequencies", &[n_freq])?.data,
            time_embed: [
                Linear::load(&te.pp(0), 2 * n_freq, 128)?,
                Linear::load(&te.pp(2), 128, 128)?,
                Linear::load(&te.pp(4), 128, 128)?,
                Linear::load(&te.pp(6), 128, CHANNELS[1])?,
            ],
            beta_t: root.get("beta_t", &[STEPS + 1])?.data,
            alpha_t: root.get("alpha_t", &[STEPS + 1])?.data,
            num_values: w.num_values(),
        })
    }

    /// The time embedding `(16)` for `t_norm = i / 1000`:
    /// `[sin(t f), cos(t f) - 1]` -> MLP with GELU between the layers.
    pub fn time_embedding(&self, t_norm: f32) -> Vec<f32> {
        let mut phases: Vec<f32> = self
            .frequencies
            .iter()
            .map(|&f| libm::sinf(t_norm * f))
            .collect();
        phases.extend(
            self.frequencies
                .iter()
                .map(|&f| libm::cosf(t_norm * f) - 1.0),
        );
        let mut h = phases;
        for (k, lin) in self.time_embed.iter().enumerate() {
            h = lin.forward_vec(&h);
            if k < 3 {
                h.iter_mut().for_each(|v| *v = gelu(*v));
            }
        }
        h
    }

    /// The predicted noise `eps(z, t_norm)` for `z (1, 28, 28)`.
    ///
    /// # Errors
    /// [`DiffusionError::Input`] if `z` is not `(1, 28, 28)`.
    pub fn eps(&self, z: &Tensor, t_norm: f32) -> Result<Tensor, DiffusionError> {
        if z.shape != [1, SIZE, SIZE] {
            return Err(DiffusionError::Input(format!(
                "sample of shape {:?}, expected [1, 28, 28]",
                z.shape
            )));
        }
        let mut h = self.blocks[0].forward(z);
        let temb = self.time_embedding(t_norm);
        for (c, plane) in h.data.chunks_exact_mut(SIZE * SIZE).enumerate() {
            plane.iter_mut().for_each(|v| *v += temb[c]);
        }
        for b in &self.blocks[1..] {
            h = b.forward(&h);
        }
        Ok(self.out.forward(&h))
    }

    /// One DDPM update at step `i` (1..=1000) without the added noise:
    /// `(z - beta_i / sqrt(1 - alpha_i) * eps(z, i/1000)) / sqrt(1 - beta_i)`.
    pub fn denoise_step(&self, z: &Tensor, i: usize) -> Result<Tensor, DiffusionError> {
        if !(1..=STEPS).contains(&i) {
            return Err(DiffusionError::Input(format!("step {i} outside 1..=1000")));
        }
        let e = self.eps(z, i as f32 / STEPS as f32)?;
        let (b, a) = (self.beta_t[i], self.alpha_t[i]);
        let c = b / (1.0 - a).sqrt();
        let d = (1.0 - b).sqrt();
        let mut out = z.clone();
        for (v, &ev) in out.data.iter_mut().zip(&e.data) {
            *v = (*v - c * ev) / d;
        }
        Ok(out)
    }

    /// DDPM sampling from a given noise stack `(steps, 1, 28, 28)`, flattened:
    /// entry 0 is the start `z`, entry k (k >= 1) the noise added after the
    /// k-th update (the update at `i = 1001 - k`), times `sqrt(beta_i)`. With
    /// `steps < 1000` the loop runs the last `steps` steps only (i = steps..1),
    /// for quick checks; the full loop is `steps = 1000`. Returns the final `z`
    /// (the image is `z + 0.5` clipped to [0, 1], see [`to_image`]).
    ///
    /// # Errors
    /// [`DiffusionError::Input`] if the stack length is not `steps * 784` or
    /// `steps` is 0 or above 1000.
    pub fn sample(&self, noise: &[f32], steps: usize) -> Result<Tensor, DiffusionError> {
        let n = SIZE * SIZE;
        if steps == 0 || steps > STEPS || noise.len() != steps * n {
            return Err(DiffusionError::Input(format!(
                "noise of {} values for {steps} steps of 784 (1..=1000 steps)",
                noise.len()
            )));
        }
        let mut z = Tensor::new(vec![1, SIZE, SIZE], noise[..n].to_vec())?;
        for (k, i) in (1..=steps).rev().enumerate() {
            z = self.denoise_step(&z, i)?;
            if i > 1 {
                let s = self.beta_t[i].sqrt();
                let eps = &noise[(k + 1) * n..(k + 2) * n];
                for (v, &e) in z.data.iter_mut().zip(eps) {
                    *v += s * e;
                }
            }
        }
        Ok(z)
    }
}

/// The image of a final sample: `z + 0.5` clipped to [0, 1].
pub fn to_image(z: &Tensor) -> Vec<f32> {
    z.data.iter().map(|&v| (v + 0.5).clamp(0.0, 1.0)).collect()
}

/// Model input from 8-bit pixels: `p / 255 - 0.5`.
pub fn from_pixels(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&p| f32::from(p) / 255.0 - 0.5).collect()
}
