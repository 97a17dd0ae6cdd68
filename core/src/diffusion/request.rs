//! One seeded image request, from the model file's bytes to the PNG bytes.
//!
//! This is the whole request path shared by the native `oracle run` (without
//! `--noise`) and the VM guest, so both produce the same bytes by construction:
//!
//! - **ddpm-mnist** ([`Arch::DdpmMnist`]): DDPM over the last `steps` of the 1000
//!   steps, every noise (start and per step) from the integer PRNG seeded with
//!   `seed` ([`DdpmNoise::Seed`]); the PNG is 28×28 gray, `clamp(z + 0.5, 0, 1)`.
//! - **UNet2DModel** ([`Arch::UNet2D`]): the start noise `(C, S, S)` from the PRNG
//!   seeded with `seed` ([`fill_normal_q16`]), `S = max(sample_size,
//!   side_multiple)`, then `steps` DDIM steps; the PNG is
//!   `clamp(x / 2 + 0.5, 0, 1) · 255` (rounded half up) as gray (`C = 1`) or RGB
//!   (`C = 3`), channels interleaved.
//!
//! - **Stable-Diffusion-shaped** ([`Arch::StableDiffusion`], tiny-sd): the start latents
//!   `(C, S, S)` from the PRNG seeded with `seed` ([`seeded_latents`]), then
//!   `steps` DDIM steps of the conditional UNet on the prompt's CLIP states with
//!   classifier-free guidance `guidance_q16` (Q16; the empty prompt is the
//!   unconditional branch), then the VAE decoder; the PNG is RGB as for UNet2D.
//!
//! ddpm-mnist and UNet2D are unconditional: a non-empty prompt is rejected (and
//! the guidance ignored).
//!
//! **Posted output** ([`posted_output`]): what an operator posts on chain for an
//! image request, and what the guest commits to (keccak256 of it), is the PNG
//! itself when it is at most [`OUTPUT_INLINE_LIMIT`] bytes, otherwise the 32-byte
//! keccak256 of the PNG (the node serves the PNG off chain, content-addressed).

use alloc::vec;
use alloc::vec::Vec;

use crate::diffusion::ddpm_mnist::{to_pixels, DdpmMnist, DdpmNoise, SampleError, SIZE};
use crate::diffusion::noise::fill_normal_q16;
use crate::diffusion::png::{encode, ColorType};
use crate::diffusion::sd::{seeded_latents, SdError, StableDiffusion, TOKENIZER};
use crate::diffusion::unet2d::{UNet2D, UNetError};
use crate::error::FormatError;
use crate::fixed::round_shift;
use crate::footprint::{image_footprint, image_width, Footprint, CLIP_TOKENIZER_FACTOR};
use crate::format::{Arch, ModelFile};
use crate::kernels::Exec;
use crate::rng::Rng;

