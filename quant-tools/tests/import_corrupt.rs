//! Truncated and corrupted checkpoints and tokenizers give errors, never panics.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use oracle_quant::checkpoint::{self, gguf, tokenizer, CheckpointError};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap()
}

/// Runs `f`, failing the test with `what` if it panics; returns whether it was Ok.
fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T, CheckpointError>) -> bool {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.is_ok(),
        Err(_) => panic!("panicked on {what}"),
    }
}

/// Truncation points: the first bytes one by one, then spread over the file.
fn cut_points(len: usize, header: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..header.min(len)).collect();
    v.extend((1..64).map(|i| len * i / 64));
    v.extend([len - 8, len - 4, len - 1]);
    v
}

/// A small xorshift for reproducible byte flips.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn truncated_llama2c_is_an_error() {
    for rel in [
        "stories260K/stories260K.bin",
        "aidreams260K/aidreams260K.bin",
    ] {
        let b = read(rel);
        for cut in cut_points(b.len(), 64) {
            let ok = no_panic(&format!("{rel} cut at {cut}"), || {
                checkpoint::parse_bytes(&b[..cut], None)
            });
            assert!(!ok, "{rel} truncated to {cut} bytes was accepted");
        }
        // One extra byte is not v0 either (the size check is exact).
        let mut longer = b.clone();
        longer.push(0);
        assert!(checkpoint::parse_bytes(&longer, None).is_err());
    }
}

#[test]
fn corrupted_llama2c_header_is_an_error() {
    let b = read("stories260K/stories260K.bin");
    for i in 0..28 {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut c = b.clone();
            c[i] ^= flip;
            let ok = no_panic(&format!("byte {i} ^ {flip:#x}"), || {
                checkpoint::parse_bytes(&c, None)
            });
            assert!(!ok, "header byte {i} ^ {flip:#x} accepted");
        }
    }
    // A negative vocab_size (separate classifier) without the classifier's bytes.
    let mut c = b.clone();
    c[20..24].copy_from_slice(&(-512i32).to_le_bytes());
    assert!(checkpoint::parse_bytes(&c, None).is_err());
    // Huge sizes overflow nothing.
    let mut c = b.clone();
    for i in 0..7 {
        c[i * 4..i * 4 + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    }
    assert!(checkpoint::parse_bytes(&c, None).is_err());
}

