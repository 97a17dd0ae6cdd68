//! The guest's transition modes (the second phase of the two-phase dispute game):
//! in the VM, the init transition commits the native `P_0`, one position from `P_t`
//! commits the native `P_{t+1}` (for positions inside the prompt, after it, and the
//! last), and the output transition commits the whole request's output hash, for
//! every bundled LLaMA-family model, greedy and seeded, and as a chat request for
//! those with a chat template. Prints the VM steps of each transition
//! (the phase-2 trace length).

mod support;
use support::{guest_elf, run_guest};

use oracle_core::commit::merkle::{keccak, model_root, to_hex, Hash};
use oracle_core::commit::position::Decoder;
use oracle_core::llama::chat::ChatTemplate;
use oracle_core::llama::Model;
use oracle_core::model::outcome::rejected_commitment;
use oracle_core::model::request::TextParams;
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, RequestParams, SamplingParams};
use oracle_fpvm::InMemoryOracle;
use oracle_guest_abi::{exit_code, local_ident, transition};
use oracle_tests::LLAMA_FIXTURES;
use oracle_vm_host::{init_oracle, output_oracle, position_oracle, rejected_oracle};

/// Run the guest on `oracle` to its exit: (exit code, output commitment, steps).
fn run(oracle: InMemoryOracle) -> (u32, Hash, u64) {
    let r = run_guest(oracle);
    assert_eq!(r.status, 1, "exited");
    (r.exit_code, r.output, r.steps)
}

#[test]
fn each_transition_in_the_vm_commits_the_native_state() {
    let seeded = SamplingParams {
        temperature_q16: 52429,
        top_p_q16: 58982,
        seed: 11,
    };
    for fixture in LLAMA_FIXTURES {
        let bytes = fixture.model_file(QType::Q8);
        let root = model_root(&bytes);
        let model = Model::load(&bytes).unwrap();
        let chat = *model.tokenizer.chat_template() != ChatTemplate::None;
        let cases = [(SamplingParams::GREEDY, false), (seeded, false)]
            .into_iter()
            .chain(chat.then_some((SamplingParams::GREEDY, true)));
        for (sampling, chat) in cases {
            let params = TextParams {
                steps: 24,
                sampling,
                chat,
            };
            let request = Request::new(b"Once upon a time", RequestParams::Text(params));
            let label = format!("{} seed {} chat {chat}", fixture.name, sampling.seed);
            // Native chain P_0..P_T, keeping the decoders to serve as checkpoints.
            let mut decoders =
                vec![Decoder::start(&model.weights, &model.tokenizer, root, &request).unwrap()];
            while decoders.len() <= 24 {
                let mut d = decoders.last().unwrap().clone();
                d.step(Exec::default()).unwrap();
                decoders.push(d);
            }
            let (code, out, steps) = run(init_oracle(&bytes, &request));
            assert_eq!((code, out), (0, decoders[0].state().hash()), "{label} init");
            eprintln!("{label}: init {steps} steps");
            // Inside the prompt (forced tokens), right after it, and the last.
            for t in [0usize, 3, 5, 14, 23] {
                let (code, out, steps) = run(position_oracle(&bytes, &request, &decoders[t]));
                assert_eq!(
                    (code, to_hex(&out)),
                    (0, to_hex(&decoders[t + 1].state().hash())),
                    "{label} position {t}"
                );
                eprintln!("{label}: position {t} {steps} steps");
            }
            let native = model.generate(Exec::default(), &request, |_| {}).unwrap();
            let mut text = native.text.clone();
            text.push(b'\n');
            let last = decoders.last().unwrap();
            assert!(last.done());
            let (code, out, steps) = run(output_oracle(&bytes, &request, last));
            assert_eq!((code, out), (0, keccak(&text)), "{label} output");
            eprintln!("{label}: output {steps} steps");
        }
    }
}

