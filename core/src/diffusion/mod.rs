//! Image diffusion models on the integer core: networks, schedulers and noise.
//!
//! - [`noise`]: Gaussian noise from the seeded integer PRNG (Box–Muller in integers).
//! - [`transformer`]: `Transformer2DModel` (self- and cross-attention blocks).
//! - [`ddpm_mnist`]: the ddpm-mnist CNN noise predictor and its DDPM sampling loop.
//! - [`png`]: a deterministic PNG encoder (stored deflate) for the output bytes.
//! - [`unet2d`]: diffusers' `UNet2DModel` driven by its config, and DDIM.

pub mod ddpm_mnist;
pub mod noise;
pub mod png;
pub mod transformer;
pub mod unet2d;
