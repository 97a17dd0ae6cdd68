//! tiny-unet2d: the diffusers folder, the float `UNet2DModel` and DDIM, pinned
//! against diffusers; bad folders give typed errors.
//!
//! The pinned values were computed with torch 2.x CPU (float32, one thread) and
//! diffusers 0.42.1 in a throwaway venv:
//! ```text
//! unet = UNet2DModel.from_pretrained(dir + '/unet'); sch = DDIMScheduler.from_pretrained(dir + '/scheduler')
//! x = tensor([1.3 * sin(0.37 i + 0.1) for i in range(768)], float32).reshape(1, 3, 16, 16)
//! unet(x, t).sample for t in (500, 1); then sch.set_timesteps(10) and
//! s = sch.step(unet(s, t).sample, t, s).prev_sample over sch.timesteps from s = x
//! ```

// The pinned values are printed by Python with full f32 precision.
#![allow(clippy::excessive_precision)]

use std::path::{Path, PathBuf};

use oracle_quant::diffusion::ddim::Ddim;
use oracle_quant::diffusion::diffusers::PipelineFolder;
use oracle_quant::diffusion::unet2d::UNet2DModel;
use oracle_quant::diffusion::{DiffusionError, Tensor};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-unet2d")
}

fn input() -> Tensor {
    let x = (0..768)
        .map(|i| (1.3 * (0.37 * i as f64 + 0.1).sin()) as f32)
        .collect();
    Tensor::new(vec![3, 16, 16], x).unwrap()
}

const IDX: [usize; 9] = [0, 1, 100, 255, 256, 400, 511, 600, 767];

/// diffusers' `unet(x, 500)` at [`IDX`], its sum and sum of absolute values.
const T500: ([f32; 9], f64, f64) = (
    [
        -0.063_942_254,
        0.189_007_18,
        0.933_662_65,
        -0.145_148_96,
        0.017_467_633,
        -0.429_211_59,
        -0.088_754_468,
        -1.207_248_1,
        -0.082_620_3,
    ],
    -13.636_107_116_704_807,
    324.212_498_023_873_2,
);

/// The same at `t = 1`.
const T1: ([f32; 9], f64, f64) = (
    [
        -0.080_497_645,
        0.167_030_86,
        0.977_379_74,
        -0.155_386_54,
        0.032_139_23,
        -0.425_765_78,
        -0.102_883_585,
        -1.216_996_6,
        -0.079_997_5,
    ],
    -11.848_205_461_399_63,
    324.970_763_772_493_2,
);

/// 10 DDIM steps from `x`: values at [`IDX`], sum, sum of absolute values.
const DDIM10: ([f32; 9], f64, f64) = (
    [
        10.201_294,
        23.159_851,
        -90.054_93,
        22.913_857,
        43.181_522,
        -21.128_868,
        56.316_196,
        122.933_47,
        74.102_88,
    ],
    1_064.527_414_100_710_3,
    43_518.568_571_192_68,
);

fn check(name: &str, got: &[f32], want: &([f32; 9], f64, f64), tol: f32) {
    for (&i, &w) in IDX.iter().zip(&want.0) {
        let scale = w.abs().max(1.0);
        assert!(
            (got[i] - w).abs() <= tol * scale,
            "{name}[{i}] = {} vs diffusers {w}",
            got[i]
        );
    }
    let sum: f64 = got.iter().map(|&v| f64::from(v)).sum();
    let abs: f64 = got.iter().map(|&v| f64::from(v).abs()).sum();
    let s = want.2.max(1.0);
    assert!(
        (sum - want.1).abs() <= f64::from(tol) * s,
        "{name} sum {sum}"
    );
    assert!(
        (abs - want.2).abs() <= f64::from(tol) * s,
        "{name} sum abs {abs}"
    );
}

#[test]
fn unet_forward_matches_diffusers() {
    let p = PipelineFolder::open(&fixture()).unwrap();
    assert_eq!(p.class_name, "DDIMPipeline");
    let unet = UNet2DModel::load_dir(&p.component("unet", "UNet2DModel").unwrap()).unwrap();
    let x = input();
    let y = unet.forward(&x, 500.0).unwrap();
    assert_eq!(y.shape, vec![3, 16, 16]);
    check("t500", &y.data, &T500, 2e-5);
    check("t1", &unet.forward(&x, 1.0).unwrap().data, &T1, 2e-5);
    // Deterministic.
    assert_eq!(unet.forward(&x, 500.0).unwrap(), y);
    // A sample of the wrong shape is an error.
    assert!(unet.forward(&Tensor::zeros(&[3, 15, 16]), 1.0).is_err());
    assert!(unet.forward(&Tensor::zeros(&[4, 16, 16]), 1.0).is_err());
}

