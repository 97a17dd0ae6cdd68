//! Image requests served by the node on a real chain (anvil, the real contracts and
//! game factory, the real guest in the VM, real image models):
//!
//! - ddpm-mnist (880-byte PNG, under the 1024-byte inline limit): the callback
//!   receives the PNG bytes, equal to `oracle run`'s for the registered steps and
//!   seed; `oracle request --wait --output` saves the same bytes; a prompt for the
//!   unconditional model is a failed request (nothing submitted), and the other
//!   requests are served;
//! - tiny-unet2d at sample size 24 (the bundled weights, a 24×24 RGB PNG of 1820
//!   bytes): the callback receives the PNG's keccak256; the operator serves the PNG
//!   at `GET /outputs/0x<hash>.png`, also after a restart; `oracle request --output
//!   --fetch-from` saves it, and refuses bytes that do not hash to the posted hash;
//! - a lying operator (`--corrupt-output-for-tests`: the next seed) is challenged by
//!   the validator, loses the one-phase VM game over the image request, and the
//!   true PNG is delivered.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;
use alloy::sol_types::{sol_data, SolType};
use common::{
    append, assert_success, free_port, oracle, start_anvil, start_devnet, wait_for, Chain, Proc,
};
use oracle_contracts::devnet::DevnetConfig;
use oracle_contracts::game::{Bisection, GameClient, Status};
use oracle_contracts::{AIOracle, Prompt};
use oracle_core::commit::merkle::{keccak, to_hex};
use oracle_core::diffusion::request::OUTPUT_INLINE_LIMIT;
use oracle_core::diffusion::sd::DEFAULT_GUIDANCE_Q16;
use oracle_core::{Exec, ImageParams};

/// Long enough for the native run, the VM claim, the window and the finalization.
const FINAL: Duration = Duration::from_secs(300);

/// The guest, built once per test binary.
fn guest() -> &'static [u8] {
    static GUEST: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    GUEST.get_or_init(oracle_tests::guest_elf)
}

/// The 20 local parameter bytes of an image model served with `steps` and `seed`.
fn image_params(steps: u32, seed: u64) -> Vec<u8> {
    params(steps, seed).encode().to_vec()
}

/// The image parameters of `steps` and `seed` (guidance 7.5, which the
/// unconditional models ignore).
fn params(steps: u32, seed: u64) -> ImageParams {
    ImageParams {
        steps,
        seed,
        guidance_q16: DEFAULT_GUIDANCE_Q16,
    }
}

