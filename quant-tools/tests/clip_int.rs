//! The integer CLIP tokenizer and text encoder of `oracle_core::diffusion::clip` against the
//! float32 reference of `oracle_quant::diffusion::clip` (itself pinned against
//! transformers in `diffusion_tiny_sd.rs`), on tiny-sd's real weights.
//!
//! - tokenizer: the same ids as the reference for every prompt below;
//! - encoder, weights Q8 in groups of 32: max abs error and SNR of
//!   `last_hidden_state` against float32 for each prompt, with pinned thresholds;
//! - scalar, SIMD and two-thread runs give the same bits;
//! - a keccak256 of each prompt's integer output, pinned in
//!   `tests/golden/clip_int.txt` (re-pin with `ORACLE_BLESS=1 cargo test -p
//!   oracle-quant --test clip_int`, then review the diff).
#![allow(clippy::float_arithmetic)]

use std::fmt::Write;
use std::path::{Path, PathBuf};

use oracle_core::commit::merkle::{keccak, to_hex};
use oracle_core::diffusion::clip::ClipTokenizer as IntTokenizer;
use oracle_core::kernels::Simd;
use oracle_core::quant::QType;
use oracle_core::Exec;
use oracle_quant::diffusion::clip::{ClipTextModel, ClipTokenizer};
use oracle_quant::image_clip::{tokenizer_blob, QuantizedClip};

const PROMPTS: [&str; 6] = [
    "A photo of a  red cat, sitting! it's 42",
    "",
    "an astronaut riding a horse on the moon",
    "  Hello   WORLD!!  they'll we've I'm you'd 3.14159 ",
    "café naïve 東京 emoji 🙂 <|endoftext|> tab\tnew\nline",
    "a very long prompt that goes on and on with many words so that it has to be \
     truncated at seventy seven tokens because clip only has that many positions in \
     its table of embeddings and the tokenizer cuts the rest away before the end token \
     is appended to the sequence of ids for the text encoder to read",
];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-sd")
}

fn tokenizers() -> (ClipTokenizer, IntTokenizer) {
    let float = ClipTokenizer::load_dir(&fixture().join("tokenizer")).unwrap();
    let blob = tokenizer_blob(&float).unwrap();
    let int = IntTokenizer::parse(&blob).unwrap();
    (float, int)
}

#[test]
fn tokenizer_matches_the_reference() {
    let (float, int) = tokenizers();
    assert_eq!(int.vocab_len(), 962);
    for p in PROMPTS {
        assert_eq!(int.encode_raw(p), float.encode_raw(p), "{p:?}");
        assert_eq!(int.encode_padded(p), float.encode_padded(p), "{p:?}");
        assert_eq!(
            int.encode_padded_bytes(p.as_bytes()),
            float.encode_padded(p)
        );
    }
    // The ids transformers gives (pinned in diffusion_tiny_sd.rs).
    let ids = int.encode_padded(PROMPTS[0]);
    assert_eq!(
        ids[..16],
        [960, 320, 878, 855, 320, 891, 710, 267, 915, 256, 820, 6, 338, 275, 273, 961]
    );
    assert!(ids[16..].iter().all(|&i| i == 961));
    // The long prompt is truncated: bos, 75 ids, eos.
    let long = int.encode_padded(PROMPTS[5]);
    assert_eq!((long.len(), long[0], long[76]), (77, 960, 961));
    assert!(long[1..76].iter().all(|&i| i != 961));
}

#[test]
fn corrupt_tokenizer_blobs_are_errors() {
    let (float, _) = tokenizers();
    let blob = tokenizer_blob(&float).unwrap();
    for cut in [0, 7, 8, 20, blob.len() / 2, blob.len() - 1] {
        assert!(IntTokenizer::parse(&blob[..cut]).is_err(), "cut at {cut}");
    }
    let mut bad = blob.clone();
    bad[0] = b'X';
    assert!(IntTokenizer::parse(&bad).is_err());
    let mut extra = blob.clone();
    extra.push(0);
    assert!(IntTokenizer::parse(&extra).is_err());
    let mut bad_len = blob;
    bad_len[8..12].copy_from_slice(&1u32.to_le_bytes()); // max_len 1
    assert!(IntTokenizer::parse(&bad_len).is_err());
}

/// Max abs error and SNR (dB) of integer Q16 values against float ones.
fn compare(int: &[i32], float: &[f32]) -> (f64, f64) {
    let mut max = 0f64;
    let (mut sig, mut noise) = (0f64, 0f64);
    for (&i, &f) in int.iter().zip(float) {
        let e = f64::from(i) / 65536.0 - f64::from(f);
        max = max.max(e.abs());
        sig += f64::from(f) * f64::from(f);
        noise += e * e;
    }
    (max, 10.0 * (sig / noise).log10())
}

fn models() -> (ClipTextModel, QuantizedClip) {
    let float = ClipTextModel::load_dir(&fixture().join("text_encoder")).unwrap();
    let q = QuantizedClip::quantize(&float, QType::Q8, 32);
    (float, q)
}

#[test]
fn encoder_close_to_float_and_equal_across_kernels() {
    let (float, q) = models();
    let model = q.model();
    model.validate().unwrap();
    let (tok, _) = tokenizers();
    for p in PROMPTS {
        let ids = tok.encode_padded(p);
        let want = float.forward(&ids).unwrap();
        let got = model.forward(Exec::SCALAR, &ids).unwrap();
        assert_eq!(got.len(), 77 * 32);
        let (max, snr) = compare(&got, &want.data);
        println!("clip {p:.24?}: max abs error {max:.5}, SNR {snr:.2} dB");
        assert!(max < 0.06 && snr > 40.0, "{p:?}: max {max}, SNR {snr} dB");
        for exec in [
            Exec {
                simd: Simd::Best,
                threads: 1,
            },
            Exec {
                simd: Simd::Best,
                threads: 2,
            },
            Exec {
                simd: Simd::Off,
                threads: 2,
            },
        ] {
            assert_eq!(model.forward(exec, &ids).unwrap(), got, "{exec:?} {p:?}");
        }
    }
}

#[test]
fn encoder_rejects_bad_ids() {
    let (_, q) = models();
    let model = q.model();
    assert!(model.forward(Exec::SCALAR, &[]).is_err());
    assert!(model.forward(Exec::SCALAR, &[1000]).is_err());
    assert!(model.forward(Exec::SCALAR, &[0; 78]).is_err());
    // A prompt's bytes, tokenized and encoded in one call (the CFG branches).
    let (_, tok) = tokenizers();
    for p in ["", "a red cat"] {
        assert_eq!(
            model
                .encode_prompt(Exec::SCALAR, &tok, p.as_bytes())
                .unwrap(),
            model.forward(Exec::SCALAR, &tok.encode_padded(p)).unwrap()
        );
    }
    // Invalid UTF-8 is replaced, not rejected: a deterministic encoding.
    assert!(model
        .encode_prompt(Exec::SCALAR, &tok, b"\xff\xfe cat")
        .is_ok());
}

#[test]
fn golden_outputs_are_pinned() {
    let (_, q) = models();
    let model = q.model();
    let (_, tok) = tokenizers();
    let mut got = String::new();
    for (i, p) in PROMPTS.iter().enumerate() {
        let out = model
            .forward(Exec::default(), &tok.encode_padded(p))
            .unwrap();
        let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
        writeln!(got, "clip q8g32 prompt{i} {}", to_hex(&keccak(&bytes))).unwrap();
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/clip_int.txt");
    if std::env::var_os("ORACLE_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden file (ORACLE_BLESS=1 creates it)");
    assert_eq!(got, want);
}
