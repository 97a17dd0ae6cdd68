//! `oracle-quant inspect` and `oracle-quant convert` on the hostile corpus
//! (`tests/hostile/`): every file ends in a clean error (non-zero exit, the
//! reason it was crafted for, no panic, abort or signal) within the time and
//! peak-RSS bounds of `oracle_tests::hostile::run`; a model over the guest's
//! budget inspects fine and says so.

use std::process::Command;

use oracle_tests::hostile::run::{run, RSS_LIMIT_MIB, TIMEOUT};
use oracle_tests::hostile::{committed, tok512, Class, Committed};

fn quant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oracle-quant"))
}

fn fixtures() -> std::path::PathBuf {
    oracle_tests::fixtures().join("models")
}

fn assert_clean_error(c: &Committed, cmd: &mut Command) {
    let r = run(cmd, TIMEOUT);
    if let Some(p) = r.clean_error_problem(RSS_LIMIT_MIB) {
        panic!("{}: {p}", c.what);
    }
    assert!(
        r.stderr.contains(c.error),
        "{}: stderr lacks {:?}: {}",
        c.path.display(),
        c.error,
        r.stderr
    );
    eprintln!(
        "{:<60} peak RSS {:>6.1} MiB  {:.2} s",
        c.path
            .strip_prefix(oracle_tests::hostile::dir())
            .unwrap_or(&c.path)
            .display(),
        r.peak_rss_mib(),
        r.secs
    );
}

#[test]
fn inspect_refuses_hostile_model_files() {
    for class in [Class::Model, Class::Image] {
        for c in committed(class) {
            assert_clean_error(&c, quant().arg("inspect").arg(&c.path));
        }
    }
}

#[test]
fn inspect_reports_a_model_over_the_guest_budget() {
    for c in committed(Class::Budget) {
        let r = run(quant().arg("inspect").arg(&c.path), TIMEOUT);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert!(r.stdout.contains("over the guest's budget"), "{}", r.stdout);
    }
}

#[test]
fn convert_refuses_hostile_checkpoints() {
    let out = tempfile::tempdir().expect("tempdir");
    let output = out.path().join("out.bin");
    for class in [
        Class::Llama2c,
        Class::Gguf,
        Class::Safetensors,
        Class::Pth,
        Class::Tokenizer,
    ] {
        for c in committed(class) {
            let mut cmd = quant();
            cmd.args(["convert", "--quant", "q8", "--output"])
                .arg(&output);
            match class {
                Class::Tokenizer => {
                    cmd.arg("--input")
                        .arg(fixtures().join("stories260K/stories260K.bin"))
                        .arg("--tokenizer")
                        .arg(&c.path);
                }
                Class::Llama2c | Class::Gguf => {
                    cmd.arg("--input")
                        .arg(&c.path)
                        .arg("--tokenizer")
                        .arg(tok512());
                }
                _ => {
                    cmd.arg("--input").arg(&c.path);
                }
            }
            assert_clean_error(&c, &mut cmd);
        }
    }
}
