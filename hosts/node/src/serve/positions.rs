//! The two-phase game's view of one text request, computed natively
//! (`docs/dispute.md`): the phase-1 commitments `s_0..s_N` and, for the single
//! transition the bisection settles on, the preimage oracle of its VM run.
//!
//! Nothing here is stored: the chain of position states is rebuilt from the model
//! and the request whenever it is needed (for stories260K, milliseconds), because a
//! decoder borrows its model and each state holds a whole KV cache.
//!
//! Test only: a node with its lying switch on commits a chain whose token at one
//! position ([`lie_position`]) is replaced, continuing honestly from its own wrong
//! state, so its posted text differs from the truth by that one token onwards.

use std::collections::HashMap;

use alloy::primitives::B256;
use anyhow::{anyhow, bail, Context, Result};
use oracle_core::commit::merkle::{keccak, model_root, Hash};
use oracle_core::commit::position::{
    encode_tokens, output_hash, tokens_text, Decoder, PositionState,
};
use oracle_core::llama::Model;
use oracle_core::model::outcome::{rejected_commitment, text_output, REJECTED_OUTPUT};
use oracle_core::model::request::TextParams;
use oracle_core::{Exec, Request, RequestParams};
use oracle_fpvm::InMemoryOracle;
use oracle_vm_host::{init_oracle, output_oracle, position_oracle, rejected_oracle};

/// A request's phase-1 commitments and the output they end in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitments {
    /// `s_0..s_N`: the request commitment, `P_0..P_T`, the output commitment (for a
    /// rejected request `E` throughout after `s_0`).
    pub hashes: Vec<B256>,
    /// The output bytes `s_N` commits to (text, then a newline; empty for the
    /// error outcome).
    pub output: Vec<u8>,
    /// Tokens generated (prompt excluded).
    pub generated: u64,
    /// Why the request has the error outcome, if it has.
    pub rejected: Option<String>,
    /// Positions that actually ran (states after them are fixed points).
    pub ran: u32,
}

/// Which transition of the game index `i → i + 1` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// `s_0 → P_0`: tokenize and validate.
    Init,
    /// `P_t → P_{t+1}`: one forward pass at position `t`.
    Position(u32),
    /// `P_T → O`: decode the text.
    Output,
}

impl Transition {
    /// The transition from index `i` of a chain of `n + 1` commitments.
    pub fn at(i: u64, n: u64) -> Result<Transition> {
        match i {
            0 => Ok(Transition::Init),
            i if i + 1 == n => Ok(Transition::Output),
            i if i + 1 < n => Ok(Transition::Position(
                u32::try_from(i - 1).context("position out of range")?,
            )),
            _ => bail!("index {i} is past the chain's last transition ({n} commitments)"),
        }
    }
}

/// The request the node serves for `prompt` with `params`.
fn request(prompt: &[u8], params: TextParams) -> Request<'_> {
    Request::new(prompt, RequestParams::Text(params))
}

/// `s_0 = keccak256(modelRoot ‖ inputHash ‖ params)`, derived on chain.
pub fn request_commitment(root: &Hash, prompt: &[u8], params: &[u8]) -> B256 {
    B256::from(keccak(&[&root[..], &keccak(prompt)[..], params].concat()))
}

/// The position whose token a lying node replaces: the middle of the generated
/// part, before the generation stops.
pub fn lie_position(prompt_len: u32, stop: u32) -> u32 {
    let first = prompt_len.saturating_sub(1);
    let last = stop.saturating_sub(1).max(first);
    first + (last - first) / 2
}

/// Every decoder state `P_0..P_T` of `prompt` (`T = steps`, fixed points past the
/// end), honest or with the test-only lie, handed to `visit` in order; stops early
/// when `visit` returns false.
fn walk<'a, 'm>(
    model: &'a Model<'m>,
    root: Hash,
    prompt: &[u8],
    params: TextParams,
    lying: bool,
    mut visit: impl FnMut(u32, &Decoder<'a, 'm>) -> bool,
) -> Result<()> {
    let steps = params.steps;
    let request = request(prompt, params);
    let mut d = Decoder::start(&model.weights, &model.tokenizer, root, &request)
        .map_err(|e| anyhow!("the request is invalid: {e}"))?;
    let lie_at = if lying {
        let prompt_len = d.state().prompt_len;
        let mut probe = d.clone();
        let mut stop = 0;
        while !probe.done() {
            probe.step(Exec::default())?;
            stop += 1;
        }
        Some(lie_position(prompt_len, stop))
    } else {
        None
    };
    if !visit(0, &d) {
        return Ok(());
    }
    for t in 0..steps {
        d.step(Exec::default())?;
        if lie_at == Some(t) {
            d = lie_about_last_token(model, root, &d)?;
        }
        if !visit(t + 1, &d) {
            return Ok(());
        }
    }
    Ok(())
}

