//! Seeded property tests over bytes for the importers' parsers: GGUF, the
//! safetensors header (with `config.json`), llama2.c headers, and the `.pth`
//! pickle machine and zip. Arbitrary bytes, edge values in header fields and
//! mutations of the bundled checkpoints never panic, and (where the input is
//! what is decoded) allocate at most a small multiple of the input. A few
//! hundred cases each, fixed seeds.

use std::sync::OnceLock;

use oracle_quant::checkpoint::{self, gguf, hf};
use oracle_quant::diffusion::pickle::{Pickle, BUILD_FACTOR, BUILD_SLACK};
use oracle_quant::diffusion::pth::parse_state_dict;
use oracle_tests::counting_alloc::{alloc_peak, CountingAlloc};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn config(seed: u64, cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A bundled checkpoint, read once.
fn fixture(rel: &str) -> &'static [u8] {
    static GGUF: OnceLock<Vec<u8>> = OnceLock::new();
    static PTH: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = if rel.ends_with(".pth") { &PTH } else { &GGUF };
    cell.get_or_init(|| {
        std::fs::read(oracle_tests::fixtures().join("models").join(rel)).expect(rel)
    })
}

/// What parsing may allocate for `len` bytes (the float weights are 4 bytes per
/// input byte at most for f32/f16 data, Q8_0 at most 4 x 32 / 34).
fn bound(len: usize) -> usize {
    8 * len + (16 << 20)
}

fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (0u64..4096),
        (0u64..64).prop_map(|d| u64::MAX - d),
        (0u64..64).prop_map(|d| u64::from(u32::MAX) - d),
        (0u32..64).prop_map(|s| 1u64 << s),
    ]
}

proptest! {
    #![proptest_config(config(0x6617_0001, 200))]

    #[test]
    fn gguf_never_panics(
        fields in proptest::collection::vec((any::<prop::sample::Index>(), edgy_u64()), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let base = fixture("stories260K-gguf/stories260K-f32.gguf");
        let header = gguf::GgufFile::parse(base).expect("fixture").data_offset as usize;
        let mut b = base.to_vec();
        for (at, v) in fields {
            let i = at.index(header - 8);
            b[i..i + 8].copy_from_slice(&v.to_le_bytes());
        }
        let keep = if cut.index(4) == 0 { cut.index(b.len()) } else { b.len() };
        let b = &b[..keep];
        let (_, peak) = alloc_peak(|| checkpoint::parse_bytes(b, None).map(|_| ()));
        prop_assert!(peak <= bound(b.len()), "{} bytes", peak);
    }

    #[test]
    fn arbitrary_gguf_bytes_never_panic(mut b in proptest::collection::vec(any::<u8>(), 24..1024)) {
        b[..4].copy_from_slice(b"GGUF");
        b[4..8].copy_from_slice(&3u32.to_le_bytes());
        let (_, peak) = alloc_peak(|| gguf::GgufFile::parse(&b).map(|_| ()));
        prop_assert!(peak <= bound(b.len()));
    }
}

const HF_CONFIG: &[u8] = br#"{"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
"num_attention_heads": 2, "vocab_size": 512, "max_position_embeddings": 8, "model_type": "llama"}"#;

proptest! {
    #![proptest_config(config(0x6617_0002, 300))]

    #[test]
    fn safetensors_headers_never_panic(
        dtype in prop::sample::select(vec!["F32", "F16", "BF16", "I64", "U8", "bogus"]),
        shape in proptest::collection::vec(edgy_u64(), 0..4),
        start in edgy_u64(),
        end in edgy_u64(),
        data_len in 0usize..256,
        name in prop::sample::select(vec!["model.norm.weight", "a", ""]),
    ) {
        let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
        let header = format!(
            r#"{{"{name}":{{"dtype":"{dtype}","shape":[{}],"data_offsets":[{start},{end}]}}}}"#,
            dims.join(",")
        );
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.resize(b.len() + data_len, 0);
        let (_, peak) = alloc_peak(|| hf::parse(&b, HF_CONFIG).map(|_| ()));
        prop_assert!(peak <= bound(b.len()));
    }

    #[test]
    fn arbitrary_safetensors_bytes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        len in edgy_u64(),
    ) {
        let mut b = len.to_le_bytes().to_vec();
        b.push(b'{');
        b.extend_from_slice(&body);
        let _ = hf::parse(&b, HF_CONFIG);
        let _ = checkpoint::parse_bytes(&b, Some(HF_CONFIG));
    }

    #[test]
    fn llama2c_headers_never_panic(
        header in proptest::collection::vec(
            prop_oneof![any::<i32>(), -4i32..64, Just(i32::MAX), Just(i32::MIN)], 7),
        version in prop_oneof![Just(None), Just(Some(1i32)), Just(Some(2)), any::<i32>().prop_map(Some)],
        payload in 0usize..4096,
    ) {
        let mut b = Vec::new();
        if let Some(v) = version {
            b.extend_from_slice(&0x616b_3432u32.to_le_bytes());
            b.extend_from_slice(&v.to_le_bytes());
        }
        for x in &header {
            b.extend_from_slice(&x.to_le_bytes());
        }
        if version.is_some() {
            b.push(1);
            b.extend_from_slice(&32i32.to_le_bytes());
            b.resize(256, 0);
        }
        b.resize(b.len() + payload, 0);
        let (_, peak) = alloc_peak(|| checkpoint::parse_bytes(&b, None).map(|_| ()));
        prop_assert!(peak <= bound(b.len()));
    }
}

