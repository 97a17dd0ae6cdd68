//! Shared helpers for the workspace-level tests: fixture paths, model files
//! converted from the bundled checkpoints, golden-file checks ([`golden`]) and
//! scratch copies of fixture folders ([`scratch`]).

use std::path::PathBuf;

use oracle_core::quant::QType;
use oracle_quant::checkpoint;
use oracle_quant::export::{export, QuantOptions};
use oracle_quant::float_model::FloatModel;

pub mod counting_alloc;
pub mod golden;
pub mod hostile;
pub mod scratch;

/// Build the guest program for riscv32im (`hosts/guest/build.sh`, a nested cargo
/// build with its own target directory) and return the ELF. Panics with the fix
/// when the build fails.
pub fn guest_elf() -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hosts/guest");
    let ok = std::process::Command::new("bash")
        .arg(dir.join("build.sh"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "building the guest failed (needs `rustup target add riscv32im-unknown-none-elf`)"
    );
    std::fs::read(dir.join("target/riscv32im-unknown-none-elf/release/oracle-guest"))
        .expect("guest ELF")
}

/// Build the core's WebAssembly module (`oracle-wasm` for wasm32-unknown-unknown,
/// a nested cargo build with its own target directory so it never waits on the
/// running build's lock) and return its path. Panics with the fix when the build
/// fails.
pub fn wasm_module() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/wasm-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = std::process::Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "oracle-wasm",
            "--target",
            "wasm32-unknown-unknown",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "building the wasm module failed (needs `rustup target add wasm32-unknown-unknown`)"
    );
    target.join("wasm32-unknown-unknown/release/oracle_wasm.wasm")
}

/// Build the web console's chain module (`hosts/node/console/build.sh`: `ask.js`
/// bundled with viem by esbuild, the npm packages pinned by its lockfile) into
/// `target/console/ask.js` once per test process, and return its path. Panics with
/// the fix when the build fails.
pub fn console_module() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let out = root.join("target/console/ask.js");
            let ok = std::process::Command::new("bash")
                .arg(root.join("hosts/node/console/build.sh"))
                .arg(&out)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                ok,
                "building the console's chain module failed (needs node and npm: bash .ci/install.sh)"
            );
            out
        })
        .clone()
}

/// The script that drives the web console in the system's headless Chromium
/// (playwright-core, installed by [`console_module`]'s build).
pub fn console_driver() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hosts/node/console/test/drive.mjs")
}

/// The repository's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A bundled LLaMA-family model: name, checkpoint and tokenizer paths.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    /// Short name.
    pub name: &'static str,
    /// Checkpoint path under `fixtures/models`.
    pub checkpoint: &'static str,
    /// Tokenizer path under `fixtures/models` (a Hugging Face `tokenizer.json`
    /// folder for byte-level BPE).
    pub tokenizer: &'static str,
}

/// The bundled LLaMA-family models: two llama2.c models, a tiny Llama 3
/// (transformers' format: `llama3` RoPE scaling, theta 500000, GQA, tied
/// embeddings) and a tiny Qwen2 (q/k/v biases), both random weights with
/// stories260K's vocabulary, and the same two with byte-level BPE vocabularies of
/// their families (Llama 3's pre-tokenizer, Qwen2's with NFC; 512 tokens, from
/// `fixtures/tokenizers/`).
pub const LLAMA_FIXTURES: [Fixture; 6] = [
    Fixture {
        name: "stories260K",
        checkpoint: "stories260K/stories260K.bin",
        tokenizer: "stories260K/tok512.bin",
    },
    Fixture {
        name: "aidreams260K",
        checkpoint: "aidreams260K/aidreams260K.bin",
        tokenizer: "aidreams260K/tok512.bin",
    },
    Fixture {
        name: "tiny-llama3",
        checkpoint: "tiny-llama3",
        tokenizer: "stories260K/tok512.bin",
    },
    Fixture {
        name: "tiny-qwen2",
        checkpoint: "tiny-qwen2",
        tokenizer: "stories260K/tok512.bin",
    },
    Fixture {
        name: "tiny-llama3-bpe",
        checkpoint: "tiny-llama3",
        tokenizer: "../tokenizers/llama3",
    },
    Fixture {
        name: "tiny-qwen2-bpe",
        checkpoint: "tiny-qwen2",
        tokenizer: "../tokenizers/qwen2",
    },
];

impl Fixture {
    /// Import the float checkpoint.
    pub fn float_model(&self) -> FloatModel {
        let models = fixtures().join("models");
        checkpoint::load(
            &models.join(self.checkpoint),
            Some(&models.join(self.tokenizer)),
        )
        .unwrap_or_else(|e| panic!("loading fixture {}: {e}", self.name))
    }

    /// Convert to a model file with the default options for `qtype`.
    pub fn model_file(&self, qtype: QType) -> Vec<u8> {
        export(
            &self.float_model(),
            QuantOptions::for_type(qtype),
            |_, _| {},
        )
        .unwrap_or_else(|e| panic!("converting fixture {}: {e}", self.name))
        .bytes
    }
}

/// The bundled ddpm-mnist checkpoint as an integer image model file (Q8).
pub fn ddpm_mnist_model_file() -> Vec<u8> {
    use oracle_quant::diffusion::ddpm_mnist::DdpmMnist;
    use oracle_quant::image::ddpm::{export_ddpm_mnist, DEFAULT_GROUP};
    let float = DdpmMnist::load_pth(&fixtures().join("models/ddpm-mnist/ddpm_mnist.pth"))
        .expect("ddpm-mnist loads");
    export_ddpm_mnist(&float, DEFAULT_GROUP).expect("ddpm-mnist exports")
}

/// The bundled tiny-unet2d diffusers folder as an integer image model file (Q8).
pub fn tiny_unet2d_model_file() -> Vec<u8> {
    use oracle_quant::image::ddpm::DEFAULT_GROUP;
    use oracle_quant::image::unet2d::{export_unet2d, load_folder};
    let (unet, ddim) = load_folder(&fixtures().join("models/tiny-unet2d")).expect("loads");
    export_unet2d(&unet, &ddim, DEFAULT_GROUP).expect("tiny-unet2d exports")
}

/// The bundled tiny-sd diffusers pipeline as an integer image model file (Q8).
pub fn tiny_sd_model_file() -> Vec<u8> {
    use oracle_quant::image::ddpm::DEFAULT_GROUP;
    use oracle_quant::image::sd::{export_sd, load_folder};
    let pipeline = load_folder(&fixtures().join("models/tiny-sd")).expect("tiny-sd loads");
    export_sd(&pipeline, DEFAULT_GROUP).expect("tiny-sd exports")
}

/// The PNG of an image request on the model file `bytes`, through the core's one
/// entry point ([`oracle_core::AnyModel::run`], the path of the guest, the node and
/// `oracle run`), or why the request is rejected.
pub fn run_image(
    bytes: &[u8],
    exec: oracle_core::Exec,
    prompt: &[u8],
    params: oracle_core::ImageParams,
) -> Result<Vec<u8>, oracle_core::model::Rejection> {
    use oracle_core::model::Rejection;
    use oracle_core::{AnyModel, Outcome, Request};
    let model = AnyModel::load(bytes).map_err(Rejection::Model)?;
    match model.run(exec, &Request::image(prompt, params), |_| {}) {
        Outcome::Image { png } => Ok(png),
        Outcome::Rejected(why) => Err(why),
        Outcome::Text { .. } => panic!("an image model posted a text"),
    }
}