/// The decoder of `truth`'s state with its last token replaced (5 ↔ 6), restored
/// from the honest preimages plus the lied token list and state.
fn lie_about_last_token<'a, 'm>(
    model: &'a Model<'m>,
    root: Hash,
    truth: &Decoder<'a, 'm>,
) -> Result<Decoder<'a, 'm>> {
    let mut tokens = truth.tokens().to_vec();
    let Some(last) = tokens.last_mut() else {
        bail!("no token to lie about");
    };
    *last = if *last == 5 { 6 } else { 5 };
    let lied_tokens = encode_tokens(&tokens);
    let lied = PositionState {
        tokens_hash: keccak(&lied_tokens),
        ..truth.state()
    };
    let mut store: HashMap<Hash, Vec<u8>> = truth
        .preimages()
        .into_iter()
        .map(|p| (keccak(&p), p))
        .collect();
    store.insert(keccak(&lied_tokens), lied_tokens);
    store.insert(lied.hash(), lied.encode().to_vec());
    Decoder::restore(&model.weights, &model.tokenizer, &root, &lied.hash(), |h| {
        store.get(h).cloned()
    })
    .map_err(|e| anyhow!("restoring the lied state: {e}"))
}

/// The phase-1 commitments of `prompt` served with `params` (`params.steps`
/// positions; `lying`: the test-only lie: one token replaced, or for a rejected
/// request a non-empty output at the end of the error outcome's chain).
pub fn commitments(
    model_bytes: &[u8],
    prompt: &[u8],
    params: TextParams,
    lying: bool,
) -> Result<Commitments> {
    let model = Model::load(model_bytes).context("loading the model")?;
    let root = model_root(model_bytes);
    let steps = params.steps;
    let request = request(prompt, params);
    let mut hashes = vec![request_commitment(&root, prompt, &request.encode_params())];
    if let Err(e) = Decoder::start(&model.weights, &model.tokenizer, root, &request) {
        let e_hash = B256::from(rejected_commitment());
        hashes.extend(std::iter::repeat_n(e_hash, steps as usize + 1));
        let output = if lying {
            crate::faults::wrong_output(REJECTED_OUTPUT)
        } else {
            REJECTED_OUTPUT.to_vec()
        };
        hashes.push(B256::from(keccak(&output)));
        return Ok(Commitments {
            hashes,
            output,
            generated: 0,
            rejected: Some(e.to_string()),
            ran: 0,
        });
    }
    let (mut tokens, mut prompt_len, mut stop) = (Vec::new(), 0, None);
    walk(&model, root, prompt, params, lying, |t, d| {
        let state = d.state();
        hashes.push(B256::from(state.hash()));
        prompt_len = state.prompt_len;
        tokens = d.tokens().to_vec();
        if stop.is_none() && d.done() {
            stop = Some(t);
        }
        true
    })?;
    let generated = tokens.len().saturating_sub(prompt_len as usize);
    hashes.push(B256::from(output_hash(&model.tokenizer, &tokens)));
    let output = text_output(&tokens_text(&model.tokenizer, &tokens));
    Ok(Commitments {
        hashes,
        output,
        generated: u64::try_from(generated).unwrap_or(u64::MAX),
        rejected: None,
        ran: stop.unwrap_or(steps),
    })
}

/// The indices of the transitions of a request's `chain` (served for `steps`
/// positions) that bound the VM steps of every other: init (it tokenizes the
/// prompt), the last position that runs (positions grow with the context; later
/// states are fixed points) and the output transition.
pub fn longest_transitions(chain: &Commitments, steps: u32) -> [u64; 3] {
    [0, u64::from(chain.ran.max(1)), u64::from(steps) + 1]
}

