//! Decode positions as dispute states (`oracle_core::commit::position`): running a request
//! one position at a time, restoring the decoder from each `P_t`'s preimages before
//! the next position, reproduces `generate` token for token and its output
//! commitment, for every bundled LLaMA-family model, greedy and seeded.

use std::collections::HashMap;

use oracle_core::commit::merkle::{keccak, model_root, Hash};
use oracle_core::commit::position::{output_hash, Decoder, PositionError, PositionState};
use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_tests::LLAMA_FIXTURES;

const SEEDED: SamplingParams = SamplingParams {
    temperature_q16: 52429,
    top_p_q16: 58982,
    seed: 11,
};

/// A preimage store keyed by keccak256, as the VM's oracle serves them.
fn store(preimages: Vec<Vec<u8>>) -> HashMap<Hash, Vec<u8>> {
    preimages.into_iter().map(|p| (keccak(&p), p)).collect()
}

/// Run `request` position by position, restoring from `P_t`'s preimages before
/// every step; return the chain `P_0..P_T` and the final tokens.
fn chain(model: &Model<'_>, root: &Hash, request: &Request<'_>) -> (Vec<Hash>, Vec<u32>) {
    let mut d = Decoder::start(&model.weights, &model.tokenizer, *root, request).unwrap();
    let mut hashes = vec![d.state().hash()];
    for _ in 0..d.steps() {
        let map = store(d.preimages());
        let mut restored = Decoder::restore(
            &model.weights,
            &model.tokenizer,
            root,
            hashes.last().unwrap(),
            |h| map.get(h).cloned(),
        )
        .unwrap();
        assert_eq!(restored.state(), d.state(), "restore at {}", d.pos());
        restored.step(Exec::SCALAR).unwrap();
        d.step(Exec::default()).unwrap();
        assert_eq!(
            restored.state(),
            d.state(),
            "step after restore at {}",
            d.pos()
        );
        hashes.push(d.state().hash());
    }
    (hashes, d.tokens().to_vec())
}

#[test]
fn position_chain_reproduces_generate_for_every_model() {
    let mut finals = Vec::new();
    for fixture in LLAMA_FIXTURES {
        let bytes = fixture.model_file(QType::Q8);
        let root = model_root(&bytes);
        let model = Model::load(&bytes).unwrap();
        for sampling in [SamplingParams::GREEDY, SEEDED] {
            let request = Request::text(b"Once upon a time", 48, sampling);
            let native = model.generate(Exec::default(), &request, |_| {}).unwrap();
            let (hashes, tokens) = chain(&model, &root, &request);
            assert_eq!(tokens, native.tokens, "{} {:?}", fixture.name, sampling);
            let mut text = native.text.clone();
            text.push(b'\n');
            assert_eq!(output_hash(&model.tokenizer, &tokens), keccak(&text));
            assert_eq!(hashes.len(), 49);
            // Every state differs until generation stops (pos is in the state).
            let distinct: std::collections::HashSet<_> = hashes.iter().collect();
            assert_eq!(distinct.len(), hashes.len());
            finals.push(format!(
                "{} {} {}",
                fixture.name,
                sampling.seed,
                oracle_core::commit::merkle::to_hex(hashes.last().unwrap())
            ));
        }
    }
    // Pinned from a run of this code: the final states P_48 (they commit to the
    // model root, so a change of the model file format re-pins them).
    assert_eq!(
        finals,
        [
            "stories260K 0 0x8db6beda0fa197aec8297ce0abfb4d0756524eab4f8de55c52c62e99bd1dc6c5",
            "stories260K 11 0x98b7ac89aa842b6020b2d9baed3f2d7bcee6896537d860aeccdcc47aee1787ad",
            "aidreams260K 0 0xe12a859a0f6b1de709bb093080424808b3529ad069873b2fe5a1c5e0d6e6dee4",
            "aidreams260K 11 0x9da5edf91544eafdd4411e944ef65994de8987b02929e638da3081ad0898d93e",
            "tiny-llama3 0 0xf984bf0399e7c3cab6abd7aa7ce908e92ceecbe7e2f05fd6ecd4dbf555843d73",
            "tiny-llama3 11 0xd5ff0a8db9a5a21d4781118b1937699bc196a0fb3addcd145526670933c649d9",
            "tiny-qwen2 0 0xbcaf894e70d6fa0db81dcd20e22cb15c9acc10c4457b067f9d05eeaffc264d98",
            "tiny-qwen2 11 0xa149660a0cd9573665e44b195199f24bd7f701e9e0a762f5c33bb9a967e6e08a",
            "tiny-llama3-bpe 0 0x68fdd517d3bb4a6809f07e09df75edc63e5b26cca4539bebf9c32f011263ee18",
            "tiny-llama3-bpe 11 0x6d11b5641637f207bc9dec33eeb705ffd2906159b0cbfc0388e16d8075abfb88",
            "tiny-qwen2-bpe 0 0x64a3983e280cad0badec69206a4fefdd14ce6ae2594cb9e890114f8bc2002c23",
            "tiny-qwen2-bpe 11 0x2e69d5e8d4b4a02a22d5493077e5d3f4ebe1f8381240c3f9c4a9f8826fa4feff",
        ]
    );
}

