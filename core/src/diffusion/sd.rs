//! A Stable-Diffusion-shaped text-to-image pipeline in integers (tiny-sd): the
//! CLIP tokenizer and text encoder, the conditional UNet with classifier-free
//! guidance, DDIM (eta 0) and the VAE decoder, all bound from one
//! [`Arch::StableDiffusion`] model file (one Merkle root).
//!
//! **File layout.** Config: [`SdConfig`], the UNet's, the VAE decoder's and the
//! text encoder's typed configs one after the other. Tensors: `unet.*`, `vae.*`,
//! `text_encoder.text_model.*` (names as in the checkpoints), the CLIP tokenizer
//! blob [`TOKENIZER`] (`u8`), the DDIM tables `scheduler.*`.
//!
//! **Sampling** (diffusers' `StableDiffusionPipeline` with a DDIM scheduler):
//! `cond = clip(prompt)`, `uncond = clip("")`; for each DDIM timestep `t`,
//! `ε = ε_u + g·(ε_c − ε_u)` with `g` the guidance in Q16 (only `ε_c` when
//! `g ≤ 1`, as diffusers skips guidance there), then the DDIM update; the image is
//! `vae.decode(latents / scaling_factor)`. The guided sum: `|ε_c − ε_u| < 2^32`
//! and `g ≤ 2^24` ([`MAX_GUIDANCE_Q16`]), so the product is below `2^56` in `i64`;
//! it is rounded half up once and the sum saturates.

use alloc::vec;
use alloc::vec::Vec;

use super::unet2d::{UNet2D, UNet2DConfig, UNetError};
use super::vae::{VaeConfig, VaeDecoder};
use crate::diffusion::clip::{ClipTextConfig, ClipTextModel, ClipTokenizer};
use crate::error::{FormatError, RequestError};
use crate::fixed::{round_shift, sat_i32};
use crate::footprint::{check_run_state, conv_net_bytes, image_width, WORK_MAPS};
use crate::format::{Arch, ConfigReader, ConfigWriter, ModelFile};
use crate::kernels::Exec;

/// Tensor name prefix of the UNet.
pub const UNET_PREFIX: &str = "unet.";
/// Tensor name prefix of the VAE.
pub const VAE_PREFIX: &str = "vae.";
/// Tensor name prefix of the text encoder.
pub const CLIP_PREFIX: &str = "text_encoder.text_model.";
/// Tensor name of the tokenizer blob.
pub const TOKENIZER: &str = crate::format::TOKENIZER;
/// Guidance 1.0 in Q16: at or below it only the conditional pass runs.
pub const ONE_Q16: u32 = 1 << 16;
/// Largest guidance, `256.0` in Q16 (the bound of the guided sum).
pub const MAX_GUIDANCE_Q16: u32 = 1 << 24;
/// Stable Diffusion's usual guidance, `7.5`, in Q16.
pub const DEFAULT_GUIDANCE_Q16: u32 = 491_520;

/// The config of an [`Arch::StableDiffusion`] file: its components' configs,
/// written one after the other ([`SdConfig::to_words`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdConfig {
    /// The conditional UNet and the DDIM scheduler.
    pub unet: UNet2DConfig,
    /// The VAE decoder.
    pub vae: VaeConfig,
    /// The text encoder.
    pub clip: ClipTextConfig,
}

impl SdConfig {
    /// The config's words: the UNet's, the VAE's, the text encoder's.
    pub fn to_words(&self) -> Vec<u32> {
        let mut w = ConfigWriter::new();
        self.unet.write(&mut w);
        self.vae.write(&mut w);
        self.clip.write(&mut w);
        w.finish()
    }

    /// Read [`SdConfig::to_words`] back, every word used.
    pub fn from_words(words: &[u32]) -> Result<SdConfig, FormatError> {
        let mut r = ConfigReader::new(words);
        let c = SdConfig {
            unet: UNet2DConfig::read(&mut r)?,
            vae: VaeConfig::read(&mut r)?,
            clip: ClipTextConfig::read(&mut r)?,
        };
        r.finish()?;
        Ok(c)
    }
}

/// Why a text-to-image request was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdError {
    /// The prompt could not be encoded.
    #[error("prompt: {0}")]
    Prompt(#[from] RequestError),
    /// DDIM rejected the step count or the latents.
    #[error("unet: {0}")]
    UNet(#[from] UNetError),
    /// Guidance above [`MAX_GUIDANCE_Q16`].
    #[error("guidance {0}/65536 is above 256")]
    Guidance(u32),
}

/// The integer pipeline, borrowing the model file's bytes.
#[derive(Debug, Clone)]
pub struct StableDiffusion<'a> {
    /// `tokenizer`.
    pub tokenizer: ClipTokenizer,
    /// `text_encoder`.
    pub text_encoder: ClipTextModel<'a>,
    /// `unet` and the DDIM scheduler.
    pub unet: UNet2D<'a>,
    /// `vae` (decoder).
    pub vae: VaeDecoder<'a>,
}

