//! Bad input gives typed errors or documented behaviour, never a panic.

use oracle_core::commit::merkle::model_root;
use oracle_core::error::{FormatError, RequestError};
use oracle_core::format::{ModelFile, VERSION};
use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_tests::LLAMA_FIXTURES;
use proptest::prelude::*;
use std::sync::OnceLock;

fn model_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| LLAMA_FIXTURES[1].model_file(QType::Q8))
}

fn greedy(prompt: &[u8], steps: u32) -> Request<'_> {
    Request::text(prompt, steps, SamplingParams::GREEDY)
}

#[test]
fn truncated_files_are_rejected() {
    let bytes = model_bytes();
    for cut in [0, 7, 63, 64, 200, bytes.len() / 2, bytes.len() - 1] {
        let err = Model::load(&bytes[..cut]).expect_err("truncated file must not load");
        assert!(
            matches!(
                err,
                FormatError::TooShort(_) | FormatError::LengthMismatch { .. }
            ),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn wrong_magic_and_version_are_rejected() {
    let mut bytes = model_bytes().to_vec();
    bytes[0] = b'X';
    assert_eq!(ModelFile::parse(&bytes).unwrap_err(), FormatError::BadMagic);
    let mut bytes = model_bytes().to_vec();
    bytes[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    assert_eq!(
        ModelFile::parse(&bytes).unwrap_err(),
        FormatError::UnsupportedVersion(VERSION + 1, VERSION)
    );
}

#[test]
fn a_flipped_byte_fails_the_root_check() {
    let bytes = model_bytes();
    let root = model_root(bytes);
    assert!(Model::load_verified(bytes, &root).is_ok());
    let mut flipped = bytes.to_vec();
    let at = flipped.len() - 100; // inside the last tensor's data: still parses
    flipped[at] ^= 0x01;
    assert!(
        Model::load(&flipped).is_ok(),
        "a weight byte flip alone is not a format error"
    );
    assert!(matches!(
        Model::load_verified(&flipped, &root),
        Err(FormatError::RootMismatch { .. })
    ));
}

#[test]
fn prompt_longer_than_context_is_an_error() {
    let model = Model::load(model_bytes()).unwrap();
    let seq_len = model.weights.config.seq_len as usize;
    let prompt = "the cat sat on the mat and ".repeat(seq_len / 4);
    let max_bytes = (seq_len - 1) * model.tokenizer.max_piece_len();
    assert!(prompt.len() <= max_bytes, "tokenized, not refused by size");
    let err = model
        .generate(Exec::default(), &greedy(prompt.as_bytes(), 8), |_| {})
        .unwrap_err();
    assert!(
        matches!(err, RequestError::PromptTooLong { seq_len: s, .. } if s == seq_len),
        "{err:?}"
    );
}

/// A prompt that no tokenization could fit is refused by its size alone, before
/// tokenizing (which would cost time proportional to it).
#[test]
fn prompt_too_large_for_any_tokenization_is_refused_before_tokenizing() {
    let model = Model::load(model_bytes()).unwrap();
    let seq_len = model.weights.config.seq_len;
    let max_bytes = (seq_len as usize - 1) * model.tokenizer.max_piece_len();
    let fits = vec![b'a'; max_bytes];
    let err = model
        .generate(Exec::default(), &greedy(&fits, 8), |_| {})
        .unwrap_err();
    assert!(matches!(err, RequestError::PromptTooLong { .. }), "{err:?}");
    let over = vec![b'a'; max_bytes + 1];
    let err = model
        .generate(Exec::default(), &greedy(&over, 8), |_| {})
        .unwrap_err();
    assert_eq!(
        err,
        RequestError::PromptTooLarge {
            bytes: max_bytes as u64 + 1,
            max_bytes: max_bytes as u64,
            seq_len
        }
    );
}

#[test]
fn non_utf8_prompt_goes_through_byte_fallback() {
    let model = Model::load(model_bytes()).unwrap();
    let prompt = [b'H', b'i', 0xFF, 0xC3, b' ', 0x80];
    let g = model
        .generate(Exec::default(), &greedy(&prompt, 16), |_| {})
        .unwrap();
    // 0xFF is never part of a piece: it must appear as its byte token (0xFF + 3).
    assert!(
        g.tokens[..g.prompt_tokens].contains(&(0xFF + 3)),
        "{:?}",
        g.tokens
    );
    let again = model
        .generate(Exec::default(), &greedy(&prompt, 16), |_| {})
        .unwrap();
    assert_eq!(g, again);
}

#[test]
fn steps_beyond_the_context_are_clamped() {
    let model = Model::load(model_bytes()).unwrap();
    let seq_len = model.weights.config.seq_len as usize;
    let g = model
        .generate(
            Exec::default(),
            &greedy(b"Once upon a time", 1_000_000),
            |_| {},
        )
        .unwrap();
    assert!(g.tokens.len() <= seq_len + 1, "{} tokens", g.tokens.len());
    assert_eq!(
        model
            .generate(Exec::default(), &greedy(b"x", 0), |_| {})
            .unwrap_err(),
        RequestError::ZeroSteps
    );
}

#[test]
fn out_of_range_sampling_is_an_error() {
    let model = Model::load(model_bytes()).unwrap();
    let request = Request::text(
        b"a",
        4,
        SamplingParams {
            temperature_q16: 65536,
            top_p_q16: 65537,
            seed: 1,
        },
    );
    assert!(matches!(
        model.generate(Exec::default(), &request, |_| {}),
        Err(RequestError::BadSampling(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = Model::load(&bytes);
    }

    #[test]
    fn arbitrary_header_bytes_never_panic(mut header in proptest::collection::vec(any::<u8>(), 64..200)) {
        header[..8].copy_from_slice(b"ORCLMDL\0");
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let _ = Model::load(&header);
    }

    #[test]
    fn mutated_model_files_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        header_only in any::<bool>(),
    ) {
        let mut bytes = model_bytes().to_vec();
        let span = if header_only { 11_000.min(bytes.len()) } else { bytes.len() };
        for (at, value) in flips {
            let i = at.index(span);
            bytes[i] = value;
        }
        if let Ok(model) = Model::load(&bytes) {
            let _ = model.generate(Exec::default(), &greedy(b"Hi", 3), |_| {});
        }
    }
}
