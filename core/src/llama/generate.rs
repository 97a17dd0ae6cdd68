//! The generation loop of llama2.c's `run`: feed the prompt, then sample, stop at
//! BOS or after `steps` positions, and print each token as it comes.

use alloc::vec::Vec;
use sha3::{Digest, Keccak256};

use crate::commit::merkle::Hash;
use crate::commit::position::Decoder;
use crate::error::RequestError;
use crate::kernels::Exec;
use crate::llama::config::LlamaConfig;
use crate::llama::tokenizer::Tokenizer;
use crate::llama::LlamaWeights;
use crate::model::request::{Request, TextParams};

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Every token fed or produced, starting with BOS.
    pub tokens: Vec<u32>,
    /// Number of prompt tokens (BOS included).
    pub prompt_tokens: usize,
    /// The bytes printed: the prompt followed by the generated text.
    pub text: Vec<u8>,
    /// keccak256 over the logits of every position that sampled its next token (a
    /// prompt position computes none), each as little-endian `i32`s.
    pub logits_hash: Hash,
}

/// Validate a request and tokenize its prompt (BOS first) for a model of config
/// `c`, as every decode path does: the sampling parameters, at least one step, a
/// prompt that fits the context, and every prompt token inside the vocabulary (a
/// byte-fallback id of a vocabulary under 259 tokens is not), so that a request is
/// either rejected here, before any position runs, or runs to the end. A chat
/// request's prompt is first rendered by the vocabulary's chat template (the
/// size limit applies to the rendered text).
///
/// A prompt that cannot fit is refused before any tokenizing: each token covers at
/// most [`Tokenizer::max_piece_len`] bytes, so a prompt of more than
/// `(seq_len - 1) * max_piece_len` bytes has more than `seq_len` tokens with BOS.
/// Tokenizing itself is `O(n log n)` in the prompt's bytes.
pub fn encode_prompt(
    tokenizer: &Tokenizer<'_>,
    c: &LlamaConfig,
    prompt: &[u8],
    params: &TextParams,
) -> Result<Vec<u32>, RequestError> {
    let seq_len = c.seq_len;
    params.sampling.validate()?;
    if params.steps == 0 {
        return Err(RequestError::ZeroSteps);
    }
    let rendered;
    let prompt = if params.chat {
        rendered = tokenizer
            .chat_template()
            .render(prompt)
            .ok_or(RequestError::NoChatTemplate)?;
        &rendered[..]
    } else {
        prompt
    };
    let max_bytes = u64::from(seq_len.saturating_sub(1))
        .saturating_mul(u64::try_from(tokenizer.max_piece_len()).unwrap_or(u64::MAX));
    let bytes = u64::try_from(prompt.len()).unwrap_or(u64::MAX);
    if bytes > max_bytes {
        return Err(RequestError::PromptTooLarge {
            bytes,
            max_bytes,
            seq_len,
        });
    }
    let tokens = tokenizer.encode(prompt, Some(c.bos), None);
    if tokens.len() > seq_len as usize {
        return Err(RequestError::PromptTooLong {
            tokens: tokens.len(),
            seq_len: seq_len as usize,
        });
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t >= c.vocab_size) {
        return Err(RequestError::TokenOutOfRange(bad));
    }
    Ok(tokens)
}

/// Run a text request. `on_piece` receives each printed piece as it is produced.
///
/// The loop is the position decoder's ([`Decoder::step_with`], uncommitted):
/// feed the prompt, then sample, stop at BOS or after `min(steps, seq_len)`
/// positions; the two-phase game's positions are these positions.
pub fn generate(
    weights: &LlamaWeights<'_>,
    tokenizer: &Tokenizer<'_>,
    exec: Exec,
    request: &Request<'_>,
    mut on_piece: impl FnMut(&[u8]),
) -> Result<Generation, RequestError> {
    let mut decoder = Decoder::uncommitted(weights, tokenizer, request)?;
    let mut hasher = Keccak256::new();
    let mut text = Vec::new();
    let mut piece_buf = Vec::new();
    // On hosts, the prompt's forced positions together, then their pieces in
    // order. The guest keeps to one position at a time: prefill's buffers grow with
    // the prompt, and the guest's memory is budgeted by the footprint (same values
    // either way; the golden tests pin both).
    if cfg!(feature = "std") {
        decoder.prefill(exec)?;
    }
    for pair in decoder.tokens().windows(2) {
        piece_buf.clear();
        tokenizer
            .decode(pair[0], pair[1])
            .push_printable(&mut piece_buf);
        on_piece(&piece_buf);
        text.extend_from_slice(&piece_buf);
    }
    while !decoder.done() {
        let fed = decoder.tokens().len();
        decoder.step_with(exec, |logits| {
            for l in logits {
                hasher.update(l.to_le_bytes());
            }
        })?;
        if let [.., token, next] = decoder.tokens() {
            if decoder.tokens().len() > fed {
                piece_buf.clear();
                tokenizer
                    .decode(*token, *next)
                    .push_printable(&mut piece_buf);
                on_piece(&piece_buf);
                text.extend_from_slice(&piece_buf);
            }
        }
    }
    let prompt_tokens = decoder.prompt_len();
    Ok(Generation {
        tokens: decoder.into_tokens(),
        prompt_tokens,
        text,
        logits_hash: hasher.finalize().into(),
    })
}
