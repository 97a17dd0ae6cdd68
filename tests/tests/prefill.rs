//! Prefill (the prompt's positions together, `LlamaState::prefill`) gives exactly
//! what the forward pass gives one position at a time: every position's logits and
//! the whole KV cache, for every bundled LLaMA-family model, W8 and W4, every kernel family the
//! CPU has and two threads; and a committed decoder that prefills reaches the same
//! position states as one that steps.

use oracle_core::commit::merkle::model_root;
use oracle_core::commit::position::Decoder;
use oracle_core::llama::{LlamaState, Model};
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_tests::golden::text_execs;
use oracle_tests::LLAMA_FIXTURES;

/// A prompt of `n` token ids from a seed, starting with BOS like an encoded prompt.
fn tokens(n: usize, vocab: u32, bos: u32, seed: u64) -> Vec<u32> {
    let mut s = seed | 1;
    let mut out = vec![bos];
    while out.len() < n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.push(3 + (s % u64::from(vocab - 3)) as u32);
    }
    out
}

#[test]
fn prefill_equals_forward_position_by_position() {
    let execs = text_execs();
    for fixture in LLAMA_FIXTURES {
        for qtype in [QType::Q8, QType::Q4] {
            let bytes = fixture.model_file(qtype);
            let model = Model::load(&bytes).expect("fixture loads");
            let c = model.config;
            for (n, seed) in [(1, 1), (2, 2), (5, 3), (17, 4), (40, 5)] {
                let prompt = tokens(n, c.vocab_size, c.bos, seed);
                let mut one = LlamaState::new(&c);
                let want: Vec<Vec<i32>> = prompt
                    .iter()
                    .enumerate()
                    .map(|(pos, &t)| {
                        one.forward(&model.weights, Exec::SCALAR, t, pos as u32)
                            .expect("forward")
                            .to_vec()
                    })
                    .collect();
                for &exec in &execs {
                    let mut all = LlamaState::new(&c);
                    let mut got = Vec::new();
                    all.prefill(&model.weights, exec, &prompt, |pos, logits| {
                        assert_eq!(pos, got.len(), "positions in order");
                        got.push(logits.to_vec());
                    })
                    .expect("prefill");
                    let what = format!(
                        "{} {} n={n} {} x{}",
                        fixture.name,
                        qtype.name(),
                        exec.kernel_name(),
                        exec.threads
                    );
                    assert_eq!(got, want, "logits: {what}");
                    assert_eq!(all.kv_cache(), one.kv_cache(), "KV cache: {what}");
                    let mut cache_only = LlamaState::new(&c);
                    cache_only
                        .prefill_cache(&model.weights, exec, &prompt)
                        .expect("prefill_cache");
                    assert_eq!(
                        cache_only.kv_cache(),
                        one.kv_cache(),
                        "prefill_cache: {what}"
                    );
                    let mut advanced = LlamaState::new(&c);
                    for (pos, &t) in prompt.iter().enumerate() {
                        advanced
                            .advance(&model.weights, exec, t, pos as u32)
                            .expect("advance");
                    }
                    assert_eq!(advanced.kv_cache(), one.kv_cache(), "advance: {what}");
                }
            }
        }
    }
}

#[test]
fn a_prefilled_decoder_reaches_the_stepped_states() {
    let fixture = &LLAMA_FIXTURES[0];
    let bytes = fixture.model_file(QType::Q8);
    let model = Model::load(&bytes).expect("fixture loads");
    let root = model_root(&bytes);
    for (prompt, steps) in [("Once upon a time there was", 12), ("Tom and his dog", 3)] {
        let request = Request::text(prompt.as_bytes(), steps, SamplingParams::GREEDY);
        let mut stepped =
            Decoder::start(&model.weights, &model.tokenizer, root, &request).expect("decoder");
        let mut prefilled =
            Decoder::start(&model.weights, &model.tokenizer, root, &request).expect("decoder");
        let ran = prefilled.prefill(Exec::default()).expect("prefill");
        assert!(ran >= 2, "the prompt's positions ran together ({ran})");
        assert!(ran < steps, "the step limit is kept");
        for _ in 0..ran {
            stepped
                .step_with(Exec::SCALAR, |_| {
                    panic!("a prompt position computes no logits")
                })
                .expect("step");
        }
        assert_eq!(
            prefilled.state(),
            stepped.state(),
            "{prompt}: state after prefill"
        );
        while !stepped.done() {
            stepped.step(Exec::SCALAR).expect("step");
            prefilled.step(Exec::default()).expect("step");
            assert_eq!(prefilled.state(), stepped.state(), "{prompt}");
        }
        assert!(prefilled.done());
    }
}
