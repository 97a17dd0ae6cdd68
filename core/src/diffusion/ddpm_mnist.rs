//! The ddpm-mnist noise predictor (MaxTalberg/Diffusion-Model's `CNN` inside its
//! `DDPM`) and its DDPM sampling loop, in integers.
//!
//! Network (tensor names as in the checkpoint, under `gt.`):
//! - `blocks.{0..3}`: `net.0` Conv2d k7 pad 3 (channels 1 → 16 → 32 → 32 → 16),
//!   `net.1` LayerNorm over the whole `(C, 28, 28)` map with element-wise affine
//!   (eps 1e-5), GELU (erf form); after `blocks.0` the time embedding is added per
//!   channel;
//! - `blocks.4`: Conv2d 16 → 1, k3 pad 1;
//! - time embedding of `t = i / 1000`: `[sin(t f), cos(t f) − 1]` over the 16
//!   learned `frequencies`, then `time_embed.{0,2,4,6}` (Linear 32→128→128→128→16,
//!   GELU between).
//!
//! Stored differently from the checkpoint (computed offline by `oracle-quant` with
//! `libm`, covered by the model root):
//! - `gt.frequencies`: `f / (2π · 1000)`, turns per step `i`, an `i32` tensor with
//!   the fractional bits in its `exp` (≤ 48) — the phase of step `i` is then exact
//!   modulo a turn ([`crate::nn::timestep`]);
//! - the DDPM update `z ← (z − c_i ε) · a_i + s_i n` uses three Q30 tables of 1001
//!   entries: `schedule.eps_coef` `c_i = β_i / sqrt(1 − ᾱ_i)`,
//!   `schedule.inv_sqrt_alpha` `a_i = 1 / sqrt(1 − β_i)`, `schedule.sigma`
//!   `s_i = sqrt(β_i)` (from the checkpoint's `beta_t`, `alpha_t`).
//!
//! Each product in the update is `|Q16 · Q30| < 2^61` in `i64`, rounded half up once.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::FormatError;
use crate::fixed::{round_shift, sat_i32, FRAC30, ONE};
use crate::format::{Arch, DType, ModelFile};
use crate::kernels::Exec;
use crate::nn::conv2d::Conv2d;
use crate::nn::gelu::gelu_q16;
use crate::nn::groupnorm::layer_norm_map;
use crate::nn::linear::Linear;
use crate::nn::timestep::{phase_turns, sin_cos_q30};

use super::noise::fill_normal_q16;
use crate::rng::Rng;

/// Image side.
pub const SIZE: usize = 28;
/// Pixels of one sample.
pub const PIXELS: usize = SIZE * SIZE;
/// Diffusion steps `T`.
pub const STEPS: usize = 1000;
/// Channels of `blocks.0..3` outputs.
pub const CHANNELS: [usize; 5] = [1, 16, 32, 32, 16];
/// Learned frequencies.
pub const N_FREQ: usize = 16;
/// Width of the time MLP.
pub const TIME_HIDDEN: usize = 128;
/// LayerNorm epsilon 1e-5 in Q32.
pub const LN_EPS_Q32: u32 = 42_950;

/// `blocks.N` (N < 4): conv → whole-map LayerNorm → GELU.
#[derive(Debug, Clone)]
pub struct CnnBlock<'a> {
    /// `net.0`.
    pub conv: Conv2d<'a>,
    /// `net.1.weight (C·28·28)`, Q16.
    pub ln_weight: Vec<i32>,
    /// `net.1.bias (C·28·28)`, Q16.
    pub ln_bias: Vec<i32>,
}

/// Load a conv `prefix.{weight,bias}` of `(cout, cin, k, k)`.
pub fn load_conv<'a>(
    f: &ModelFile<'a>,
    prefix: &str,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> Result<Conv2d<'a>, FormatError> {
    let w = f.qmatrix(&alloc::format!("{prefix}.weight"), cout, cin * k * k)?;
    let b = f.i32s(&alloc::format!("{prefix}.bias"), cout as u64, 16)?;
    Conv2d::new(w, b, cin, k, stride, pad)
}

/// Load a linear `prefix.{weight,bias}` of `(out, in)` (bias optional).
pub fn load_linear<'a>(
    f: &ModelFile<'a>,
    prefix: &str,
    cin: usize,
    cout: usize,
) -> Result<Linear<'a>, FormatError> {
    let w = f.qmatrix(&alloc::format!("{prefix}.weight"), cout, cin)?;
    let name = alloc::format!("{prefix}.bias");
    let b = if f.tensor(&name).is_ok() {
        Some(f.i32s(&name, cout as u64, 16)?)
    } else {
        None
    };
    Linear::new(w, b)
}

