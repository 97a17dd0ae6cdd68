//! Integer vs float32: the same initial noise (and the same per-step noise) through
//! both pipelines, compared on the final image in `[0, 1]`.

use oracle_core::diffusion::ddpm_mnist::{DdpmMnist as IntDdpm, DdpmNoise, PIXELS};
use oracle_core::diffusion::noise::fill_normal_q16;
use oracle_core::image_format::ImageModelFile;
use oracle_core::kernels::Exec;
use oracle_core::sampler::Rng;

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
            10.0 * (1.0 / mse).log10()
        },
        max_abs: max,
    }
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
    let file = ImageModelFile::parse(file_bytes)?;
    let int = IntDdpm::from_file(&file)?;
    let stack = ddpm_noise_stack(seed, steps);
    let z_int = int.sample(exec, steps, DdpmNoise::Stack(&stack))?;
    let z_float: Tensor = float.sample(&q16_to_f32(&stack), steps)?;
    let int_image: Vec<f32> = z_int
        .iter()
        .map(|&v| (v as f32 / 65536.0 + 0.5).clamp(0.0, 1.0))
        .collect();
    let float_image = crate::diffusion::ddpm_mnist::to_image(&z_float);
    let cmp = compare(&int_image, &float_image);
    Ok(DdpmSample {
        seed,
        int_image,
        float_image,
        cmp,
    })
}
