//! `oracle-quant`: the offline model tool (convert, inspect, eval). The logic lives
//! in the library; this file only parses arguments and does I/O.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use oracle_core::commit::merkle::{model_root, to_hex};
use oracle_core::quant::QType;
use oracle_quant::convert::Checkpoint;

#[derive(Parser)]
#[command(
    name = "oracle-quant",
    version,
    about = "Convert, quantize, inspect and evaluate models for the oracle's integer core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Quant {
    /// int8 weights in groups (default group 32)
    Q8,
    /// int4 weights in groups (default group 16; the embedding stays int8)
    Q4,
}

#[derive(Subcommand)]
enum Command {
    /// Import a checkpoint (llama2.c .bin, GGUF, or Hugging Face safetensors +
    /// config.json; detected from the bytes) and write an integer model file.
    Convert {
        /// The checkpoint: a file, or a Hugging Face folder.
        #[arg(long)]
        input: PathBuf,
        /// A vocabulary, when the checkpoint has none (or to replace its own): a
        /// llama2.c tokenizer.bin, a GGUF file with a vocabulary (SentencePiece or
        /// gpt2 byte-level BPE), or a Hugging Face tokenizer.json or its folder
        /// (byte-level BPE; tokenizer_config.json beside it gives BOS/EOS and the
        /// chat template). A Hugging Face checkpoint folder with a tokenizer.json
        /// needs none.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// Weight type.
        #[arg(long, value_enum)]
        quant: Quant,
        /// Group size along a row (1..=256; even for q4). Use 32 to import GGUF
        /// Q8_0/Q4_0 blocks without loss.
        #[arg(long)]
        group: Option<usize>,
        /// Where to write the model file.
        #[arg(long)]
        output: PathBuf,
    },
    /// Print a model file's config, tensors and model root.
    Inspect {
        /// The model file.
        file: PathBuf,
    },
    /// Perplexity, top-1 agreement and KL of the integer model against the float
    /// reference, teacher-forced on a text.
    Eval(oracle_quant::eval::EvalArgs),
    /// PSNR and max abs error of an integer image model against its float
    /// checkpoint, from the same noise (optionally a PNG grid of both).
    EvalImage(oracle_quant::image::cli::EvalImageArgs),
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Convert {
            input,
            tokenizer,
            quant,
            group,
            output,
        } => convert(input, tokenizer, quant, group, output),
        Command::Inspect { file } => inspect(file),
        Command::Eval(args) => {
            let report = oracle_quant::eval::run(&args)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
            Ok(())
        }
        Command::EvalImage(args) => eval_image(&args),
    }
}

fn eval_image(args: &oracle_quant::image::cli::EvalImageArgs) -> Result<()> {
    use oracle_quant::image::cli;
    let (rows, samples) = cli::eval_image(args).context("evaluating the image model")?;
    if let Some(path) = &args.grid {
        std::fs::write(path, cli::grid_png(&samples))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", cli::table(&rows));
    }
    Ok(())
}

fn convert(
    input: PathBuf,
    tokenizer: Option<PathBuf>,
    quant: Quant,
    group: Option<usize>,
    output: PathBuf,
) -> Result<()> {
    let started = Instant::now();
    let checkpoint = Checkpoint::load(&input, tokenizer.as_deref())
        .with_context(|| format!("importing {}", input.display()))?;
    let qtype = match quant {
        Quant::Q8 => QType::Q8,
        Quant::Q4 => QType::Q4,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tensors")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("quantizing");
    let out = checkpoint
        .export(qtype, group, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .with_context(|| format!("converting {}", input.display()))?;
    bar.finish_and_clear();
    // Write to a temporary name and rename, so a crash never leaves half a model.
    let tmp = output.with_extension("partial");
    std::fs::write(&tmp, &out.bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &output).with_context(|| format!("renaming to {}", output.display()))?;
    eprintln!(
        "wrote {} ({} bytes, {} model, {}: group {}) in {:.2}s",
        output.display(),
        out.bytes.len(),
        checkpoint.arch().name(),
        out.qtype.name(),
        out.group,
        started.elapsed().as_secs_f64()
    );
    if !out.report.is_empty() {
        let exact = out.report.iter().filter(|t| t.exact).count();
        let worst = out
            .report
            .iter()
            .map(|t| t.max_abs_error)
            .fold(0f64, f64::max);
        eprintln!(
            "largest weight error {worst:.3e}; {exact} of {} matrices reproduced exactly",
            out.report.len()
        );
    }
    println!("model root {}", to_hex(&model_root(&out.bytes)));
    Ok(())
}

fn inspect(path: PathBuf) -> Result<()> {
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    println!("file        {} ({} bytes)", path.display(), bytes.len());
    print!(
        "{}",
        oracle_quant::convert::inspect(&bytes)
            .with_context(|| format!("loading {}", path.display()))?
    );
    Ok(())
}