impl CnnBlock<'_> {
    fn forward(&self, exec: Exec, x: &[i32]) -> Vec<i32> {
        let h = self.conv.forward(exec, x, SIZE, SIZE);
        let mut out = vec![0i32; h.len()];
        layer_norm_map(&h, &self.ln_weight, &self.ln_bias, LN_EPS_Q32, &mut out);
        out.iter_mut().for_each(|v| *v = gelu_q16(*v));
        out
    }
}

/// The integer ddpm-mnist model bound to a file.
#[derive(Debug, Clone)]
pub struct DdpmMnist<'a> {
    /// `gt.blocks.0..3`.
    pub blocks: Vec<CnnBlock<'a>>,
    /// `gt.blocks.4`.
    pub out: Conv2d<'a>,
    /// `gt.frequencies` as Q48 turns per step.
    pub freqs_q48: Vec<i64>,
    /// `gt.time_embed.{0,2,4,6}`.
    pub time_embed: Vec<Linear<'a>>,
    /// `schedule.eps_coef` (Q30, 1001).
    pub eps_coef: Vec<i32>,
    /// `schedule.inv_sqrt_alpha` (Q30, 1001).
    pub inv_sqrt_alpha: Vec<i32>,
    /// `schedule.sigma` (Q30, 1001).
    pub sigma: Vec<i32>,
}

