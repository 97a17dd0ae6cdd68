//! The core built for `wasm32-unknown-unknown` (`hosts/wasm`) gives the native bytes:
//! every case of the LLaMA goldens (each bundled LLaMA-family model, W8 and W4,
//! three prompts, greedy and seeded) and a few ddpm-mnist images run through the
//! module under Node.js (`hosts/wasm/run.mjs`) and through
//! `oracle_core::model::outcome::run` natively, which `golden_llama` and
//! `golden_diffusion` pin; kind, posted bytes, commitment and logits hash must be
//! equal. So a page re-running a request in the browser computes what x86, ARM
//! and the VM compute.

use oracle_core::commit::merkle::to_hex;
use oracle_core::fixed::parse_q16;
use oracle_core::model::outcome::{run, Outcome};
use oracle_core::quant::QType;
use oracle_core::{Exec, ImageParams, Request, SamplingParams};
use oracle_tests::{ddpm_mnist_model_file, wasm_module, LLAMA_FIXTURES};
use serde_json::{json, Value};

const PROMPTS: [&str; 3] = ["", "Once upon a time", "Tom and his dog"];
const STEPS: u32 = 40;

/// One case: the model file's path, the request's parameter bytes and input.
struct Case {
    model: std::path::PathBuf,
    params: Vec<u8>,
    input: Vec<u8>,
    want: Outcome,
}

fn expected(model: &[u8], params: &[u8], input: &[u8]) -> Outcome {
    run(model, Exec::SCALAR, params, input, |_| {})
}

#[test]
fn the_wasm_module_gives_the_native_outputs() {
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        node_ok,
        "Node.js is required (bash .ci/install.sh installs it)"
    );
    let wasm = wasm_module();
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    let seeded = SamplingParams {
        temperature_q16: parse_q16("0.8").expect("decimal"),
        top_p_q16: parse_q16("0.9").expect("decimal"),
        seed: 42,
    };
    for fixture in LLAMA_FIXTURES {
        for qtype in [QType::Q8, QType::Q4] {
            let bytes = fixture.model_file(qtype);
            let path = dir
                .path()
                .join(format!("{}-{}.bin", fixture.name, qtype.name()));
            std::fs::write(&path, &bytes).unwrap();
            for prompt in PROMPTS {
                for sampling in [SamplingParams::GREEDY, seeded] {
                    let params = Request::text(prompt.as_bytes(), STEPS, sampling).encode_params();
                    cases.push(Case {
                        model: path.clone(),
                        want: expected(&bytes, &params, prompt.as_bytes()),
                        params: params.to_vec(),
                        input: prompt.as_bytes().to_vec(),
                    });
                }
            }
        }
    }
    let ddpm = ddpm_mnist_model_file();
    let ddpm_path = dir.path().join("ddpm-mnist.bin");
    std::fs::write(&ddpm_path, &ddpm).unwrap();
    for seed in [0u64, 7] {
        let params = Request::image(
            b"",
            ImageParams {
                steps: 2,
                seed,
                guidance_q16: 0,
            },
        )
        .encode_params();
        cases.push(Case {
            model: ddpm_path.clone(),
            want: expected(&ddpm, &params, b""),
            params: params.to_vec(),
            input: Vec::new(),
        });
    }
    // The error outcome: a model file cut short.
    let stories = std::fs::read(
        dir.path()
            .join(format!("{}-q8.bin", LLAMA_FIXTURES[0].name)),
    )
    .unwrap();
    let cut = dir.path().join("cut.bin");
    std::fs::write(&cut, &stories[..stories.len() / 2]).unwrap();
    let params = Request::text(b"Lily", 8, SamplingParams::GREEDY).encode_params();
    cases.push(Case {
        want: expected(&stories[..stories.len() / 2], &params, b"Lily"),
        model: cut,
        params: params.to_vec(),
        input: b"Lily".to_vec(),
    });

    let list: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "model": c.model,
                "params": hex::encode(&c.params),
                "input": hex::encode(&c.input),
            })
        })
        .collect();
    let cases_path = dir.path().join("cases.json");
    std::fs::write(&cases_path, serde_json::to_vec(&list).unwrap()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hosts/wasm/run.mjs");
    let out = std::process::Command::new("node")
        .arg(script)
        .arg(&wasm)
        .arg(&cases_path)
        .output()
        .expect("running node");
    assert!(
        out.status.success(),
        "node run.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), cases.len(), "one answer per case");
    let mut kinds = [0usize; 3];
    for (i, (case, got)) in cases.iter().zip(&lines).enumerate() {
        let (kind, logits) = match &case.want {
            Outcome::Text { logits_hash, .. } => (1, to_hex(logits_hash)),
            Outcome::Image { .. } => (2, to_hex(&[0; 32])),
            Outcome::Rejected(_) => (0, to_hex(&[0; 32])),
        };
        kinds[kind as usize] += 1;
        let what = format!("case {i}: {}", case.model.display());
        assert_eq!(got["kind"], kind, "{what}");
        assert_eq!(got["posted"], hex::encode(case.want.posted()), "{what}");
        assert_eq!(
            format!("0x{}", got["commitment"].as_str().unwrap()),
            to_hex(&case.want.commitment()),
            "{what}"
        );
        assert_eq!(
            format!("0x{}", got["logits_hash"].as_str().unwrap()),
            logits,
            "{what}"
        );
    }
    println!(
        "wasm32 module: {} text, {} image and {} rejected outcomes equal the native ones",
        kinds[1], kinds[2], kinds[0]
    );
    assert!(
        kinds.iter().all(|&k| k > 0),
        "every outcome kind was exercised"
    );
}