/// A rejected request's chain is the error outcome's commitment `E` throughout: init
/// commits `E`, and a position or output transition from `E` commits `E` again, so
/// the chain ends in the error outcome (the empty output).
#[test]
fn a_rejected_request_chains_the_error_outcome() {
    let bytes = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let prompt = "word ".repeat(600);
    let request = Request::text(prompt.as_bytes(), 8, SamplingParams::GREEDY);
    let e = rejected_commitment();
    let (code, out, _) = run(init_oracle(&bytes, &request));
    assert_eq!((code, out), (0, e), "init");
    for mode in [transition::POSITION, transition::OUTPUT] {
        let (code, out, steps) = run(rejected_oracle(&bytes, &request, mode));
        assert_eq!((code, out), (0, e), "mode {mode}");
        eprintln!("rejected chain, mode {mode}: {steps} steps");
    }
}

/// The init transition tokenizes the prompt in the VM: a prompt of a few KiB (under
/// the context) stays far below the devnet's transition bound of 2^28 steps, and
/// four times the prompt costs about four times the tokenizing, not sixteen (the
/// merge is O(n log n); llama2.c's rescan took 2.7e9 steps for 3.5 KB).
#[test]
fn tokenizing_a_long_prompt_in_the_vm_is_sub_quadratic() {
    let bytes = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let text = std::fs::read(oracle_tests::fixtures().join("eval/stories260K-sample.txt")).unwrap();
    let steps_for = |n: usize| {
        let request = Request::text(&text[..n], 512, SamplingParams::GREEDY);
        let (code, out, steps) = run(init_oracle(&bytes, &request));
        assert_eq!(code, 0);
        assert_ne!(out, rejected_commitment(), "{n} bytes fit the context");
        steps
    };
    let empty = steps_for(0);
    let short = steps_for(200) - empty;
    let long = steps_for(800) - empty;
    eprintln!("init: {empty} steps with no prompt, +{short} for 200 bytes, +{long} for 800 bytes");
    assert!(
        long < 6 * short,
        "4x the prompt cost {long} vs {short} steps"
    );
    assert!(empty + long < 1 << 26);
}

#[test]
fn transitions_refuse_bad_pre_states() {
    let bytes = LLAMA_FIXTURES[1].model_file(QType::Q8);
    let root = model_root(&bytes);
    let model = Model::load(&bytes).unwrap();
    let request = Request::text(b"Hi", 6, SamplingParams::GREEDY);
    let d = Decoder::start(&model.weights, &model.tokenizer, root, &request).unwrap();
    // The output step of a state that is not done.
    let (code, _, _) = run(output_oracle(&bytes, &request, &d));
    assert_eq!(code, exit_code::BAD_STATE);
    // A pre-state of another model root than the game's (local 1).
    let other = Decoder::start(&model.weights, &model.tokenizer, [9; 32], &request).unwrap();
    let (code, _, _) = run(position_oracle(&bytes, &request, &other));
    assert_eq!(code, exit_code::BAD_STATE);
    // An unknown mode byte.
    let mut oracle = init_oracle(&bytes, &request);
    let mut params = request.encode_params().to_vec();
    params.push(9);
    oracle.insert_local(local_ident::SAMPLING_PARAMS, params);
    let (code, _, _) = run(oracle);
    assert_eq!(code, exit_code::BAD_PARAMS);
}

/// `fpvm run --position T` prints the native `P_{T+1}` and the VM's output
/// commitment, and they agree; `--output-step` commits what the whole run commits.
#[test]
fn cli_runs_one_position_and_the_output_step() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("stories-q8.bin");
    std::fs::write(&model, LLAMA_FIXTURES[0].model_file(QType::Q8)).unwrap();
    let elf = dir.path().join("guest.elf");
    std::fs::write(&elf, guest_elf()).unwrap();
    let run = |extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_fpvm"))
            .args(["run", "--prompt", "Lily", "--steps", "12", "--model"])
            .arg(&model)
            .arg("--elf")
            .arg(&elf)
            .args(extra)
            .output()
            .expect("run fpvm");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let field = |text: &str, name: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {text}"));
        line[name.len()..].trim().to_string()
    };
    let err = run(&["--position", "4"]);
    assert_eq!(
        field(&err, "output commitment:"),
        field(&err, "native P_5:")
    );
    let out = run(&["--output-step"]);
    let whole = run(&[]);
    assert_eq!(
        field(&out, "native output:"),
        field(&out, "output commitment:")
    );
    assert_eq!(
        field(&out, "output commitment:"),
        field(&whole, "output commitment:")
    );
}

