//! A GGUF file whose matrices are k-quants (llama.cpp's Q4_K_M mix: Q4_K, Q5_K,
//! Q6_K; `fixtures/models/kquant-random`, written by the `gguf` package from
//! `scripts/fixtures/kquant_model.py`) converts with `oracle-quant convert`, and
//! the integer model's greedy text equals the float reference's on the
//! dequantized weights.

use std::path::{Path, PathBuf};
use std::process::Command;

use oracle_core::llama::Model;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_quant::checkpoint::{self, gguf};
use oracle_quant::eval::evaluate;
use oracle_quant::reference::{decode, FloatLlama};

fn kquant_gguf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/models/kquant-random/kquant-random.gguf")
}

/// Greedy positions compared (the prompt's included).
const STEPS: u32 = 48;

const PROMPT: &str = "Once upon a time, there was a little";

#[test]
fn the_fixture_holds_the_q4_k_m_mix() {
    let bytes = std::fs::read(kquant_gguf()).unwrap();
    let file = gguf::GgufFile::parse(&bytes).unwrap();
    let kind = |name: &str| file.tensor(name).unwrap().kind;
    assert_eq!(kind("token_embd.weight"), gguf::GgmlType::Q6_K);
    assert_eq!(kind("output.weight"), gguf::GgmlType::Q6_K);
    assert_eq!(kind("blk.1.attn_q.weight"), gguf::GgmlType::Q4_K);
    assert_eq!(kind("blk.1.ffn_down.weight"), gguf::GgmlType::Q5_K);
    assert_eq!(kind("blk.1.ffn_norm.weight"), gguf::GgmlType::F32);
}

fn convert(quant: &str, out: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_oracle-quant"))
        .args(["convert", "--quant", quant, "--input"])
        .arg(kquant_gguf())
        .arg("--output")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_k_quant_gguf_converts_and_runs_the_reference_text() {
    let float = checkpoint::load(&kquant_gguf(), None).unwrap();
    assert_eq!((float.config.dim, float.config.hidden_dim), (256, 512));
    let tok = float.tokenizer.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for quant in ["q8", "q4"] {
        let path = dir.path().join(format!("{quant}.bin"));
        let report = convert(quant, &path);
        eprintln!("{quant}: {}", report.trim());
        assert!(report.contains("largest weight error"), "{report}");
        let bytes = std::fs::read(&path).unwrap();
        let model = Model::load(&bytes).unwrap();

        let prompt = model
            .tokenizer
            .encode(PROMPT.as_bytes(), Some(model.config.bos), None);
        let reference = FloatLlama::new(&float).generate_greedy(&prompt, STEPS as usize);
        let want = decode(tok, &reference);
        let request = Request::text(PROMPT.as_bytes(), STEPS, SamplingParams::GREEDY);
        let generation = model.generate(Exec::default(), &request, |_| {}).unwrap();
        eprintln!("{quant}: {:?}\nreference: {reference:?}", generation.tokens);
        let ours = generation.text;

        let eval = evaluate(&model, &float, &want, 1000).unwrap();
        eprintln!("{quant}: {}", eval.table());
        if quant == "q8" {
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&want),
                "W8: the integer greedy text is the float reference's"
            );
            assert!(eval.top1_agreement >= 0.98, "{}", eval.table());
            assert!(eval.ppl_rel_diff.abs() <= 0.02, "{}", eval.table());
        } else {
            // Q4_K's asymmetric sub-blocks re-quantized to symmetric 4-bit groups:
            // measured 78% agreement and +1.4% perplexity on this random model.
            assert!(eval.top1_agreement >= 0.7, "{}", eval.table());
            assert!(eval.ppl_rel_diff.abs() <= 0.05, "{}", eval.table());
        }
    }
}
