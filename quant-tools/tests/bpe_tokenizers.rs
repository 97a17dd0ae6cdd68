//! Byte-level BPE: our import and the core's encoder against the `tokenizers`
//! package, for every supported pre-tokenizer (GPT-2, Llama 3, Qwen2, SmolLM), on
//! the few thousand lines of mixed text `scripts/fixtures/bpe_tokenizers.py`
//! encoded with it (`fixtures/tokenizers/`); the GGUF form of each vocabulary
//! imports to the same tokenizer tensor; chat prompts render and encode as
//! `transformers`' `apply_chat_template`.

use std::path::PathBuf;

use oracle_core::llama::chat::ChatTemplate;
use oracle_core::llama::Tokenizer;
use oracle_quant::checkpoint::{byte_bpe, tokenizer};
use oracle_quant::export::tokenizer_bytes;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

const KINDS: [&str; 4] = ["gpt2", "llama3", "qwen2", "smollm"];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tokenizers")
}

fn lines() -> Vec<String> {
    serde_json::from_slice(&std::fs::read(dir().join("lines.json")).unwrap()).unwrap()
}

/// The tokenizer tensor of a kind's `tokenizer.json` folder.
fn tensor(kind: &str) -> (Vec<u8>, u32, u32) {
    let tok = byte_bpe::load_hf(&dir().join(kind)).expect("imports");
    let bpe = tok.byte_bpe.clone().expect("byte-level");
    (
        tokenizer_bytes(&tok).expect("exports"),
        tok.pieces.len() as u32,
        bpe.bos,
    )
}

#[test]
fn encoding_equals_the_tokenizers_package_for_every_pre_tokenizer() {
    let lines = lines();
    assert!(lines.len() >= 3000);
    for kind in KINDS {
        let (bytes, n, bos) = tensor(kind);
        let tok = Tokenizer::parse(&bytes, n, bos).expect("parses");
        let want = std::fs::read_to_string(dir().join(kind).join("ids.txt")).unwrap();
        let mut tokens = 0;
        for (i, (line, ids)) in lines.iter().zip(want.lines()).enumerate() {
            let want: Vec<u32> = ids
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            let got = tok.encode(line.as_bytes(), None, None);
            assert_eq!(got, want, "{kind}: line {i} {line:?}");
            tokens += got.len();
            // Decoding is the (normalized) text again.
            let text: Vec<u8> = got.iter().flat_map(|&t| tok.piece(t).to_vec()).collect();
            let normal: String = if kind == "qwen2" {
                line.nfc().collect()
            } else {
                line.clone()
            };
            assert_eq!(text, normal.as_bytes(), "{kind}: line {i} decodes");
        }
        assert_eq!(want.lines().count(), lines.len());
        println!("{kind}: {} lines, {tokens} tokens equal", lines.len());
    }
}

#[test]
fn a_gguf_vocabulary_imports_to_the_same_tensor() {
    for kind in KINDS {
        let from_gguf = tokenizer::load(&dir().join(kind).join("vocab.gguf")).expect("imports");
        assert_eq!(
            tokenizer_bytes(&from_gguf).unwrap(),
            tensor(kind).0,
            "{kind}"
        );
    }
}

#[test]
fn chat_prompts_render_and_encode_as_transformers() {
    for kind in KINDS {
        let (bytes, n, bos) = tensor(kind);
        let tok = Tokenizer::parse(&bytes, n, bos).unwrap();
        let cases: Vec<Value> =
            serde_json::from_slice(&std::fs::read(dir().join(kind).join("chat.json")).unwrap())
                .unwrap();
        let template = tok.chat_template();
        assert_ne!(template, &ChatTemplate::None, "{kind}");
        for case in &cases {
            let prompt = case["prompt"].as_str().unwrap();
            let want_text = case["text"].as_str().unwrap();
            let want: Vec<u32> = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let rendered = template.render(prompt.as_bytes()).unwrap();
            // Llama 3's template starts with the BOS text; the core starts every
            // prompt with the BOS token instead.
            let (want_text, first) = match want_text.strip_prefix("<|begin_of_text|>") {
                Some(rest) => (rest, Some(bos)),
                None => (want_text, None),
            };
            assert_eq!(
                String::from_utf8_lossy(&rendered),
                want_text,
                "{kind} {prompt:?}"
            );
            assert_eq!(
                tok.encode(&rendered, first, None),
                want,
                "{kind} {prompt:?}"
            );
        }
    }
}
