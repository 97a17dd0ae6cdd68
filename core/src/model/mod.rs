//! The model and the request, owned by the core: every host asks the core, not
//! the file's magic or a flag of its own, what a model is and what a request to it
//! posts.
//!
//! - [`AnyModel`]: a model file of any architecture, loaded from the one format
//!   ([`crate::format`]), one variant per [`Arch`].
//! - [`request`]: a request ([`Request`]) and its parameters ([`RequestParams`]:
//!   text sampling or image parameters) with their canonical 20-byte encoding.
//! - [`outcome`]: what a request posts ([`Outcome`], the error outcome) and
//!   [`run`], the entry point of the guest, the node, `oracle run` and `fpvm run`.
//!
//! A new architecture is a variant here, an arm in each `match` of this file
//! (load, footprint, parameters, run) and its loader in its family's module; no
//! host changes (CONTRIBUTING.md, "Adding a model family").

pub mod outcome;
pub mod request;

pub use outcome::{run, Outcome, Rejection};
pub use request::{ImageParams, Request, RequestParams, Settings, TextParams, PARAMS_LEN};

use crate::commit::merkle::{model_root, to_hex, Hash};
use crate::diffusion::ddpm_mnist::DdpmMnist;
use crate::diffusion::request::{self as image, ImageRequest, ImageRequestError};
use crate::diffusion::sd::{SdConfig, StableDiffusion, TOKENIZER};
use crate::diffusion::unet2d::{UNet2D, UNet2DConfig};
use crate::error::{FormatError, RequestError};
use crate::footprint::{image_footprint, image_width, Footprint, CLIP_TOKENIZER_FACTOR};
use crate::format::{Arch, ConfigReader, ModelFile};
use crate::kernels::Exec;
use crate::llama::{self, LlamaConfig, SamplingParams};

