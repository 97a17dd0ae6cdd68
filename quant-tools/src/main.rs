//! `oracle-quant`: the offline model tool (convert, inspect, eval). The logic lives
//! in the library; this file only parses arguments and does I/O.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use oracle_core::commit::merkle::{model_root, to_hex, CHUNK_SIZE};
use oracle_core::format::ModelFile;
use oracle_core::quant::QType;
use oracle_quant::checkpoint;
use oracle_quant::export::{export, QuantOptions};

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
        /// A llama2.c tokenizer.bin or a GGUF vocabulary, when the checkpoint has none.
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
    if let Some(kind) = oracle_quant::image::cli::detect(&input) {
        if matches!(quant, Quant::Q4) {
            bail!("image models are converted with --quant q8 only");
        }
        let bytes = oracle_quant::image::cli::convert(&input, kind, group)
            .with_context(|| format!("converting {}", input.display()))?;
        std::fs::write(&output, &bytes).with_context(|| format!("writing {}", output.display()))?;
        eprintln!(
            "wrote {} ({} bytes) in {:.2}s",
            output.display(),
            bytes.len(),
            started.elapsed().as_secs_f64()
        );
        println!("model root {}", to_hex(&model_root(&bytes)));
        return Ok(());
    }
    let model = checkpoint::load(&input, tokenizer.as_deref())
        .with_context(|| format!("importing {}", input.display()))?;
    let qtype = match quant {
        Quant::Q8 => QType::Q8,
        Quant::Q4 => QType::Q4,
    };
    let mut opts = QuantOptions::for_type(qtype);
    if let Some(g) = group {
        opts.group = g;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tensors")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("quantizing");
    let out = export(&model, opts, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .context("quantizing")?;
    bar.finish_and_clear();
    // Write to a temporary name and rename, so a crash never leaves half a model.
    let tmp = output.with_extension("partial");
    std::fs::write(&tmp, &out.bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &output).with_context(|| format!("renaming to {}", output.display()))?;
    let inexact: Vec<_> = out.report.iter().filter(|t| !t.exact).collect();
    let worst = out
        .report
        .iter()
        .map(|t| t.max_abs_error)
        .fold(0f64, f64::max);
    eprintln!(
        "wrote {} ({} bytes, {} tensors, {}: group {}) in {:.2}s",
        output.display(),
        out.bytes.len(),
        out.report.len(),
        qtype.name(),
        opts.group,
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "largest weight error {worst:.3e}; {} of {} matrices reproduced exactly",
        out.report.len() - inexact.len(),
        out.report.len()
    );
    println!("model root {}", to_hex(&model_root(&out.bytes)));
    Ok(())
}

fn inspect(path: PathBuf) -> Result<()> {
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if oracle_core::image_format::is_image_model(&bytes) {
        print!(
            "{}",
            oracle_quant::image::cli::inspect(&bytes).context("parsing the image model")?
        );
        return print_footprint(&bytes);
    }
    let file = ModelFile::parse(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    let c = file.config;
    println!("file        {} ({} bytes)", path.display(), bytes.len());
    println!(
        "model root  {} ({} chunks of {CHUNK_SIZE} bytes)",
        to_hex(&model_root(&bytes)),
        bytes.len().div_ceil(CHUNK_SIZE)
    );
    println!(
        "config      dim {} hidden {} layers {} heads {} kv_heads {} vocab {} seq_len {} shared_classifier {} eps_q32 {}",
        c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len, c.shared_classifier, c.norm_eps_q32
    );
    println!("tensors     {}", file.tensors.len());
    for t in &file.tensors {
        let extra = match t.dtype {
            oracle_core::format::DType::I32 => format!("frac {}", t.exp),
            _ => format!("group {} exp {}", t.group, t.exp),
        };
        println!(
            "  {:<32} {:<4} {:>6} x {:<6} {:<18} {:>9} bytes @ {}",
            t.name,
            t.dtype.name(),
            t.rows,
            t.cols,
            extra,
            t.data.len(),
            t.offset
        );
    }
    if bytes.is_empty() {
        bail!("empty file");
    }
    print_footprint(&bytes)
}

/// Load the model fully (every check the node and the guest apply) and print
/// the memory one request needs; an error if it does not load.
fn print_footprint(bytes: &[u8]) -> Result<()> {
    use oracle_core::footprint::{of_model, GUEST_MEMORY_BUDGET};
    let (_, fp) = of_model(bytes).context("the model does not load")?;
    println!(
        "footprint   {} bytes to serve a request: file {}, decoded {}, run state {} ({} the guest's budget of {GUEST_MEMORY_BUDGET})",
        fp.total(),
        fp.file,
        fp.decoded,
        fp.run_state,
        if fp.fits(GUEST_MEMORY_BUDGET) { "within" } else { "over" }
    );
    Ok(())
}
