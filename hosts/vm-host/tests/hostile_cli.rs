//! `fpvm run` on the hostile files of `tests/hostile/`: crafted programs (a
//! loop writing every page of the address space, aliased segments, broken
//! headers) and crafted model files (refused by the guest's own check before the
//! host decodes or runs anything, also for a two-phase `--position` run) end in
//! a clean error with a bounded peak RSS. The page-writing loop measures the
//! VM's host memory per guest byte under a memory budget.

use std::process::Command;

use oracle_tests::hostile::run::{run, RSS_LIMIT_MIB, TIMEOUT};
use oracle_tests::hostile::{committed, Class};

fn fpvm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fpvm"))
}

/// A budget small enough for CI.
const MAX_MEMORY: u64 = 64 << 20;

#[test]
fn hostile_programs_end_in_a_clean_error() {
    for c in committed(Class::Elf) {
        let mut cmd = fpvm();
        cmd.args(["run", "--max-memory", &MAX_MEMORY.to_string(), "--elf"])
            .arg(&c.path);
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

#[test]
fn host_memory_follows_the_guest_memory_budget() {
    let touch = committed(Class::Elf)
        .into_iter()
        .find(|c| c.path.ends_with("touch-every-page.elf"))
        .expect("touch-every-page.elf");
    let mut rows = Vec::new();
    for mib in [32u64, 128] {
        let mut cmd = fpvm();
        cmd.args(["run", "--max-memory", &(mib << 20).to_string(), "--elf"])
            .arg(&touch.path);
        let r = run(&mut cmd, TIMEOUT);
        assert!(r.clean_error_problem(RSS_LIMIT_MIB).is_none(), "{r:?}");
        rows.push((mib, r.peak_rss_mib()));
    }
    // The marginal host memory per guest byte, between the two budgets.
    let (a, b) = (rows[0], rows[1]);
    let per_byte = (b.1 - a.1) / (b.0 - a.0) as f64;
    eprintln!("peak RSS at guest budgets {rows:?} MiB: {per_byte:.3} host bytes per guest byte");
    assert!(per_byte <= 2.0, "{per_byte:.3} host bytes per guest byte");
    assert!(b.1 <= 2.0 * b.0 as f64 + 32.0, "{rows:?}");
}

#[test]
fn hostile_model_files_are_refused_before_the_host_runs_them() {
    for class in [Class::Model, Class::Image, Class::Budget] {
        for c in committed(class) {
            let mut runs = vec![vec!["run", "--steps", "2", "--model"]];
            if class != Class::Image {
                runs.push(vec!["run", "--steps", "4", "--position", "1", "--model"]);
            }
            for args in runs {
                let mut cmd = fpvm();
                cmd.args(&args).arg(&c.path);
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
}
