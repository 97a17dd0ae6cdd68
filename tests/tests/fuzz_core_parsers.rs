//! Seeded property tests over bytes for the core's parsers: the model file of a
//! text model (`Model::load`) and of an image model (`ModelFile::parse` and
//! binding), and the tokenizer tensor (`Tokenizer::parse`, then encoding). Arbitrary
//! bytes, arbitrary header fields (offsets, counts, config words near 2^32 and
//! 2^64) and mutations of valid files never panic, and a parse allocates at most
//! a small multiple of its input. A few hundred cases each, fixed seeds.

use oracle_core::footprint::check;
use oracle_core::format::VERSION;
use oracle_core::llama::{Model, Tokenizer};
use oracle_tests::counting_alloc::{alloc_peak, CountingAlloc};
use oracle_tests::hostile::{small_unet, tiny_config, tiny_model};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// What loading may allocate for `len` input bytes.
fn bound(len: usize) -> usize {
    4 * len + (1 << 20)
}

fn config(seed: u64) -> Config {
    Config {
        cases: 300,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Values near the edges of `u32`/`u64` and small ones, for header fields.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (0u64..4096),
        (0u64..64).prop_map(|d| u64::MAX - d),
        (0u64..64).prop_map(|d| u64::from(u32::MAX) - d),
        (0u32..64).prop_map(|s| 1u64 << s),
    ]
}

fn load_text(bytes: &[u8]) {
    let (r, peak) = alloc_peak(|| Model::load(bytes).map(|m| m.footprint()));
    assert!(
        peak <= bound(bytes.len()),
        "{peak} bytes for {}",
        bytes.len()
    );
    let _ = r;
    let _ = check(bytes, 1 << 30);
}

fn load_image(bytes: &[u8]) {
    let (r, peak) =
        alloc_peak(|| oracle_core::AnyModel::load_with_footprint(bytes).map(|(_, fp)| fp));
    assert!(
        peak <= bound(bytes.len()),
        "{peak} bytes for {}",
        bytes.len()
    );
    let _ = r;
}

proptest! {
    #![proptest_config(config(0x5eed_0001))]

    #[test]
    fn text_model_files_never_panic(
        fields in proptest::collection::vec((0usize..48, edgy_u64()), 1..6),
        words in proptest::collection::vec((0usize..11, edgy_u64()), 0..4),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let mut b = tiny_model(tiny_config());
        for (at, v) in fields {
            // Header fields: 4- or 8-byte aligned little-endian values.
            let at = (at & !3).min(40);
            let n = if at >= 24 { 8 } else { 4 };
            b[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
        for (i, v) in words {
            b[64 + 4 * i..68 + 4 * i].copy_from_slice(&(v as u32).to_le_bytes());
        }
        for (at, v) in flips {
            let i = at.index(b.len());
            b[i] = v;
        }
        load_text(&b);
    }

    #[test]
    fn arbitrary_text_model_bytes_never_panic(
        mut b in proptest::collection::vec(any::<u8>(), 64..2048),
    ) {
        b[..8].copy_from_slice(b"ORCLMDL\0");
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&1u32.to_le_bytes());
        let len = b.len() as u64;
        b[40..48].copy_from_slice(&len.to_le_bytes());
        load_text(&b);
    }
}

proptest! {
    #![proptest_config(config(0x5eed_0002))]

    #[test]
    fn image_model_files_never_panic(
        sample in edgy_u64(),
        fields in proptest::collection::vec((0usize..48, edgy_u64()), 0..5),
        words in proptest::collection::vec((0usize..23, edgy_u64()), 0..5),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let mut b = small_unet(sample as u32);
        for (at, v) in fields {
            let at = (at & !3).max(12);
            let n = if at >= 24 { 8 } else { 4 };
            b[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
        for (i, v) in words {
            b[64 + 4 * i..68 + 4 * i].copy_from_slice(&(v as u32).to_le_bytes());
        }
        for (at, v) in flips {
            let i = at.index(b.len());
            b[i] = v;
        }
        load_image(&b);
    }

    #[test]
    fn arbitrary_image_model_bytes_never_panic(
        mut b in proptest::collection::vec(any::<u8>(), 64..2048),
    ) {
        b[..8].copy_from_slice(b"ORCLMDL\0");
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let len = b.len() as u64;
        b[40..48].copy_from_slice(&len.to_le_bytes());
        load_image(&b);
    }
}

proptest! {
    #![proptest_config(config(0x5eed_0003))]

    #[test]
    fn tokenizer_sections_never_panic(
        section in proptest::collection::vec(any::<u8>(), 0..512),
        count in prop_oneof![0u32..16, any::<u32>()],
        max_len in prop_oneof![0u32..8, any::<u32>()],
        vocab in prop_oneof![0u32..16, Just(1u32 << 20)],
        text in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut s = count.to_le_bytes().to_vec();
        s.extend_from_slice(&max_len.to_le_bytes());
        s.extend_from_slice(&section);
        let (r, peak) = alloc_peak(|| Tokenizer::parse(&s, vocab, 1).map(|t| t.vocab_size()));
        prop_assert!(peak <= bound(s.len()), "{} bytes for {}", peak, s.len());
        if r.is_ok() {
            let t = Tokenizer::parse(&s, vocab, 1).expect("parses twice");
            let ids = t.encode(&text, Some(1), Some(2));
            for w in ids.windows(2) {
                let _ = t.decode(w[0], w[1]);
            }
        }
    }
}

/// A valid byte-level BPE tokenizer tensor (the Llama 3 fixture vocabulary).
fn bpe_section() -> (Vec<u8>, u32) {
    let dir = oracle_tests::fixtures().join("tokenizers/llama3");
    let tok = oracle_quant::checkpoint::byte_bpe::load_hf(&dir).expect("imports");
    let bytes = oracle_quant::export::tokenizer_bytes(&tok).expect("exports");
    (bytes, tok.pieces.len() as u32)
}

proptest! {
    #![proptest_config(config(0x5eed_0004))]

    #[test]
    fn mutated_bpe_sections_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        text in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'<'), Just(b'|'), Just(b' '), Just(b'\n')],
            0..64,
        ),
    ) {
        let (mut s, vocab) = bpe_section();
        for (at, byte) in flips {
            let i = at.index(s.len());
            s[i] = byte;
        }
        if truncate {
            s.truncate(cut.index(s.len()));
        }
        let (r, peak) = alloc_peak(|| Tokenizer::parse(&s, vocab, 0).map(|t| t.vocab_size()));
        prop_assert!(peak <= bound(s.len()), "{} bytes for {}", peak, s.len());
        if r.is_ok() {
            let t = Tokenizer::parse(&s, vocab, 0).expect("parses twice");
            let mut text = text;
            text.extend_from_slice(b"<|eot_id|>x");
            let ids = t.encode(&text, Some(0), None);
            prop_assert!(ids.iter().all(|&id| id < vocab));
            for w in ids.windows(2) {
                let _ = t.decode(w[0], w[1]);
            }
        }
    }
}
