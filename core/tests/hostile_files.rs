//! The hostile model files of `tests/hostile/` (see `oracle_tests::hostile`) are
//! refused by loading with a typed error, never a panic, allocating no more than
//! a small multiple of their size; the files of `budget/` load but are over the
//! guest's budget.

#[path = "../../tests/src/counting_alloc.rs"]
mod counting_alloc;

use std::path::PathBuf;

use counting_alloc::{alloc_peak, CountingAlloc};
use oracle_core::footprint::{self, CheckError, GUEST_MEMORY_BUDGET};
use oracle_core::format::Arch;
use oracle_core::llama::Model;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn corpus(folder: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/hostile")
        .join(folder);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect()
}

/// Loading may allocate at most this much for a file of `len` bytes.
fn alloc_bound(len: usize) -> usize {
    4 * len + (1 << 20)
}

#[test]
fn hostile_text_model_files_are_refused_with_bounded_allocation() {
    for (name, bytes) in corpus("model") {
        let (result, peak) = alloc_peak(|| Model::load(&bytes).map(|_| ()));
        let err = result.expect_err(&name);
        assert!(
            peak <= alloc_bound(bytes.len()),
            "{name}: {peak} bytes allocated ({err})"
        );
        let checked = footprint::check(&bytes, u64::MAX);
        assert!(
            matches!(checked, Err(CheckError::Format(_))),
            "{name}: {checked:?}"
        );
    }
}

#[test]
fn hostile_image_model_files_are_refused_with_bounded_allocation() {
    for (name, bytes) in corpus("image") {
        let (result, peak) =
            alloc_peak(|| oracle_core::AnyModel::load_with_footprint(&bytes).map(|(_, fp)| fp));
        let err = result.expect_err(&name);
        assert!(
            peak <= alloc_bound(bytes.len()),
            "{name}: {peak} bytes allocated ({err})"
        );
        assert!(footprint::check(&bytes, u64::MAX).is_err(), "{name}");
    }
}

#[test]
fn models_over_the_guest_budget_load_but_fail_the_check() {
    for (name, bytes) in corpus("budget") {
        let model = Model::load(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let fp = model.footprint();
        assert!(fp.total() > GUEST_MEMORY_BUDGET, "{name}: {fp:?}");
        assert!(
            fp.run_state <= footprint::MAX_RUN_STATE_BYTES,
            "{name}: {fp:?}"
        );
        match footprint::check(&bytes, GUEST_MEMORY_BUDGET) {
            Err(CheckError::OverBudget { needed, budget, .. }) => {
                assert_eq!(needed, fp.total());
                assert_eq!(budget, GUEST_MEMORY_BUDGET);
            }
            other => panic!("{name}: {other:?}"),
        }
        let (kind, _) = footprint::check(&bytes, fp.total()).expect("fits its own total");
        assert_eq!(kind, Arch::Llama);
    }
}

#[test]
fn the_kv_cache_bomb_is_refused_at_load_and_names_the_bound() {
    let (_, bytes) = corpus("model")
        .into_iter()
        .find(|(n, _)| n == "huge-kv-cache.bin")
        .expect("huge-kv-cache.bin");
    let err = Model::load(&bytes).unwrap_err().to_string();
    assert!(err.contains("2 GiB"), "{err}");
}