#[test]
fn truncated_or_corrupted_gguf_is_an_error() {
    for rel in [
        "stories260K-gguf/stories260K-f32.gguf",
        "gguf-vocab/ggml-vocab-llama-spm.gguf",
    ] {
        let b = read(rel);
        let is_model = rel.contains("stories");
        for cut in cut_points(b.len(), 128) {
            let t = &b[..cut];
            let ok = no_panic(&format!("{rel} cut at {cut}"), || {
                if is_model {
                    checkpoint::parse_bytes(t, None).map(|_| ())
                } else {
                    tokenizer::parse(t).map(|_| ())
                }
            });
            assert!(!ok, "{rel} truncated to {cut} bytes was accepted");
        }
        let f = gguf::GgufFile::parse(&b).unwrap();
        // Wrong magic, unsupported versions (1, 4, byte-swapped 3).
        let mut c = b.clone();
        c[0] = b'X';
        assert!(matches!(
            checkpoint::parse_bytes(&c, None),
            Err(CheckpointError::UnknownFormat(_))
        ));
        for v in [1u32, 4, 3u32.swap_bytes()] {
            let mut c = b.clone();
            c[4..8].copy_from_slice(&v.to_le_bytes());
            assert!(matches!(
                gguf::GgufFile::parse(&c),
                Err(CheckpointError::UnsupportedVersion { .. })
            ));
        }
        // Absurd counts.
        for at in [8, 16] {
            let mut c = b.clone();
            c[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
            assert!(gguf::GgufFile::parse(&c).is_err());
        }
        // Flipped bytes anywhere in the header (metadata and tensor infos): an error
        // or a model, never a panic.
        let header = f.data_offset as usize;
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..400 {
            let i = (rng(&mut s) % header as u64) as usize;
            let mut c = b.clone();
            c[i] ^= (rng(&mut s) % 255 + 1) as u8;
            no_panic(&format!("{rel} byte {i} flipped"), || {
                if is_model {
                    checkpoint::parse_bytes(&c, None).map(|_| ())
                } else {
                    tokenizer::parse(&c).map(|_| ())
                }
            });
        }
        // Every tensor info field corrupted in turn: dims, type, offset.
        if is_model {
            // Partial RoPE (rope.dimension_count below the head size) is refused.
            let key = b"llama.rope.dimension_count";
            let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len();
            assert_eq!(&b[at..at + 8], &[4, 0, 0, 0, 8, 0, 0, 0], "u32 8");
            let mut c = b.clone();
            c[at + 4] = 4;
            assert!(matches!(
                checkpoint::parse_bytes(&c, None),
                Err(CheckpointError::BadHeader(_))
            ));

            let mut c = b.clone();
            let first_info = f.infos_offset as usize;
            let name_len = f.tensors[0].name.len();
            let dims_at = first_info + 8 + name_len + 4;
            c[dims_at..dims_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
            assert!(checkpoint::parse_bytes(&c, None).is_err(), "huge dim");
            let mut c = b.clone();
            let type_at = dims_at + 16;
            c[type_at..type_at + 4].copy_from_slice(&99u32.to_le_bytes());
            assert!(matches!(
                checkpoint::parse_bytes(&c, None),
                Err(CheckpointError::UnsupportedType { .. })
            ));
            let mut c = b.clone();
            let offset_at = type_at + 4;
            c[offset_at..offset_at + 8].copy_from_slice(&(b.len() as u64).to_le_bytes());
            assert!(matches!(
                checkpoint::parse_bytes(&c, None),
                Err(CheckpointError::Truncated { .. })
            ));
        }
    }
}

#[test]
fn truncated_or_corrupted_safetensors_is_an_error() {
    let b = read("stories260K-hf/model.safetensors");
    let config = read("stories260K-hf/config.json");
    for cut in cut_points(b.len(), 64) {
        let ok = no_panic(&format!("cut at {cut}"), || {
            checkpoint::parse_bytes(&b[..cut], Some(&config))
        });
        assert!(!ok, "safetensors truncated to {cut} bytes was accepted");
    }
    let header = 8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let mut s = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..400 {
        let i = (rng(&mut s) % header as u64) as usize;
        let mut c = b.clone();
        c[i] ^= (rng(&mut s) % 255 + 1) as u8;
        no_panic(&format!("byte {i} flipped"), || {
            checkpoint::parse_bytes(&c, Some(&config))
        });
    }
    // Header length past the end of the file.
    let mut c = b.clone();
    c[..8].copy_from_slice(&(b.len() as u64).to_le_bytes());
    assert!(checkpoint::parse_bytes(&c, Some(&config)).is_err());
    // Bad or inconsistent config.json.
    for (bad, what) in [
        (&config[..config.len() / 2], "truncated json"),
        (&b"{}"[..], "empty object"),
        (&b"[1, 2]"[..], "not an object"),
    ] {
        let r = checkpoint::parse_bytes(&b, Some(bad));
        assert!(matches!(r, Err(CheckpointError::Config(_))), "{what}");
    }
    let text = String::from_utf8(config.clone()).unwrap();
    for (from, to) in [
        ("\"num_key_value_heads\": 4", "\"num_key_value_heads\": 3"),
        ("\"hidden_size\": 64", "\"hidden_size\": 128"),
        ("\"num_hidden_layers\": 5", "\"num_hidden_layers\": 6"),
        ("\"vocab_size\": 512", "\"vocab_size\": 500"),
        ("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""),
        ("\"model_type\": \"llama\"", "\"model_type\": \"mistral\""),
        (
            "\"model_type\": \"llama\"",
            "\"model_type\": \"llama\", \"head_dim\": 16",
        ),
        (
            "\"model_type\": \"llama\"",
            "\"model_type\": \"llama\", \"attention_bias\": true",
        ),
        (
            "\"model_type\": \"llama\"",
            "\"model_type\": \"llama\", \"rope_scaling\": {\"type\": \"linear\"}",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        let c = text.replace(from, to);
        assert!(
            checkpoint::parse_bytes(&b, Some(c.as_bytes())).is_err(),
            "{to}"
        );
    }
    // Consistent optional keys are accepted.
    let c = text.replace(
        "\"model_type\": \"llama\"",
        "\"model_type\": \"llama\", \"head_dim\": 8, \"rope_scaling\": null, \"mlp_bias\": false",
    );
    assert!(checkpoint::parse_bytes(&b, Some(c.as_bytes())).is_ok());
    // A missing config.json next to the file is an I/O error naming it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &b).unwrap();
    let err = checkpoint::load(dir.path(), None).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
}

#[test]
fn truncated_or_corrupted_tokenizer_bin_is_an_error() {
    for rel in ["stories260K/tok512.bin", "llama2-tokenizer/tokenizer.bin"] {
        let b = read(rel);
        let n = tokenizer::parse(&b).unwrap().pieces.len();
        for cut in cut_points(b.len(), 32) {
            let ok = no_panic(&format!("{rel} cut at {cut}"), || {
                tokenizer::parse(&b[..cut]).and_then(|t| {
                    if t.pieces.len() == n {
                        Ok(t)
                    } else {
                        Err(CheckpointError::Tokenizer("short".into()))
                    }
                })
            });
            assert!(!ok, "{rel} truncated to {cut} bytes was accepted");
        }
        // A length field past max_token_length or negative.
        for len in [-1i32, 1000, i32::MAX] {
            let mut c = b.clone();
            c[8..12].copy_from_slice(&len.to_le_bytes());
            assert!(tokenizer::parse(&c).is_err());
        }
        let mut c = b.clone();
        c[..4].copy_from_slice(&(-5i32).to_le_bytes());
        assert!(tokenizer::parse(&c).is_err());
    }
    // A truncated tokenizer file given to load() does not fit the model.
    let dir = tempfile::tempdir().unwrap();
    let b = read("stories260K/tok512.bin");
    let path = dir.path().join("tok.bin");
    std::fs::write(&path, &b[..b.len() - 20]).unwrap();
    assert!(
        checkpoint::load(&fixtures().join("stories260K/stories260K.bin"), Some(&path)).is_err()
    );
    assert!(matches!(
        checkpoint::load(&dir.path().join("missing.bin"), None),
        Err(CheckpointError::Io { .. })
    ));
}
