//! diffusers pipeline folders: `model_index.json` names the components; each
//! component is a sub-folder with `config.json` (or `scheduler_config.json`) and
//! its weights in `diffusion_pytorch_model.safetensors` (diffusers models) or
//! `model.safetensors` (transformers models).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;

use super::{read_file, DiffusionError, Tensor, Weights};

/// Weight file names tried in order.
pub const WEIGHT_FILES: [&str; 2] = ["diffusion_pytorch_model.safetensors", "model.safetensors"];

/// A pipeline folder with its parsed `model_index.json`.
#[derive(Debug, Clone)]
pub struct PipelineFolder {
    /// The folder.
    pub dir: PathBuf,
    /// `_class_name` (`DDIMPipeline`, `StableDiffusionPipeline`, ...).
    pub class_name: String,
    /// Components that are present: name -> (library, class).
    pub components: BTreeMap<String, (String, String)>,
}

impl PipelineFolder {
    /// Reads `dir/model_index.json`. Entries `[null, null]` (an absent safety
    /// checker) are skipped; other non-underscore keys that are not a
    /// `[library, class]` pair (flags such as `requires_safety_checker`) too.
    pub fn open(dir: &Path) -> Result<Self, DiffusionError> {
        let file = dir.join("model_index.json");
        if !file.exists() {
            return Err(DiffusionError::MissingComponent {
                component: "model_index".into(),
                path: file,
            });
        }
        let v: serde_json::Value =
            serde_json::from_slice(&read_file(&file)?).map_err(|e| DiffusionError::Config {
                file: file.clone(),
                msg: e.to_string(),
            })?;
        let obj = v.as_object().ok_or_else(|| DiffusionError::Config {
            file: file.clone(),
            msg: "not an object".into(),
        })?;
        let class_name = obj
            .get("_class_name")
            .and_then(|c| c.as_str())
            .ok_or_else(|| DiffusionError::Config {
                file: file.clone(),
                msg: "no _class_name".into(),
            })?
            .to_string();
        let mut components = BTreeMap::new();
        for (k, val) in obj {
            if k.starts_with('_') {
                continue;
            }
            if let Some([lib, class]) = val.as_array().map(Vec::as_slice) {
                if let (Some(lib), Some(class)) = (lib.as_str(), class.as_str()) {
                    components.insert(k.clone(), (lib.to_string(), class.to_string()));
                }
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            class_name,
            components,
        })
    }

    /// The folder of `component`, which must be listed with class `class` and
    /// exist on disk.
    pub fn component(&self, component: &str, class: &str) -> Result<PathBuf, DiffusionError> {
        let missing = |path: PathBuf| DiffusionError::MissingComponent {
            component: component.to_string(),
            path,
        };
        let Some((_, found)) = self.components.get(component) else {
            return Err(missing(self.dir.join("model_index.json")));
        };
        if found != class {
            return Err(DiffusionError::Unsupported {
                what: "component class",
                name: format!("{component}: {found} (expected {class})"),
            });
        }
        let dir = self.dir.join(component);
        if !dir.is_dir() {
            return Err(missing(dir));
        }
        Ok(dir)
    }
}

/// Parses a component's JSON config file `dir/name`, checking its
/// `_class_name` (when present) is `class`.
pub fn read_config<T: DeserializeOwned>(
    dir: &Path,
    name: &str,
    component: &str,
    class: &str,
) -> Result<T, DiffusionError> {
    let file = dir.join(name);
    if !file.exists() {
        return Err(DiffusionError::MissingComponent {
            component: component.to_string(),
            path: file,
        });
    }
    let bytes = read_file(&file)?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| DiffusionError::Config {
            file: file.clone(),
            msg: e.to_string(),
        })?;
    if let Some(c) = v.get("_class_name").and_then(|c| c.as_str()) {
        if c != class {
            return Err(DiffusionError::Unsupported {
                what: "class",
                name: format!("{c} in {} (expected {class})", file.display()),
            });
        }
    }
    serde_json::from_value(v).map_err(|e| DiffusionError::Config {
        file,
        msg: e.to_string(),
    })
}

/// Loads the component's weights (the first of [`WEIGHT_FILES`] present).
pub fn read_weights(dir: &Path, component: &str) -> Result<Weights, DiffusionError> {
    for name in WEIGHT_FILES {
        let file = dir.join(name);
        if file.exists() {
            return parse_safetensors(&read_file(&file)?, &file);
        }
    }
    Err(DiffusionError::MissingComponent {
        component: component.to_string(),
        path: dir.join(WEIGHT_FILES[0]),
    })
}

/// Decodes every tensor of a safetensors file (f32, f16 or bf16) to f32;
/// `file` is only used in error messages.
pub fn parse_safetensors(bytes: &[u8], file: &Path) -> Result<Weights, DiffusionError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| DiffusionError::Safetensors {
        file: file.to_path_buf(),
        msg: e.to_string(),
    })?;
    let mut w = Weights::default();
    for (name, t) in st.tensors() {
        let d = t.data();
        let data: Vec<f32> = match t.dtype() {
            Dtype::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => d
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::BF16 => d
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect(),
            other => {
                return Err(DiffusionError::UnsupportedType {
                    name,
                    kind: format!("{other:?}"),
                })
            }
        };
        let tensor =
            Tensor::new(t.shape().to_vec(), data).map_err(|_| DiffusionError::Safetensors {
                file: file.to_path_buf(),
                msg: format!("{name}: data length does not match its shape"),
            })?;
        w.tensors.insert(name, tensor);
    }
    Ok(w)
}

/// IEEE half to f32 (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f32::from(h & 0x3ff);
    match exp {
        0 => sign * mant * (2.0f32).powi(-24),
        0x1f if mant == 0.0 => sign * f32::INFINITY,
        0x1f => f32::NAN,
        e => sign * (1.0 + mant / 1024.0) * (2.0f32).powi(e - 15),
    }
}
