//! A request and its parameters, owned by the core: the input (the prompt) and
//! the numeric parameters of the model's family ([`RequestParams`]), which have
//! one canonical 20-byte encoding ([`PARAMS_LEN`]) that the dispute games, the
//! guest's local data (local 3) and the two-phase decode state (`P_t`) carry.
//!
//! **Encoding** (big-endian; which variant the bytes are is the model's family,
//! never the bytes: [`crate::model::AnyModel::decode_params`]):
//!
//! | bytes | text ([`TextParams`]) | image ([`ImageParams`]) |
//! |---|---|---|
//! | 0..4 | `steps` | `steps` |
//! | 4..8 | `temperature_q16` | `guidance_q16` |
//! | 8..12 | `top_p_q16` (bit 31: `chat`) | reserved, zero |
//! | 12..20 | `seed` | `seed` |
//!
//! `steps` is at 0..4 in both (the position game reads it there). The text
//! encoding is the one the contracts and the two-phase state have always held.
//! The image encoding is its own: the classifier-free guidance is a named field
//! (until this version it travelled as "temperature" through the text request),
//! and bytes 8..12 must be zero (they held an unused top-p; parameters with
//! anything else there are rejected: the error outcome), so every image request
//! has one encoding.

use crate::error::RequestError;
use crate::llama::sampler::SamplingParams;

/// Length of the canonical encoding of [`RequestParams`].
pub const PARAMS_LEN: usize = 20;

/// The parameters of a text request: positions to run, the sampler's, and
/// whether the prompt is a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextParams {
    /// Positions to run, prompt included (llama2.c's `-n`); values above the
    /// context length are clamped to it.
    pub steps: u32,
    /// Temperature, top-p and seed.
    pub sampling: SamplingParams,
    /// The prompt is one user message, to be wrapped in the model's chat template
    /// ([`crate::llama::chat`]); a model without one rejects the request.
    pub chat: bool,
}

/// Bit 31 of the text encoding's top-p word (bytes 8..12): [`TextParams::chat`].
/// A top-p is at most `1.0` = 65536, so the bit held no valid value before (such
/// parameters were rejected), and the position game, which reads only `steps`,
/// is unaffected.
const CHAT_BIT: u32 = 1 << 31;

/// The parameters of an image request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageParams {
    /// DDPM steps (the last `steps` of 1000) or DDIM inference steps.
    pub steps: u32,
    /// Seed of every noise draw.
    pub seed: u64,
    /// Classifier-free guidance in Q16 (read by text-to-image models only; at
    /// most `1.0` = 65536 runs the conditional branch alone; usual: 7.5 =
    /// [`crate::diffusion::sd::DEFAULT_GUIDANCE_Q16`]).
    pub guidance_q16: u32,
}

/// A request's parameters, by the family of the model that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestParams {
    /// A text model's.
    Text(TextParams),
    /// An image model's.
    Image(ImageParams),
}

fn put(out: &mut [u8; PARAMS_LEN], at: usize, v: &[u8]) {
    out[at..at + v.len()].copy_from_slice(v);
}