/// Conditioning of both guidance branches: `[m × hidden]` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextStates {
    /// The prompt's states.
    pub cond: Vec<i32>,
    /// The empty prompt's states.
    pub uncond: Vec<i32>,
    /// Tokens per branch.
    pub tokens: usize,
}

impl<'a> StableDiffusion<'a> {
    /// Bind a parsed [`Arch::StableDiffusion`] file; the components must agree
    /// (text width = `cross_attention_dim`, UNet channels = latent channels).
    pub fn from_file(f: &ModelFile<'a>) -> Result<Self, FormatError> {
        f.expect_arch(Arch::StableDiffusion)?;
        let config = SdConfig::from_words(&f.config)?;
        let cfg = config.clip;
        let sd = StableDiffusion {
            tokenizer: ClipTokenizer::load(f, TOKENIZER)?,
            text_encoder: ClipTextModel::load(f, CLIP_PREFIX, cfg)?,
            unet: UNet2D::bind(f, &config.unet, UNET_PREFIX)?,
            vae: VaeDecoder::bind(f, &config.vae, VAE_PREFIX)?,
        };
        if sd.unet.cross_attention_dim != cfg.hidden as usize {
            return Err(FormatError::BadConfig(
                "cross_attention_dim differs from the text encoder's width",
            ));
        }
        if sd.unet.in_channels != sd.vae.latent_channels
            || sd.unet.out_channels != sd.vae.latent_channels
        {
            return Err(FormatError::BadConfig(
                "UNet channels differ from the VAE's latent channels",
            ));
        }
        if sd.tokenizer.max_len == 0 || sd.tokenizer.max_len > cfg.max_positions {
            return Err(FormatError::BadConfig(
                "tokenizer length exceeds the text encoder's positions",
            ));
        }
        check_run_state(sd.run_state_bytes(image_width(f, sd.unet.in_channels as u64)))?;
        Ok(sd)
    }

