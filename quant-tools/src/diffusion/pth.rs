//! PyTorch zip checkpoints (`torch.save` since 1.6) read without Python.
//!
//! The zip holds `<prefix>/data.pkl`, a pickle describing the saved object, and
//! `<prefix>/data/<key>`, one raw storage per key (little-endian, as
//! `<prefix>/byteorder` says when present). A state dict pickles as an
//! `collections.OrderedDict` whose values are
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
//! hooks)` calls, where `storage` is a persistent id
//! `('storage', torch.FloatStorage, key, location, numel)`; [`super::pickle`]
//! runs the pickle.
//!
//! **Hostile files.** Everything decoded is bounded by the file's bytes: the zip
//! entries read (pickle and storages, decompressed) and the tensors gathered
//! from them share one budget of [`BUDGET_FACTOR`] times the file's length (plus
//! 1 KiB), so overlapping zip entries or many views of one storage cannot
//! multiply it; and a view may hold no more elements than its storage (a
//! stride-0 view of 2^32 elements of a one-element storage is refused).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::pickle::{Pickle, TensorRef, Value};
use super::{read_file, DiffusionError, Tensor, Weights};

/// The bytes a `.pth` file may decode to (zip entries read plus tensors
/// gathered), per byte of the file.
pub const BUDGET_FACTOR: u64 = 64;

/// What is left of a file's decoding budget.
#[derive(Debug)]
struct Budget {
    left: u64,
}

impl Budget {
    /// Take `bytes` from the budget, or say what `what` needed.
    fn take(&mut self, bytes: u64, what: &str) -> Result<(), DiffusionError> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(DiffusionError::Zip(format!(
                "{what}: {bytes} more bytes decoded than the file's budget allows ({} left)",
                self.left
            ))),
        }
    }
}

/// One tensor of a `.pth` state dict: where it came from and its values,
/// made contiguous.
#[derive(Debug, Clone)]
pub struct PthTensor {
    /// The state-dict name.
    pub name: String,
    /// The strided view as the pickle describes it.
    pub view: TensorRef,
    /// The values, row-major in `view.shape`.
    pub tensor: Tensor,
}

/// Reads a PyTorch zip checkpoint holding a state dict, in the pickle's order.
pub fn read_state_dict(path: &Path) -> Result<Vec<PthTensor>, DiffusionError> {
    parse_state_dict(&read_file(path)?)
}

/// Like [`read_state_dict`] for the bytes of the file.
pub fn parse_state_dict(bytes: &[u8]) -> Result<Vec<PthTensor>, DiffusionError> {
    let zerr = |e: zip::result::ZipError| DiffusionError::Zip(e.to_string());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zerr)?;
    let pkl_name = zip
        .file_names()
        .find(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .map(str::to_string)
        .ok_or_else(|| DiffusionError::Zip("no data.pkl".into()))?;
    let prefix = pkl_name.strip_suffix("data.pkl").unwrap_or("").to_string();
    let mut budget = Budget {
        left: (bytes.len() as u64)
            .saturating_mul(BUDGET_FACTOR)
            .saturating_add(1024),
    };
    let read_entry = |zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
                      name: &str,
                      limit: u64,
                      budget: &mut Budget|
     -> Result<Option<Vec<u8>>, DiffusionError> {
        let f = match zip.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(zerr(e)),
        };
        let size = f.size();
        if size > limit {
            return Err(DiffusionError::Zip(format!(
                "{name}: {size} bytes, more than {limit}"
            )));
        }
        budget.take(size, name)?;
        // Never read past the declared size, whatever the stream holds.
        let mut out = Vec::with_capacity(size as usize);
        f.take(size)
            .read_to_end(&mut out)
            .map_err(|e| DiffusionError::Zip(format!("{name}: {e}")))?;
        Ok(Some(out))
    };
    let limit = budget.left;
    if let Some(order) = read_entry(&mut zip, &format!("{prefix}byteorder"), 64, &mut budget)? {
        if order.trim_ascii() != b"little" {
            return Err(DiffusionError::Zip(format!(
                "byteorder {:?}, only little-endian is supported",
                String::from_utf8_lossy(&order)
            )));
        }
    }
    let pkl = read_entry(&mut zip, &pkl_name, limit, &mut budget)?
        .ok_or_else(|| DiffusionError::Zip("no data.pkl".into()))?;
    let Value::Dict(dict) = Pickle::load(&pkl)? else {
        return Err(DiffusionError::Pickle {
            offset: 0,
            msg: "the pickled object is not a dict".into(),
        });
    };
    let items = dict.items();
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(items.len() / 2);
    for pair in items.chunks_exact(2) {
        let (k, v) = (&pair[0], &pair[1]);
        let Value::Str(name) = k else {
            return Err(DiffusionError::Pickle {
                offset: 0,
                msg: format!("state-dict key is a {}", k.kind()),
            });
        };
        let name = name.to_string();
        let Value::Tensor(view) = v else {
            return Err(DiffusionError::Pickle {
                offset: 0,
                msg: format!("{name} is a {}, not a tensor", v.kind()),
            });
        };
        let view = TensorRef::clone(view);
        if view.storage_type != "FloatStorage" {
            return Err(DiffusionError::UnsupportedType {
                name,
                kind: view.storage_type.clone(),
            });
        }
        if !storages.contains_key(&view.storage_key) {
            let entry = format!("{prefix}data/{}", view.storage_key);
            let data = read_entry(&mut zip, &entry, limit, &mut budget)?
                .ok_or_else(|| DiffusionError::Zip(format!("{name}: no entry {entry}")))?;
            storages.insert(view.storage_key.clone(), data);
        }
        let raw = &storages[&view.storage_key];
        let tensor = gather(&name, &view, raw, &mut budget)?;
        out.push(PthTensor { name, view, tensor });
    }
    Ok(out)
}