/// The big-endian `u32` at `at` of a 20-byte encoding.
fn u32_at(b: &[u8; PARAMS_LEN], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The seed at 12..20 of a 20-byte encoding.
fn seed_of(b: &[u8; PARAMS_LEN]) -> u64 {
    let mut s = [0u8; 8];
    s.copy_from_slice(&b[12..20]);
    u64::from_be_bytes(s)
}

/// `bytes` as exactly [`PARAMS_LEN`] bytes.
fn exact(bytes: &[u8]) -> Option<&[u8; PARAMS_LEN]> {
    bytes.try_into().ok()
}

impl TextParams {
    /// The canonical encoding (module docs).
    pub fn encode(&self) -> [u8; PARAMS_LEN] {
        let mut out = [0u8; PARAMS_LEN];
        let top_p = (self.sampling.top_p_q16 & !CHAT_BIT) | if self.chat { CHAT_BIT } else { 0 };
        put(&mut out, 0, &self.steps.to_be_bytes());
        put(&mut out, 4, &self.sampling.temperature_q16.to_be_bytes());
        put(&mut out, 8, &top_p.to_be_bytes());
        put(&mut out, 12, &self.sampling.seed.to_be_bytes());
        out
    }

    /// Decode [`TextParams::encode`]'s output; `None` unless exactly
    /// [`PARAMS_LEN`] bytes (the values' ranges are the request's to check).
    pub fn decode(bytes: &[u8]) -> Option<TextParams> {
        let b = exact(bytes)?;
        Some(TextParams {
            steps: u32_at(b, 0),
            sampling: SamplingParams {
                temperature_q16: u32_at(b, 4),
                top_p_q16: u32_at(b, 8) & !CHAT_BIT,
                seed: seed_of(b),
            },
            chat: u32_at(b, 8) & CHAT_BIT != 0,
        })
    }
}

impl ImageParams {
    /// The canonical encoding (module docs).
    pub fn encode(&self) -> [u8; PARAMS_LEN] {
        let mut out = [0u8; PARAMS_LEN];
        put(&mut out, 0, &self.steps.to_be_bytes());
        put(&mut out, 4, &self.guidance_q16.to_be_bytes());
        put(&mut out, 12, &self.seed.to_be_bytes());
        out
    }

    /// Decode [`ImageParams::encode`]'s output; `None` unless exactly
    /// [`PARAMS_LEN`] bytes with the reserved bytes 8..12 zero.
    pub fn decode(bytes: &[u8]) -> Option<ImageParams> {
        let b = exact(bytes)?;
        if u32_at(b, 8) != 0 {
            return None;
        }
        Some(ImageParams {
            steps: u32_at(b, 0),
            seed: seed_of(b),
            guidance_q16: u32_at(b, 4),
        })
    }
}

impl RequestParams {
    /// The canonical encoding (module docs).
    pub fn encode(&self) -> [u8; PARAMS_LEN] {
        match self {
            RequestParams::Text(p) => p.encode(),
            RequestParams::Image(p) => p.encode(),
        }
    }

    /// Steps of either family (bytes 0..4 of the encoding).
    pub fn steps(&self) -> u32 {
        match self {
            RequestParams::Text(p) => p.steps,
            RequestParams::Image(p) => p.steps,
        }
    }
}

/// The settings a command line gives a request, whatever the model: each family
/// reads its own ([`crate::model::AnyModel::params`]): a text model `steps`,
/// `temperature_q16`, `top_p_q16` and `seed`; an image model `steps`, `seed` and
/// `guidance_q16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Positions (text) or sampler steps (image).
    pub steps: u32,
    /// Seed of the sampler or of the noise.
    pub seed: u64,
    /// Text: temperature in Q16.
    pub temperature_q16: u32,
    /// Text: top-p in Q16.
    pub top_p_q16: u32,
    /// Text to image: classifier-free guidance in Q16.
    pub guidance_q16: u32,
    /// Text: the prompt is a chat message ([`TextParams::chat`]).
    pub chat: bool,
}

/// One request: its input and parameters, and for local diagnostics an image's
/// start noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The input: a prompt (any bytes; invalid UTF-8 goes through the text
    /// tokenizer's byte fallback), empty for an unconditional image model.
    pub prompt: &'a [u8],
    /// The parameters.
    pub params: RequestParams,
    /// Local diagnostics only (`oracle run --noise`): an image model's start
    /// noise in Q16, in place of the seeded draw (ddpm-mnist: the sample's 784
    /// values, later noise seeded, or a stack of `steps · 784`; UNet2D: the
    /// sample `(C, S, S)`; Stable Diffusion: the latents `(C, s, s)`). Not part
    /// of the encoding, so never part of an on-chain request; a text model
    /// rejects it.
    pub noise: Option<&'a [i32]>,
}