/// A model file of any architecture, bound for inference (weights borrowed from
/// the file's bytes, tables and tokenizers decoded, no run state allocated).
// One per loaded file, moved rarely: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum AnyModel<'a> {
    /// A LLaMA-family text model ([`Arch::Llama`]).
    Llama(llama::Model<'a>),
    /// The ddpm-mnist noise predictor and its DDPM schedule ([`Arch::DdpmMnist`]).
    DdpmMnist(DdpmMnist<'a>),
    /// A diffusers `UNet2DModel` with DDIM ([`Arch::UNet2D`]).
    UNet2D(UNet2D<'a>),
    /// A Stable-Diffusion-shaped text-to-image pipeline
    /// ([`Arch::StableDiffusion`]).
    StableDiffusion(StableDiffusion<'a>),
}

impl<'a> AnyModel<'a> {
    /// Parse and bind a model file of any architecture. Fails (never panics) on a
    /// malformed file and on one whose run state would exceed
    /// [`crate::footprint::MAX_RUN_STATE_BYTES`].
    pub fn load(bytes: &'a [u8]) -> Result<AnyModel<'a>, FormatError> {
        Ok(AnyModel::load_with_footprint(bytes)?.0)
    }

    /// [`AnyModel::load`], and the memory the model needs to serve one request
    /// ([`crate::footprint`]), computed from the parsed file before it is dropped.
    pub fn load_with_footprint(bytes: &'a [u8]) -> Result<(AnyModel<'a>, Footprint), FormatError> {
        let file = ModelFile::parse(bytes)?;
        Ok(match file.arch {
            Arch::Llama => {
                let m = llama::Model::from_file(file)?;
                let fp = m.footprint();
                (AnyModel::Llama(m), fp)
            }
            Arch::DdpmMnist => {
                let m = DdpmMnist::from_file(&file)?;
                let fp = image_footprint(&file, DdpmMnist::run_state_bytes(), 0);
                (AnyModel::DdpmMnist(m), fp)
            }
            Arch::UNet2D => {
                let m = UNet2D::from_file(&file)?;
                let width = image_width(&file, m.in_channels as u64);
                let fp = image_footprint(&file, m.run_state_bytes(width), 0);
                (AnyModel::UNet2D(m), fp)
            }
            Arch::StableDiffusion => {
                let sd = StableDiffusion::from_file(&file)?;
                let width = image_width(&file, sd.unet.in_channels as u64);
                // The CLIP tokenizer's vocabulary and merge maps, decoded.
                let blob = file.u8s(TOKENIZER)?.len() as u64;
                let fp = image_footprint(
                    &file,
                    sd.run_state_bytes(width),
                    blob.saturating_mul(CLIP_TOKENIZER_FACTOR),
                );
                (AnyModel::StableDiffusion(sd), fp)
            }
        })
    }

    /// Load, and first check the bytes against an expected model root.
    pub fn load_verified(
        bytes: &'a [u8],
        expected_root: &Hash,
    ) -> Result<AnyModel<'a>, FormatError> {
        let actual = model_root(bytes);
        if &actual != expected_root {
            return Err(FormatError::RootMismatch {
                expected: to_hex(expected_root),
                actual: to_hex(&actual),
            });
        }
        AnyModel::load(bytes)
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        match self {
            AnyModel::Llama(_) => Arch::Llama,
            AnyModel::DdpmMnist(_) => Arch::DdpmMnist,
            AnyModel::UNet2D(_) => Arch::UNet2D,
            AnyModel::StableDiffusion(_) => Arch::StableDiffusion,
        }
    }

    /// The request parameters that the canonical encoding `bytes` describes for
    /// this model's family (`Params` unless they are exactly its encoding).
    pub fn decode_params(&self, bytes: &[u8]) -> Result<RequestParams, RequestError> {
        match self {
            AnyModel::Llama(_) => TextParams::decode(bytes)
                .map(RequestParams::Text)
                .ok_or(RequestError::Params("text parameters are 20 bytes")),
            AnyModel::DdpmMnist(_) | AnyModel::UNet2D(_) | AnyModel::StableDiffusion(_) => {
                ImageParams::decode(bytes)
                    .map(RequestParams::Image)
                    .ok_or(RequestError::Params(
                        "image parameters are 20 bytes with bytes 8..12 zero",
                    ))
            }
        }
    }

    /// The parameters this model's family reads from a command line's settings.
    pub fn params(&self, s: &Settings) -> RequestParams {
        match self {
            AnyModel::Llama(_) => RequestParams::Text(TextParams {
                steps: s.steps,
                sampling: SamplingParams {
                    temperature_q16: s.temperature_q16,
                    top_p_q16: s.top_p_q16,
                    seed: s.seed,
                },
                chat: s.chat,
            }),
            AnyModel::DdpmMnist(_) | AnyModel::UNet2D(_) | AnyModel::StableDiffusion(_) => {
                RequestParams::Image(ImageParams {
                    steps: s.steps,
                    seed: s.seed,
                    guidance_q16: s.guidance_q16,
                })
            }
        }
    }

    /// Run `request`: a text model decodes it (each printed piece handed to
    /// `on_piece`) and posts the text and a newline; an image model samples the
    /// seeded image and posts its PNG (or its hash, [`image::posted_output`]); a
    /// request the model rejects (parameters of the other family included) has
    /// the error outcome. `exec` changes only the speed.
    pub fn run(&self, exec: Exec, request: &Request<'_>, on_piece: impl FnMut(&[u8])) -> Outcome {
        let image =
            |run: &dyn Fn(&ImageRequest<'_>) -> Result<alloc::vec::Vec<u8>, ImageRequestError>| {
                let outcome = request.image_params().map(|params| {
                    run(&ImageRequest {
                        prompt: request.prompt,
                        params,
                        noise: request.noise,
                    })
                });
                match outcome {
                    Ok(Ok(png)) => Outcome::Image { png },
                    Ok(Err(e)) => Outcome::Rejected(Rejection::Image(e)),
                    Err(e) => Outcome::Rejected(Rejection::Request(e)),
                }
            };
        match self {
            AnyModel::Llama(m) => m.run(exec, request, on_piece),
            AnyModel::DdpmMnist(m) => image(&|r| image::ddpm_mnist(m, exec, r)),
            AnyModel::UNet2D(m) => image(&|r| image::unet2d(m, exec, r)),
            AnyModel::StableDiffusion(m) => image(&|r| image::stable_diffusion(m, exec, r)),
        }
    }
}

/// Whether `bytes` are a model file whose header names an image architecture
/// (ddpm-mnist, UNet2D, Stable Diffusion), without parsing the rest: for a host
/// that picks a dispute game by it (the node's registration check). The request
/// path never needs it: [`AnyModel::run`] serves every architecture.
pub fn is_image_model(bytes: &[u8]) -> bool {
    ModelFile::peek_arch(bytes).is_some_and(|a| a != Arch::Llama)
}

/// The typed config of a model file, by architecture (what `oracle-quant
/// inspect` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    /// [`Arch::Llama`].
    Llama(LlamaConfig),
    /// [`Arch::DdpmMnist`]: no config, the shapes are fixed.
    DdpmMnist,
    /// [`Arch::UNet2D`].
    UNet2D(UNet2DConfig),
    /// [`Arch::StableDiffusion`].
    StableDiffusion(SdConfig),
}

impl Config {
    /// Read the typed config of a parsed file (every word used).
    pub fn of(file: &ModelFile<'_>) -> Result<Config, FormatError> {
        Ok(match file.arch {
            Arch::Llama => Config::Llama(LlamaConfig::from_words(&file.config)?),
            Arch::DdpmMnist => {
                ConfigReader::new(&file.config).finish()?;
                Config::DdpmMnist
            }
            Arch::UNet2D => Config::UNet2D(UNet2DConfig::from_words(&file.config)?),
            Arch::StableDiffusion => Config::StableDiffusion(SdConfig::from_words(&file.config)?),
        })
    }
}