/// Where the noise of a DDPM run comes from.
#[derive(Debug, Clone)]
pub enum DdpmNoise<'n> {
    /// Everything (the start and each step's noise) from the seeded PRNG.
    Seed(u64),
    /// The start given (`784` Q16 values), later noise from the seeded PRNG.
    Start(&'n [i32], u64),
    /// A stack of `steps · 784` Q16 values: entry 0 the start, entry k the noise
    /// added after the k-th update.
    Stack(&'n [i32]),
}

impl<'a> DdpmMnist<'a> {
    /// The run state of one sampling request (see [`crate::footprint`]): the
    /// network's shapes are fixed, its widest map has `2 · TIME_HIDDEN` channels.
    pub const fn run_state_bytes() -> u64 {
        (crate::footprint::WORK_MAPS * 2 * TIME_HIDDEN as u64) * PIXELS as u64 * 4
    }

    /// Bind a parsed model file of architecture [`Arch::DdpmMnist`] (its config
    /// is empty: the shapes are fixed).
    pub fn from_file(f: &ModelFile<'a>) -> Result<Self, FormatError> {
        f.expect_arch(Arch::DdpmMnist)?;
        crate::format::ConfigReader::new(&f.config).finish()?;
        let mut blocks = Vec::with_capacity(4);
        for i in 0..4 {
            let (cin, cout) = (CHANNELS[i], CHANNELS[i + 1]);
            let p = alloc::format!("gt.blocks.{i}.net");
            blocks.push(CnnBlock {
                conv: load_conv(f, &alloc::format!("{p}.0"), cin, cout, 7, 1, 3)?,
                ln_weight: f.i32s(&alloc::format!("{p}.1.weight"), (cout * PIXELS) as u64, 16)?,
                ln_bias: f.i32s(&alloc::format!("{p}.1.bias"), (cout * PIXELS) as u64, 16)?,
            });
        }
        let ft = f.tensor("gt.frequencies")?;
        if ft.dtype != DType::I32
            || ft.rows as usize * ft.cols as usize != N_FREQ
            || !(0..=48).contains(&ft.exp)
        {
            return Err(FormatError::BadTensor {
                name: "gt.frequencies".into(),
                reason: "expected 16 i32 values with at most 48 fractional bits",
            });
        }
        let up = 48 - ft.exp as u32;
        let freqs_q48: Vec<i64> = ft
            .to_i32_vec()
            .iter()
            .map(|&v| i64::from(v) << up)
            .collect();
        let dims = [
            2 * N_FREQ,
            TIME_HIDDEN,
            TIME_HIDDEN,
            TIME_HIDDEN,
            CHANNELS[1],
        ];
        let mut time_embed = Vec::with_capacity(4);
        for (k, layer) in [0, 2, 4, 6].into_iter().enumerate() {
            time_embed.push(load_linear(
                f,
                &alloc::format!("gt.time_embed.{layer}"),
                dims[k],
                dims[k + 1],
            )?);
        }
        Ok(DdpmMnist {
            blocks,
            out: load_conv(f, "gt.blocks.4", CHANNELS[4], 1, 3, 1, 1)?,
            freqs_q48,
            time_embed,
            eps_coef: f.i32s("schedule.eps_coef", STEPS as u64 + 1, 30)?,
            inv_sqrt_alpha: f.i32s("schedule.inv_sqrt_alpha", STEPS as u64 + 1, 30)?,
            sigma: f.i32s("schedule.sigma", STEPS as u64 + 1, 30)?,
        })
    }

    /// The time embedding `(16)` of step `i` (`t = i / 1000`).
    pub fn time_embedding(&self, exec: Exec, i: u32) -> Vec<i32> {
        let mut h = vec![0i32; 2 * N_FREQ];
        for (j, &f) in self.freqs_q48.iter().enumerate() {
            let (s, c) = sin_cos_q30(phase_turns(i, f));
            h[j] = round_shift(i64::from(s), 14) as i32;
            h[N_FREQ + j] = round_shift(i64::from(c), 14) as i32 - ONE;
        }
        for (k, lin) in self.time_embed.iter().enumerate() {
            h = lin.forward_vec(exec, &h, 1);
            if k < 3 {
                h.iter_mut().for_each(|v| *v = gelu_q16(*v));
            }
        }
        h
    }

    /// The predicted noise `ε(z, i / 1000)` for `z (784)`, Q16.
    pub fn eps(&self, exec: Exec, z: &[i32], i: u32) -> Vec<i32> {
        debug_assert_eq!(z.len(), PIXELS);
        let mut h = self.blocks[0].forward(exec, z);
        let temb = self.time_embedding(exec, i);
        for (plane, &t) in h.chunks_exact_mut(PIXELS).zip(&temb) {
            plane.iter_mut().for_each(|v| *v = v.saturating_add(t));
        }
        for b in &self.blocks[1..] {
            h = b.forward(exec, &h);
        }
        self.out.forward(exec, &h, SIZE, SIZE)
    }

    /// One DDPM update at step `i` without the noise: `(z − c_i ε) · a_i`.
    pub fn denoise_step(&self, exec: Exec, z: &mut [i32], i: usize) {
        let e = self.eps(exec, z, i as u32);
        let (c, a) = (
            i64::from(self.eps_coef[i]),
            i64::from(self.inv_sqrt_alpha[i]),
        );
        for (v, &ev) in z.iter_mut().zip(&e) {
            let t = i64::from(*v) - round_shift(c * i64::from(ev), FRAC30);
            *v = sat_i32(round_shift(t * a, FRAC30));
        }
    }

    /// DDPM sampling over the last `steps` steps (`i = steps..=1`; the full loop is
    /// `steps = 1000`). Returns the final `z` (Q16; the image is `z + 0.5`, see
    /// [`to_pixels`]).
    pub fn sample(
        &self,
        exec: Exec,
        steps: usize,
        noise: DdpmNoise<'_>,
    ) -> Result<Vec<i32>, SampleError> {
        if steps == 0 || steps > STEPS {
            return Err(SampleError::Steps(steps));
        }
        let (mut z, mut rng, stack) = match noise {
            DdpmNoise::Seed(seed) => {
                let mut rng = Rng::new(seed);
                let mut z = vec![0i32; PIXELS];
                fill_normal_q16(&mut rng, &mut z);
                (z, rng, None)
            }
            DdpmNoise::Start(start, seed) => {
                if start.len() != PIXELS {
                    return Err(SampleError::NoiseLength {
                        got: start.len(),
                        want: PIXELS,
                    });
                }
                (start.to_vec(), Rng::new(seed), None)
            }
            DdpmNoise::Stack(stack) => {
                if stack.len() != steps * PIXELS {
                    return Err(SampleError::NoiseLength {
                        got: stack.len(),
                        want: steps * PIXELS,
                    });
                }
                (stack[..PIXELS].to_vec(), Rng::new(0), Some(stack))
            }
        };
        let mut n = vec![0i32; PIXELS];
        for (k, i) in (1..=steps).rev().enumerate() {
            self.denoise_step(exec, &mut z, i);
            if i > 1 {
                match stack {
                    Some(s) => n.copy_from_slice(&s[(k + 1) * PIXELS..(k + 2) * PIXELS]),
                    None => fill_normal_q16(&mut rng, &mut n),
                }
                let s = i64::from(self.sigma[i]);
                for (v, &e) in z.iter_mut().zip(&n) {
                    *v = sat_i32(i64::from(*v) + round_shift(s * i64::from(e), FRAC30));
                }
            }
        }
        Ok(z)
    }
}

/// Why a sampling request was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    /// Steps outside `1..=1000`.
    #[error("steps {0} outside 1..=1000")]
    Steps(usize),
    /// A given noise tensor of the wrong length.
    #[error("noise has {got} values, expected {want}")]
    NoiseLength {
        /// Values given.
        got: usize,
        /// Values expected.
        want: usize,
    },
}

/// 8-bit gray pixels of a final sample: `clamp(z + 0.5, 0, 1) · 255`, rounded half
/// up.
pub fn to_pixels(z: &[i32]) -> Vec<u8> {
    z.iter()
        .map(|&v| {
            let x = (i64::from(v) + i64::from(ONE / 2)).clamp(0, i64::from(ONE));
            round_shift(x * 255, 16) as u8
        })
        .collect()
}
