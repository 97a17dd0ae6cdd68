//! A request's result as posted ([`outcome`]).

pub mod outcome;

use crate::diffusion::sd::SdConfig;
use crate::diffusion::unet2d::UNet2DConfig;
use crate::error::FormatError;
use crate::format::{Arch, ConfigReader, ModelFile};
use crate::llama::LlamaConfig;

/// Whether `bytes` are a model file whose header names an image architecture
/// (ddpm-mnist, UNet2D, Stable Diffusion), without parsing the rest.
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
