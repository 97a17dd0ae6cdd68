//! Integer vs float32: the same initial noise (and the same per-step noise) through
//! both pipelines, compared on the final image in `[0, 1]`.

use oracle_core::diffusion::ddpm_mnist::{DdpmMnist as IntDdpm, DdpmNoise, PIXELS};
use oracle_core::diffusion::noise::fill_normal_q16;
use oracle_core::format::ModelFile;
use oracle_core::kernels::Exec;
use oracle_core::rng::Rng;

use super::ImageError;
use crate::diffusion::ddpm_mnist::DdpmMnist;
use crate::diffusion::Tensor;

/// Image agreement of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageComparison {
    /// `10 log10(1 / MSE)` over the `[0, 1]` images (infinite when equal).
    pub psnr_db: f64,
    /// Largest absolute pixel difference in `[0, 1]` units.
    pub max_abs: f64,
}

/// Compare two images in `[0, 1]`.
pub fn compare(a: &[f32], b: &[f32]) -> ImageComparison {
    compare_with_peak(a, b, 1.0)
}

/// PSNR of `a` against `b` with `peak` as the signal's peak, and their largest
/// absolute difference.
fn compare_with_peak(a: &[f32], b: &[f32], peak: f64) -> ImageComparison {
    let n = a.len().max(1) as f64;
    let (mut se, mut max) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let d = f64::from(x) - f64::from(y);
        se += d * d;
        max = max.max(d.abs());
    }
    let mse = se / n;
    ImageComparison {
        psnr_db: if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (peak * peak / mse).log10()
        },
        max_abs: max,
    }
}

/// Q16 values centred on 0 and spanning `range` as an image in `[0, 1]`.
fn q16_to_image(v: &[i32], range: f32) -> Vec<f32> {
    v.iter()
        .map(|&a| (a as f32 / 65536.0 / range + 0.5).clamp(0.0, 1.0))
        .collect()
}

/// A Q16 value as `f32` (exact: `|v| < 2^31` has at most 31 significant bits... and
/// Q16 noise values are below `2^19`, well inside `f32`'s 24).
pub fn q16_to_f32(v: &[i32]) -> Vec<f32> {
    v.iter().map(|&x| x as f32 / 65536.0).collect()
}

/// The DDPM noise stack `(steps, 784)` of a seed, from the integer PRNG: what the
/// integer sampler draws with `DdpmNoise::Seed(seed)`, in the same order.
pub fn ddpm_noise_stack(seed: u64, steps: usize) -> Vec<i32> {
    let mut rng = Rng::new(seed);
    let mut out = vec![0i32; steps * PIXELS];
    for chunk in out.chunks_mut(PIXELS) {
        fill_normal_q16(&mut rng, chunk);
    }
    out
}

/// One ddpm-mnist comparison: the integer and float final images.
#[derive(Debug, Clone)]
pub struct DdpmSample {
    /// The seed of the noise.
    pub seed: u64,
    /// Integer image in `[0, 1]`.
    pub int_image: Vec<f32>,
    /// Float image in `[0, 1]`.
    pub float_image: Vec<f32>,
    /// Their agreement.
    pub cmp: ImageComparison,
}

/// Run ddpm-mnist integer (from the model file bytes) and float over the same noise
/// stack of `seed` for `steps` steps.
///
/// # Errors
/// A bad model file or a bad step count.
pub fn eval_ddpm(
    file_bytes: &[u8],
    float: &DdpmMnist,
    seed: u64,
    steps: usize,
    exec: Exec,
) -> Result<DdpmSample, ImageError> {
    let file = ModelFile::parse(file_bytes)?;
    let int = IntDdpm::from_file(&file)?;
    let stack = ddpm_noise_stack(seed, steps);
    let z_int = int.sample(exec, steps, DdpmNoise::Stack(&stack))?;
    let z_float: Tensor = float.sample(&q16_to_f32(&stack), steps)?;
    let int_image = q16_to_image(&z_int, 1.0);
    let float_image = crate::diffusion::ddpm_mnist::to_image(&z_float);
    let cmp = compare(&int_image, &float_image);
    Ok(DdpmSample {
        seed,
        int_image,
        float_image,
        cmp,
    })
}

/// PSNR of two raw tensors with the float tensor's range (`max − min`) as the peak,
/// and their largest absolute difference.
pub fn compare_raw(int: &[f32], float: &[f32]) -> ImageComparison {
    let (lo, hi) = float
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let peak = f64::from(hi - lo).max(1e-12);
    compare_with_peak(int, float, peak)
}

/// UNet2D figures for one seed: the single forward (at the first DDIM timestep of
/// `steps`) compared raw, and the final DDIM sample compared raw and as an image
/// (`clamp(x / 2 + 0.5, 0, 1)`, diffusers' conversion).
#[derive(Debug, Clone)]
pub struct UNetEval {
    /// The seed of the start noise.
    pub seed: u64,
    /// One forward, integer vs float, raw.
    pub forward: ImageComparison,
    /// The final sample after `steps` DDIM steps, raw.
    pub sample_raw: ImageComparison,
    /// The final sample as an image in `[0, 1]`.
    pub sample_image: ImageComparison,
}

