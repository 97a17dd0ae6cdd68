//! What `oracle-quant convert` and `oracle-quant eval-image` do for image models
//! (the binary only parses arguments and writes files).

use std::path::{Path, PathBuf};

use oracle_core::diffusion::png::{encode, ColorType};
use oracle_core::kernels::{Exec, Simd};
use serde::Serialize;

use super::ddpm::{export_ddpm_mnist, DEFAULT_GROUP};
use super::eval::{eval_ddpm, DdpmSample};
use super::ImageError;
use crate::diffusion::ddpm_mnist::{DdpmMnist, SIZE};
use crate::diffusion::DiffusionError;

/// Which image checkpoint a `--input` path holds, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageInput {
    /// A PyTorch zip checkpoint (`.pth`): ddpm-mnist.
    DdpmMnistPth,
    /// A diffusers pipeline folder (`model_index.json`).
    DiffusersFolder,
}

/// Detect an image checkpoint: a diffusers folder, or a zip (`PK`) `.pth` file.
/// `None` for anything else (LLaMA checkpoints go their own way).
pub fn detect(input: &Path) -> Option<ImageInput> {
    if input.is_dir() && input.join("model_index.json").is_file() {
        return Some(ImageInput::DiffusersFolder);
    }
    let is_pth = input.extension().is_some_and(|e| e == "pth" || e == "pt");
    let mut magic = [0u8; 2];
    let zip = std::fs::File::open(input)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"PK";
    (is_pth && zip).then_some(ImageInput::DdpmMnistPth)
}

/// Convert an image checkpoint to image model file bytes (Q8 weights in groups of
/// `group`, default [`DEFAULT_GROUP`]).
///
/// # Errors
/// A checkpoint that cannot be loaded (a missing component, a mismatched shape),
/// or a setting the integer core does not implement ([`DiffusionError::Unsupported`],
/// naming it: an unsupported block type, for one).
pub fn convert(
    input: &Path,
    kind: ImageInput,
    group: Option<usize>,
) -> Result<Vec<u8>, ImageError> {
    let group = group.unwrap_or(DEFAULT_GROUP);
    match kind {
        ImageInput::DdpmMnistPth => export_ddpm_mnist(&DdpmMnist::load_pth(input)?, group),
        ImageInput::DiffusersFolder if super::sd::is_sd_folder(input) => {
            super::sd::export_sd(&super::sd::load_folder(input)?, group)
        }
        ImageInput::DiffusersFolder => {
            let (unet, ddim) = super::unet2d::load_folder(input)?;
            super::unet2d::export_unet2d(&unet, &ddim, group)
        }
    }
}

/// Arguments of `oracle-quant eval-image`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalImageArgs {
    /// The integer image model file.
    #[arg(long)]
    pub model: PathBuf,
    /// The float checkpoint it was converted from (ddpm-mnist `.pth`, a diffusers
    /// UNet2DModel folder, or a StableDiffusionPipeline folder such as tiny-sd).
    #[arg(long)]
    pub reference: PathBuf,
    /// Seeds of the noise (the integer PRNG's; both pipelines get the same values).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// Sampling steps (ddpm-mnist: the last `steps` of its 1000; UNet2D: DDIM steps).
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Threads for the integer pipeline (never changes its output).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Write a PNG grid: one row per seed, integer sample left, float twin right.
    #[arg(long)]
    pub grid: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Text-to-image models: the prompt of every seed.
    #[arg(long, default_value = "a photo of a red cat")]
    pub prompt: String,
    /// Text-to-image models: classifier-free guidance (decimal, read into Q16).
    #[arg(long, default_value = "7.5")]
    pub guidance: String,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct EvalImageRow {
    /// Noise seed.
    pub seed: u64,
    /// Steps run.
    pub steps: usize,
    /// PSNR of the integer image against the float one, dB.
    pub psnr_db: f64,
    /// Largest absolute pixel difference in `[0, 1]` (UNet2D: of the raw sample;
    /// tiny-sd: of the decoded image).
    pub max_abs: f64,
    /// UNet2D and tiny-sd: PSNR of one (guided) UNet forward (peak = the float
    /// output's range).
    pub forward_psnr_db: Option<f64>,
}

