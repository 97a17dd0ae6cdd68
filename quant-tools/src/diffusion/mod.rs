//! Float32 references for the diffusion model family (issue 8): checkpoint
//! loaders and forward passes that the integer engine is measured against.
//!
//! - [`pth`]: a bounds-checked reader for PyTorch's zip checkpoints (`torch.save`
//!   of a state dict): the subset of the pickle protocol a state dict uses, and the
//!   raw little-endian storages.
//! - [`ddpm_mnist`]: the small DDPM CNN for 28x28 MNIST digits and its sampling loop.
//! - [`diffusers`]: diffusers pipeline folders (`model_index.json`, one folder per
//!   component with `config.json` and safetensors).
//! - [`unet2d`]: diffusers' `UNet2DModel` (ResNet blocks, self-attention,
//!   down/up sampling, sinusoidal timestep embedding).
//! - [`ddim`]: diffusers' `DDIMScheduler` (eta 0).
//! - [`unet2d_condition`], [`clip`], [`vae`], [`sd`]: the Stable-Diffusion-shaped
//!   pipeline: `UNet2DConditionModel` with cross-attention, the CLIP tokenizer and
//!   text encoder, the `AutoencoderKL` decoder, classifier-free guidance.
//! - [`blocks`], [`ops`], [`unet_blocks`]: the layers and blocks the architectures
//!   share.
//!
//! Every tensor is batch 1 and row-major; images are `(C, H, W)`. Loader names
//! mirror the checkpoints' tensor names (`down_blocks.N.resnets.M.conv1`), so a
//! struct field can be found from a name in the file and back. Transcendentals come
//! from the `libm` crate, so results are the same on every platform. These models
//! never run on chain; they exist to measure the integer engine.

pub mod blocks;
pub mod clip;
pub mod ddim;
pub mod ddpm_mnist;
mod defaults;
pub mod diffusers;
pub mod ops;
pub mod pickle;
pub mod pth;
pub mod sd;
pub mod unet2d;
pub mod unet2d_condition;
pub mod unet_blocks;
pub mod vae;

use std::collections::HashMap;
use std::path::PathBuf;

/// Why a diffusion checkpoint could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum DiffusionError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The zip container of a `.pth` checkpoint is invalid.
    #[error("zip: {0}")]
    Zip(String),
    /// The pickle inside a `.pth` checkpoint is invalid or uses an unsupported
    /// construct.
    #[error("pickle at byte {offset}: {msg}")]
    Pickle {
        /// Byte offset in `data.pkl`.
        offset: usize,
        /// What went wrong.
        msg: String,
    },
    /// The safetensors container is invalid.
    #[error("safetensors {file}: {msg}")]
    Safetensors {
        /// The file.
        file: PathBuf,
        /// What went wrong.
        msg: String,
    },
    /// A required tensor is absent.
    #[error("missing tensor {0}")]
    MissingTensor(String),
    /// A tensor has a shape other than the configuration implies.
    #[error("tensor {name}: shape {got:?}, expected {expected:?}")]
    BadShape {
        /// Tensor name.
        name: String,
        /// Shape found (outermost first).
        got: Vec<usize>,
        /// Shape the configuration implies (outermost first).
        expected: Vec<usize>,
    },
    /// A tensor is stored in a type the loader does not decode.
    #[error("tensor {name}: unsupported type {kind}")]
    UnsupportedType {
        /// Tensor name.
        name: String,
        /// The type, as the format names it.
        kind: String,
    },
    /// A pipeline folder lacks a component, or a component lacks a file.
    #[error("missing component {component}: {path} not found")]
    MissingComponent {
        /// The component (`unet`, `scheduler`, ...).
        component: String,
        /// The file or folder that is absent.
        path: PathBuf,
    },
    /// A configuration file is not valid JSON of the expected shape, or holds a
    /// value the reference does not support.
    #[error("config {file}: {msg}")]
    Config {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A config names a block type (or class) that the reference does not implement.
    #[error("unsupported {what} {name:?}")]
    Unsupported {
        /// What kind of thing (`down block type`, `class`, ...).
        what: &'static str,
        /// Its name in the config.
        name: String,
    },
    /// An input (noise, sample, step count) has the wrong size or value.
    #[error("bad input: {0}")]
    Input(String),
}

/// A dense row-major float32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and data.
    ///
    /// # Errors
    /// [`DiffusionError::Input`] if the data length is not the shape's product.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, DiffusionError> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(data.len()) {
            return Err(DiffusionError::Input(format!(
                "{} values for shape {shape:?}",
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no value.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Named tensors of one checkpoint, and a prefix for looking them up by the
/// names of a sub-module (like candle's `VarBuilder`).
#[derive(Debug, Clone, Default)]
pub struct Weights {
    /// Tensors by their full checkpoint name.
    pub tensors: HashMap<String, Tensor>,
}

impl Weights {
    /// Total number of values over all tensors.
    pub fn num_values(&self) -> usize {
        self.tensors.values().map(Tensor::len).sum()
    }

    /// A view at the root (no prefix).
    pub fn root(&self) -> Vb<'_> {
        Vb {
            weights: self,
            prefix: String::new(),
        }
    }
}

/// A prefixed view into [`Weights`]: `vb.pp("down_blocks").pp(0)` looks names up
/// under `down_blocks.0.`.
#[derive(Debug, Clone)]
pub struct Vb<'a> {
    weights: &'a Weights,
    prefix: String,
}

impl<'a> Vb<'a> {
    /// The view one level down, under `name`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Vb<'a> {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        Vb {
            weights: self.weights,
            prefix,
        }
    }

    /// The full checkpoint name of `name` under this view.
    pub fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// Whether a tensor `name` exists under this view.
    pub fn contains(&self, name: &str) -> bool {
        self.weights.tensors.contains_key(&self.full_name(name))
    }

    /// The tensor `name` under this view, which must have shape `shape`.
    ///
    /// # Errors
    /// [`DiffusionError::MissingTensor`] or [`DiffusionError::BadShape`].
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, DiffusionError> {
        let full = self.full_name(name);
        let t = self
            .weights
            .tensors
            .get(&full)
            .ok_or_else(|| DiffusionError::MissingTensor(full.clone()))?;
        if t.shape != shape {
            return Err(DiffusionError::BadShape {
                name: full,
                got: t.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        Ok(t.clone())
    }
}

/// Reads a whole file.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>, DiffusionError> {
    std::fs::read(path).map_err(|source| DiffusionError::Io {
        path: path.to_path_buf(),
        source,
    })
}