/// The two-phase game off chain: a liar whose chain is wrong at one position only
/// (it posts a different token at position 10, then continues honestly from its
/// own state) is found at that position by bisecting the phase-1 commitments, and
/// the VM run of that single transition, from the agreed pre-state, commits the
/// honest post-state, not the liar's.
#[test]
fn a_lie_at_one_position_is_found_there_and_settled_by_that_position_alone() {
    use oracle_core::commit::position::{encode_tokens, PositionState};
    use std::collections::HashMap;

    let bytes = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let root = model_root(&bytes);
    let model = Model::load(&bytes).unwrap();
    let request = Request::text(b"Once upon a time", 24, SamplingParams::GREEDY);
    // Honest commitments s_0..s_N: s_0 = the request, s_{t+1} = P_t, s_N = output.
    let request_commitment = keccak(
        &[
            &root[..],
            &keccak(request.prompt)[..],
            &request.encode_params()[..],
        ]
        .concat(),
    );
    let mut honest =
        vec![Decoder::start(&model.weights, &model.tokenizer, root, &request).unwrap()];
    while honest.len() <= 24 {
        let mut d = honest.last().unwrap().clone();
        d.step(Exec::default()).unwrap();
        honest.push(d);
    }
    let output = |d: &Decoder<'_, '_>| {
        oracle_core::commit::position::output_hash(&model.tokenizer, d.tokens())
    };
    let mut s_honest = vec![request_commitment];
    s_honest.extend(honest.iter().map(|d| d.state().hash()));
    s_honest.push(output(honest.last().unwrap()));

    // The liar: honest up to P_10, a different last token in P_11, honest after.
    let lie_at = 10usize;
    let truth = &honest[lie_at + 1];
    let mut tokens = truth.tokens().to_vec();
    let last = tokens.last_mut().unwrap();
    *last = if *last == 5 { 6 } else { 5 };
    let lied_tokens = encode_tokens(&tokens);
    let lied_state = PositionState {
        tokens_hash: keccak(&lied_tokens),
        ..truth.state()
    };
    let mut store: HashMap<Hash, Vec<u8>> = truth
        .preimages()
        .into_iter()
        .map(|p| (keccak(&p), p))
        .collect();
    store.insert(keccak(&lied_tokens), lied_tokens);
    store.insert(lied_state.hash(), lied_state.encode().to_vec());
    let mut liar = Decoder::restore(
        &model.weights,
        &model.tokenizer,
        &root,
        &lied_state.hash(),
        |h| store.get(h).cloned(),
    )
    .unwrap();
    let mut s_liar = s_honest[..lie_at + 2].to_vec();
    s_liar.push(liar.state().hash());
    while liar.pos() < 24 {
        liar.step(Exec::default()).unwrap();
        s_liar.push(liar.state().hash());
    }
    s_liar.push(output(&liar));
    let n = s_honest.len() - 1;
    assert_eq!(s_liar.len(), n + 1);
    assert_ne!(s_liar[n], s_honest[n], "the lie changes the posted output");

    // Phase 1: bisection over 0..N; s_0 agreed, s_N disputed.
    let (mut lo, mut hi, mut moves) = (0usize, n, 0);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if s_liar[mid] == s_honest[mid] {
            lo = mid;
        } else {
            hi = mid;
        }
        moves += 1;
    }
    assert!(moves <= (n as f64).log2().ceil() as usize);
    // Transition lo -> lo + 1 is position lo - 1: the position of the lie.
    assert_eq!(lo, lie_at + 1);
    assert_eq!(s_liar[lo], s_honest[lo]);

    // Phase 2: the VM runs that one position from the agreed pre-state.
    let (code, out, steps) = run(position_oracle(&bytes, &request, &honest[lie_at]));
    assert_eq!(code, 0);
    assert_eq!(out, s_honest[lo + 1]);
    assert_ne!(out, s_liar[lo + 1]);
    eprintln!(
        "lie at position {lie_at}: found after {moves} phase-1 moves; phase-2 trace {steps} steps"
    );
}