/// tiny-unet2d's bundled weights with `sample_size` 24 in its config (the
/// network is convolutional: the same weights run at any multiple of its
/// down-sampling factor), converted by `oracle-quant`'s library.
fn tiny_unet2d_24() -> Vec<u8> {
    use oracle_quant::image::ddpm::DEFAULT_GROUP;
    use oracle_quant::image::unet2d::{export_unet2d, load_folder};
    let src = oracle_tests::fixtures().join("models/tiny-unet2d");
    let dir = tempfile::tempdir().unwrap();
    for sub in ["unet", "scheduler"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(src.join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(
        src.join("model_index.json"),
        dir.path().join("model_index.json"),
    )
    .unwrap();
    let config = dir.path().join("unet/config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\"sample_size\": 16"));
    std::fs::write(
        &config,
        text.replace("\"sample_size\": 16", "\"sample_size\": 24"),
    )
    .unwrap();
    let (unet, ddim) = load_folder(dir.path()).expect("tiny-unet2d loads");
    export_unet2d(&unet, &ddim, DEFAULT_GROUP).expect("tiny-unet2d exports")
}

/// The PNG of the seeded image request (the path the guest runs).
fn png(model: &[u8], steps: u32, seed: u64) -> Vec<u8> {
    oracle_tests::run_image(model, Exec::default(), b"", params(steps, seed)).unwrap()
}

/// A fresh anvil with the contracts deployed, `model` registered (as
/// `models/<name>`) with the image parameters `(steps, seed)` on the game
/// factory, and operators 1 and 4 bonded.
async fn image_chain(name: &str, model: &[u8], steps: u32, seed: u64, window: u32) -> Chain {
    let mut config = DevnetConfig::default();
    config.model.challengeWindow = window;
    config.sampling_params = image_params(steps, seed);
    config.game_clock = common::GAME_CLOCK;
    Chain::deploy(start_anvil(0, &[]), name, model, guest(), config).await
}

/// The bytes the Prompt contract holds for `prompt` (raw: a PNG is not UTF-8).
async fn delivered(chain: &Chain, prompt: &str) -> Vec<u8> {
    let raw = Prompt::new(chain.prompt, &chain.provider)
        .getAIResult(chain.model_id, prompt.to_string())
        .call_raw()
        .await
        .unwrap();
    <sol_data::Bytes as SolType>::abi_decode(&raw)
        .unwrap()
        .to_vec()
}

/// A node process logging to `<db>.log` in the chain's directory.
fn spawn(chain: &Chain, role: &str, account: usize, db: &str, extra: &[&str]) -> Proc {
    let log = append(&chain.path(&format!("{db}.log")));
    chain.spawn(role, account, db, extra, log)
}

fn log(chain: &Chain, db: &str) -> String {
    std::fs::read_to_string(chain.path(&format!("{db}.log"))).unwrap_or_default()
}

/// `oracle run` on the model file `models/<name>`: the PNG it writes.
fn oracle_run(chain: &Chain, name: &str, steps: u32, seed: u64) -> Vec<u8> {
    let out = chain.path("run.png");
    let status = oracle()
        .arg("run")
        .arg("--model")
        .arg(chain.path("models").join(name))
        .args(["--steps", &steps.to_string(), "--seed", &seed.to_string()])
        .arg("--output")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

/// A devnet state file for `oracle request` against `chain`.
fn state_file(chain: &Chain) -> std::path::PathBuf {
    let path = chain.path("devnet.json");
    let state = serde_json::json!({
        "rpc": chain.rpc,
        "oracle": chain.oracle.to_string(),
        "prompt": chain.prompt.to_string(),
        "model_id": chain.model_id.to::<u64>(),
        "user": chain.accounts[2].0.to_string(),
    });
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    path
}

/// `oracle request --wait --output <out>` with `extra` arguments.
fn oracle_request(chain: &Chain, out: &Path, extra: &[&str]) -> std::process::Output {
    oracle()
        .arg("request")
        .arg("--state-file")
        .arg(state_file(chain))
        .args(["--wait", "--timeout", "300", "--output"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// GET `path` from `addr` (HTTP/1.0): status line and body bytes.
fn http_get(addr: &str, path: &str) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, raw[split + 4..].to_vec())
}

/// An HTTP server that answers every request with `body` (a lying output host).
fn serve_forever(body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let body = Arc::new(body);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}")
}

/// ddpm-mnist, 2 DDPM steps, seed 42: the PNG (880 bytes) is posted and delivered
/// as is, equal to `oracle run`'s; the validator agrees; a prompt is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddpm_mnist_png_is_posted_inline_and_delivered() {
    let (steps, seed) = (2, 42);
    let model = oracle_tests::ddpm_mnist_model_file();
    // The validator re-runs the 2-billion-step VM trace beside the operator's on two
    // cores: the window leaves it time to check before the result finalizes.
    let chain = image_chain("ddpm-mnist.bin", &model, steps, seed, 60).await;
    let mut operator = spawn(&chain, "operator", 1, "op.redb", &[]);
    let mut validator = spawn(&chain, "validator", 3, "val.redb", &[]);

    let bad = chain.ask("a cat").await;
    let good = chain.ask("").await;
    chain.wait_final(good, FINAL).await;
    chain.wait_final(bad, FINAL).await;

    let want = oracle_run(&chain, "ddpm-mnist.bin", steps, seed);
    assert_eq!(want, png(&model, steps, seed));
    assert!(want.len() <= OUTPUT_INLINE_LIMIT, "{} bytes", want.len());
    assert!(want.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(delivered(&chain, "").await, want);
    eprintln!("ddpm-mnist: {} PNG bytes delivered inline", want.len());
    let op_log = log(&chain, "op.redb");
    for line in op_log.lines().filter(|l| l.contains("VM steps")) {
        eprintln!("{line}");
    }
    assert!(
        chain.final_output(bad).await.is_empty(),
        "a prompt to an unconditional model is the error outcome: {op_log}"
    );
    wait_for(
        "the validator's checks of both",
        Duration::from_secs(300),
        || log(&chain, "val.redb").matches("is correct").count() >= 2,
    )
    .await;

    // The client saves the same bytes.
    let out = chain.path("request.png");
    let r = oracle_request(&chain, &out, &[]);
    assert_success(&r, "oracle request");
    assert_eq!(std::fs::read(&out).unwrap(), want);

    operator.stop();
    validator.stop();
    let status = common::status(&chain.path("op.redb"));
    let rejected = status
        .lines()
        .find(|l| l.starts_with(&format!("request {bad} ")))
        .unwrap_or_else(|| panic!("no record of the prompt request: {status}"));
    assert!(
        rejected.contains("finalized") && rejected.contains("unconditional"),
        "{rejected}"
    );
}

/// tiny-unet2d at 24×24, one DDIM step, seed 5: the 1820-byte PNG is posted as its
/// hash, served by the operator (also after a restart) and fetched and checked by
/// `oracle request`, which refuses a host serving other bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_png_is_posted_as_its_hash_and_served_over_http() {
    let (steps, seed) = (1, 5);
    let model = tiny_unet2d_24();
    let chain = image_chain("tiny-unet2d-24.bin", &model, steps, seed, 2).await;
    let addr = format!("127.0.0.1:{}", free_port());
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let http = [
        "--outputs-addr",
        addr.as_str(),
        "--metrics-addr",
        metrics_addr.as_str(),
    ];
    let mut operator = spawn(&chain, "operator", 1, "op.redb", &http);

    let id = chain.ask("").await;
    chain.wait_final(id, FINAL).await;
    let want = png(&model, steps, seed);
    assert_eq!(want, oracle_run(&chain, "tiny-unet2d-24.bin", steps, seed));
    assert!(want.len() > OUTPUT_INLINE_LIMIT, "{} bytes", want.len());
    let hash = keccak(&want);
    assert_eq!(delivered(&chain, "").await, hash.to_vec());
    eprintln!(
        "tiny-unet2d 24x24: {} PNG bytes, posted as {}",
        want.len(),
        to_hex(&hash)
    );
    let path = format!("/outputs/{}.png", to_hex(&hash));
    let (status, body) = http_get(&addr, &path);
    assert!(status.contains("200"), "{status}");
    assert_eq!(keccak(&body), hash);
    assert_eq!(body, want);
    let (status, _) = http_get(&addr, &format!("/outputs/{}.png", to_hex(&[7; 32])));
    assert!(status.contains("404"), "{status}");
    let (status, _) = http_get(&addr, "/outputs/../op.redb");
    assert!(status.contains("404"), "{status}");
    let (status, _) = http_get(&addr, "/metrics");
    assert!(
        status.contains("404"),
        "the public outputs listener serves no metrics: {status}"
    );
    let (_, metrics) = http_get(&metrics_addr, "/metrics");
    assert!(
        String::from_utf8_lossy(&metrics).contains("oracle_submissions_total"),
        "the metrics listener serves the metrics"
    );

    // A restarted node still serves it (from disk, next to its database).
    operator.stop();
    let mut operator = spawn(&chain, "operator", 1, "op.redb", &http);
    wait_for("the restarted node's HTTP", Duration::from_secs(60), || {
        std::net::TcpStream::connect(&addr).is_ok()
    })
    .await;
    let (status, body) = http_get(&addr, &path);
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, want);

    // The client fetches and checks it (a new request: the same parameters, the
    // same image)...
    let out = chain.path("fetched.png");
    let url = format!("http://{addr}");
    let r = oracle_request(&chain, &out, &["--fetch-from", &url]);
    assert_success(&r, "oracle request");
    assert_eq!(std::fs::read(&out).unwrap(), want);
    // ...and refuses other bytes.
    let liar = serve_forever(b"\x89PNG not the image".to_vec());
    let out = chain.path("refused.png");
    let r = oracle_request(&chain, &out, &["--fetch-from", &liar]);
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("refusing"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(!out.exists());
    operator.stop();
}

/// A lying operator (the next seed's image, with its consistent VM trace) is
/// challenged by the validator, loses the one-phase VM game over the image request
/// at one step executed on chain, and the true PNG is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_image_is_challenged_and_the_true_png_delivered() {
    let (steps, seed) = (1, 9);
    let model = oracle_tests::ddpm_mnist_model_file();
    let chain = image_chain("ddpm-mnist.bin", &model, steps, seed, 20).await;
    let mut liar = spawn(
        &chain,
        "operator",
        1,
        "liar.redb",
        &["--fault-wrong-output-for-tests"],
    );
    let mut validator = spawn(&chain, "validator", 3, "val.redb", &[]);
    let started = std::time::Instant::now();
    let id = chain.ask("").await;
    chain.wait_final(id, Duration::from_secs(900)).await;
    eprintln!(
        "the game over a 1-step ddpm-mnist request took {:.0} s from request to final",
        started.elapsed().as_secs_f64()
    );
    let want = png(&model, steps, seed);
    assert_ne!(want, png(&model, steps, seed + 1));
    assert_eq!(delivered(&chain, "").await, want);
    let oracle = AIOracle::new(chain.oracle, &chain.provider);
    let state = GameClient::of_dispute(&oracle, U256::from(1), &chain.provider)
        .await
        .unwrap()
        .state()
        .await
        .unwrap();
    assert_eq!(state.status, Status::ChallengerWins);
    assert_eq!(state.hi - state.lo, 1, "decided at one step: {state:?}");
    let v = log(&chain, "val.redb");
    for line in v.lines().filter(|l| l.contains("recorded our trace")) {
        eprintln!("{line}");
    }
    assert!(v.contains("executing it on chain"), "{v}");
    validator.stop();
    liar.stop();
}

