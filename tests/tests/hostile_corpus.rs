//! The committed hostile-input corpus (`tests/hostile/`) is exactly what its
//! generator (`oracle_tests::hostile::corpus`) builds: regenerate it with
//! `cargo run -p oracle-tests --bin gen-hostile`.

use std::path::Path;

use oracle_tests::hostile::{corpus, dir, expected_error, index, Class};

fn files_under(root: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(root).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            let rel = p.strip_prefix(dir()).expect("under the corpus");
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

#[test]
fn hostile_corpus_is_current() {
    let files = corpus();
    for h in &files {
        let committed = std::fs::read(dir().join(&h.path))
            .unwrap_or_else(|e| panic!("{}: {e} (run gen-hostile)", h.path));
        assert!(
            committed == h.bytes,
            "{} differs from its generator",
            h.path
        );
    }
    let mut on_disk = Vec::new();
    files_under(&dir(), &mut on_disk);
    on_disk.retain(|p| p != "README.md");
    on_disk.sort();
    let mut generated: Vec<String> = files.iter().map(|h| h.path.clone()).collect();
    generated.sort();
    assert_eq!(on_disk, generated, "files not produced by the generator");
    let readme = std::fs::read_to_string(dir().join("README.md")).expect("README.md");
    assert_eq!(readme, index(), "README.md is stale");
}

#[test]
fn every_hostile_file_has_a_class_and_an_expected_error() {
    for h in corpus() {
        let class = h.class();
        let key = if class == Class::Safetensors {
            Path::new(&h.path)
                .parent()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        } else {
            h.path.clone()
        };
        assert!(!expected_error(&key).is_empty(), "{}", h.path);
        assert!(!h.what.is_empty(), "{}", h.path);
    }
}
