//! Scratch copies of fixture folders that a test may damage.

use std::path::{Path, PathBuf};

use crate::fixtures;

/// A fresh copy of `fixtures/models/<model>` in the temporary folder
/// `oracle-<label>-<pid>` (any earlier copy there is removed first).
pub fn copy_model_folder(model: &str, label: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("oracle-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    copy_dir(&fixtures().join("models").join(model), &dst);
    dst
}

/// Copy the folder `src` to `dst`, recursively.
fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

/// Replace the first `from` in the text file `dir/file` by `to`; panics when the
/// file has no `from`.
pub fn edit_file(dir: &Path, file: &str, from: &str, to: &str) {
    let p = dir.join(file);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{file} has {from}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}