/// One pickle opcode with arguments, from the subset the machine runs (and a
/// few it refuses).
fn opcode() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            b"(".to_vec(),
            b")".to_vec(),
            b"]".to_vec(),
            b"}".to_vec(),
            b"N".to_vec(),
            vec![0x88],
            vec![0x89],
            b"t".to_vec(),
            vec![0x85],
            vec![0x86],
            vec![0x87],
            b"a".to_vec(),
            b"e".to_vec(),
            b"s".to_vec(),
            b"u".to_vec(),
            b"Q".to_vec(),
            b"R".to_vec(),
            vec![0x81],
            b"b".to_vec(),
            vec![0x94],
            vec![0x93],
            b".".to_vec(),
            b"ccollections\nOrderedDict\n".to_vec(),
            b"ctorch._utils\n_rebuild_tensor_v2\n".to_vec(),
            b"ctorch\nFloatStorage\n".to_vec(),
            b"X\x07\x00\x00\x00storage".to_vec(),
            b"X\x03\x00\x00\x00cpu".to_vec(),
            b"I1\n".to_vec(),
        ]),
        any::<u8>().prop_map(|k| vec![b'K', k]),
        any::<u8>().prop_map(|k| vec![b'h', k % 8]),
        any::<u8>().prop_map(|k| vec![b'q', k % 8]),
        any::<u32>().prop_map(|k| {
            let mut v = vec![b'r'];
            v.extend_from_slice(&k.to_le_bytes());
            v
        }),
        any::<u32>().prop_map(|k| {
            let mut v = vec![b'J'];
            v.extend_from_slice(&k.to_le_bytes());
            v
        }),
        any::<u64>().prop_map(|n| {
            let mut v = vec![0x8d];
            v.extend_from_slice(&n.to_le_bytes());
            v
        }),
        (0u8..10, any::<u64>()).prop_map(|(n, x)| {
            let mut v = vec![0x8a, n];
            v.extend_from_slice(&x.to_le_bytes()[..usize::from(n).min(8)]);
            v
        }),
    ]
}

proptest! {
    #![proptest_config(config(0x6617_0003, 300))]

    #[test]
    fn pickles_never_panic_and_build_within_their_budget(
        ops in proptest::collection::vec(opcode(), 0..400),
        proto in any::<bool>(),
    ) {
        let mut p = if proto { b"\x80\x02".to_vec() } else { Vec::new() };
        for op in ops {
            p.extend(op);
        }
        let (_, peak) = alloc_peak(|| Pickle::load(&p).map(|_| ()));
        let limit = (BUILD_FACTOR * p.len() as u64 + BUILD_SLACK) as usize + (64 << 10);
        prop_assert!(peak <= limit, "{} bytes for a {}-byte pickle", peak, p.len());
    }

    #[test]
    fn pth_zips_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        tail in any::<bool>(),
    ) {
        let base = fixture("ddpm-mnist/ddpm_mnist.pth");
        let mut b = base.to_vec();
        // The pickle (near the start) or the zip's central directory (the end).
        let span = 4096.min(b.len());
        for (at, v) in flips {
            let i = at.index(span);
            let i = if tail { b.len() - 1 - i } else { i };
            b[i] = v;
        }
        let _ = parse_state_dict(&b);
    }
}
