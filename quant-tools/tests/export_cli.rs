//! The `oracle-quant` binary end to end, and export paths the fixtures do not
//! cover by themselves (a separate classifier).

use std::path::{Path, PathBuf};
use std::process::Command;

use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_quant::checkpoint;
use oracle_quant::export::{export, QuantOptions};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models")
}

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oracle-quant"))
}

fn convert(input: &Path, tokenizer: Option<&Path>, quant: &str, out: &Path) -> String {
    let mut cmd = tool();
    cmd.args(["convert", "--quant", quant, "--input"])
        .arg(input)
        .arg("--output")
        .arg(out);
    if let Some(t) = tokenizer {
        cmd.arg("--tokenizer").arg(t);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn llama2c_and_hf_convert_to_the_same_file_and_gguf_loads() {
    let dir = tempfile::tempdir().unwrap();
    let tok = models().join("stories260K/tok512.bin");
    let a = convert(
        &models().join("stories260K/stories260K.bin"),
        Some(&tok),
        "q8",
        &dir.path().join("a.bin"),
    );
    let b = convert(
        &models().join("stories260K-hf"),
        Some(&tok),
        "q8",
        &dir.path().join("b.bin"),
    );
    assert!(a.starts_with("model root 0x"));
    assert_eq!(a, b, "llama2.c and HF copies give the same model root");
    assert_eq!(
        std::fs::read(dir.path().join("a.bin")).unwrap(),
        std::fs::read(dir.path().join("b.bin")).unwrap()
    );
    // The GGUF copy carries its own vocabulary (and declares a context of 128).
    let c = convert(
        &models().join("stories260K-gguf/stories260K-f32.gguf"),
        None,
        "q4",
        &dir.path().join("c.bin"),
    );
    assert!(c.starts_with("model root 0x"));
    let bytes = std::fs::read(dir.path().join("c.bin")).unwrap();
    let model = Model::load(&bytes).unwrap();
    assert_eq!(model.weights.config.seq_len, 128);
    let request = Request::text(b"Once upon a time", 20, SamplingParams::GREEDY);
    let text = model
        .generate(Exec::default(), &request, |_| {})
        .unwrap()
        .text;
    assert!(text.starts_with(b"Once upon a time"));

    let inspect = tool()
        .arg("inspect")
        .arg(dir.path().join("a.bin"))
        .output()
        .unwrap();
    let listing = String::from_utf8(inspect.stdout).unwrap();
    assert!(listing.contains("layers.4.feed_forward.w2"), "{listing}");
    assert!(listing.contains(a.trim().trim_start_matches("model root ")));
}

#[test]
fn eval_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = models().join("aidreams260K/aidreams260K.bin");
    let tok = models().join("aidreams260K/tok512.bin");
    let file = dir.path().join("m.bin");
    convert(&ckpt, Some(&tok), "q8", &file);
    let text = dir.path().join("t.txt");
    std::fs::write(
        &text,
        "Once upon a time there was a dog.\nThe sun was bright and the birds sang.\n",
    )
    .unwrap();
    let o = tool()
        .args(["eval", "--json", "--model"])
        .arg(&file)
        .arg("--reference")
        .arg(&ckpt)
        .arg("--tokenizer")
        .arg(&tok)
        .arg("--text")
        .arg(&text)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["tokens"].as_u64().unwrap() > 10);
    assert!(v["top1_agreement"].as_f64().unwrap() > 0.5);
}

#[test]
fn bad_inputs_fail_with_messages() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"definitely not a checkpoint").unwrap();
    for args in [
        vec![
            "convert".to_string(),
            "--quant".into(),
            "q8".into(),
            "--input".into(),
            junk.display().to_string(),
            "--output".into(),
            dir.path().join("o").display().to_string(),
        ],
        vec!["inspect".to_string(), junk.display().to_string()],
        vec![
            "convert".to_string(),
            "--quant".into(),
            "q8".into(),
            "--input".into(),
            models()
                .join("stories260K/stories260K.bin")
                .display()
                .to_string(),
            "--output".into(),
            dir.path().join("o").display().to_string(),
        ],
    ] {
        let o = tool().args(&args).output().unwrap();
        assert!(!o.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("error:"),
            "{args:?}"
        );
    }
    assert!(!dir.path().join("o").exists(), "no partial output");
}

#[test]
fn a_separate_classifier_is_written_and_used() {
    let mut model = checkpoint::load(
        &models().join("stories260K/stories260K.bin"),
        Some(&models().join("stories260K/tok512.bin")),
    )
    .unwrap();
    let shared = export(&model, QuantOptions::for_type(QType::Q8), |_, _| {})
        .unwrap()
        .bytes;
    model.wcls = Some(model.token_embedding.clone());
    let separate = export(&model, QuantOptions::for_type(QType::Q8), |_, _| {})
        .unwrap()
        .bytes;
    let a = Model::load(&shared).unwrap();
    let b = Model::load(&separate).unwrap();
    assert!(a.weights.config.shared_classifier && !b.weights.config.shared_classifier);
    assert!(b.file.tensor("output").is_ok() && a.file.tensor("output").is_err());
    let request = Request::text(b"Tom", 30, SamplingParams::GREEDY);
    let ga = a.generate(Exec::default(), &request, |_| {}).unwrap();
    let gb = b.generate(Exec::default(), &request, |_| {}).unwrap();
    // Same classifier values: same logits, through a different tensor.
    assert_eq!(ga.logits_hash, gb.logits_hash);
    // A different classifier changes the logits.
    if let Some(w) = model.wcls.as_mut() {
        w.iter_mut().step_by(7).for_each(|v| *v = -*v);
    }
    let changed = export(&model, QuantOptions::for_type(QType::Q8), |_, _| {})
        .unwrap()
        .bytes;
    let gc = Model::load(&changed)
        .unwrap()
        .generate(Exec::default(), &request, |_| {})
        .unwrap();
    assert_ne!(ga.logits_hash, gc.logits_hash);
}
