//! Golden outputs of the integer LLaMA core, pinned in `tests/golden/llama.txt`.
//!
//! For every bundled LLaMA-family model (the two llama2.c models, the tiny Llama 3
//! and Qwen2 of `oracle_tests::LLAMA_FIXTURES`, with llama2.c's and with byte-level
//! BPE vocabularies), W8 and W4, three prompts, greedy
//! and seeded sampling:
//! the model root of the converted file, the token ids and a keccak256 of every
//! logits vector. Each case runs with the scalar kernels, every SIMD family the CPU
//! has (AVX2, AVX-512 VNNI; NEON) and two threads, which must agree exactly. The same test runs on aarch64 under qemu-user
//! (see `.ci/run`), so equal pins there prove cross-target bit-exactness.
//!
//! To re-pin after an intended change: `ORACLE_BLESS=1 cargo test -p oracle-tests
//! --test golden_llama`, then review the diff.

use std::fmt::Write;

use oracle_core::commit::merkle::{model_root, to_hex};
use oracle_core::fixed::parse_q16;
use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_core::{Request, SamplingParams};
use oracle_tests::golden::{assert_golden, text_execs};
use oracle_tests::LLAMA_FIXTURES;

const PROMPTS: [&str; 3] = ["", "Once upon a time", "Tom and his dog"];
const STEPS: u32 = 40;

fn seeded() -> SamplingParams {
    SamplingParams {
        temperature_q16: parse_q16("0.8").expect("decimal"),
        top_p_q16: parse_q16("0.9").expect("decimal"),
        seed: 42,
    }
}

fn golden_text() -> String {
    let execs = text_execs();
    let mut out = String::new();
    for fixture in LLAMA_FIXTURES {
        for qtype in [QType::Q8, QType::Q4] {
            let bytes = fixture.model_file(qtype);
            let model = Model::load(&bytes).expect("fixture loads");
            writeln!(
                out,
                "root {} {} {}",
                fixture.name,
                qtype.name(),
                to_hex(&model_root(&bytes))
            )
            .unwrap();
            for (p, prompt) in PROMPTS.iter().enumerate() {
                for (label, sampling) in [("greedy", SamplingParams::GREEDY), ("seed42", seeded())]
                {
                    let request = Request::text(prompt.as_bytes(), STEPS, sampling);
                    let runs: Vec<_> = execs
                        .iter()
                        .map(|&exec| {
                            let run = model.generate(exec, &request, |_| {}).expect("generation");
                            (exec, run)
                        })
                        .collect();
                    for (exec, run) in &runs[1..] {
                        assert_eq!(
                            &runs[0].1,
                            run,
                            "{} x{} differs from scalar: {} {} {p} {label}",
                            exec.kernel_name(),
                            exec.threads,
                            fixture.name,
                            qtype.name()
                        );
                    }
                    let g = &runs[0].1;
                    let tokens: Vec<String> = g.tokens.iter().map(u32::to_string).collect();
                    writeln!(
                        out,
                        "run {} {} prompt{p} {label} {} tokens={}",
                        fixture.name,
                        qtype.name(),
                        to_hex(&g.logits_hash),
                        tokens.join(",")
                    )
                    .unwrap();
                }
            }
        }
    }
    out
}

#[test]
fn golden_outputs_are_pinned_and_equal_across_kernels() {
    // Models x 2 types x (1 root + 3 prompts x 2 samplings).
    assert_golden("llama.txt", &golden_text(), LLAMA_FIXTURES.len() * 2 * 7);
}
