//! The generation loop of llama2.c's `run`: feed the prompt, then sample, stop at
//! BOS or after `steps` positions, and print each token as it comes.

use alloc::vec::Vec;
use sha3::{Digest, Keccak256};

use crate::commit::merkle::Hash;
use crate::error::RequestError;
use crate::kernels::Exec;
use crate::llama::config::LlamaConfig;
use crate::llama::sampler::{Sampler, SamplingParams};
use crate::llama::tokenizer::Tokenizer;
use crate::llama::{LlamaState, LlamaWeights};

/// A text-generation request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'p> {
    /// Prompt bytes (any bytes: invalid UTF-8 goes through byte fallback).
    pub prompt: &'p [u8],
    /// Positions to run, prompt included (llama2.c's `-n`); values above the
    /// context length are clamped to it.
    pub steps: u32,
    /// Sampling parameters.
    pub sampling: SamplingParams,
}

/// Length of [`Request::encode_params`]'s output.
pub const PARAMS_LEN: usize = 20;

impl Request<'_> {
    /// The request's numeric parameters as the guest program reads them (the local
    /// preimage "sampling parameters"): `steps`, `temperature_q16`, `top_p_q16` as
    /// big-endian `u32`, then `seed` as big-endian `u64`.
    pub fn encode_params(&self) -> [u8; PARAMS_LEN] {
        let mut out = [0u8; PARAMS_LEN];
        out[0..4].copy_from_slice(&self.steps.to_be_bytes());
        out[4..8].copy_from_slice(&self.sampling.temperature_q16.to_be_bytes());
        out[8..12].copy_from_slice(&self.sampling.top_p_q16.to_be_bytes());
        out[12..20].copy_from_slice(&self.sampling.seed.to_be_bytes());
        out
    }

    /// Decode [`Request::encode_params`] around a prompt; `None` unless exactly
    /// [`PARAMS_LEN`] bytes.
    pub fn decode_params<'p>(params: &[u8], prompt: &'p [u8]) -> Option<Request<'p>> {
        if params.len() != PARAMS_LEN {
            return None;
        }
        let u32_at =
            |i: usize| u32::from_be_bytes([params[i], params[i + 1], params[i + 2], params[i + 3]]);
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&params[12..20]);
        Some(Request {
            prompt,
            steps: u32_at(0),
            sampling: SamplingParams {
                temperature_q16: u32_at(4),
                top_p_q16: u32_at(8),
                seed: u64::from_be_bytes(seed),
            },
        })
    }
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Every token fed or produced, starting with BOS.
    pub tokens: Vec<u32>,
    /// Number of prompt tokens (BOS included).
    pub prompt_tokens: usize,
    /// The bytes printed: the prompt followed by the generated text.
    pub text: Vec<u8>,
    /// keccak256 over every logits vector computed, each as little-endian `i32`s.
    pub logits_hash: Hash,
}

/// Validate a request and tokenize its prompt (BOS first) for a model of config
/// `c`, as every decode path does: the sampling parameters, at least one step, a
/// prompt that fits the context, and every prompt token inside the vocabulary (a
/// byte-fallback id of a vocabulary under 259 tokens is not), so that a request is
/// either rejected here, before any position runs, or runs to the end.
///
/// A prompt that cannot fit is refused before any tokenizing: each token covers at
/// most [`Tokenizer::max_piece_len`] bytes, so a prompt of more than
/// `(seq_len - 1) * max_piece_len` bytes has more than `seq_len` tokens with BOS.
/// Tokenizing itself is `O(n log n)` in the prompt's bytes.
pub fn encode_prompt(
    tokenizer: &Tokenizer<'_>,
    c: &LlamaConfig,
    request: &Request<'_>,
) -> Result<Vec<u32>, RequestError> {
    let seq_len = c.seq_len;
    request.sampling.validate()?;
    if request.steps == 0 {
        return Err(RequestError::ZeroSteps);
    }
    let max_bytes = u64::from(seq_len.saturating_sub(1))
        .saturating_mul(u64::try_from(tokenizer.max_piece_len()).unwrap_or(u64::MAX));
    let bytes = u64::try_from(request.prompt.len()).unwrap_or(u64::MAX);
    if bytes > max_bytes {
        return Err(RequestError::PromptTooLarge {
            bytes,
            max_bytes,
            seq_len,
        });
    }
    let prompt = tokenizer.encode(request.prompt, true, None);
    if prompt.len() > seq_len as usize {
        return Err(RequestError::PromptTooLong {
            tokens: prompt.len(),
            seq_len: seq_len as usize,
        });
    }
    if let Some(&bad) = prompt.iter().find(|&&t| t >= c.vocab_size) {
        return Err(RequestError::TokenOutOfRange(bad));
    }
    Ok(prompt)
}

/// Run a request. `on_piece` receives each printed piece as it is produced.
pub fn generate(
    weights: &LlamaWeights<'_>,
    tokenizer: &Tokenizer<'_>,
    exec: Exec,
    request: &Request<'_>,
    mut on_piece: impl FnMut(&[u8]),
) -> Result<Generation, RequestError> {
    let c = weights.config;
    let prompt = encode_prompt(tokenizer, &c, request)?;
    let steps = request.steps.min(c.seq_len);
    let mut state = LlamaState::new(&c);
    let mut sampler = Sampler::new(request.sampling, c.vocab_size as usize);
    let mut hasher = Keccak256::new();
    let mut tokens = Vec::with_capacity(steps as usize + 1);
    tokens.push(prompt[0]);
    let mut text = Vec::new();
    let mut token = prompt[0];
    let mut piece_buf = Vec::new();
    for pos in 0..steps {
        let logits = state.forward(weights, exec, token, pos)?;
        for l in logits {
            hasher.update(l.to_le_bytes());
        }
        let next = match prompt.get(pos as usize + 1) {
            Some(&forced) => forced,
            None => sampler.sample(logits),
        };
        if next == c.bos {
            break;
        }
        tokens.push(next);
        piece_buf.clear();
        tokenizer.decode(token, next).push_printable(&mut piece_buf);
        on_piece(&piece_buf);
        text.extend_from_slice(&piece_buf);
        token = next;
    }
    Ok(Generation {
        tokens,
        prompt_tokens: prompt.len(),
        text,
        logits_hash: hasher.finalize().into(),
    })
}