/// Why an image request produced no image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRequestError {
    /// The file is not a loadable image model.
    #[error("image model: {0}")]
    Model(#[from] FormatError),
    /// The model takes no prompt.
    #[error("the model is unconditional: it takes no prompt")]
    Prompt,
    /// DDPM sampling rejected the request (steps outside `1..=1000`).
    #[error("ddpm: {0}")]
    Ddpm(#[from] SampleError),
    /// DDIM sampling rejected the request (steps outside the schedule).
    #[error("unet2d: {0}")]
    UNet(#[from] UNetError),
    /// The text-to-image pipeline rejected the request (prompt, steps, guidance).
    #[error("sd: {0}")]
    Sd(#[from] SdError),
    /// The sample has a channel count with no PNG form, or a size PNG cannot hold.
    #[error("a {channels}-channel {side}x{side} sample has no PNG form")]
    NoPng {
        /// Channels of the sample.
        channels: usize,
        /// Side of the sample.
        side: usize,
    },
}

/// Largest PNG posted on chain as is; a longer one is posted as its keccak256.
///
/// A protocol constant: the guest applies it ([`posted_output`]), so changing it
/// changes the program hash. 1024 bytes keeps a receiver that stores the output
/// (as `Prompt` does: 32 storage slots, about 0.7M gas) within the default 1M
/// callback gas; ddpm-mnist's 28×28 gray PNG (880 bytes) and tiny-unet2d's
/// 16×16 RGB (852) fit, a 24×24 RGB (1820) or larger is posted as its hash.
pub const OUTPUT_INLINE_LIMIT: usize = 1024;

/// The output posted for an image request whose image is `png`: the PNG bytes when
/// `png.len() <= OUTPUT_INLINE_LIMIT`, otherwise `keccak256(png)` (32 bytes).
/// Native node and guest both call this, so their output bytes agree. The two
/// forms cannot be confused: every PNG is longer than 32 bytes (signature, IHDR,
/// IDAT and IEND chunks alone take 57).
pub fn posted_output(png: &[u8]) -> Vec<u8> {
    if png.len() <= OUTPUT_INLINE_LIMIT {
        png.to_vec()
    } else {
        crate::commit::merkle::keccak(png).to_vec()
    }
}

/// An image request: the seed of the integer PRNG and the sampler's step count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRequest<'p> {
    /// Prompt bytes (must be empty for the unconditional models).
    pub prompt: &'p [u8],
    /// Classifier-free guidance in Q16 (text-to-image models only; at most
    /// `1.0` = 65536 runs the conditional branch alone; usual: 7.5 =
    /// [`crate::diffusion::sd::DEFAULT_GUIDANCE_Q16`]).
    pub guidance_q16: u32,
    /// DDPM steps (the last `steps` of 1000) or DDIM inference steps.
    pub steps: u32,
    /// Seed of every noise draw.
    pub seed: u64,
}

impl<'p> ImageRequest<'p> {
    /// The image request that the 20 request parameter bytes
    /// ([`crate::llama::generate::Request::encode_params`]) describe for an image model:
    /// `steps`, `seed`, and the guidance in Q16 in the temperature field (read by
    /// text-to-image models only; top-p is unused). The guest and the node read
    /// the chain's parameters through this one mapping.
    pub fn from_request(request: &crate::llama::generate::Request<'p>) -> ImageRequest<'p> {
        ImageRequest {
            prompt: request.prompt,
            guidance_q16: request.sampling.temperature_q16,
            steps: request.steps,
            seed: request.sampling.seed,
        }
    }
}

/// Run `request` on the image model file `bytes` and return the PNG bytes.
///
/// `exec` only changes speed: every kernel choice gives the same bytes.
pub fn run_image_request(
    bytes: &[u8],
    exec: Exec,
    request: &ImageRequest<'_>,
) -> Result<Vec<u8>, ImageRequestError> {
    let file = ModelFile::parse(bytes)?;
    if !request.prompt.is_empty() && file.arch != Arch::StableDiffusion {
        return Err(ImageRequestError::Prompt);
    }
    let steps = request.steps as usize;
    match file.arch {
        Arch::DdpmMnist => {
            let model = DdpmMnist::from_file(&file)?;
            let z = model.sample(exec, steps, DdpmNoise::Seed(request.seed))?;
            ddpm_png(&z)
        }
        Arch::UNet2D => {
            let model = UNet2D::from_file(&file)?;
            let side = model.sample_size.max(model.side_multiple());
            let channels = model.in_channels;
            let n = side
                .checked_mul(side)
                .and_then(|hw| hw.checked_mul(channels))
                .ok_or(ImageRequestError::NoPng { channels, side })?;
            let mut start = vec![0i32; n];
            fill_normal_q16(&mut Rng::new(request.seed), &mut start);
            let x = model.sample(exec, start, side, side, steps)?;
            unet_png(&x, channels, side)
        }
        Arch::StableDiffusion => {
            let sd = StableDiffusion::from_file(&file)?;
            let start = seeded_latents(&sd, request.seed);
            let image = sd.generate(exec, request.prompt, start, steps, request.guidance_q16)?;
            unet_png(&image, sd.vae.out_channels, sd.image_side())
        }
        Arch::Llama => Err(FormatError::WrongArch {
            expected: Arch::DdpmMnist,
            found: Arch::Llama,
        }
        .into()),
    }
}

/// Bind the networks of a parsed image model file (every check of loading, the
/// run-state bound included) and return its [`Footprint`]; allocates no run
/// state.
pub fn bind_footprint(file: &ModelFile<'_>) -> Result<Footprint, FormatError> {
    let (run_state, extra) = match file.arch {
        Arch::DdpmMnist => {
            DdpmMnist::from_file(file)?;
            (DdpmMnist::run_state_bytes(), 0)
        }
        Arch::UNet2D => {
            let m = UNet2D::from_file(file)?;
            (
                m.run_state_bytes(image_width(file, m.in_channels as u64)),
                0,
            )
        }
        Arch::StableDiffusion => {
            let sd = StableDiffusion::from_file(file)?;
            let width = image_width(file, sd.unet.in_channels as u64);
            let blob = file.tensor(TOKENIZER)?.data.len() as u64;
            (
                sd.run_state_bytes(width),
                blob.saturating_mul(CLIP_TOKENIZER_FACTOR),
            )
        }
        Arch::Llama => {
            return Err(FormatError::WrongArch {
                expected: Arch::DdpmMnist,
                found: Arch::Llama,
            })
        }
    };
    Ok(image_footprint(file, run_state, extra))
}

/// The PNG of a ddpm-mnist sample `z` (28×28 Q16): gray, `clamp(z + 0.5, 0, 1)`.
pub fn ddpm_png(z: &[i32]) -> Result<Vec<u8>, ImageRequestError> {
    let side = SIZE as u32;
    encode(&to_pixels(z), side, side, ColorType::Gray).ok_or(ImageRequestError::NoPng {
        channels: 1,
        side: SIZE,
    })
}

/// The PNG of a UNet2D sample `x` (`channels × side × side`, Q16):
/// `clamp(x / 2 + 0.5, 0, 1) · 255` rounded half up, gray (1 channel) or RGB (3),
/// channels interleaved.
pub fn unet_png(x: &[i32], channels: usize, side: usize) -> Result<Vec<u8>, ImageRequestError> {
    let no_png = ImageRequestError::NoPng { channels, side };
    let color = match channels {
        1 => ColorType::Gray,
        3 => ColorType::Rgb,
        _ => return Err(no_png),
    };
    // PNG sides are u32; a side past 2^16 would not fit memory anyway.
    let side_u32 = u32::try_from(side)
        .ok()
        .filter(|&s| s <= 1 << 16)
        .ok_or(no_png.clone())?;
    let hw = side.checked_mul(side).ok_or(no_png.clone())?;
    let n = hw.checked_mul(channels).ok_or(no_png.clone())?;
    if x.len() != n {
        return Err(no_png);
    }
    let mut px = vec![0u8; n];
    for (i, &v) in x.iter().enumerate() {
        // clamp(x / 2 + 0.5, 0, 1) in Q16 (the halving truncates toward zero),
        // times 255, rounded half up: at most 65536 · 255 < 2^24, so at most 255.
        let q = (i64::from(v) / 2 + 32768).clamp(0, 65536);
        px[(i % hw) * channels + i / hw] = round_shift(q * 255, 16) as u8;
    }
    encode(&px, side_u32, side_u32, color).ok_or(no_png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posted_output_is_the_png_up_to_the_limit_then_its_hash() {
        let small = vec![7u8; OUTPUT_INLINE_LIMIT];
        assert_eq!(posted_output(&small), small);
        let big = vec![7u8; OUTPUT_INLINE_LIMIT + 1];
        let posted = posted_output(&big);
        assert_eq!(posted.len(), 32);
        assert_eq!(posted, crate::commit::merkle::keccak(&big).to_vec());
    }
}