/// `oracle devnet --model <ddpm-mnist file>` registers the image model with its
/// parameters and serves it: `oracle request --wait --output` (no other flag) saves
/// the PNG of the devnet's steps and seed, and so does a request asked from its web
/// console, whose page shows the delivered PNG.
#[test]
fn the_devnet_serves_an_image_model() {
    let dir = tempfile::tempdir().unwrap();
    let model_bytes = oracle_tests::ddpm_mnist_model_file();
    let model = dir.path().join("ddpm.bin");
    std::fs::write(&model, &model_bytes).unwrap();
    let guest_path = dir.path().join("guest.elf");
    std::fs::write(&guest_path, guest()).unwrap();
    let state = dir.path().join("devnet.json");
    let addr = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let devnet = start_devnet(
        oracle()
            .args(["devnet", "--port", "0", "--challenge-window", "2"])
            .args(["--image-steps", "1", "--image-seed", "3", "--no-validator"])
            .args(["--outputs-addr", &addr, "--http", &http])
            .arg("--console-wasm")
            .arg(oracle_tests::wasm_module())
            .arg("--console-ask")
            .arg(oracle_tests::console_module())
            .arg("--model")
            .arg(&model)
            .arg("--guest")
            .arg(&guest_path)
            .arg("--state-file")
            .arg(&state)
            .arg("--data-dir")
            .arg(dir.path().join("data")),
        &state,
    );
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains(&format!("http://{addr}")), "{text}");
    let out = dir.path().join("image.png");
    let r = oracle()
        .args(["request", "--wait", "--timeout", "300"])
        .arg("--state-file")
        .arg(&state)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert_success(&r, "oracle request");
    let want = png(&model_bytes, 1, 3);
    assert_eq!(std::fs::read(&out).unwrap(), want);

    // Asked from the web console in headless Chromium (the empty prompt of an
    // unconditional model): the page shows the PNG the Prompt contract received,
    // byte for byte.
    let shots = tempfile::tempdir().unwrap();
    let page = common::ask_from_the_page(&format!("http://{http}/"), "", shots.path());
    assert_eq!(page.id, "2");
    assert!(
        page.image.src.is_some(),
        "the page shows the delivered image: {page:?}"
    );
    assert_eq!(
        page.image.png_hex.as_deref(),
        Some(hex::encode(&want).as_str()),
        "{}",
        page.image.note
    );
    assert_eq!(page.image.note, "the PNG posted on chain");
    assert!(page.models[0][2] == "image", "{:?}", page.models);
    assert!(
        page.ask_params
            .starts_with("served with the model's registered steps 1, seed 3"),
        "{}",
        page.ask_params
    );
    assert!(
        page.verify
            .starts_with("verified against the chain: this browser's run (image"),
        "{}",
        page.verify
    );
    drop(devnet);
}
