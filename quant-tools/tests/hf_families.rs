//! Llama 3 and Qwen2: tiny randomly initialised checkpoints written by
//! `transformers` (`fixtures/models/tiny-llama3`: RoPE theta 500000 with the
//! `llama3` scaling; `fixtures/models/tiny-qwen2`: q/k/v biases, theta 1e6; both
//! GQA with tied embeddings; from `scripts/fixtures/tiny_hf_models.py`) import; the
//! float reference's logits match transformers'; the W8 model follows the
//! reference (top-1 agreement and perplexity on tokens sampled from it).

use std::path::{Path, PathBuf};

use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_quant::checkpoint;
use oracle_quant::eval::evaluate_tokens;
use oracle_quant::export::{export, QuantOptions};
use oracle_quant::float_model::FloatModel;
use oracle_quant::reference::{FloatLlama, XorShiftRng, BOS};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models")
}

/// The two families' fixtures.
const FAMILIES: [&str; 2] = ["tiny-llama3", "tiny-qwen2"];

fn load(name: &str) -> FloatModel {
    checkpoint::load(
        &models().join(name),
        Some(&models().join("stories260K/tok512.bin")),
    )
    .unwrap()
}

fn tiny_llama3() -> FloatModel {
    load("tiny-llama3")
}

#[test]
fn qwen2_imports_its_qkv_biases() {
    let m = load("tiny-qwen2");
    assert_eq!(m.config.rope_theta, 1_000_000.0);
    assert!(m.config.rope_freq_factors.is_empty());
    for layer in &m.layers {
        let b = layer.qkv_bias.as_ref().expect("Qwen2 has q/k/v biases");
        assert!(b.q.iter().chain(&b.k).chain(&b.v).all(|x| *x != 0.0));
    }
    assert!(tiny_llama3().layers.iter().all(|l| l.qkv_bias.is_none()));
}

#[test]
fn the_llama3_rope_scaling_covers_its_three_bands() {
    let m = tiny_llama3();
    let c = &m.config;
    assert_eq!(c.rope_theta, 500_000.0);
    assert_eq!(c.rope_freq_factors.len(), c.head_size() / 2);
    let f = &c.rope_freq_factors;
    assert_eq!(f[0], 1.0, "short wavelengths are kept");
    assert_eq!(*f.last().unwrap(), 8.0, "long ones slowed by the factor");
    assert!(
        f.iter().any(|&x| x > 1.0 && x < 8.0),
        "the band between is interpolated: {f:?}"
    );
    assert!(m.wcls.is_none(), "tied embeddings");
    assert_eq!((c.n_heads, c.n_kv_heads), (4, 2));
}

#[test]
fn float_logits_match_transformers() {
    for name in FAMILIES {
        float_logits_match(name);
    }
}

fn float_logits_match(name: &str) {
    let m = load(name);
    let text = std::fs::read_to_string(models().join(name).join("reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<u32> = reference["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let logits = reference["logits"].as_array().unwrap();
    let mut llama = FloatLlama::new(&m);
    let mut worst = 0f32;
    for (pos, (&id, want)) in ids.iter().zip(logits).enumerate() {
        let ours = llama.forward(id, pos);
        let want: Vec<f32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (a, b) in ours.iter().zip(&want) {
            worst = worst.max((a - b).abs() / scale);
        }
    }
    eprintln!("{name}: largest logit difference vs transformers: {worst:.2e} of the largest logit");
    assert!(worst < 1e-4, "{name}: {worst}");
}

#[test]
fn w8_follows_the_reference_on_sampled_text() {
    for name in FAMILIES {
        w8_follows(name);
    }
}

fn w8_follows(name: &str) {
    let m = load(name);
    let out = export(&m, QuantOptions::for_type(QType::Q8), |_, _| {}).unwrap();
    let model = Model::load(&out.bytes).unwrap();
    // run.c's sampler at temperature 1, eight sequences of 64 positions, each
    // from BOS and a different first token
    let samples: Vec<Vec<u32>> = (1..=8u32)
        .map(|seed| {
            let mut rng = XorShiftRng::new(u64::from(seed));
            FloatLlama::new(&m).generate_sampled(&[BOS, 100 + seed], 64, 1.0, &mut rng)
        })
        .collect();
    let eval = evaluate_tokens(&model, &m, &samples, 10_000).unwrap();
    let table = format!("{name}\n{}", eval.table());
    eprintln!("{table}");
    assert!(eval.tokens > 200, "{table}");
    assert!(eval.top1_agreement >= 0.98, "{table}");
    assert!(eval.ppl_rel_diff.abs() <= 0.02, "{table}");
}
