//! Quality of the integer model against the float reference, teacher-forced on a
//! text: perplexity of both, top-1 agreement of their next-token predictions, and
//! the mean KL divergence `KL(float || integer)` per position.
//!
//! The text is split into lines; each non-empty line is one sequence, tokenized by
//! the integer model's tokenizer with BOS, cut to the context length.

use std::path::PathBuf;

use anyhow::{Context, Result};
use oracle_core::llama::{LlamaState, Model};
use oracle_core::Exec;
use serde::Serialize;

use crate::checkpoint;
use crate::reference::FloatLlama;

/// Arguments of `oracle-quant eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The integer model file.
    #[arg(long)]
    pub model: PathBuf,
    /// The float checkpoint it was converted from.
    #[arg(long)]
    pub reference: PathBuf,
    /// Tokenizer for the reference checkpoint, when it has none.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// The evaluation text (one sequence per line).
    #[arg(long)]
    pub text: PathBuf,
    /// Stop after this many predicted tokens.
    #[arg(long, default_value_t = 100_000)]
    pub max_tokens: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The measured figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalReport {
    /// Predicted positions.
    pub tokens: usize,
    /// Perplexity of the float reference.
    pub ppl_float: f64,
    /// Perplexity of the integer model.
    pub ppl_int: f64,
    /// `ppl_int / ppl_float - 1`.
    pub ppl_rel_diff: f64,
    /// Fraction of positions where both models' argmax agree.
    pub top1_agreement: f64,
    /// Mean `KL(float || integer)` in nats.
    pub mean_kl: f64,
}

impl EvalReport {
    /// A plain-text table.
    pub fn table(&self) -> String {
        format!(
            "| tokens | ppl float | ppl int | ppl diff | top-1 agreement | mean KL |\n|---|---|---|---|---|---|\n| {} | {:.4} | {:.4} | {:+.2}% | {:.2}% | {:.5} |\n",
            self.tokens,
            self.ppl_float,
            self.ppl_int,
            self.ppl_rel_diff * 100.0,
            self.top1_agreement * 100.0,
            self.mean_kl
        )
    }
}

fn log_softmax(logits: impl Iterator<Item = f64>) -> Vec<f64> {
    let v: Vec<f64> = logits.collect();
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
    v.iter().map(|x| x - lse).collect()
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Run the evaluation.
pub fn run(args: &EvalArgs) -> Result<EvalReport> {
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let model = Model::load(&bytes).with_context(|| format!("loading {}", args.model.display()))?;
    let reference = checkpoint::load(&args.reference, args.tokenizer.as_deref())
        .with_context(|| format!("importing {}", args.reference.display()))?;
    let text =
        std::fs::read(&args.text).with_context(|| format!("reading {}", args.text.display()))?;
    evaluate(&model, &reference, &text, args.max_tokens)
}

/// Evaluate an integer model against a float model on `text`.
pub fn evaluate(
    model: &Model<'_>,
    reference: &crate::float_model::FloatModel,
    text: &[u8],
    max_tokens: usize,
) -> Result<EvalReport> {
    let sequences: Vec<Vec<u32>> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| model.tokenizer.encode(line, Some(model.config.bos), None))
        .collect();
    evaluate_tokens(model, reference, &sequences, max_tokens)
}

/// [`evaluate`] on token sequences (each fed from its first token; truncated to
/// the context), e.g. tokens sampled from the reference, which need not survive a
/// round trip through text.
pub fn evaluate_tokens(
    model: &Model<'_>,
    reference: &crate::float_model::FloatModel,
    sequences: &[Vec<u32>],
    max_tokens: usize,
) -> Result<EvalReport> {
    let c = model.weights.config;
    anyhow::ensure!(
        reference.config.vocab_size == c.vocab_size as usize
            && reference.config.dim == c.dim as usize,
        "the reference checkpoint does not match the model file"
    );
    let (mut n, mut nll_f, mut nll_i, mut agree, mut kl) = (0usize, 0f64, 0f64, 0usize, 0f64);
    'lines: for tokens in sequences {
        let tokens = &tokens[..tokens.len().min(c.seq_len as usize)];
        anyhow::ensure!(
            tokens.iter().all(|&t| t < c.vocab_size),
            "a token outside the vocabulary"
        );
        let mut state = LlamaState::new(&c);
        let mut float = FloatLlama::new(reference);
        for pos in 0..tokens.len().saturating_sub(1) {
            let li = log_softmax(
                state
                    .forward(&model.weights, Exec::default(), tokens[pos], pos as u32)?
                    .iter()
                    .map(|&l| f64::from(l) / 65536.0),
            );
            let lf = log_softmax(
                float
                    .forward(tokens[pos], pos)
                    .iter()
                    .map(|&l| f64::from(l)),
            );
            let next = tokens[pos + 1] as usize;
            nll_f -= lf[next];
            nll_i -= li[next];
            agree += usize::from(argmax(&lf) == argmax(&li));
            kl += lf
                .iter()
                .zip(&li)
                .map(|(a, b)| a.exp() * (a - b))
                .sum::<f64>();
            n += 1;
            if n >= max_tokens {
                break 'lines;
            }
        }
    }
    anyhow::ensure!(n > 0, "the text has no token to predict");
    let nf = n as f64;
    let (ppl_float, ppl_int) = ((nll_f / nf).exp(), (nll_i / nf).exp());
    Ok(EvalReport {
        tokens: n,
        ppl_float,
        ppl_int,
        ppl_rel_diff: ppl_int / ppl_float - 1.0,
        top1_agreement: agree as f64 / nf,
        mean_kl: kl / nf,
    })
}
