//! Image diffusion models on the integer core: networks, schedulers and noise.
//!
//! - [`noise`]: Gaussian noise from the seeded integer PRNG (Box–Muller in integers).
//! - [`transformer`]: `Transformer2DModel` (self- and cross-attention blocks).
//! - [`ddpm_mnist`]: the ddpm-mnist CNN noise predictor and its DDPM sampling loop.
//! - [`png`]: a deterministic PNG encoder (stored deflate) for the output bytes.

pub mod ddpm_mnist;
pub mod noise;
pub mod png;
pub mod unet2d;
pub mod transformer;
