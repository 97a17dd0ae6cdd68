//! `oracle run` for image models (an image architecture in the model file header): sample with the
//! integer pipeline and write a PNG.
//!
//! `--noise <file.npy>` starts from given float32 noise (little-endian `<f4`, C
//! order) so that a run can be compared with another implementation; each value is
//! rounded to Q16. For DDPM (ddpm-mnist) the array is either the sample's shape
//! (`784` values: `(28, 28)`, `(1, 28, 28)` or `(1, 1, 28, 28)`; the later noise
//! then comes from the seeded PRNG) or a stack `(steps, 1, 28, 28)` where entry 0
//! is the start and entry k the noise added after the k-th update.
//! For a diffusers UNet2DModel (DDIM, `--steps` inference steps) the array has the
//! sample's shape `(C, H, W)`; the PNG is `clamp(x / 2 + 0.5, 0, 1)` as RGB or gray.
//! For a Stable-Diffusion-shaped pipeline (tiny-sd) `--prompt` conditions the
//! UNet, `--guidance` (a decimal, default 7.5, read exactly into Q16) scales
//! classifier-free guidance, and `--noise` has the latents' shape `(C, h, w)`;
//! the PNG is the VAE's decoded RGB image, `clamp(x / 2 + 0.5, 0, 1)`.
//! Without `--noise` all noise comes from the integer PRNG seeded with `--seed`.
//!
//! The PNG bytes are deterministic (core's stored-deflate encoder); their
//! keccak256 is printed on stdout as `output 0x…`.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use oracle_core::commit::merkle::{keccak, model_root, to_hex};
use oracle_core::diffusion::ddpm_mnist::{DdpmMnist, DdpmNoise, PIXELS, SIZE};
use oracle_core::diffusion::noise::fill_normal_q16;
use oracle_core::diffusion::request::{ddpm_png, unet_png};
use oracle_core::diffusion::sd::{
    parse_guidance_q16, seeded_latents, StableDiffusion, DEFAULT_GUIDANCE_Q16,
};
use oracle_core::diffusion::unet2d::UNet2D;
use oracle_core::format::{Arch, ModelFile, HEADER_LEN};
use oracle_core::model::is_image_model;
use oracle_core::rng::Rng;
use oracle_core::Exec;

use crate::cli::run::RunArgs;

/// Whether the file at `path` is an image model (by its magic).
pub fn is_image_model_file(path: &Path) -> Result<bool> {
    let mut header = [0u8; HEADER_LEN];
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(std::io::Read::read_exact(&mut f, &mut header).is_ok() && is_image_model(&header))
}

/// A float32 `.npy` array: its shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Npy {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in C order.
    pub data: Vec<f32>,
}

/// Parse a `.npy` file of little-endian float32 in C order (versions 1–3).
pub fn parse_npy(bytes: &[u8]) -> Result<Npy> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("not a .npy file (bad magic)");
    }
    let (hlen, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => bail!(".npy version {v} is not supported"),
    };
    let header = bytes
        .get(
            start
                ..start
                    .checked_add(hlen)
                    .ok_or_else(|| anyhow!(".npy header length"))?,
        )
        .ok_or_else(|| anyhow!(".npy header is truncated"))?;
    let header = std::str::from_utf8(header).context(".npy header is not text")?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| anyhow!(".npy header lacks '{key}'"))?;
        let rest = &header[at + key.len() + 2..];
        Ok(rest.trim_start().trim_start_matches(':').trim_start())
    };
    let descr = field("descr")?;
    if !descr.starts_with("'<f4'") {
        bail!(
            ".npy dtype must be little-endian float32 '<f4', found {}",
            descr.split(',').next().unwrap_or("")
        );
    }
    if field("fortran_order")?.starts_with("True") {
        bail!(".npy arrays in Fortran order are not supported");
    }
    let shape_text = field("shape")?;
    let close = shape_text
        .find(')')
        .ok_or_else(|| anyhow!(".npy shape is malformed"))?;
    let shape: Vec<usize> = shape_text[1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().context(".npy shape is malformed"))
        .collect::<Result<_>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| anyhow!(".npy shape overflows"))?;
    let data = &bytes[start + hlen..];
    if data.len()
        != count
            .checked_mul(4)
            .ok_or_else(|| anyhow!(".npy shape overflows"))?
    {
        bail!(
            ".npy holds {} data bytes, its shape {:?} needs {}",
            data.len(),
            shape,
            count * 4
        );
    }
    let data = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Npy { shape, data })
}

/// The `.npy` file at `path` (a `--noise` file), parsed.
fn read_npy(path: &Path) -> Result<Npy> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_npy(&raw).with_context(|| format!("parsing {}", path.display()))
}

/// Float noise to Q16, refusing non-finite values and values beyond ±32767.
pub fn noise_to_q16(v: &[f32]) -> Result<Vec<i32>> {
    v.iter()
        .map(|&x| {
            if !x.is_finite() || x.abs() >= 32767.0 {
                bail!("noise value {x} is not finite or out of range");
            }
            Ok((f64::from(x) * 65536.0).round() as i32)
        })
        .collect()
}