/// The preimage oracle of transition `index → index + 1` as the game's VM run
/// reads it: the request's data, the mode byte, and the pre-state `s_index` with
/// all its preimages, from this node's own chain (`lying` as in [`commitments`]).
pub fn transition_oracle(
    model_bytes: &[u8],
    prompt: &[u8],
    params: TextParams,
    lying: bool,
    index: u64,
) -> Result<InMemoryOracle> {
    let model = Model::load(model_bytes).context("loading the model")?;
    let root = model_root(model_bytes);
    let steps = params.steps;
    let request = request(prompt, params);
    let transition = Transition::at(index, u64::from(steps) + 2)?;
    let pre = match transition {
        Transition::Init => return Ok(init_oracle(model_bytes, &request)),
        Transition::Position(t) => t,
        Transition::Output => steps,
    };
    if Decoder::start(&model.weights, &model.tokenizer, root, &request).is_err() {
        let mode = match transition {
            Transition::Output => oracle_guest_abi::transition::OUTPUT,
            _ => oracle_guest_abi::transition::POSITION,
        };
        return Ok(rejected_oracle(model_bytes, &request, mode));
    }
    let mut oracle = None;
    walk(&model, root, prompt, params, lying, |t, d| {
        if t < pre {
            return true;
        }
        oracle = Some(match transition {
            Transition::Output => output_oracle(model_bytes, &request, d),
            _ => position_oracle(model_bytes, &request, d),
        });
        false
    })?;
    oracle.ok_or_else(|| anyhow!("the chain has no state {pre}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_by_index() {
        assert_eq!(Transition::at(0, 18).unwrap(), Transition::Init);
        assert_eq!(Transition::at(1, 18).unwrap(), Transition::Position(0));
        assert_eq!(Transition::at(16, 18).unwrap(), Transition::Position(15));
        assert_eq!(Transition::at(17, 18).unwrap(), Transition::Output);
        assert!(Transition::at(18, 18).is_err());
    }

    /// The honest chain ends in the text `generate` prints; the lying chain agrees
    /// up to its lie and differs from there on; the VM run of the lied transition
    /// from the agreed pre-state commits the honest post-state, and the VM run of
    /// the output transition commits the honest output.
    #[test]
    fn chains_and_their_transitions_in_the_vm() {
        use oracle_core::quant::QType;
        use std::sync::Arc;

        let bytes = oracle_tests::LLAMA_FIXTURES[0].model_file(QType::Q8);
        let guest = oracle_tests::guest_elf();
        let (prompt, steps) = (&b"Once upon a time"[..], 12u32);
        let params = TextParams {
            steps,
            sampling: oracle_core::SamplingParams::GREEDY,
            chat: false,
        };
        let honest = commitments(&bytes, prompt, params, false).unwrap();
        let liar = commitments(&bytes, prompt, params, true).unwrap();
        let n = steps as usize + 2;
        assert_eq!(honest.hashes.len(), n + 1);
        assert_eq!(liar.hashes.len(), n + 1);

        let model = Model::load(&bytes).unwrap();
        let generation = model
            .generate(Exec::default(), &request(prompt, params), |_| {})
            .unwrap();
        assert_eq!(honest.output, [&generation.text[..], b"\n"].concat());
        assert_eq!(honest.hashes[n], B256::from(keccak(&honest.output)));
        assert_ne!(liar.output, honest.output);
        assert_eq!(liar.hashes[n], B256::from(keccak(&liar.output)));

        let first_lie = (0..=n)
            .find(|&i| liar.hashes[i] != honest.hashes[i])
            .unwrap();
        let prompt_len = model
            .tokenizer
            .encode(prompt, Some(model.config.bos), None)
            .len() as u32;
        let lie_at = lie_position(prompt_len, steps);
        assert_eq!(first_lie, lie_at as usize + 2, "P_(t+1) is s_(t+2)");
        assert!((first_lie..=n).all(|i| liar.hashes[i] != honest.hashes[i]));

        let run = |oracle: InMemoryOracle| {
            let mut vm = oracle_fpvm::Vm::from_elf(&guest, Arc::new(oracle)).unwrap();
            vm.run(u64::MAX).unwrap();
            assert!(vm.halted());
            assert_eq!(vm.cpu.exit_code, 0);
            B256::from(vm.cpu.output)
        };
        let i = first_lie as u64 - 1;
        let lied = run(transition_oracle(&bytes, prompt, params, true, i).unwrap());
        assert_eq!(lied, honest.hashes[first_lie]);
        let out = run(transition_oracle(&bytes, prompt, params, false, n as u64 - 1).unwrap());
        assert_eq!(out, honest.hashes[n]);
        let init = run(transition_oracle(&bytes, prompt, params, false, 0).unwrap());
        assert_eq!(init, honest.hashes[1]);
    }

    #[test]
    fn the_lie_sits_in_the_generated_part() {
        assert_eq!(lie_position(5, 16), 9);
        assert_eq!(lie_position(1, 16), 7);
        assert_eq!(lie_position(5, 5), 4);
        assert_eq!(lie_position(16, 8), 15);
    }
}