/// Run the comparison; returns the rows and the samples (for the grid).
///
/// # Errors
/// Unreadable files or bad arguments.
pub fn eval_image(
    args: &EvalImageArgs,
) -> Result<(Vec<EvalImageRow>, Vec<DdpmSample>), ImageError> {
    let bytes = std::fs::read(&args.model).map_err(|source| DiffusionError::Io {
        path: args.model.clone(),
        source,
    })?;
    let exec = Exec {
        simd: Simd::Best,
        threads: args.threads.max(1),
    };
    let mut rows = Vec::new();
    if args.reference.is_dir() && super::sd::is_sd_folder(&args.reference) {
        // A text-to-image pipeline: guided DDIM from seeded latents, then the VAE;
        // PSNR of the decoded images in [0, 1].
        let float = super::sd::load_folder(&args.reference)?;
        let g =
            oracle_core::diffusion::sd::parse_guidance_q16(&args.guidance).ok_or_else(|| {
                DiffusionError::Input(format!(
                    "guidance {:?} is not a decimal in 0..=256",
                    args.guidance
                ))
            })?;
        for &seed in &args.seeds {
            let e = super::eval::eval_sd(&bytes, &float, &args.prompt, seed, args.steps, g, exec)?;
            rows.push(EvalImageRow {
                seed,
                steps: args.steps,
                psnr_db: e.image.psnr_db,
                max_abs: e.image.max_abs,
                forward_psnr_db: Some(e.forward.psnr_db),
            });
        }
        return Ok((rows, Vec::new()));
    }
    if args.reference.is_dir() {
        // A diffusers UNet2DModel folder: DDIM from seeded start noise; PSNR of the
        // final sample with the float sample's range as the peak.
        let (unet, ddim) = super::unet2d::load_folder(&args.reference)?;
        for &seed in &args.seeds {
            let e = super::eval::eval_unet2d(&bytes, &unet, &ddim, seed, args.steps, exec)?;
            rows.push(EvalImageRow {
                seed,
                steps: args.steps,
                psnr_db: e.sample_raw.psnr_db,
                max_abs: e.sample_raw.max_abs,
                forward_psnr_db: Some(e.forward.psnr_db),
            });
        }
        return Ok((rows, Vec::new()));
    }
    let float = DdpmMnist::load_pth(&args.reference)?;
    let mut samples = Vec::new();
    for &seed in &args.seeds {
        let s = eval_ddpm(&bytes, &float, seed, args.steps, exec)?;
        rows.push(EvalImageRow {
            seed,
            steps: args.steps,
            psnr_db: s.cmp.psnr_db,
            max_abs: s.cmp.max_abs,
            forward_psnr_db: None,
        });
        samples.push(s);
    }
    Ok((rows, samples))
}

/// A plain-text table of the rows.
pub fn table(rows: &[EvalImageRow]) -> String {
    let mut out = String::from("seed  steps  PSNR(dB)  max_abs  forward PSNR(dB)\n");
    for r in rows {
        let fwd = r
            .forward_psnr_db
            .map_or("-".to_string(), |v| format!("{v:.2}"));
        out.push_str(&format!(
            "{:<5} {:<6} {:>8.2}  {:.4}  {fwd}\n",
            r.seed, r.steps, r.psnr_db, r.max_abs
        ));
    }
    out
}

/// A gray PNG grid of 28×28 samples: one row per sample, integer left, float right,
/// 2-pixel white gaps.
pub fn grid_png(samples: &[DdpmSample]) -> Vec<u8> {
    let gap = 2;
    let w = 2 * SIZE + 3 * gap;
    let h = samples.len() * (SIZE + gap) + gap;
    let mut px = vec![255u8; w * h];
    let to8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    for (r, s) in samples.iter().enumerate() {
        for (col, img) in [&s.int_image, &s.float_image].into_iter().enumerate() {
            let (x0, y0) = (gap + col * (SIZE + gap), gap + r * (SIZE + gap));
            for y in 0..SIZE {
                for x in 0..SIZE {
                    px[(y0 + y) * w + x0 + x] = to8(img[y * SIZE + x]);
                }
            }
        }
    }
    encode(&px, w as u32, h.max(1) as u32, ColorType::Gray).unwrap_or_default()
}
