//! Image models for the integer core: export of float checkpoints to the image
//! model file (`oracle_core::format`, an image `Arch`) and evaluation of the integer
//! pipelines against the float32 references of [`crate::diffusion`].
//!
//! - [`cli`]: what `oracle-quant convert` / `eval-image` do for image models.
//! - [`ddpm`]: ddpm-mnist (PyTorch zip checkpoint) → `ARCH_DDPM_MNIST`.
//! - [`unet2d`]: a diffusers UNet2DModel + DDIM folder → `ARCH_UNET2D`.
//! - [`sd`]: a diffusers StableDiffusionPipeline folder (tiny-sd) → `ARCH_SD`.
//! - [`eval`]: PSNR and max abs error of integer vs float from the same noise.
//! - [`quantize`]: the shared weight encoders (conv/linear to Q8 groups, biases to
//!   Q16).

pub mod cli;
pub mod ddpm;
pub mod eval;
pub mod quantize;
pub mod sd;
pub mod unet2d;

use crate::diffusion::DiffusionError;

/// Why an image model could not be exported or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The float checkpoint could not be loaded or run.
    #[error(transparent)]
    Diffusion(#[from] DiffusionError),
    /// The integer model file was rejected by the core.
    #[error("model file: {0}")]
    Format(#[from] oracle_core::FormatError),
    /// The integer sampler rejected its input.
    #[error("sampling: {0}")]
    Sample(#[from] oracle_core::diffusion::ddpm_mnist::SampleError),
    /// A value the export cannot represent (a table entry out of range).
    #[error("cannot export {what}: {why}")]
    Export {
        /// The tensor.
        what: String,
        /// The reason.
        why: String,
    },
}
