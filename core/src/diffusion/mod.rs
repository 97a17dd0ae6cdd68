//! Image diffusion models on the integer core: networks, schedulers and noise.
//!
//! - [`blocks`]: the ResNet, attention, down/up/mid blocks the UNets and the VAE share.
//! - [`noise`]: Gaussian noise from the seeded integer PRNG (Box–Muller in integers).
//! - [`transformer`]: `Transformer2DModel` (self- and cross-attention blocks).
//! - [`ddpm_mnist`]: the ddpm-mnist CNN noise predictor and its DDPM sampling loop.
//! - [`png`]: a deterministic PNG encoder (stored deflate) for the output bytes.
//! - [`unet2d`]: diffusers' `UNet2DModel` and `UNet2DConditionModel` driven by
//!   their config, and DDIM.
//! - [`vae`]: the `AutoencoderKL` decoder.
//! - [`sd`]: the text-to-image pipeline (CLIP, guided UNet, DDIM, VAE) of tiny-sd.
//! - [`clip`]: CLIP's tokenizer and text encoder (tiny-sd's conditioning).
//! - [`request`]: one seeded image request, from the model file to the PNG bytes.

pub mod blocks;
pub mod clip;
pub mod ddpm_mnist;
pub mod noise;
pub mod png;
pub mod request;
pub mod sd;
pub mod transformer;
pub mod unet2d;
pub mod vae;