/// Copies the strided view out of a little-endian f32 storage, checking that
/// every element lies inside it and that the view holds no more elements than
/// the storage (taking its bytes from the file's `budget`).
fn gather(
    name: &str,
    v: &TensorRef,
    raw: &[u8],
    budget: &mut Budget,
) -> Result<Tensor, DiffusionError> {
    let bad = |m: String| DiffusionError::Zip(format!("{name}: {m}"));
    if raw.len() as u64 != v.storage_numel.saturating_mul(4) {
        return Err(bad(format!(
            "storage of {} bytes for {} f32 elements",
            raw.len(),
            v.storage_numel
        )));
    }
    let mut numel: u64 = 1;
    let mut last: u64 = v.offset;
    for (&d, &s) in v.shape.iter().zip(&v.stride) {
        numel = numel
            .checked_mul(d)
            .ok_or_else(|| bad("size overflows".into()))?;
        if d > 0 {
            last = (d - 1)
                .checked_mul(s)
                .and_then(|x| x.checked_add(last))
                .ok_or_else(|| bad("extent overflows".into()))?;
        }
    }
    if numel > 0 && last >= v.storage_numel {
        return Err(bad(format!(
            "view reaches element {last} of a {}-element storage",
            v.storage_numel
        )));
    }
    if numel > v.storage_numel {
        return Err(bad(format!(
            "a view of {numel} elements of a {}-element storage (stride 0?)",
            v.storage_numel
        )));
    }
    budget.take(numel.saturating_mul(4), name)?;
    let at = |i: u64| {
        let i = i as usize * 4;
        f32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]])
    };
    let shape: Vec<usize> = v.shape.iter().map(|&d| d as usize).collect();
    let mut data = Vec::with_capacity(numel as usize);
    let mut idx = vec![0u64; shape.len()];
    for _ in 0..numel {
        let off: u64 = v.offset + idx.iter().zip(&v.stride).map(|(i, s)| i * s).sum::<u64>();
        data.push(at(off));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < v.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(Tensor { shape, data })
}

/// The state dict as [`Weights`] (names as in the file).
pub fn to_weights(tensors: Vec<PthTensor>) -> Result<Weights, DiffusionError> {
    let mut w = Weights::default();
    for t in tensors {
        if w.tensors.insert(t.name.clone(), t.tensor).is_some() {
            return Err(DiffusionError::Pickle {
                offset: 0,
                msg: format!("{} twice in the state dict", t.name),
            });
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_gather() {
        // A transposed 2x3 view of a 6-element storage [0..6).
        let raw: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let v = TensorRef {
            storage_key: "0".into(),
            storage_type: "FloatStorage".into(),
            storage_numel: 6,
            offset: 0,
            shape: vec![3, 2],
            stride: vec![1, 3],
        };
        let mut budget = Budget { left: 1 << 20 };
        let t = gather("t", &v, &raw, &mut budget).unwrap();
        assert_eq!(t.data, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(budget.left, (1 << 20) - 24);
        let out_of_range = TensorRef {
            offset: 1,
            ..v.clone()
        };
        assert!(gather("t", &out_of_range, &raw, &mut budget).is_err());
        // A stride-0 view of more elements than the storage holds.
        let broadcast = TensorRef {
            shape: vec![1 << 32],
            stride: vec![0],
            ..v.clone()
        };
        let err = gather("t", &broadcast, &raw, &mut budget).unwrap_err();
        assert!(err.to_string().contains("stride 0"), "{err}");
        // Views that fit but outrun the budget.
        let mut small = Budget { left: 20 };
        assert!(gather("t", &v, &raw, &mut small).is_err());
    }
}
