//! `oracle run` on the hostile model files of `tests/hostile/`: a clean error
//! (non-zero exit, the reason each file was crafted for, no panic or abort) with
//! a bounded peak RSS; a model over the guest's budget (`budget/`) still runs
//! locally, its KV cache untouched beyond the positions run.

use std::process::Command;

use oracle_tests::hostile::run::{run, RSS_LIMIT_MIB, TIMEOUT};
use oracle_tests::hostile::{committed, Class};

fn oracle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oracle"))
}

#[test]
fn oracle_run_refuses_hostile_model_files_cleanly() {
    let out = tempfile::tempdir().expect("tempdir");
    for class in [Class::Model, Class::Image] {
        for c in committed(class) {
            let mut cmd = oracle();
            cmd.args(["run", "--steps", "2", "--model"]).arg(&c.path);
            if class == Class::Image {
                cmd.arg("--output").arg(out.path().join("out.png"));
            }
            let r = run(&mut cmd, TIMEOUT);
            if let Some(p) = r.clean_error_problem(RSS_LIMIT_MIB) {
                panic!("{}: {p}", c.what);
            }
            assert!(
                r.stderr.contains(c.error),
                "{}: {}",
                c.path.display(),
                r.stderr
            );
        }
    }
}

#[test]
fn oracle_run_serves_a_model_over_the_guest_budget_with_bounded_memory() {
    for c in committed(Class::Budget) {
        let mut cmd = oracle();
        cmd.args(["run", "--steps", "2", "--model"]).arg(&c.path);
        let r = run(&mut cmd, TIMEOUT);
        assert_eq!(r.code, Some(0), "{}: {}", c.path.display(), r.stderr);
        assert!(
            r.peak_rss_kib < RSS_LIMIT_MIB * 1024,
            "{}: peak RSS {:.0} MiB",
            c.path.display(),
            r.peak_rss_mib()
        );
    }
}