#[test]
fn ddim_10_steps_match_diffusers() {
    let p = PipelineFolder::open(&fixture()).unwrap();
    let unet = UNet2DModel::load_dir(&p.component("unet", "UNet2DModel").unwrap()).unwrap();
    let mut sch = Ddim::load_dir(&p.component("scheduler", "DDIMScheduler").unwrap()).unwrap();
    sch.set_timesteps(10).unwrap();
    assert_eq!(
        sch.timesteps,
        vec![900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    );
    assert!((sch.alphas_cumprod[999] - 4.035_830_4e-5).abs() < 1e-10);
    let mut s = input();
    for &t in &sch.timesteps {
        let eps = unet.forward(&s, t as f32).unwrap();
        s.data = sch.step(&eps.data, t, &s.data).unwrap();
    }
    // Values grow to ~100 (random weights); relative tolerance.
    check("ddim10", &s.data, &DDIM10, 1e-4);
}

/// Copies the fixture folder to a temp dir (writable).
fn temp_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
    ] {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixture().join(rel), &to).unwrap();
    }
    dir
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn load_unet(dir: &Path) -> Result<UNet2DModel, DiffusionError> {
    let p = PipelineFolder::open(dir)?;
    UNet2DModel::load_dir(&p.component("unet", "UNet2DModel")?)
}

#[test]
fn missing_component_is_a_clear_error() {
    let d = temp_copy();
    std::fs::remove_file(d.path().join("unet/diffusion_pytorch_model.safetensors")).unwrap();
    let e = load_unet(d.path()).unwrap_err();
    assert!(
        matches!(&e, DiffusionError::MissingComponent { component, .. } if component == "unet"),
        "{e}"
    );
    std::fs::remove_dir_all(d.path().join("unet")).unwrap();
    let e = load_unet(d.path()).unwrap_err();
    assert!(matches!(e, DiffusionError::MissingComponent { .. }), "{e}");
    // Not listed in model_index.json.
    let d = temp_copy();
    edit_json(&d.path().join("model_index.json"), |v| {
        v.as_object_mut().unwrap().remove("scheduler");
    });
    let p = PipelineFolder::open(d.path()).unwrap();
    let e = p.component("scheduler", "DDIMScheduler").unwrap_err();
    assert!(matches!(e, DiffusionError::MissingComponent { .. }), "{e}");
    std::fs::remove_file(d.path().join("model_index.json")).unwrap();
    assert!(matches!(
        PipelineFolder::open(d.path()),
        Err(DiffusionError::MissingComponent { .. })
    ));
}

#[test]
fn mismatched_shapes_are_a_clear_error() {
    let d = temp_copy();
    edit_json(&d.path().join("unet/config.json"), |v| {
        v["block_out_channels"] = serde_json::json!([32, 48]);
    });
    let e = load_unet(d.path()).unwrap_err();
    match &e {
        DiffusionError::BadShape {
            name,
            got,
            expected,
        } => {
            assert!(name.starts_with("down_blocks.1."), "{e}");
            assert_ne!(got, expected);
        }
        other => panic!("expected BadShape, got {other}"),
    }
    let d = temp_copy();
    edit_json(&d.path().join("unet/config.json"), |v| {
        v["in_channels"] = serde_json::json!(4);
    });
    let e = load_unet(d.path()).unwrap_err();
    assert!(
        matches!(&e, DiffusionError::BadShape { name, .. } if name == "conv_in.weight"),
        "{e}"
    );
}

#[test]
fn unsupported_block_type_is_a_clear_error() {
    let d = temp_copy();
    edit_json(&d.path().join("unet/config.json"), |v| {
        v["down_block_types"] = serde_json::json!(["DownBlock2D", "SkipDownBlock2D"]);
    });
    let e = load_unet(d.path()).unwrap_err();
    assert!(
        matches!(&e, DiffusionError::Unsupported { name, .. } if name == "SkipDownBlock2D"),
        "{e}"
    );
    assert!(e.to_string().contains("SkipDownBlock2D"));
    let d = temp_copy();
    edit_json(&d.path().join("scheduler/scheduler_config.json"), |v| {
        v["beta_schedule"] = serde_json::json!("squaredcos_cap_v2");
    });
    let e = Ddim::load_dir(&d.path().join("scheduler")).unwrap_err();
    assert!(matches!(e, DiffusionError::Unsupported { .. }), "{e}");
    // A config that is not JSON.
    std::fs::write(d.path().join("unet/config.json"), b"{not json").unwrap();
    assert!(matches!(
        load_unet(d.path()),
        Err(DiffusionError::Config { .. })
    ));
    // Truncated weights.
    let d = temp_copy();
    let f = d.path().join("unet/diffusion_pytorch_model.safetensors");
    let b = std::fs::read(&f).unwrap();
    std::fs::write(&f, &b[..b.len() / 2]).unwrap();
    assert!(matches!(
        load_unet(d.path()),
        Err(DiffusionError::Safetensors { .. })
    ));
}
