//! `oracle run`: local inference with the integer core.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use oracle_core::commit::merkle::Hash;
use oracle_core::fixed::parse_q16;
use oracle_core::llama::Model;
use oracle_core::{Exec, Request, SamplingParams};

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

/// Run the command.
pub fn run(args: &RunArgs) -> Result<()> {
    if crate::cli::run_image::is_image_model_file(&args.model)? {
        return crate::cli::run_image::run(args);
    }
    let file = std::fs::File::open(&args.model)
        .with_context(|| format!("opening {}", args.model.display()))?;
    // Safety: a read-only private mapping of a regular file. Another process
    // truncating the file while we run could fault the process (SIGBUS); model
    // files are written once (by rename) and never modified in place.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("mapping {}", args.model.display()))?;
    let model = match &args.root {
        Some(root) => Model::load_verified(&map, &parse_root(root)?),
        None => Model::load(&map),
    }
    .with_context(|| format!("loading {}", args.model.display()))?;
    let sampling = SamplingParams {
        temperature_q16: parse_fraction("temperature", &args.temperature)?,
        top_p_q16: parse_fraction("top-p", &args.top_p)?,
        seed: args.seed,
    };
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let exec = Exec {
        simd: !args.scalar,
        threads: args.threads,
    };
    let prompt = os_bytes(&args.prompt);
    let request = Request {
        prompt: &prompt,
        steps: args.steps,
        sampling,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut write_error = None;
    let started = Instant::now();
    let generation = model
        .generate(exec, &request, |piece| {
            if write_error.is_none() {
                write_error = out.write_all(piece).and_then(|()| out.flush()).err();
            }
        })
        .map_err(|e| Rejected(e.to_string()))?;
    if let Some(e) = write_error {
        return Err(e).context("writing to stdout");
    }
    writeln!(out)
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    let elapsed = started.elapsed().as_secs_f64();
    let positions = generation.tokens.len().max(1);
    eprintln!(
        "achieved tok/s: {:.1} ({} positions in {:.3}s, kernel {}, {} thread(s)){}",
        positions as f64 / elapsed.max(1e-9),
        positions,
        elapsed,
        exec.kernel_name(),
        exec.threads,
        if args.root.is_some() {
            "; model root verified"
        } else {
            ""
        }
    );
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
