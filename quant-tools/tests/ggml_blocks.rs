//! ggml's Q5_0/Q5_1, k-quant and IQ4 blocks decode bit for bit as the `gguf`
//! package's dequantizers do, on random blocks of every type
//! (`fixtures/ggml-blocks/reference.bin`, written by
//! `scripts/fixtures/ggml_blocks.py`); Q8_K, which that package does not decode,
//! is checked on a block built by hand.

use std::path::Path;

use oracle_quant::checkpoint::gguf::{dequantize, GgmlType};

/// One type's reference: its blocks and the values the `gguf` package gave.
struct Reference {
    kind: GgmlType,
    blocks: Vec<u8>,
    values: Vec<f32>,
}

fn references() -> Vec<Reference> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/ggml-blocks/reference.bin");
    let bytes = std::fs::read(&path).expect("the ggml block reference fixture");
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (id, count, block_bytes, per_block) =
            (word(at), word(at + 4), word(at + 8), word(at + 12));
        at += 16;
        let kind = GgmlType::from_id(id as u32);
        assert_eq!(
            kind.block(),
            Some((per_block as u64, block_bytes as u64)),
            "{kind:?}: block size as ggml's"
        );
        let blocks = bytes[at..at + count * block_bytes].to_vec();
        at += count * block_bytes;
        let values = bytes[at..at + 4 * count * per_block]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        at += 4 * count * per_block;
        out.push(Reference {
            kind,
            blocks,
            values,
        });
    }
    out
}

#[test]
fn every_block_type_decodes_as_the_gguf_package_does() {
    let refs = references();
    let kinds: Vec<GgmlType> = refs.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q2_K,
            GgmlType::Q3_K,
            GgmlType::Q4_K,
            GgmlType::Q5_K,
            GgmlType::Q6_K,
            GgmlType::IQ4_NL,
            GgmlType::IQ4_XS,
        ]
    );
    for r in &refs {
        let ours = dequantize(r.kind, &r.blocks).expect("a decoded type");
        assert_eq!(ours.len(), r.values.len(), "{:?}", r.kind);
        let distinct: std::collections::BTreeSet<u32> = ours.iter().map(|v| v.to_bits()).collect();
        assert!(
            distinct.len() > 16,
            "{:?}: random blocks give varied values",
            r.kind
        );
        for (i, (a, b)) in ours.iter().zip(&r.values).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{:?} element {i}: {a} vs gguf {b}",
                r.kind
            );
        }
    }
}

#[test]
fn q8_k_is_d_times_q() {
    let mut block = 0.25f32.to_le_bytes().to_vec();
    block.extend((0..256i32).map(|i| (i - 128) as i8 as u8));
    block.extend([0u8; 32]);
    let v = dequantize(GgmlType::Q8_K, &block).unwrap();
    let want: Vec<f32> = (0..256).map(|i| (i as f32 - 128.0) * 0.25).collect();
    assert_eq!(v, want);
}

#[test]
fn a_partial_block_decodes_nothing_past_the_whole_ones() {
    for r in references() {
        let (_, block_bytes) = r.kind.block().unwrap();
        let cut = &r.blocks[..r.blocks.len() - 1];
        let v = dequantize(r.kind, cut).unwrap();
        let whole = (r.blocks.len() / block_bytes as usize - 1)
            * (r.values.len() / (r.blocks.len() / block_bytes as usize));
        assert_eq!(v.len(), whole, "{:?}", r.kind);
    }
}
