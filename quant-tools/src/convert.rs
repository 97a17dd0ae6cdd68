//! `oracle-quant convert` and `inspect` as library calls (the binary only parses
//! arguments and does I/O). A checkpoint is loaded as the architecture it becomes
//! ([`Checkpoint`], one variant per [`Arch`]) and written to the one model file
//! format; any model file is listed the same way ([`inspect`]).

use std::fmt::Write as _;
use std::path::Path;

use oracle_core::commit::merkle::{model_root, to_hex, CHUNK_SIZE};
use oracle_core::footprint::{of_model, GUEST_MEMORY_BUDGET};
use oracle_core::format::{Arch, DType, ModelFile};
use oracle_core::model::Config;
use oracle_core::quant::QType;

use crate::checkpoint::{self, CheckpointError};
use crate::diffusion::ddim::Ddim;
use crate::diffusion::ddpm_mnist::DdpmMnist;
use crate::diffusion::sd::StableDiffusion;
use crate::diffusion::unet2d::UNet2DModel;
use crate::export::{export, ExportError, QuantOptions, TensorReport};
use crate::image::cli::{detect, ImageInput};
use crate::image::ddpm::{export_ddpm_mnist, DEFAULT_GROUP};
use crate::image::ImageError;

/// Why a checkpoint could not be converted or a model file listed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A LLaMA-family checkpoint could not be imported.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A LLaMA-family model could not be written.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// An image checkpoint could not be imported or written.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The model file does not load.
    #[error(transparent)]
    Format(#[from] oracle_core::FormatError),
    /// Image models have Q8 weights only.
    #[error("{0} models are converted with --quant q8 only")]
    Q8Only(&'static str),
}

/// A checkpoint `oracle-quant convert` reads, as the architecture it becomes.
pub enum Checkpoint {
    /// A LLaMA-family checkpoint: llama2.c `.bin`, GGUF, or Hugging Face
    /// safetensors and `config.json`.
    Llama(Box<crate::float_model::FloatModel>),
    /// ddpm-mnist's PyTorch zip checkpoint.
    DdpmMnist(Box<DdpmMnist>),
    /// A diffusers `UNet2DModel` and `DDIMScheduler` folder.
    UNet2D(Box<(UNet2DModel, Ddim)>),
    /// A diffusers `StableDiffusionPipeline` folder (tiny-sd).
    StableDiffusion(Box<StableDiffusion>),
}

/// A converted model file.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The model file's bytes.
    pub bytes: Vec<u8>,
    /// One entry per quantized matrix (LLaMA-family exports; empty otherwise).
    pub report: Vec<TensorReport>,
    /// Weight type.
    pub qtype: QType,
    /// Group size along a row.
    pub group: usize,
}

impl Checkpoint {
    /// Load `input` (a file or a folder; detected from its bytes or its
    /// `model_index.json`); `tokenizer` is a llama2.c `tokenizer.bin` or a GGUF
    /// vocabulary for a LLaMA-family checkpoint that has none.
    ///
    /// # Errors
    /// A checkpoint that cannot be loaded (named in the error).
    pub fn load(input: &Path, tokenizer: Option<&Path>) -> Result<Checkpoint, ConvertError> {
        use crate::image::{sd, unet2d};
        Ok(match detect(input) {
            Some(ImageInput::DdpmMnistPth) => Checkpoint::DdpmMnist(Box::new(
                DdpmMnist::load_pth(input).map_err(ImageError::from)?,
            )),
            Some(ImageInput::DiffusersFolder) if sd::is_sd_folder(input) => {
                Checkpoint::StableDiffusion(Box::new(sd::load_folder(input)?))
            }
            Some(ImageInput::DiffusersFolder) => {
                Checkpoint::UNet2D(Box::new(unet2d::load_folder(input)?))
            }
            None => Checkpoint::Llama(Box::new(checkpoint::load(input, tokenizer)?)),
        })
    }

    /// The architecture of the model file it becomes.
    pub fn arch(&self) -> Arch {
        match self {
            Checkpoint::Llama(_) => Arch::Llama,
            Checkpoint::DdpmMnist(_) => Arch::DdpmMnist,
            Checkpoint::UNet2D(_) => Arch::UNet2D,
            Checkpoint::StableDiffusion(_) => Arch::StableDiffusion,
        }
    }

    /// Write the model file: `qtype` weights in groups of `group` (default: 32
    /// for Q8 and 16 for Q4 in a LLaMA-family model, 64 in an image model, whose
    /// weights are Q8 only). `progress(done, total)` follows the tensors of a
    /// LLaMA-family export.
    ///
    /// # Errors
    /// A setting the integer core does not implement, or a group size it does
    /// not accept.
    pub fn export(
        &self,
        qtype: QType,
        group: Option<usize>,
        progress: impl FnMut(usize, usize),
    ) -> Result<Converted, ConvertError> {
        if let Checkpoint::Llama(model) = self {
            let mut opts = QuantOptions::for_type(qtype);
            if let Some(g) = group {
                opts.group = g;
            }
            let out = export(model, opts, progress)?;
            return Ok(Converted {
                bytes: out.bytes,
                report: out.report,
                qtype,
                group: opts.group,
            });
        }
        if qtype != QType::Q8 {
            return Err(ConvertError::Q8Only(self.arch().name()));
        }
        let group = group.unwrap_or(DEFAULT_GROUP);
        let bytes = match self {
            Checkpoint::DdpmMnist(m) => export_ddpm_mnist(m, group)?,
            Checkpoint::UNet2D(m) => crate::image::unet2d::export_unet2d(&m.0, &m.1, group)?,
            Checkpoint::StableDiffusion(m) => crate::image::sd::export_sd(m, group)?,
            Checkpoint::Llama(_) => unreachable!("exported above"),
        };
        Ok(Converted {
            bytes,
            report: Vec::new(),
            qtype,
            group,
        })
    }
}

/// The `oracle-quant inspect` listing of a model file of any architecture: its
/// model root, architecture, typed config and tensor table, then the memory one
/// request needs (loading the model fully, so every check of the node and the
/// guest applies).
///
/// # Errors
/// A file the core does not load.
pub fn inspect(bytes: &[u8]) -> Result<String, ConvertError> {
    let file = ModelFile::parse(bytes)?;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "model root  {} ({} chunks of {CHUNK_SIZE} bytes)",
        to_hex(&model_root(bytes)),
        bytes.len().div_ceil(CHUNK_SIZE)
    );
    let _ = writeln!(w, "arch        {}", file.arch.name());
    let _ = writeln!(w, "config      {:?}", Config::of(&file)?);
    let _ = writeln!(w, "tensors     {}", file.tensors.len());
    let width = file.tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in &file.tensors {
        let extra = match t.dtype {
            DType::I32 => format!("frac {}", t.exp),
            DType::Quant(_) => format!("group {} exp {}", t.group, t.exp),
            DType::U8 => String::new(),
        };
        let _ = writeln!(
            w,
            "  {:<width$} {:<4} {:>6} x {:<6} {:<18} {:>9} bytes @ {}",
            t.name,
            t.dtype.name(),
            t.rows,
            t.cols,
            extra,
            t.data.len(),
            t.offset
        );
    }
    let (_, fp) = of_model(bytes)?;
    let _ = writeln!(
        w,
        "footprint   {} bytes to serve a request: file {}, decoded {}, run state {} ({} the guest's budget of {GUEST_MEMORY_BUDGET})",
        fp.total(),
        fp.file,
        fp.decoded,
        fp.run_state,
        if fp.fits(GUEST_MEMORY_BUDGET) { "within" } else { "over" }
    );
    Ok(out)
}
