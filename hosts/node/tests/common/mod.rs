//! A real chain for the node tests: anvil (from npm), AIOracle + Prompt deployed
//! with stories260K (W8) registered under its real model root and the guest's
//! program hash, bonded operators, and helpers to run the `oracle` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use alloy::node_bindings::AnvilInstance;
use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use oracle_contracts::devnet::{deploy, transact, DevnetConfig};
use oracle_contracts::testing::{request, spawn_anvil};
use oracle_contracts::{AIOracle, Prompt};
use oracle_core::quant::QType;
use oracle_tests::LLAMA_FIXTURES;

/// Positions per request in the tests (few, to keep the VM runs short).
pub const STEPS: &str = "16";

/// Seconds each side of a dispute game has for all its moves.
pub const GAME_CLOCK: u32 = 90;

/// The model file and the guest, built once per test binary.
pub fn assets() -> &'static (Vec<u8>, Vec<u8>) {
    static ASSETS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    ASSETS.get_or_init(|| {
        (
            LLAMA_FIXTURES[0].model_file(QType::Q8),
            oracle_tests::guest_elf(),
        )
    })
}

/// The guest's program hash (its absolute prestate).
pub fn program_hash(guest: &[u8]) -> B256 {
    let oracle = Arc::new(oracle_fpvm::preimage::InMemoryOracle::new());
    let mut vm = oracle_fpvm::Vm::from_elf(guest, oracle).expect("guest ELF");
    vm.state_hash().into()
}

/// A deployed chain.
pub struct Chain {
    /// The anvil process (dropped = stopped).
    pub anvil: Option<AnvilInstance>,
    /// RPC URL.
    pub rpc: String,
    /// Provider using anvil's unlocked accounts.
    pub provider: DynProvider,
    /// AIOracle.
    pub oracle: Address,
    /// Prompt.
    pub prompt: Address,
    /// The registered stories260K id.
    pub model_id: U256,
    /// anvil's accounts and their keys (hex).
    pub accounts: Vec<(Address, String)>,
    /// Temp dir with `models/` and `guest.elf`.
    pub dir: tempfile::TempDir,
}

/// A free TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start anvil on `port` (0 = any), with `extra` arguments.
pub fn start_anvil(port: u16, extra: &[&str]) -> AnvilInstance {
    spawn_anvil(port, extra).unwrap()
}

impl Chain {
    /// Deploy on a fresh anvil; model window `window` seconds; accounts 1 and 4 bonded.
    pub async fn new(window: u32) -> Chain {
        Self::on(start_anvil(0, &[]), window).await
    }

    /// A fresh anvil whose model's disputes are two-phase games.
    pub async fn two_phase(window: u32) -> Chain {
        Self::on_with(start_anvil(0, &[]), window, true, STEPS).await
    }

    /// Deploy on `anvil`.
    pub async fn on(anvil: AnvilInstance, window: u32) -> Chain {
        Self::on_with(anvil, window, false, STEPS).await
    }

    /// Deploy on `anvil`; `two_phase` picks the model's game, `steps` the positions
    /// its games check (the nodes must run `--steps` as many).
    pub async fn on_with(anvil: AnvilInstance, window: u32, two_phase: bool, steps: &str) -> Chain {
        Self::stories(anvil, Self::config(window, two_phase, steps)).await
    }

    /// The devnet configuration of the test model: challenge window `window`
    /// seconds, `two_phase` its game, `steps` the positions its games check.
    pub fn config(window: u32, two_phase: bool, steps: &str) -> DevnetConfig {
        let mut config = DevnetConfig::default();
        config.model.challengeWindow = window;
        config.sampling_params = oracle_contracts::devnet::greedy_params(steps.parse().unwrap());
        config.two_phase = two_phase;
        config
    }

    /// Deploy the test model (stories260K) on `anvil` with `config` (its clock set
    /// to [`GAME_CLOCK`]).
    pub async fn stories(anvil: AnvilInstance, mut config: DevnetConfig) -> Chain {
        config.game_clock = GAME_CLOCK;
        Self::stories_with_clock(anvil, config).await
    }