/// Run an image model request.
pub fn run(args: &RunArgs) -> Result<()> {
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    if let Some(root) = &args.root {
        let want = root.strip_prefix("0x").unwrap_or(root).to_lowercase();
        let got = to_hex(&model_root(&bytes));
        if got.trim_start_matches("0x") != want {
            bail!("model root mismatch: expected 0x{want}, file has {got}");
        }
    }
    let file =
        ModelFile::parse(&bytes).with_context(|| format!("loading {}", args.model.display()))?;
    let output = args
        .output
        .as_ref()
        .ok_or_else(|| anyhow!("image models need --output <file.png>"))?;
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let exec = Exec {
        simd: !args.scalar,
        threads: args.threads,
    };
    let started = Instant::now();
    let (png, side) = match file.arch {
        Arch::DdpmMnist => {
            if !args.prompt.is_empty() {
                bail!("ddpm-mnist is unconditional: it takes no --prompt");
            }
            if args.guidance.is_some() {
                bail!("ddpm-mnist is unconditional: it takes no --guidance");
            }
            let model = DdpmMnist::from_file(&file).context("binding ddpm-mnist")?;
            let steps = args.steps as usize;
            let noise = match &args.noise {
                Some(path) => {
                    let npy = read_npy(path)?;
                    let q = noise_to_q16(&npy.data)?;
                    if q.len() != PIXELS && q.len() != steps * PIXELS {
                        bail!(
                            "noise {} has shape {:?} ({} values): expected the sample's 784 (1, 28, 28) or a stack of {steps} x 784 ({steps}, 1, 28, 28)",
                            path.display(),
                            npy.shape,
                            q.len()
                        );
                    }
                    Some(q)
                }
                None => None,
            };
            let source = match &noise {
                Some(q) if q.len() == steps * PIXELS => DdpmNoise::Stack(q),
                Some(q) => DdpmNoise::Start(q, args.seed),
                None => DdpmNoise::Seed(args.seed),
            };
            let z = model.sample(exec, steps, source)?;
            (ddpm_png(&z)?, SIZE as u32)
        }
        Arch::UNet2D => {
            if !args.prompt.is_empty() || args.guidance.is_some() {
                bail!("a UNet2DModel is unconditional: it takes no --prompt or --guidance");
            }
            let model = UNet2D::from_file(&file).context("binding the UNet2D")?;
            let side = model.sample_size.max(model.side_multiple());
            let n = model.in_channels * side * side;
            let start = match &args.noise {
                Some(path) => {
                    let npy = read_npy(path)?;
                    if npy.data.len() != n {
                        bail!(
                            "noise {} has shape {:?}: expected the sample's ({}, {side}, {side})",
                            path.display(),
                            npy.shape,
                            model.in_channels
                        );
                    }
                    noise_to_q16(&npy.data)?
                }
                None => {
                    let mut rng = Rng::new(args.seed);
                    let mut z = vec![0i32; n];
                    fill_normal_q16(&mut rng, &mut z);
                    z
                }
            };
            let x = model.sample(exec, start, side, side, args.steps as usize)?;
            (unet_png(&x, model.in_channels, side)?, side as u32)
        }
        Arch::StableDiffusion => {
            let sd = StableDiffusion::from_file(&file).context("binding the tiny-sd pipeline")?;
            let guidance = match &args.guidance {
                Some(g) => parse_guidance_q16(g).ok_or_else(|| {
                    anyhow!("--guidance {g:?} is not a decimal number from 0 to 256")
                })?,
                None => DEFAULT_GUIDANCE_Q16,
            };
            let side = sd.latent_side();
            let c = sd.unet.in_channels;
            let start = match &args.noise {
                Some(path) => {
                    let npy = read_npy(path)?;
                    if npy.data.len() != sd.latent_len() {
                        bail!(
                            "noise {} has shape {:?}: expected the latents' ({c}, {side}, {side})",
                            path.display(),
                            npy.shape
                        );
                    }
                    noise_to_q16(&npy.data)?
                }
                None => seeded_latents(&sd, args.seed),
            };
            let prompt = args.prompt.as_encoded_bytes();
            let image = sd
                .generate(exec, prompt, start, args.steps as usize, guidance)
                .context("sampling tiny-sd")?;
            let img_side = sd.image_side();
            (
                unet_png(&image, sd.vae.out_channels, img_side)?,
                img_side as u32,
            )
        }
        Arch::Llama => bail!("not an image model"),
    };
    std::fs::write(output, &png).with_context(|| format!("writing {}", output.display()))?;
    println!("output {}", to_hex(&keccak(&png)));
    eprintln!(
        "wrote {} ({} bytes, {}x{}) in {:.3}s, kernel {}, {} thread(s)",
        output.display(),
        png.len(),
        side,
        side,
        started.elapsed().as_secs_f64(),
        exec.kernel_name(),
        exec.threads
    );
    Ok(())
}
