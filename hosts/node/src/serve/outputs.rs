//! The node's store of image outputs too large to post on chain: each PNG is a file
//! `0x<keccak256 of the PNG>.png` in one directory (next to the node's database),
//! written before the request is submitted and served at `GET /outputs/<name>`
//! ([`crate::http`]). Content-addressed: a name says what its bytes must hash to,
//! so writing the same output twice is harmless and a reader checks what it got.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oracle_core::commit::merkle::{keccak, to_hex, Hash};

/// Where the outputs of the node whose database is `db` live: `<db stem>-outputs/`
/// in the database's directory (`operator.redb` → `operator-outputs/`).
pub fn dir_for_db(db: &Path) -> PathBuf {
    let stem = db
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "node".into());
    db.with_file_name(format!("{stem}-outputs"))
}

/// The file name of the output whose PNG hashes to `hash`: `0x<64 hex>.png`.
pub fn file_name(hash: &Hash) -> String {
    format!("{}.png", to_hex(hash))
}

/// The hash a file name `0x<64 hex>.png` stands for (`None` for any other name,
/// so a request path can never leave the directory).
pub fn parse_name(name: &str) -> Option<Hash> {
    let hex = name.strip_suffix(".png")?.strip_prefix("0x")?;
    if hex.len() != 64 {
        return None;
    }
    let bytes = alloy::hex::decode(hex).ok()?;
    bytes.try_into().ok()
}

/// A directory of content-addressed PNGs.
#[derive(Debug, Clone)]
pub struct OutputStore {
    dir: PathBuf,
}

impl OutputStore {
    /// The store in `dir` (created when the first output is written).
    pub fn new(dir: PathBuf) -> Self {
        OutputStore { dir }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `png` durably (a temporary file, fsync, rename, fsync of the
    /// directory) and return its hash; an output already stored is left as is.
    pub fn put(&self, png: &[u8]) -> Result<Hash> {
        let hash = keccak(png);
        let path = self.dir.join(file_name(&hash));
        if self.get(&hash)?.is_some() {
            return Ok(hash);
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let tmp = self.dir.join(format!("{}.tmp", file_name(&hash)));
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(png)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        drop(f);
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", self.dir.display()))?;
        Ok(hash)
    }

    /// The PNG whose keccak256 is `hash`, if stored (a file whose bytes do not
    /// hash to its name is treated as absent and logged).
    pub fn get(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(file_name(hash));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if keccak(&bytes) != *hash {
            tracing::error!(
                "{} does not hash to its name (corrupted?); not serving it",
                path.display()
            );
            return Ok(None);
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refuse_anything_else() {
        let h = keccak(b"png");
        assert_eq!(parse_name(&file_name(&h)), Some(h));
        for bad in [
            "../etc/passwd",
            "0x12.png",
            &file_name(&h).replace(".png", ".jpg"),
            &file_name(&h)[2..],
            &format!("0x{}.png", "zz".repeat(32)),
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn put_then_get_survives_a_new_store_and_rejects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let png = b"\x89PNG not really".to_vec();
        let hash = OutputStore::new(dir.path().join("out")).put(&png).unwrap();
        let store = OutputStore::new(dir.path().join("out"));
        assert_eq!(store.get(&hash).unwrap(), Some(png.clone()));
        assert_eq!(store.put(&png).unwrap(), hash);
        assert_eq!(store.get(&keccak(b"other")).unwrap(), None);
        std::fs::write(store.dir().join(file_name(&hash)), b"tampered").unwrap();
        assert_eq!(store.get(&hash).unwrap(), None);
        assert_eq!(
            dir_for_db(Path::new("/a/b/operator.redb")),
            PathBuf::from("/a/b/operator-outputs")
        );
    }
}