/// Run tiny-unet2d-style models integer and float from the same start noise.
///
/// # Errors
/// A bad model file or float model failure.
pub fn eval_unet2d(
    file_bytes: &[u8],
    float: &crate::diffusion::unet2d::UNet2DModel,
    ddim: &crate::diffusion::ddim::Ddim,
    seed: u64,
    steps: usize,
    exec: Exec,
) -> Result<UNetEval, ImageError> {
    use oracle_core::diffusion::unet2d::UNet2D;
    let file = ModelFile::parse(file_bytes)?;
    let int = UNet2D::from_file(&file)?;
    let side = int.sample_size.max(int.side_multiple());
    let n = int.in_channels * side * side;
    let mut rng = Rng::new(seed);
    let mut start = vec![0i32; n];
    fill_normal_q16(&mut rng, &mut start);
    let start_f = Tensor::new(vec![int.in_channels, side, side], q16_to_f32(&start))?;
    let ts = int
        .ddim
        .timesteps(steps)
        .ok_or_else(|| DiffusionErrorInput(format!("{steps} steps")))?;
    let e_int = q16_to_f32(&int.forward(exec, &start, side, side, ts[0] as u32));
    let e_float = float.forward(&start_f, ts[0] as f32)?;
    let forward = compare_raw(&e_int, &e_float.data);
    let z_int = int
        .sample(exec, start.clone(), side, side, steps)
        .map_err(|e| DiffusionErrorInput(e.to_string()))?;
    let mut sch = ddim.clone();
    sch.set_timesteps(steps)?;
    let mut x = start_f;
    for &t in &sch.timesteps {
        let eps = float.forward(&x, t as f32)?;
        x.data = sch.step(&eps.data, t, &x.data)?;
    }
    let zi = q16_to_f32(&z_int);
    let img =
        |v: &[f32]| -> Vec<f32> { v.iter().map(|&a| (a / 2.0 + 0.5).clamp(0.0, 1.0)).collect() };
    Ok(UNetEval {
        seed,
        forward,
        sample_raw: compare_raw(&zi, &x.data),
        sample_image: compare(&img(&zi), &img(&x.data)),
    })
}

#[allow(non_snake_case)]
fn DiffusionErrorInput(msg: String) -> ImageError {
    crate::diffusion::DiffusionError::Input(msg).into()
}

/// tiny-sd figures for one prompt and seed: every stage of the integer pipeline
/// against the float32 one from the same start latents.
#[derive(Debug, Clone)]
pub struct SdEval {
    /// The seed of the start latents.
    pub seed: u64,
    /// The prompt's text states, raw.
    pub text: ImageComparison,
    /// One guided noise prediction at the first timestep, raw.
    pub forward: ImageComparison,
    /// The final latents after the DDIM loop, raw.
    pub latents: ImageComparison,
    /// The integer VAE decoding the float's final latents, as images in `[0, 1]`
    /// (the decoder's own error).
    pub vae_only: ImageComparison,
    /// The decoded image, `clamp(x / 2 + 0.5, 0, 1)`, integer vs float.
    pub image: ImageComparison,
}

/// Run a text-to-image pipeline integer (from the model file bytes) and float
/// from the same seeded start latents, `steps` DDIM steps, guidance
/// `guidance_q16 / 65536` for both.
///
/// # Errors
/// A bad model file, a rejected request, a float model failure.
pub fn eval_sd(
    file_bytes: &[u8],
    float: &crate::diffusion::sd::StableDiffusion,
    prompt: &str,
    seed: u64,
    steps: usize,
    guidance_q16: u32,
    exec: Exec,
) -> Result<SdEval, ImageError> {
    use oracle_core::diffusion::sd::{seeded_latents, StableDiffusion as IntSd};
    let file = ModelFile::parse(file_bytes)?;
    let int = IntSd::from_file(&file)?;
    let rejected = |e: oracle_core::diffusion::sd::SdError| DiffusionErrorInput(e.to_string());
    let side = int.latent_side();
    let c = int.unet.in_channels;
    let start = seeded_latents(&int, seed);
    let start_f = Tensor::new(vec![c, side, side], q16_to_f32(&start))?;
    let g = guidance_q16 as f32 / 65536.0;
    // Text states.
    let text_i = int.encode(exec, prompt.as_bytes()).map_err(rejected)?;
    let cond_f = float.encode_prompt(prompt)?;
    let uncond_f = float.encode_prompt("")?;
    let text = compare_raw(&q16_to_f32(&text_i.cond), &cond_f.data);
    // One guided forward at the first timestep.
    let ts = int
        .unet
        .ddim
        .timesteps(steps)
        .ok_or_else(|| DiffusionErrorInput(format!("{steps} steps")))?;
    let e_i = int.guided_eps(exec, &start, side, ts[0] as u32, &text_i, guidance_q16);
    let e_f = if guidance_q16 > 65536 {
        float.guided_eps(&start_f, ts[0] as f32, &cond_f, &uncond_f, g)?
    } else {
        float.unet.forward(&start_f, ts[0] as f32, &cond_f)?
    };
    let forward = compare_raw(&q16_to_f32(&e_i), &e_f.data);
    // The loop and the decoder.
    let z_i = int
        .denoise(exec, prompt.as_bytes(), start, steps, guidance_q16)
        .map_err(rejected)?;
    let z_f = float.denoise(prompt, &start_f, steps, g)?;
    let latents = compare_raw(&q16_to_f32(&z_i), &z_f.data);
    let img_f = float.decode(&z_f)?;
    let to_img = |v: &[i32]| q16_to_image(v, 2.0);
    let z_f_q16: Vec<i32> = z_f
        .data
        .iter()
        .map(|&v| (f64::from(v) * 65536.0).round() as i32)
        .collect();
    let vae_only = compare(&to_img(&int.decode(exec, &z_f_q16)), &img_f.data);
    let image = compare(&to_img(&int.decode(exec, &z_i)), &img_f.data);
    Ok(SdEval {
        seed,
        text,
        forward,
        latents,
        vae_only,
        image,
    })
}
