//! `oracle run`: local inference with the integer core, for a model file of any
//! architecture (the core's [`AnyModel`]).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use oracle_core::commit::merkle::{keccak, to_hex, Hash};
use oracle_core::diffusion::sd::{parse_guidance_q16, DEFAULT_GUIDANCE_Q16};
use oracle_core::fixed::parse_q16;
use oracle_core::kernels::Simd;
use oracle_core::model::Settings;
use oracle_core::{AnyModel, Exec, Outcome, Request, RequestParams};

/// Arguments of `oracle run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Model file written by `oracle-quant convert`.
    #[arg(long)]
    pub model: PathBuf,
    /// Prompt text; any bytes (invalid UTF-8 is tokenized through byte fallback).
    #[arg(long, default_value = "")]
    pub prompt: OsString,
    /// Positions to run, prompt included (as llama2.c's -n). Values above the
    /// model's context length are clamped to it.
    #[arg(long, default_value_t = 256)]
    pub steps: u32,
    /// Text models: the prompt is one user message, wrapped in the model's chat
    /// template (a model without one rejects the request).
    #[arg(long)]
    pub chat: bool,
    /// Sampling temperature as a decimal (parsed exactly into Q16.16); 0 = greedy.
    #[arg(long, default_value = "0")]
    pub temperature: String,
    /// Nucleus (top-p) cut as a decimal in [0, 1]; 1 disables it.
    #[arg(long, default_value = "0.9")]
    pub top_p: String,
    /// PRNG seed for sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads for the matrix products (the output does not depend on it).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Use only the scalar kernels (the output does not depend on it).
    #[arg(long)]
    pub scalar: bool,
    /// Refuse the model unless its root (0x-prefixed hex) matches.
    #[arg(long)]
    pub root: Option<String>,
    /// Image models: where to write the PNG.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Image models: start from this float32 `.npy` noise (see `run_image`).
    #[arg(long)]
    pub noise: Option<PathBuf>,
    /// Image models with a prompt: classifier-free guidance scale (decimal).
    #[arg(long)]
    pub guidance: Option<String>,
}

fn parse_root(text: &str) -> Result<Hash> {
    let hex_part = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(hex_part).context("--root is not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow!("--root must be 32 bytes (64 hex digits)"))
}

fn parse_fraction(name: &str, text: &str) -> Result<u32> {
    parse_q16(text).ok_or_else(|| anyhow!("--{name} {text:?} is not a non-negative decimal number"))
}

/// A request the model rejects: its result on chain is the error outcome (the
/// empty output, delivered as `InvalidInput`); `oracle run` prints nothing on
/// stdout and exits with [`Rejected::EXIT_CODE`].
#[derive(Debug, thiserror::Error)]
#[error("the request is rejected ({0}): its oracle result is the error outcome (empty output, InvalidInput)")]
pub struct Rejected(pub String);

impl Rejected {
    /// The exit code of `oracle run` for a rejected request.
    pub const EXIT_CODE: i32 = 3;
}

/// Run the command: load the file as whatever model it is, read the family's
/// parameters from the flags ([`AnyModel::params`]) and run the request through
/// the core's entry point ([`AnyModel::run`]), the path the guest and the node
/// take. A text is printed on stdout as it is decoded; an image is written to
/// `--output` and its keccak256 printed as `output 0x…`.
pub fn run(args: &RunArgs) -> Result<()> {
    let file = std::fs::File::open(&args.model)
        .with_context(|| format!("opening {}", args.model.display()))?;
    // Safety: a read-only private mapping of a regular file. Another process
    // truncating the file while we run could fault the process (SIGBUS); model
    // files are written once (by rename) and never modified in place.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("mapping {}", args.model.display()))?;
    let model = match &args.root {
        Some(root) => AnyModel::load_verified(&map, &parse_root(root)?),
        None => AnyModel::load(&map),
    }
    .with_context(|| format!("loading {}", args.model.display()))?;
    let settings = Settings {
        steps: args.steps,
        seed: args.seed,
        temperature_q16: parse_fraction("temperature", &args.temperature)?,
        top_p_q16: parse_fraction("top-p", &args.top_p)?,
        guidance_q16: match &args.guidance {
            Some(g) => parse_guidance_q16(g)
                .ok_or_else(|| anyhow!("--guidance {g:?} is not a decimal number from 0 to 256"))?,
            None => DEFAULT_GUIDANCE_Q16,
        },
        chat: args.chat,
    };
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let exec = Exec {
        simd: if args.scalar { Simd::Off } else { Simd::Best },
        threads: args.threads,
    };
    let noise = match &args.noise {
        Some(path) => Some(crate::cli::run_image::read_noise(path)?),
        None => None,
    };
    let prompt = os_bytes(&args.prompt);
    let request = Request::new(&prompt, model.params(&settings)).with_noise(noise.as_deref());
    if matches!(request.params, RequestParams::Image(_)) && args.output.is_none() {
        bail!("image models need --output <file.png>");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut write_error = None;
    let mut pieces = 0usize;
    let started = Instant::now();
    let outcome = model.run(exec, &request, |piece| {
        pieces += 1;
        if write_error.is_none() {
            write_error = out.write_all(piece).and_then(|()| out.flush()).err();
        }
    });
    if let Some(e) = write_error {
        return Err(e).context("writing to stdout");
    }
    let verified = if args.root.is_some() {
        "; model root verified"
    } else {
        ""
    };
    match outcome {
        Outcome::Text { generated, .. } => {
            writeln!(out)
                .and_then(|()| out.flush())
                .context("writing to stdout")?;
            let elapsed = started.elapsed().as_secs_f64();
            eprintln!(
                "achieved tok/s: {:.1} ({} tokens generated, {} pieces printed, in {:.3}s, kernel {}, {} thread(s)){verified}",
                generated as f64 / elapsed.max(1e-9),
                generated,
                pieces,
                elapsed,
                exec.kernel_name(),
                exec.threads,
            );
        }
        Outcome::Image { png } => {
            let output = args
                .output
                .as_ref()
                .ok_or_else(|| anyhow!("image models need --output <file.png>"))?;
            std::fs::write(output, &png)
                .with_context(|| format!("writing {}", output.display()))?;
            println!("output {}", to_hex(&keccak(&png)));
            let side = crate::cli::run_image::png_side(&png);
            eprintln!(
                "wrote {} ({} bytes, {side}x{side}) in {:.3}s, kernel {}, {} thread(s){verified}",
                output.display(),
                png.len(),
                started.elapsed().as_secs_f64(),
                exec.kernel_name(),
                exec.threads
            );
        }
        Outcome::Rejected(why) => return Err(Rejected(why.to_string()).into()),
    }
    Ok(())
}

#[cfg(unix)]
fn os_bytes(s: &OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_os_str().as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(s: &OsString) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}
