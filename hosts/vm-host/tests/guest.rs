//! The guest program (hosts/guest, built here for riscv32im) runs a real request in
//! the VM and produces exactly the bytes of the native `oracle run`, for both
//! bundled models, greedy and seeded; a model byte that differs from the root is
//! refused by the VM itself.

mod support;
use support::{guest_elf, run_in_vm};

use std::sync::Arc;

use oracle_core::commit::merkle::{keccak, model_root, to_hex};
use oracle_core::llama::Model;
use oracle_core::model::outcome::rejected_commitment;
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_fpvm::Vm;
use oracle_guest_abi::local_ident;
use oracle_tests::LLAMA_FIXTURES;
use oracle_vm_host::guest_oracle;

#[test]
fn guest_output_equals_native_for_both_models() {
    let seeded = SamplingParams {
        temperature_q16: 52429,
        top_p_q16: 58982,
        seed: 11,
    };
    for fixture in LLAMA_FIXTURES {
        let bytes = fixture.model_file(QType::Q8);
        let model = Model::load(&bytes).unwrap();
        for sampling in [SamplingParams::GREEDY, seeded] {
            let request = Request::text(b"Once upon a time", 24, sampling);
            let native = model.generate(Exec::default(), &request, |_| {}).unwrap();
            let mut want = native.text.clone();
            want.push(b'\n');
            let got = run_in_vm(&bytes, &request);
            assert_eq!(
                (got.status, got.exit_code),
                (1, 0),
                "{} exited badly: {}",
                fixture.name,
                String::from_utf8_lossy(&got.stdout)
            );
            // fd 1 carries the text, then fd 2 the logits hash line.
            let mut printed = want.clone();
            printed
                .extend_from_slice(format!("logits {}\n", to_hex(&native.logits_hash)).as_bytes());
            assert_eq!(
                String::from_utf8_lossy(&got.stdout),
                String::from_utf8_lossy(&printed),
                "{}",
                fixture.name
            );
            assert_eq!(got.output, keccak(&want), "output commitment");
            eprintln!(
                "{} {:?}: {} VM steps",
                fixture.name, sampling.seed, got.steps
            );
        }
    }
}

#[test]
fn a_model_that_does_not_match_the_root_is_refused() {
    let bytes = LLAMA_FIXTURES[1].model_file(QType::Q8);
    let mut tampered = bytes.clone();
    let at = tampered.len() - 100;
    tampered[at] ^= 1;
    let request = Request::text(b"Hi", 4, SamplingParams::GREEDY);
    // The root is the honest model's, the chunks served are the tampered file's:
    // the chunk under the honest leaf's key is missing, so the VM stops with a host
    // error rather than running other weights.
    // Serve the tampered file's tree, but with the honest root as local data.
    let mut oracle = guest_oracle(&tampered, &request);
    oracle.insert_local(local_ident::MODEL_ROOT, model_root(&bytes).to_vec());
    let mut vm = Vm::from_elf(guest_elf(), Arc::new(oracle)).unwrap();
    assert!(
        vm.run(u64::MAX).is_err(),
        "the tampered chunk has no preimage under the honest key"
    );
    assert!(!vm.halted());
}

/// Requests the model rejects are results too: the error outcome, exit 0 with
/// nothing written and `keccak256("")` committed, the same as the native core
/// refuses them (a prompt over the context, parameters out of range, zero steps, a
/// model file that does not load).
#[test]
fn rejected_requests_commit_the_error_outcome() {
    let bytes = LLAMA_FIXTURES[1].model_file(QType::Q8);
    let model = oracle_core::llama::Model::load(&bytes).unwrap();
    let long_prompt = "word ".repeat(400);
    let greedy =
        |prompt: &'static [u8], steps| Request::text(prompt, steps, SamplingParams::GREEDY);
    let long = Request {
        prompt: long_prompt.as_bytes(),
        ..greedy(b"", 4)
    };
    let hot = Request::text(
        b"Hi",
        4,
        SamplingParams {
            top_p_q16: 2 << 16,
            ..SamplingParams::GREEDY
        },
    );
    for (what, request) in [
        ("prompt longer than the context", long),
        ("top-p above 1", hot),
        ("zero steps", greedy(b"Hi", 0)),
    ] {
        assert!(
            model.generate(Exec::default(), &request, |_| {}).is_err(),
            "{what}: rejected natively"
        );
        let got = run_in_vm(&bytes, &request);
        assert_eq!((got.status, got.exit_code), (1, 0), "{what}");
        assert!(!got.stdout.contains(&b'\n'), "{what}: no text written");
        assert_eq!(got.output, rejected_commitment(), "{what}");
    }
    let mut broken = bytes.clone();
    broken[..8].copy_from_slice(b"NOTMODEL");
    let got = run_in_vm(&broken, &greedy(b"Hi", 4));
    assert_eq!(
        (got.status, got.exit_code, got.output),
        (1, 0, rejected_commitment()),
        "a model file that does not load"
    );
}

/// The VM reproduces the pinned golden logits hashes of the native core
/// (`tests/golden/llama.txt`, written by the x86_64 golden test and checked on
/// aarch64 too): every bundled LLaMA-family model, W8 and W4, the empty prompt, greedy and seeded.
#[test]
fn vm_matches_the_pinned_golden_logits() {
    let golden = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/llama.txt"),
    )
    .unwrap();
    let seeded = SamplingParams {
        temperature_q16: 52429,
        top_p_q16: 58982,
        seed: 42,
    };
    let mut checked = 0;
    for fixture in LLAMA_FIXTURES {
        for qtype in [QType::Q8, QType::Q4] {
            let bytes = fixture.model_file(qtype);
            for (label, sampling) in [("greedy", SamplingParams::GREEDY), ("seed42", seeded)] {
                let prefix = format!("run {} {} prompt0 {label} ", fixture.name, qtype.name());
                let line = golden
                    .lines()
                    .find(|l| l.starts_with(&prefix))
                    .expect("golden line");
                let want = line[prefix.len()..].split(' ').next().unwrap();
                let request = Request::text(b"", 40, sampling);
                let got = run_in_vm(&bytes, &request);
                assert_eq!((got.status, got.exit_code), (1, 0));
                let out = String::from_utf8_lossy(&got.stdout);
                let logits = out.rsplit("logits ").next().unwrap().trim();
                assert_eq!(logits, want, "{prefix}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 4 * LLAMA_FIXTURES.len());
}
