//! tiny-sd: the CLIP tokenizer and text encoder, the cross-attention UNet, the
//! VAE decoder and the whole guided DDIM pipeline, pinned against diffusers.
//!
//! The pinned values were computed with torch 2.x CPU (float32, one thread),
//! diffusers 0.42.1 and transformers in a throwaway venv:
//! ```text
//! pipe = StableDiffusionPipeline.from_pretrained(dir, safety_checker=None)
//! ids = pipe.tokenizer(PROMPT, padding='max_length', max_length=77, truncation=True).input_ids
//! lat = tensor([sin(0.37 i + 0.1) for i in range(256)], float32).reshape(1, 4, 8, 8)
//! emb = pipe.text_encoder(tensor([ids]))[0]
//! pipe.unet(lat, 501, encoder_hidden_states=emb).sample
//! pipe.vae.decode(lat / pipe.vae.config.scaling_factor).sample
//! pipe(PROMPT, latents=lat, num_inference_steps=10, guidance_scale=7.5, output_type='np')
//! ```

// The pinned values are printed by Python with full f32 precision.
#![allow(clippy::excessive_precision)]

use std::path::{Path, PathBuf};

use oracle_quant::diffusion::sd::StableDiffusion;
use oracle_quant::diffusion::{DiffusionError, Tensor};

const PROMPT: &str = "A photo of a  red cat, sitting! it's 42";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-sd")
}

fn latents() -> Tensor {
    let x = (0..256)
        .map(|i| (0.37 * i as f64 + 0.1).sin() as f32)
        .collect();
    Tensor::new(vec![4, 8, 8], x).unwrap()
}

/// Checks values at `idx`, the sum and the sum of absolute values, within
/// `tol` relative to max(1, |expected|).
fn check(name: &str, got: &[f32], idx: &[usize], want: &[f32], sum: f64, abs: f64, tol: f64) {
    for (&i, &w) in idx.iter().zip(want) {
        let s = f64::from(w.abs()).max(1.0);
        assert!(
            (f64::from(got[i]) - f64::from(w)).abs() <= tol * s,
            "{name}[{i}] = {} vs diffusers {w}",
            got[i]
        );
    }
    let gs: f64 = got.iter().map(|&v| f64::from(v)).sum();
    let ga: f64 = got.iter().map(|&v| f64::from(v).abs()).sum();
    assert!(
        (gs - sum).abs() <= tol * abs.max(1.0),
        "{name} sum {gs} vs {sum}"
    );
    assert!(
        (ga - abs).abs() <= tol * abs.max(1.0),
        "{name} sum abs {ga} vs {abs}"
    );
}

#[test]
fn tiny_sd_matches_diffusers() {
    let sd = StableDiffusion::load_dir(&fixture()).unwrap();
    // Tokenizer (CLIPTokenizer of transformers).
    let ids = sd.tokenizer.encode_padded(PROMPT);
    assert_eq!(ids.len(), 77);
    assert_eq!(
        ids[..16],
        [960, 320, 878, 855, 320, 891, 710, 267, 915, 256, 820, 6, 338, 275, 273, 961]
    );
    assert!(ids[16..].iter().all(|&i| i == 961));
    assert_eq!(sd.tokenizer.encode_padded("")[..3], [960, 961, 961]);

    // Text encoder: last_hidden_state (77, 32).
    let emb = sd.text_encoder.forward(&ids).unwrap();
    assert_eq!(emb.shape, vec![77, 32]);
    check(
        "emb",
        &emb.data,
        &[0, 33, 100, 1000, 2463],
        &[
            -1.301_280_856_132_507_3,
            -0.660_645_365_715_026_9,
            -2.431_690_931_320_190_4,
            1.175_848_722_457_885_7,
            -1.699_763_536_453_247,
        ],
        20.901_716_635_271_44,
        1_983.389_753_412_746_4,
        2e-5,
    );

    // UNet2DConditionModel at t = 501 with those embeddings.
    let lat = latents();
    let eps = sd.unet.forward(&lat, 501.0, &emb).unwrap();
    assert_eq!(eps.shape, vec![4, 8, 8]);
    check(
        "unet",
        &eps.data,
        &[0, 5, 100, 200, 255],
        &[
            -0.127_060_681_581_497_2,
            0.403_121_054_172_515_87,
            -0.475_289_672_613_143_9,
            -0.207_356_870_174_407_96,
            -0.204_951_360_821_723_94,
        ],
        7.688_714_739_866_555,
        95.156_305_165_030_06,
        2e-5,
    );

    // VAE decoder of lat / scaling_factor.
    let mut z = lat.clone();
    z.data.iter_mut().for_each(|v| *v /= 0.18215);
    let img = sd.vae.decode(&z).unwrap();
    assert_eq!(img.shape, vec![3, 16, 16]);
    let j = [0, 17, 300, 500, 767];
    check(
        "vae",
        &img.data,
        &j,
        &[
            0.130_685_254_931_449_9,
            0.035_448_882_728_815_08,
            0.209_547_728_300_094_6,
            0.331_230_878_829_956_05,
            0.066_793_419_420_719_15,
        ],
        123.377_011_223_929,
        250.442_076_743_347_57,
        2e-5,
    );

    // The whole pipeline: 10 DDIM steps, guidance 7.5, decoded to [0, 1].
    let out = sd.generate(PROMPT, &lat, 10, 7.5).unwrap();
    assert_eq!(out.shape, vec![3, 16, 16]);
    check(
        "image",
        &out.data,
        &j,
        &[
            0.525_430_798_530_578_6,
            0.409_361_064_434_051_5,
            0.121_938_109_397_888_18,
            0.332_412_958_145_141_6,
            0.494_788_318_872_451_8,
        ],
        439.045_273_780_822_75,
        439.045_273_780_822_75,
        1e-4,
    );
    // Deterministic.
    assert_eq!(sd.generate(PROMPT, &lat, 10, 7.5).unwrap(), out);
}

