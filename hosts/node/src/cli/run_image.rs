//! `oracle run` for image models: the `--noise` file (the run itself is the
//! core's, [`crate::cli::run`]) and the PNG it writes.
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

use anyhow::{anyhow, bail, Context, Result};

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

/// The `--noise` file at `path` as Q16 values (checked against the model's start
/// by the core).
pub fn read_noise(path: &Path) -> Result<Vec<i32>> {
    noise_to_q16(&read_npy(path)?.data).with_context(|| format!("reading {}", path.display()))
}

/// The width of a PNG (its IHDR's), for the log line.
pub fn png_side(png: &[u8]) -> u32 {
    png.get(16..20)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}