    /// The run state of one text-to-image request (see [`crate::footprint`]), for
    /// maps of at most `width` channels ([`image_width`]): the text encoder over
    /// its tokens (`WORK_MAPS` rows of `width` per token, and the causal scores),
    /// both branches' text states, the UNet at the latent side and the VAE at the
    /// image side.
    pub fn run_state_bytes(&self, width: u64) -> u64 {
        let n = u64::from(self.tokenizer.max_len);
        let latent_side = self.latent_side() as u64;
        [
            conv_net_bytes(width, 1, 0).saturating_mul(n),
            n.saturating_mul(n).saturating_mul(8),
            conv_net_bytes(width, 1, 0).saturating_mul(n) / WORK_MAPS * 2,
            self.unet.run_state_bytes(width),
            self.vae.run_state_bytes(width, latent_side),
        ]
        .iter()
        .fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// Side of the latents a request samples: `max(sample_size, side_multiple)`.
    pub fn latent_side(&self) -> usize {
        self.unet.sample_size.max(self.unet.side_multiple())
    }

    /// Values of the latents `[C × side × side]`.
    pub fn latent_len(&self) -> usize {
        let s = self.latent_side();
        self.unet.in_channels * s * s
    }

    /// Side of the decoded image.
    pub fn image_side(&self) -> usize {
        self.latent_side() * self.vae.scale()
    }

    /// Text states of `prompt` and of the empty prompt.
    pub fn encode(&self, exec: Exec, prompt: &[u8]) -> Result<TextStates, SdError> {
        let cond = self
            .text_encoder
            .encode_prompt(exec, &self.tokenizer, prompt)?;
        let uncond = self
            .text_encoder
            .encode_prompt(exec, &self.tokenizer, b"")?;
        let tokens = self.tokenizer.max_len as usize;
        Ok(TextStates {
            cond,
            uncond,
            tokens,
        })
    }

    /// The guided noise prediction for `x` (latents, `side × side`) at `t`.
    pub fn guided_eps(
        &self,
        exec: Exec,
        x: &[i32],
        side: usize,
        t: u32,
        text: &TextStates,
        guidance_q16: u32,
    ) -> Vec<i32> {
        let m = text.tokens;
        let c = self
            .unet
            .forward_cond(exec, x, side, side, t, Some((&text.cond, m)));
        if guidance_q16 <= ONE_Q16 {
            return c;
        }
        let u = self
            .unet
            .forward_cond(exec, x, side, side, t, Some((&text.uncond, m)));
        let g = i64::from(guidance_q16.min(MAX_GUIDANCE_Q16));
        u.iter()
            .zip(&c)
            .map(|(&u, &c)| {
                let d = i64::from(c) - i64::from(u);
                sat_i32(i64::from(u) + round_shift(g * d, 16))
            })
            .collect()
    }

    /// DDIM from `latents` (`[C × side × side]`, Q16) in `steps` steps with
    /// guidance `guidance_q16`; returns the final latents.
    pub fn denoise(
        &self,
        exec: Exec,
        prompt: &[u8],
        mut latents: Vec<i32>,
        steps: usize,
        guidance_q16: u32,
    ) -> Result<Vec<i32>, SdError> {
        if guidance_q16 > MAX_GUIDANCE_Q16 {
            return Err(SdError::Guidance(guidance_q16));
        }
        let want = self.latent_len();
        if latents.len() != want {
            return Err(UNetError::NoiseLength {
                got: latents.len(),
                want,
            }
            .into());
        }
        let ts = self
            .unet
            .ddim
            .timesteps(steps)
            .ok_or(UNetError::Steps(steps))?;
        let text = self.encode(exec, prompt)?;
        let side = self.latent_side();
        for &t in &ts {
            let eps = self.guided_eps(exec, &latents, side, t as u32, &text, guidance_q16);
            self.unet.ddim.step(&eps, t, steps, &mut latents);
        }
        Ok(latents)
    }

    /// Decode final latents to the image `[out_channels × S × S]` (Q16, about
    /// `[−1, 1]`), `S` = [`StableDiffusion::image_side`].
    ///
    /// # Panics
    /// If `latents` is not [`StableDiffusion::latent_len`] long.
    pub fn decode(&self, exec: Exec, latents: &[i32]) -> Vec<i32> {
        let side = self.latent_side();
        self.vae.decode(exec, latents, side, side)
    }

    /// The whole pipeline: prompt and start latents to the image (Q16).
    pub fn generate(
        &self,
        exec: Exec,
        prompt: &[u8],
        latents: Vec<i32>,
        steps: usize,
        guidance_q16: u32,
    ) -> Result<Vec<i32>, SdError> {
        let z = self.denoise(exec, prompt, latents, steps, guidance_q16)?;
        Ok(self.decode(exec, &z))
    }
}

/// A decimal guidance (`"7.5"`, `"1"`, `"12.25"`) in Q16, rounded half up,
/// without floating point; `None` for anything else or above 256.
pub fn parse_guidance_q16(s: &str) -> Option<u32> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty()
        || !digits(int)
        || !digits(frac)
        || int.len() > 3
        || frac.len() > 18
    {
        return None;
    }
    let i: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let (mut num, mut den) = (0u128, 1u128);
    for b in frac.bytes() {
        num = num * 10 + u128::from(b - b'0');
        den *= 10;
    }
    // frac · 2^16 rounded half up: (2·num·2^16 + den) / (2·den).
    let f = ((num << 17) + den) / (2 * den);
    let v = u128::from(i) * 65536 + f;
    u32::try_from(v).ok().filter(|&v| v <= MAX_GUIDANCE_Q16)
}

/// The start latents of a seeded request: `[C × side × side]` from the integer
/// PRNG seeded with `seed` (see [`super::noise`]).
pub fn seeded_latents(sd: &StableDiffusion<'_>, seed: u64) -> Vec<i32> {
    let mut x = vec![0i32; sd.latent_len()];
    super::noise::fill_normal_q16(&mut crate::rng::Rng::new(seed), &mut x);
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guidance_parses_exactly() {
        assert_eq!(parse_guidance_q16("7.5"), Some(DEFAULT_GUIDANCE_Q16));
        assert_eq!(parse_guidance_q16("1"), Some(ONE_Q16));
        assert_eq!(parse_guidance_q16("0.5"), Some(32768));
        assert_eq!(parse_guidance_q16(".25"), Some(16384));
        assert_eq!(parse_guidance_q16("256"), Some(MAX_GUIDANCE_Q16));
        // 1/65536 = 0.0000152587890625: a half unit rounds up.
        assert_eq!(parse_guidance_q16("0.00000762939453125"), Some(1));
        assert_eq!(parse_guidance_q16("0.0000076293945312"), Some(0));
        for bad in ["", ".", "-1", "1e3", "256.1", "7,5", "1.2.3", " 7"] {
            assert_eq!(parse_guidance_q16(bad), None, "{bad:?}");
        }
    }
}