/// Copies the fixture folder to a temp dir.
fn temp_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture();
    for entry in std::fs::read_dir(&root).unwrap() {
        let p = entry.unwrap().path();
        let to = dir.path().join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(&p).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
            }
        } else {
            std::fs::copy(&p, &to).unwrap();
        }
    }
    dir
}

#[test]
fn bad_tiny_sd_folders_are_clear_errors() {
    // A missing component.
    let d = temp_copy();
    std::fs::remove_dir_all(d.path().join("vae")).unwrap();
    let e = StableDiffusion::load_dir(d.path()).unwrap_err();
    assert!(
        matches!(&e, DiffusionError::MissingComponent { component, .. } if component == "vae"),
        "{e}"
    );
    // A missing tokenizer file.
    let d = temp_copy();
    std::fs::remove_file(d.path().join("tokenizer/merges.txt")).unwrap();
    let e = StableDiffusion::load_dir(d.path()).unwrap_err();
    assert!(
        matches!(&e, DiffusionError::MissingComponent { component, .. } if component == "tokenizer"),
        "{e}"
    );
    // Mismatched shapes: the config says 40 cross-attention channels.
    let d = temp_copy();
    let cfg = d.path().join("unet/config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["cross_attention_dim"] = serde_json::json!(40);
    std::fs::write(&cfg, serde_json::to_vec(&v).unwrap()).unwrap();
    let e = StableDiffusion::load_dir(d.path()).unwrap_err();
    assert!(
        matches!(&e, DiffusionError::BadShape { name, .. } if name.contains("attn2.to_k")),
        "{e}"
    );
    // An unsupported block type.
    v["cross_attention_dim"] = serde_json::json!(32);
    v["up_block_types"] = serde_json::json!(["UpBlock2D", "KCrossAttnUpBlock2D"]);
    std::fs::write(&cfg, serde_json::to_vec(&v).unwrap()).unwrap();
    let e = StableDiffusion::load_dir(d.path()).unwrap_err();
    assert!(
        matches!(&e, DiffusionError::Unsupported { name, .. } if name == "KCrossAttnUpBlock2D"),
        "{e}"
    );
    // The wrong class for a component.
    let d = temp_copy();
    let idx = d.path().join("model_index.json");
    let s = std::fs::read_to_string(&idx)
        .unwrap()
        .replace("AutoencoderKL", "AutoencoderTiny");
    std::fs::write(&idx, s).unwrap();
    assert!(matches!(
        StableDiffusion::load_dir(d.path()),
        Err(DiffusionError::Unsupported { .. })
    ));
}

#[test]
fn tokenizer_matches_transformers() {
    // CLIPTokenizer.from_pretrained(tokenizer)(text).input_ids
    let sd_tok =
        oracle_quant::diffusion::clip::ClipTokenizer::load_dir(&fixture().join("tokenizer"))
            .unwrap();
    let cases: [(&str, &[u32]); 6] = [
        ("hello world", &[960, 71, 755, 75, 334, 86, 519, 540, 961]),
        (
            "The QUICK brown fox; jumps... over the lazy dog!!",
            &[
                960, 936, 884, 72, 66, 330, 694, 552, 343, 282, 73, 84, 76, 79, 338, 13, 13, 269,
                862, 936, 530, 89, 344, 745, 0, 256, 961,
            ],
        ),
        (
            "you're we've they'll i'd don't",
            &[
                960, 88, 78, 340, 6, 599, 86, 324, 6, 609, 562, 68, 344, 6, 75, 331, 328, 6, 323,
                738, 333, 6, 339, 961,
            ],
        ),
        (
            "zzzqx 1999 $%&",
            &[960, 89, 89, 89, 80, 343, 272, 280, 280, 280, 3, 4, 261, 961],
        ),
        (
            "naïve café",
            &[960, 77, 64, 127, 107, 609, 523, 69, 127, 358, 961],
        ),
        (
            "  tabs\tand\nnewlines  ",
            &[960, 83, 567, 338, 634, 593, 86, 75, 512, 68, 338, 961],
        ),
    ];
    for (text, want) in cases {
        let mut ids = vec![sd_tok.bos];
        ids.extend(sd_tok.encode_raw(text));
        ids.push(sd_tok.eos);
        assert_eq!(ids, want, "{text:?}");
    }
}

#[test]
fn bad_inputs_are_errors() {
    let sd = StableDiffusion::load_dir(&fixture()).unwrap();
    let emb = sd.encode_prompt("a cat").unwrap();
    assert!(sd
        .unet
        .forward(&Tensor::zeros(&[4, 7, 8]), 1.0, &emb)
        .is_err());
    assert!(sd
        .unet
        .forward(&latents(), 1.0, &Tensor::zeros(&[77, 31]))
        .is_err());
    assert!(sd.vae.decode(&Tensor::zeros(&[3, 8, 8])).is_err());
    assert!(sd.text_encoder.forward(&[1000]).is_err());
    assert!(sd.text_encoder.forward(&[1; 78]).is_err());
    assert!(sd.generate("a cat", &latents(), 0, 7.5).is_err());
    // A long prompt is truncated to 77 tokens with eos last.
    let ids = sd.tokenizer.encode_padded(&"the cat ".repeat(60));
    assert_eq!(ids.len(), 77);
    assert_eq!(ids[76], 961);
}
