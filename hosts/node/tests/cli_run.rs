//! `oracle run` as a user runs it: the real binary, a converted bundled model.

mod common;

use common::{assert_success, oracle};
use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_tests::LLAMA_FIXTURES;

#[test]
fn stdout_is_prompt_plus_generation_whatever_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.bin");
    let bytes = LLAMA_FIXTURES[0].model_file(QType::Q8);
    std::fs::write(&path, &bytes).unwrap();
    let model = Model::load(&bytes).unwrap();
    let sampling = SamplingParams {
        temperature_q16: 52429,
        top_p_q16: 58982,
        seed: 9,
    }; // 0.8, 0.9
    let want = model
        .generate(
            Exec::default(),
            &Request::text(b"Lily", 50, sampling),
            |_| {},
        )
        .unwrap();
    let mut outputs = Vec::new();
    for extra in [&[][..], &["--scalar"][..], &["--threads", "2"][..]] {
        let out = oracle()
            .args(["run", "--model"])
            .arg(&path)
            .args([
                "--prompt",
                "Lily",
                "--steps",
                "50",
                "--temperature",
                "0.8",
                "--top-p",
                "0.9",
                "--seed",
                "9",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert_success(&out, &format!("{extra:?}"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("tok/s"));
        outputs.push(out.stdout);
    }
    let mut expected = want.text.clone();
    expected.push(b'\n');
    assert!(expected.starts_with(b"Lily"));
    for o in &outputs {
        assert_eq!(o, &expected);
    }
}

#[test]
fn bad_inputs_exit_non_zero_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, vec![7u8; 1000]).unwrap();
    let good = dir.path().join("good.bin");
    std::fs::write(&good, LLAMA_FIXTURES[1].model_file(QType::Q8)).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--model".into(),
                dir.path().join("missing").display().to_string(),
            ],
            "opening",
        ),
        (
            vec!["--model".into(), garbage.display().to_string()],
            "not an oracle model file",
        ),
        (
            vec![
                "--model".into(),
                good.display().to_string(),
                "--temperature=-1".into(),
            ],
            "not a non-negative decimal",
        ),
        (
            vec![
                "--model".into(),
                good.display().to_string(),
                "--top-p".into(),
                "1.5".into(),
            ],
            "top-p",
        ),
        (
            vec![
                "--model".into(),
                good.display().to_string(),
                "--root".into(),
                "0x1234".into(),
            ],
            "32 bytes",
        ),
    ];
    for (args, needle) in cases {
        let out = oracle().arg("run").args(&args).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let help = oracle().args(["run", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--temperature"));
}

#[test]
fn chat_runs_through_the_models_template_and_is_refused_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let bpe = LLAMA_FIXTURES
        .iter()
        .find(|f| f.name == "tiny-qwen2-bpe")
        .unwrap()
        .model_file(QType::Q8);
    let path = dir.path().join("qwen.bin");
    std::fs::write(&path, &bpe).unwrap();
    let model = Model::load(&bpe).unwrap();
    let params = oracle_core::RequestParams::Text(oracle_core::model::request::TextParams {
        steps: 60,
        sampling: SamplingParams::GREEDY,
        chat: true,
    });
    let want = model
        .generate(Exec::default(), &Request::new(b"Hi!", params), |_| {})
        .unwrap();
    let out = oracle()
        .args([
            "run", "--chat", "--prompt", "Hi!", "--steps", "60", "--model",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_success(&out, "--chat");
    let mut expected = want.text.clone();
    expected.push(b'\n');
    assert_eq!(out.stdout, expected);
    assert!(out
        .stdout
        .starts_with(b"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"));

    let spm = dir.path().join("stories.bin");
    std::fs::write(&spm, LLAMA_FIXTURES[0].model_file(QType::Q8)).unwrap();
    let out = oracle()
        .args(["run", "--chat", "--prompt", "Hi", "--model"])
        .arg(&spm)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "a rejected request");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no chat template"));
}
