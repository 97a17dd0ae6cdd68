//! Models with byte-level BPE vocabularies (the `-bpe` fixtures of
//! `oracle_tests::LLAMA_FIXTURES`): a chat request's prompt tokens are exactly
//! the ids `transformers`' `apply_chat_template` gives (after the BOS every
//! prompt starts with), a vocabulary without a template rejects a chat request,
//! and generation stops at a sampled stop token but never at one the prompt holds.

use oracle_core::error::RequestError;
use oracle_core::llama::generate::encode_prompt;
use oracle_core::llama::Model;
use oracle_core::model::request::{RequestParams, TextParams};
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_quant::export::{export, QuantOptions};
use oracle_tests::{fixtures, Fixture, LLAMA_FIXTURES};
use serde_json::Value;

fn fixture(name: &str) -> Fixture {
    *LLAMA_FIXTURES
        .iter()
        .find(|f| f.name == name)
        .expect("fixture")
}

fn chat(steps: u32) -> TextParams {
    TextParams {
        steps,
        sampling: SamplingParams::GREEDY,
        chat: true,
    }
}

#[test]
fn chat_prompts_tokenize_as_transformers_renders_them() {
    for (name, kind) in [("tiny-llama3-bpe", "llama3"), ("tiny-qwen2-bpe", "qwen2")] {
        let bytes = fixture(name).model_file(QType::Q8);
        let model = Model::load(&bytes).unwrap();
        let path = fixtures().join("tokenizers").join(kind).join("chat.json");
        let cases: Vec<Value> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for case in cases {
            let prompt = case["prompt"].as_str().unwrap();
            let mut want: Vec<u32> = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            // ChatML templates write no BOS; the core starts every prompt with one.
            if want.first() != Some(&model.config.bos) {
                want.insert(0, model.config.bos);
            }
            let got = encode_prompt(&model.tokenizer, &model.config, prompt.as_bytes(), &chat(8));
            assert_eq!(got.unwrap(), want, "{name} {prompt:?}");
        }
        let request = Request::new(b"Hello there", RequestParams::Text(chat(24)));
        let run = model.generate(Exec::default(), &request, |_| {}).unwrap();
        assert!(
            run.text.starts_with(b"<|"),
            "{name}: the template is printed"
        );
    }
}

#[test]
fn a_vocabulary_without_a_chat_template_rejects_a_chat_request() {
    let bytes = fixture("stories260K").model_file(QType::Q8);
    let model = Model::load(&bytes).unwrap();
    let request = Request::new(b"Once", RequestParams::Text(chat(8)));
    assert_eq!(
        model.generate(Exec::default(), &request, |_| {}).err(),
        Some(RequestError::NoChatTemplate)
    );
    let plain = Request::text(b"Once", 8, SamplingParams::GREEDY);
    assert!(model.generate(Exec::default(), &plain, |_| {}).is_ok());
}

#[test]
fn generation_stops_at_a_sampled_stop_token_only() {
    let f = fixture("tiny-llama3-bpe");
    let prompt = b"Once upon a time";
    let run_with = |stops: Vec<u32>, prompt: &[u8]| {
        let mut float = f.float_model();
        float
            .tokenizer
            .as_mut()
            .unwrap()
            .byte_bpe
            .as_mut()
            .unwrap()
            .stops = stops;
        let bytes = export(&float, QuantOptions::for_type(QType::Q8), |_, _| {})
            .unwrap()
            .bytes;
        let model = Model::load(&bytes).unwrap();
        let request = Request::text(prompt, 40, SamplingParams::GREEDY);
        let run = model.generate(Exec::default(), &request, |_| {}).unwrap();
        (
            run,
            model.tokenizer.encode(prompt, Some(model.config.bos), None),
        )
    };
    let (free, prompt_tokens) = run_with(Vec::new(), prompt);
    assert_eq!(free.tokens.len(), 41, "no stop token: every step runs");
    // The first generated token that the prompt does not hold becomes the stop.
    let (at, &stop) = free
        .tokens
        .iter()
        .enumerate()
        .skip(prompt_tokens.len())
        .find(|(_, t)| !prompt_tokens.contains(t))
        .expect("a new token");
    let (stopped, _) = run_with(vec![stop], prompt);
    assert_eq!(
        stopped.tokens,
        free.tokens[..at],
        "stops before the stop token"
    );
    // A stop token the prompt holds is fed like any prompt token; it stops the
    // decode only where it is sampled.
    let held = *prompt_tokens.last().unwrap();
    let (forced, _) = run_with(vec![held], prompt);
    let n = prompt_tokens.len();
    assert_eq!(forced.tokens[..n], prompt_tokens[..]);
    match free.tokens[n..].iter().position(|&t| t == held) {
        Some(k) => assert_eq!(forced.tokens, free.tokens[..n + k]),
        None => assert_eq!(forced.tokens, free.tokens),
    }
}
