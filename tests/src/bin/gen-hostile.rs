//! Write the hostile-input corpus to `tests/hostile/` (see
//! `oracle_tests::hostile`): `cargo run -p oracle-tests --bin gen-hostile`.
//! Files no longer generated are removed; `README.md` lists every file.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = oracle_tests::hostile::dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    for h in oracle_tests::hostile::corpus() {
        let path = dir.join(&h.path);
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        std::fs::write(&path, &h.bytes)?;
    }
    std::fs::write(dir.join("README.md"), oracle_tests::hostile::index())?;
    println!("wrote {}", dir.display());
    Ok(())
}
