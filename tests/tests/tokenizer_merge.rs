//! The tokenizer's heap-ordered merge makes exactly llama2.c's choices: compared
//! with a direct transcription of llama2.c's quadratic rescan on random and
//! adversarial inputs, for both bundled vocabularies.

use oracle_core::llama::{Model, Tokenizer};
use oracle_core::quant::QType;
use proptest::prelude::*;

/// llama2.c's `encode` merge loop: rescan every adjacent pair, merge the leftmost
/// best-scoring one, repeat.
fn reference_encode(tok: &Tokenizer<'_>, bos: u32, text: &[u8]) -> Vec<u32> {
    let Tokenizer::SentencePiece(tok) = tok else {
        panic!("the bundled vocabularies are llama2.c's");
    };
    let mut tokens = vec![bos];
    if !text.is_empty() {
        if let Some(space) = tok.lookup(b" ") {
            tokens.push(space);
        }
    }
    let mut i = 0;
    while i < text.len() {
        let mut len = 1;
        while i + len < text.len() && len < 4 && text[i + len] & 0xC0 == 0x80 {
            len += 1;
        }
        let ch = &text[i..i + len];
        match tok.lookup(ch) {
            Some(id) => tokens.push(id),
            None => tokens.extend(ch.iter().map(|&b| u32::from(b) + 3)),
        }
        i += len;
    }
    loop {
        let mut best: Option<(i32, u32, usize)> = None;
        for i in 0..tokens.len().saturating_sub(1) {
            let pair = [tok.piece(tokens[i]), tok.piece(tokens[i + 1])].concat();
            if let Some(id) = tok.lookup(&pair) {
                let score = tok.score(id);
                if best.is_none_or(|(s, _, _)| score > s) {
                    best = Some((score, id, i));
                }
            }
        }
        let Some((_, id, i)) = best else { break };
        tokens[i] = id;
        tokens.remove(i + 1);
    }
    tokens
}

/// The bundled models with llama2.c vocabularies (the byte-level BPE ones are
/// checked against the `tokenizers` package in `quant-tools/tests/bpe_tokenizers.rs`).
fn models() -> Vec<Vec<u8>> {
    let spm: Vec<Vec<u8>> = oracle_tests::LLAMA_FIXTURES
        .iter()
        .map(|f| f.model_file(QType::Q8))
        .filter(|bytes| {
            matches!(
                Model::load(bytes).map(|m| m.tokenizer),
                Ok(Tokenizer::SentencePiece(_))
            )
        })
        .collect();
    assert_eq!(
        spm.len(),
        4,
        "four bundled models have llama2.c vocabularies"
    );
    spm
}

/// Text that is mostly words of the vocabulary, with runs of one letter (many equal
/// scores: the leftmost rule decides) and non-UTF-8 bytes.
fn text() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        Just(b"Once upon a time".to_vec()),
        Just(b" the ".to_vec()),
        Just(b"aaaaaaaa".to_vec()),
        Just(b"ll".to_vec()),
        Just("é中🙂".as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..6),
        proptest::collection::vec(b'a'..=b'z', 1..12),
    ];
    proptest::collection::vec(word, 0..24).prop_map(|w| w.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn heap_merge_equals_llama2c_rescan(text in text()) {
        for bytes in models() {
            let model = Model::load(&bytes).unwrap();
            prop_assert_eq!(
                model.tokenizer.encode(&text, Some(model.config.bos), None),
                reference_encode(&model.tokenizer, model.config.bos, &text)
            );
        }
    }
}

#[test]
fn long_prompts_tokenize_like_the_rescan() {
    let story =
        std::fs::read(oracle_tests::fixtures().join("eval/stories260K-sample.txt")).unwrap();
    for bytes in models() {
        let model = Model::load(&bytes).unwrap();
        let text = &story[..story.len().min(4000)];
        assert_eq!(
            model.tokenizer.encode(text, Some(model.config.bos), None),
            reference_encode(&model.tokenizer, model.config.bos, text)
        );
    }
}
