//! One seeded image request, from a bound image model to the PNG bytes: the path
//! of every host ([`crate::model::AnyModel::run`]: the native node, `oracle run`
//! and the VM guest), so all produce the same bytes by construction:
//!
//! - **ddpm-mnist** ([`crate::format::Arch::DdpmMnist`]): DDPM over the last
//!   `steps` of the 1000 steps, every noise (start and per step) from the integer
//!   PRNG seeded with `seed` ([`DdpmNoise::Seed`]); the PNG is 28×28 gray,
//!   `clamp(z + 0.5, 0, 1)`.
//! - **UNet2DModel** ([`crate::format::Arch::UNet2D`]): the start noise
//!   `(C, S, S)` from the PRNG seeded with `seed` ([`fill_normal_q16`]),
//!   `S = max(sample_size, side_multiple)`, then `steps` DDIM steps; the PNG is
//!   `clamp(x / 2 + 0.5, 0, 1) · 255` (rounded half up) as gray (`C = 1`) or RGB
//!   (`C = 3`), channels interleaved.
//! - **Stable-Diffusion-shaped** ([`crate::format::Arch::StableDiffusion`],
//!   tiny-sd): the start latents `(C, S, S)` from the PRNG seeded with `seed`
//!   ([`seeded_latents`]), then `steps` DDIM steps of the conditional UNet on the
//!   prompt's CLIP states with classifier-free guidance `guidance_q16` (Q16; the
//!   empty prompt is the unconditional branch), then the VAE decoder; the PNG is
//!   RGB as for UNet2D.
//!
//! ddpm-mnist and UNet2D are unconditional: a non-empty prompt is rejected (and
//! the guidance ignored).
//!
//! **Given noise** ([`ImageRequest::noise`], `oracle run --noise` only): the start
//! (ddpm-mnist: the sample's 784 values with later noise seeded, or a stack of
//! `steps · 784` where entry 0 is the start and entry k the noise added after the
//! k-th update; UNet2D: the sample; Stable Diffusion: the latents) replaces the
//! seeded draw, so a run can be compared with another implementation.
//!
//! **Posted output** ([`posted_output`]): what an operator posts on chain for an
//! image request, and what the guest commits to (keccak256 of it), is the PNG
//! itself when it is at most [`OUTPUT_INLINE_LIMIT`] bytes, otherwise the 32-byte
//! keccak256 of the PNG (the node serves the PNG off chain, content-addressed).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::diffusion::ddpm_mnist::{to_pixels, DdpmMnist, DdpmNoise, SampleError, PIXELS, SIZE};
use crate::diffusion::noise::fill_normal_q16;
use crate::diffusion::png::{encode, ColorType};
use crate::diffusion::sd::{seeded_latents, SdError, StableDiffusion};
use crate::diffusion::unet2d::{UNet2D, UNetError};
use crate::fixed::round_shift;
use crate::kernels::Exec;
use crate::model::request::ImageParams;
use crate::rng::Rng;

/// Why an image request produced no image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRequestError {
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
    /// The given noise has another length than the start it replaces.
    #[error("noise has {got} values: expected {want}")]
    Noise {
        /// Values given.
        got: usize,
        /// The shape expected.
        want: String,
    },
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

/// An image request: the prompt, the parameters and, for local diagnostics, the
/// given start noise (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRequest<'a> {
    /// Prompt bytes (must be empty for the unconditional models).
    pub prompt: &'a [u8],
    /// Steps, seed, guidance.
    pub params: ImageParams,
    /// The start noise in Q16 in place of the seeded draw (`None` on chain).
    pub noise: Option<&'a [i32]>,
}

impl ImageRequest<'_> {
    /// `Prompt` unless the prompt is empty (the unconditional models).
    fn no_prompt(&self) -> Result<(), ImageRequestError> {
        if self.prompt.is_empty() {
            Ok(())
        } else {
            Err(ImageRequestError::Prompt)
        }
    }

    /// The given noise as the start of `want` values (`Noise` otherwise), or
    /// `None` when none is given.
    fn start(
        &self,
        want: usize,
        shape: impl Fn() -> String,
    ) -> Result<Option<Vec<i32>>, ImageRequestError> {
        match self.noise {
            None => Ok(None),
            Some(n) if n.len() == want => Ok(Some(n.to_vec())),
            Some(n) => Err(ImageRequestError::Noise {
                got: n.len(),
                want: shape(),
            }),
        }
    }
}

/// The PNG of a ddpm-mnist request.
pub fn ddpm_mnist(
    model: &DdpmMnist<'_>,
    exec: Exec,
    request: &ImageRequest<'_>,
) -> Result<Vec<u8>, ImageRequestError> {
    request.no_prompt()?;
    let p = request.params;
    let steps = p.steps as usize;
    let source = match request.noise {
        None => DdpmNoise::Seed(p.seed),
        Some(n) if n.len() as u64 == u64::from(p.steps) * PIXELS as u64 => DdpmNoise::Stack(n),
        Some(n) if n.len() == PIXELS => DdpmNoise::Start(n, p.seed),
        Some(n) => {
            return Err(ImageRequestError::Noise {
                got: n.len(),
                want: format!(
                    "the sample's 784 (1, 28, 28) or a stack of {steps} x 784 ({steps}, 1, 28, 28)"
                ),
            })
        }
    };
    let z = model.sample(exec, steps, source)?;
    ddpm_png(&z)
}

/// The PNG of a UNet2DModel request.
pub fn unet2d(
    model: &UNet2D<'_>,
    exec: Exec,
    request: &ImageRequest<'_>,
) -> Result<Vec<u8>, ImageRequestError> {
    request.no_prompt()?;
    let side = model.sample_size.max(model.side_multiple());
    let channels = model.in_channels;
    let n = side
        .checked_mul(side)
        .and_then(|hw| hw.checked_mul(channels))
        .ok_or(ImageRequestError::NoPng { channels, side })?;
    let start = match request.start(n, || format!("the sample's ({channels}, {side}, {side})"))? {
        Some(given) => given,
        None => {
            let mut z = vec![0i32; n];
            fill_normal_q16(&mut Rng::new(request.params.seed), &mut z);
            z
        }
    };
    let x = model.sample(exec, start, side, side, request.params.steps as usize)?;
    unet_png(&x, channels, side)
}

/// The PNG of a text-to-image request.
pub fn stable_diffusion(
    sd: &StableDiffusion<'_>,
    exec: Exec,
    request: &ImageRequest<'_>,
) -> Result<Vec<u8>, ImageRequestError> {
    let p = request.params;
    let (c, s) = (sd.unet.in_channels, sd.latent_side());
    let start = match request.start(sd.latent_len(), || format!("the latents' ({c}, {s}, {s})"))? {
        Some(given) => given,
        None => seeded_latents(sd, p.seed),
    };
    let image = sd.generate(
        exec,
        request.prompt,
        start,
        p.steps as usize,
        p.guidance_q16,
    )?;
    unet_png(&image, sd.vae.out_channels, sd.image_side())
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