#[test]
fn a_stopped_generation_is_a_fixed_point() {
    // Seeded at a high temperature, stories260K samples BOS well before 400
    // positions; the states after it repeat.
    let bytes = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let root = model_root(&bytes);
    let model = Model::load(&bytes).unwrap();
    let request = Request::text(
        b"",
        400,
        SamplingParams {
            temperature_q16: 2 << 16,
            top_p_q16: 65536,
            seed: 3,
        },
    );
    let native = model.generate(Exec::default(), &request, |_| {}).unwrap();
    let mut d = Decoder::start(&model.weights, &model.tokenizer, root, &request).unwrap();
    while !d.done() {
        d.step(Exec::default()).unwrap();
    }
    let stopped_at = d.pos();
    assert!(stopped_at < 400, "no BOS sampled in 400 positions");
    assert_eq!(d.tokens(), native.tokens.as_slice());
    let at_stop = d.state();
    d.step(Exec::default()).unwrap();
    assert_eq!(d.state(), at_stop);
    // A restored done state steps to itself too.
    let map = store(d.preimages());
    let mut r = Decoder::restore(
        &model.weights,
        &model.tokenizer,
        &root,
        &at_stop.hash(),
        |h| map.get(h).cloned(),
    )
    .unwrap();
    r.step(Exec::SCALAR).unwrap();
    assert_eq!(r.state().hash(), at_stop.hash());
}

#[test]
fn restore_refuses_a_wrong_model_and_missing_or_bad_preimages() {
    let bytes = LLAMA_FIXTURES[1].model_file(QType::Q8);
    let root = model_root(&bytes);
    let model = Model::load(&bytes).unwrap();
    let request = Request::text(b"Hi", 8, SamplingParams::GREEDY);
    let mut d = Decoder::start(&model.weights, &model.tokenizer, root, &request).unwrap();
    for _ in 0..4 {
        d.step(Exec::default()).unwrap();
    }
    let hash = d.state().hash();
    let map = store(d.preimages());
    let other_root = [7u8; 32];
    assert_eq!(
        Decoder::restore(&model.weights, &model.tokenizer, &other_root, &hash, |h| {
            map.get(h).cloned()
        })
        .err(),
        Some(PositionError::WrongModel)
    );
    // Without a KV row.
    let row_key = map
        .iter()
        .find(|(_, v)| v.len() == 8 * model.weights.config.kv_dim() as usize)
        .map(|(k, _)| *k)
        .unwrap();
    let missing = Decoder::restore(&model.weights, &model.tokenizer, &root, &hash, |h| {
        (h != &row_key).then(|| map.get(h).cloned()).flatten()
    });
    assert_eq!(
        missing.err(),
        Some(PositionError::MissingPreimage("a KV row"))
    );
    // A state whose position runs past its tokens.
    let mut lying = d.state();
    lying.pos += 1;
    let enc = lying.encode().to_vec();
    let lying_hash = keccak(&enc);
    let mut map2 = map.clone();
    map2.insert(lying_hash, enc);
    assert!(matches!(
        Decoder::restore(&model.weights, &model.tokenizer, &root, &lying_hash, |h| {
            map2.get(h).cloned()
        }),
        Err(PositionError::BadState(_))
    ));
    // Decoding garbage never panics.
    assert!(PositionState::decode(&[0u8; 3]).is_err());
}