    /// Deploy the test model (stories260K) on `anvil` with `config` as it is.
    pub async fn stories_with_clock(anvil: AnvilInstance, config: DevnetConfig) -> Chain {
        let (model, guest) = assets();
        Self::deploy(anvil, "stories260K-q8.bin", model, guest, config).await
    }

    /// Deploy on `anvil` with `config` and `model` (written as `models/<name>`)
    /// registered under its root and `guest`'s program hash; operators 1, 4 and 5
    /// bonded (5 is a sock puppet in some tests).
    pub async fn deploy(
        anvil: AnvilInstance,
        name: &str,
        model: &[u8],
        guest: &[u8],
        mut config: DevnetConfig,
    ) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("models")).unwrap();
        std::fs::write(dir.path().join("models").join(name), model).unwrap();
        std::fs::write(dir.path().join("guest.elf"), guest).unwrap();
        let rpc = anvil.endpoint_url().to_string();
        let provider = ProviderBuilder::new()
            .connect_http(anvil.endpoint_url())
            .erased();
        let accounts: Vec<(Address, String)> = anvil
            .addresses()
            .iter()
            .zip(anvil.keys())
            .map(|(a, k)| (*a, hex::encode(k.to_bytes())))
            .collect();
        config.model.modelRoot = oracle_core::commit::merkle::model_root(model).into();
        config.model.programHash = program_hash(guest);
        let d = deploy(&provider, accounts[0].0, &config).await.unwrap();
        let oracle = AIOracle::new(d.oracle, &provider);
        for i in [1usize, 4, 5] {
            let bond = oracle
                .bond()
                .value(config.submission_bond * U256::from(50))
                .from(accounts[i].0);
            transact(bond, "bond").await.unwrap();
        }
        Chain {
            anvil: Some(anvil),
            rpc,
            provider,
            oracle: d.oracle,
            prompt: d.prompt,
            model_id: d.model_id,
            accounts,
            dir,
        }
    }

    /// Gas used by the transactions of `from` to any of `to`, and their count, in
    /// the whole chain.
    pub async fn gas_of(&self, from: Address, to: &[Address]) -> (u64, usize) {
        let head = self.provider.get_block_number().await.unwrap();
        let (mut gas, mut count) = (0u64, 0usize);
        for n in 0..=head {
            let block = self
                .provider
                .get_block_by_number(n.into())
                .await
                .unwrap()
                .unwrap();
            for hash in block.transactions.hashes() {
                let r = self
                    .provider
                    .get_transaction_receipt(hash)
                    .await
                    .unwrap()
                    .unwrap();
                if r.from == from && r.to.is_some_and(|t| to.contains(&t)) {
                    gas += r.gas_used;
                    count += 1;
                }
            }
        }
        (gas, count)
    }

    /// Path in the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `oracle <role>` against this chain with account `account`'s key.
    pub fn node(&self, role: &str, account: usize, db: &str, extra: &[&str]) -> Command {
        self.node_steps(role, account, db, STEPS, extra)
    }

    /// [`Chain::node`] running `steps` positions per request.
    pub fn node_steps(
        &self,
        role: &str,
        account: usize,
        db: &str,
        steps: &str,
        extra: &[&str],
    ) -> Command {
        if extra.iter().any(|a| a.starts_with("--fault-")) {
            let probe = oracle()
                .arg(role)
                .args(extra)
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                probe.status.success(),
                "this test needs the node's test faults: run it as `cargo test -p oracle-node --features test-faults` (.ci/test does)\n{}",
                String::from_utf8_lossy(&probe.stderr)
            );
        }
        let mut c = oracle();
        c.arg(role)
            .args(["--rpc", &self.rpc, "--oracle", &self.oracle.to_string()])
            .args(["--key", "env:TEST_NODE_KEY", "--steps", steps])
            .args(if extra.contains(&"--poll-ms") {
                &[][..]
            } else {
                &["--poll-ms", "100"][..]
            })
            .arg("--models")
            .arg(self.path("models"))
            .arg("--guest")
            .arg(self.path("guest.elf"))
            .arg("--db")
            .arg(self.path(db))
            .args(extra)
            .env("TEST_NODE_KEY", &self.accounts[account].1)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null());
        c
    }

    /// [`Chain::node`] started, its stderr to `stderr` (`Stdio::null()`, a log file).
    pub fn spawn(
        &self,
        role: &str,
        account: usize,
        db: &str,
        extra: &[&str],
        stderr: impl Into<Stdio>,
    ) -> Proc {
        Proc(
            self.node(role, account, db, extra)
                .stderr(stderr)
                .spawn()
                .unwrap(),
        )
    }

    /// Ask Prompt for `prompt` from account 2; returns the request id.
    pub async fn ask(&self, prompt: &str) -> U256 {
        let p = Prompt::new(self.prompt, &self.provider);
        let fee = p.estimateFee(self.model_id).call().await.unwrap();
        let call = p
            .calculateAIResult(self.model_id, prompt.to_string())
            .value(fee)
            .from(self.accounts[2].0);
        let id = call.call().await.unwrap();
        transact(call, "calculateAIResult").await.unwrap();
        id
    }

    /// A raw request straight to the oracle (any input bytes, any callback) from
    /// account 2.
    pub async fn ask_raw(&self, model: U256, input: Vec<u8>, callback: Address) -> U256 {
        let o = AIOracle::new(self.oracle, &self.provider);
        request(&o, model, &input, callback, self.accounts[2].0)
            .await
            .unwrap()
    }

    /// Wait until request `id` is final; on a timeout, fail with the tails of the
    /// nodes' `*.log` files in the temp dir.
    pub async fn wait_final(&self, id: U256, timeout: Duration) {
        let o = AIOracle::new(self.oracle, &self.provider);
        let started = Instant::now();
        while !o.isFinalized(id).call().await.unwrap() {
            if started.elapsed() >= timeout {
                panic!(
                    "request {id} not final after {timeout:?}\n{}",
                    log_tails(self.dir.path(), 60)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Wait until the log file `name` (in the temp dir) contains `needle`; on a
    /// timeout, fail with the tails of the nodes' logs.
    pub async fn wait_log(&self, name: &str, needle: &str, timeout: Duration) {
        let path = self.path(name);
        let started = Instant::now();
        while !std::fs::read_to_string(&path)
            .unwrap_or_default()
            .contains(needle)
        {
            if started.elapsed() >= timeout {
                panic!(
                    "{name} has no {needle:?} after {timeout:?}\n{}",
                    log_tails(self.dir.path(), 60)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The tails of the nodes' logs in the temp dir (for a failing assertion).
    pub fn log_tails(&self) -> String {
        log_tails(self.dir.path(), 80)
    }

    /// Wait until the log file `name` (in the temp dir) contains `needle` at least
    /// `count` times; on a timeout, fail with the tails of the nodes' logs.
    pub async fn wait_log_count(&self, name: &str, needle: &str, count: usize, timeout: Duration) {
        let path = self.path(name);
        let started = Instant::now();
        while std::fs::read_to_string(&path)
            .unwrap_or_default()
            .matches(needle)
            .count()
            < count
        {
            if started.elapsed() >= timeout {
                panic!(
                    "{name} has fewer than {count} {needle:?} after {timeout:?}\n{}",
                    log_tails(self.dir.path(), 80)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `ResultSubmitted` events per request id.
    pub async fn submissions(&self, id: U256) -> Vec<AIOracle::ResultSubmitted> {
        let filter = Filter::new()
            .address(self.oracle)
            .event_signature(AIOracle::ResultSubmitted::SIGNATURE_HASH)
            .topic1(B256::from(id))
            .from_block(0);
        self.provider
            .get_logs(&filter)
            .await
            .unwrap()
            .iter()
            .map(|l| {
                l.log_decode::<AIOracle::ResultSubmitted>()
                    .unwrap()
                    .inner
                    .data
            })
            .collect()
    }

    /// The `DisputeResolved` events, in order: (dispute id, challenger won).
    pub async fn resolutions(&self) -> Vec<(U256, bool)> {
        let filter = Filter::new()
            .address(self.oracle)
            .event_signature(AIOracle::DisputeResolved::SIGNATURE_HASH)
            .from_block(0);
        self.provider
            .get_logs(&filter)
            .await
            .unwrap()
            .iter()
            .map(|l| {
                let e = l
                    .log_decode::<AIOracle::DisputeResolved>()
                    .unwrap()
                    .inner
                    .data;
                (e.disputeId, e.challengerWon)
            })
            .collect()
    }

    /// The output delivered when request `id` finalized (`AICallbackResult`).
    pub async fn final_output(&self, id: U256) -> Vec<u8> {
        let filter = Filter::new()
            .address(self.oracle)
            .event_signature(AIOracle::AICallbackResult::SIGNATURE_HASH)
            .topic2(B256::from(id))
            .from_block(0);
        let logs = self.provider.get_logs(&filter).await.unwrap();
        logs.iter()
            .find_map(|l| l.log_decode::<AIOracle::AICallbackResult>().ok())
            .map(|l| l.inner.data.output.to_vec())
            .expect("an AICallbackResult event")
    }

    /// Every transaction `from` sent, with its receipt status.
    pub async fn txs_from(&self, from: Address) -> Vec<(B256, bool)> {
        let head = self.provider.get_block_number().await.unwrap();
        let mut out = Vec::new();
        for n in 0..=head {
            let block = self
                .provider
                .get_block_by_number(n.into())
                .full()
                .await
                .unwrap()
                .unwrap();
            for tx in block.transactions.into_transactions() {
                if tx.inner.signer() == from {
                    let h = *tx.inner.tx_hash();
                    let r = self
                        .provider
                        .get_transaction_receipt(h)
                        .await
                        .unwrap()
                        .unwrap();
                    out.push((h, r.status()));
                }
            }
        }
        out
    }
}

/// `path` opened for appending (created if missing), for a process's log.
pub fn append(path: &Path) -> std::fs::File {
    std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Keccak of bytes as B256 (for payload hashes).
pub fn hash(b: &[u8]) -> B256 {
    keccak256(b)
}

/// A child process stopped with SIGINT (clean shutdown) when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// Stop with SIGINT and wait.
    pub fn stop(&mut self) {
        // Safety: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Kill with SIGKILL (a crash: no clean shutdown) and wait.
    pub fn crash(&mut self) {
        // Safety: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.running() {
            self.stop();
        }
    }
}

/// The `oracle` binary under test.
pub fn oracle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oracle"))
}

/// Assert that a finished `oracle` run (`what`) succeeded; its stderr otherwise.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `oracle status --list --db <db>` output.
pub fn status(db: &Path) -> String {
    let out = oracle()
        .args(["status", "--list", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert_success(&out, "oracle status");
    String::from_utf8(out.stdout).unwrap()
}

/// `devnet` (an `oracle devnet` command, stdout silenced) started and come up: it
/// wrote its state file `state` within 120 s without exiting. Dropping it stops it
/// with Ctrl-C (SIGINT), so it shuts anvil down, even on failure.
pub fn start_devnet(devnet: &mut Command, state: &Path) -> Proc {
    let mut devnet = Proc(
        devnet
            .stdout(Stdio::null())
            .spawn()
            .expect("starting oracle devnet"),
    );
    let started = Instant::now();
    while !state.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the devnet did not come up"
        );
        assert!(devnet.running(), "oracle devnet exited early");
        std::thread::sleep(Duration::from_millis(200));
    }
    devnet
}

/// Wait until `f` holds.
pub async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET `path` from `addr` over plain HTTP/1.0 (for the metrics endpoint); the body.
pub fn http_get(addr: &str, path: &str) -> String {
    http_get_status(addr, path).1
}

/// GET `path` from `addr` over plain HTTP/1.0: the status code and the body.
pub fn http_get_status(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connecting to the node's listener");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (code, body)
}

/// `oracle status --list --node http://addr`: a running node read through its API.
pub fn status_via_api(addr: &str) -> String {
    let out = oracle()
        .args(["status", "--list", "--node"])
        .arg(format!("http://{addr}"))
        .output()
        .unwrap();
    assert_success(&out, "oracle status --node");
    String::from_utf8(out.stdout).unwrap()
}

/// A metric's value from a Prometheus text page (first line starting with `name`).
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The last `lines` lines of every `*.log` file in `dir`, each under its name.
fn log_tails(dir: &Path, lines: usize) -> String {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    logs.retain(|p| p.extension().is_some_and(|e| e == "log"));
    logs.sort();
    let mut out = String::new();
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        out.push_str(&format!(
            "---- {} (last {} lines)\n",
            log.display(),
            tail.len()
        ));
        out.push_str(&tail.join("\n"));
        out.push('\n');
    }
    out
}

/// What `hosts/node/console/test/drive.mjs` saw of one request asked from the page.
#[derive(Debug, serde::Deserialize)]
pub struct Drive {
    /// The request id the page sent.
    pub id: String,
    /// The fee the page showed.
    pub fee: String,
    /// Who the page said signs.
    pub signer: String,
    /// The parameters the page said the request is served with (image models).
    pub ask_params: String,
    /// The delivered text (empty for an image).
    pub delivered: String,
    /// What "verify in this browser" said of the request.
    pub verify: String,
    /// The delivered image the page shows.
    pub image: Image,
    /// What the page showed while watching.
    pub seen: Seen,
    /// The on-chain table's rows at the end.
    pub chain: Vec<Vec<String>>,
    /// The move table's rows at the end.
    pub moves: Vec<Vec<String>>,
    /// The games table's rows at the end.
    pub games: Vec<Vec<String>>,
    /// The gas-by-side line.
    pub gas: String,
    /// The list view's models table, after the request.
    pub models: Vec<Vec<String>>,
    /// The list view's operators table (with the chain's figures).
    pub operators: Vec<Vec<String>>,
    /// The list view's node figures (its metrics).
    pub figures: Vec<Vec<String>>,
    /// Errors the page threw.
    pub failures: Vec<String>,
}

/// A delivered image as the page shows it.
#[derive(Debug, serde::Deserialize)]
pub struct Image {
    /// The `img` element's data URL, if one is shown.
    pub src: Option<String>,
    /// What the page says about it.
    pub note: String,
    /// The bytes of the PNG shown, in hex (decoded from `src` by the driver).
    pub png_hex: Option<String>,
}

/// The chain states and move counts the page showed while the request was watched.
#[derive(Debug, serde::Deserialize)]
pub struct Seen {
    /// Chain states, in the order shown.
    pub status: Vec<String>,
    /// Move-table sizes, in the order shown.
    pub moves: Vec<usize>,
    /// Challenge-window countdowns shown.
    pub window: Vec<String>,
}

/// Open the console at `url` in headless Chromium, ask `prompt` from the page (the
/// Send button) and watch the request until the chain says it was delivered;
/// screenshots go to `shots`.
pub fn ask_from_the_page(url: &str, prompt: &str, shots: &Path) -> Drive {
    ask_from_the_page_with(url, prompt, shots, None)
}

/// [`ask_from_the_page`], signing with an injected EIP-1193 wallet backed by the
/// unlocked accounts of `wallet_rpc` when given.
pub fn ask_from_the_page_with(
    url: &str,
    prompt: &str,
    shots: &Path,
    wallet_rpc: Option<&str>,
) -> Drive {
    let mut driver = Command::new("node");
    if let Some(rpc) = wallet_rpc {
        driver.env("WALLET_RPC", rpc);
    }
    let out = driver
        .arg(oracle_tests::console_driver())
        .args([url, prompt])
        .arg(shots)
        .arg("240")
        .output()
        .expect("running node (bash .ci/install.sh installs it)");
    assert_success(&out, "the console driver");
    let drive: Drive = serde_json::from_slice(&out.stdout).unwrap();
    assert!(drive.failures.is_empty(), "{:?}", drive.failures);
    drive
}