impl<'a> Request<'a> {
    /// A request of `prompt` with `params`.
    pub fn new(prompt: &'a [u8], params: RequestParams) -> Request<'a> {
        Request {
            prompt,
            params,
            noise: None,
        }
    }

    /// A text request.
    pub fn text(prompt: &'a [u8], steps: u32, sampling: SamplingParams) -> Request<'a> {
        Request::new(
            prompt,
            RequestParams::Text(TextParams {
                steps,
                sampling,
                chat: false,
            }),
        )
    }

    /// An image request.
    pub fn image(prompt: &'a [u8], params: ImageParams) -> Request<'a> {
        Request::new(prompt, RequestParams::Image(params))
    }

    /// The same request starting from the given noise (see [`Request::noise`]).
    pub fn with_noise(self, noise: Option<&'a [i32]>) -> Request<'a> {
        Request { noise, ..self }
    }

    /// The canonical encoding of the parameters (what the guest reads as local 3).
    pub fn encode_params(&self) -> [u8; PARAMS_LEN] {
        self.params.encode()
    }

    /// The text parameters, for a text model (which takes no noise).
    pub fn text_params(&self) -> Result<TextParams, RequestError> {
        match self.params {
            RequestParams::Text(p) if self.noise.is_none() => Ok(p),
            RequestParams::Text(_) => Err(RequestError::Params(
                "a text model starts from no given noise",
            )),
            RequestParams::Image(_) => {
                Err(RequestError::Params("image parameters for a text model"))
            }
        }
    }

    /// The image parameters, for an image model.
    pub fn image_params(&self) -> Result<ImageParams, RequestError> {
        match self.params {
            RequestParams::Image(p) => Ok(p),
            RequestParams::Text(_) => {
                Err(RequestError::Params("text parameters for an image model"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_encoding_is_the_games_and_round_trips() {
        let p = TextParams {
            steps: 0x0102_0304,
            sampling: SamplingParams {
                temperature_q16: 0x0506_0708,
                top_p_q16: 0x090A_0B0C,
                seed: 0x0D0E_0F10_1112_1314,
            },
            chat: false,
        };
        let b = p.encode();
        assert_eq!(b, core::array::from_fn(|i| i as u8 + 1));
        assert_eq!(TextParams::decode(&b), Some(p));
        assert_eq!(RequestParams::Text(p).encode(), b);
        assert_eq!(TextParams::decode(&b[1..]), None);
        let chat = TextParams { chat: true, ..p };
        let c = chat.encode();
        assert_eq!(c[8], 0x89, "the chat flag is bit 31 of the top-p word");
        assert_eq!(
            &c[..8],
            &b[..8],
            "steps (read by the position game) unchanged"
        );
        assert_eq!(&c[9..], &b[9..]);
        assert_eq!(TextParams::decode(&c), Some(chat));
    }

    #[test]
    fn image_encoding_names_the_guidance_and_is_canonical() {
        let p = ImageParams {
            steps: 3,
            seed: 0x0102_0304_0506_0708,
            guidance_q16: 5 << 16,
        };
        let b = p.encode();
        assert_eq!(&b[..4], &3u32.to_be_bytes());
        assert_eq!(&b[4..8], &(5u32 << 16).to_be_bytes());
        assert_eq!(&b[8..12], &[0; 4]);
        assert_eq!(&b[12..], &p.seed.to_be_bytes());
        assert_eq!(ImageParams::decode(&b), Some(p));
        let mut other = b;
        other[10] = 1;
        assert_eq!(ImageParams::decode(&other), None, "reserved bytes");
        assert_eq!(ImageParams::decode(&b[..19]), None);
        assert_eq!(RequestParams::Image(p).steps(), 3);
    }

    #[test]
    fn a_family_rejects_the_other_familys_parameters() {
        let text = Request::text(b"", 4, SamplingParams::GREEDY);
        let image = Request::image(
            b"",
            ImageParams {
                steps: 1,
                seed: 0,
                guidance_q16: 0,
            },
        );
        assert!(text.text_params().is_ok() && text.image_params().is_err());
        assert!(image.image_params().is_ok() && image.text_params().is_err());
        assert!(text.with_noise(Some(&[0])).text_params().is_err());
    }
}
