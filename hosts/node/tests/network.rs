//! Every role by command on an EVM chain that is not a devnet (issue #16): a plain
//! anvil with a non-default chain id, and only the `oracle` CLI (plus `cast`, as a
//! dapp developer would send a request): deploy from a parameters file, register a
//! model, bond two operators (one with an encrypted keystore), run an operator and a
//! validator as separate processes from configuration files, a request answered
//! wrongly, challenged and overturned, another served honestly, then fees, rewards
//! and bonds withdrawn, with the balances checked at the end. Also: a deployment
//! interrupted half-way resumes without duplicates, and bad inputs fail clearly
//! without sending anything.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use common::{append, assert_success, assets, oracle, start_anvil, Proc};

/// The chain id of the test chain (anvil's default is 31337).
const CHAIN_ID: u64 = 31_338;

/// Seconds to wait for a request to be final.
const FINAL: Duration = Duration::from_secs(300);

/// A test chain and a folder with keys, model, guest and files.
struct Net {
    _anvil: alloy::node_bindings::AnvilInstance,
    rpc: String,
    accounts: Vec<(Address, String)>,
    dir: tempfile::TempDir,
}

impl Net {
    fn start() -> Net {
        let anvil = start_anvil(0, &["--chain-id", &CHAIN_ID.to_string()]);
        let dir = tempfile::tempdir().unwrap();
        let (model, guest) = assets();
        std::fs::create_dir(dir.path().join("models")).unwrap();
        std::fs::write(dir.path().join("models/stories.bin"), model).unwrap();
        std::fs::write(dir.path().join("guest.elf"), guest).unwrap();
        let accounts = anvil
            .addresses()
            .iter()
            .zip(anvil.keys())
            .map(|(a, k)| (*a, hex::encode(k.to_bytes())))
            .collect();
        Net {
            rpc: anvil.endpoint_url().to_string(),
            _anvil: anvil,
            accounts,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Account `i`'s key written to a file; the file's path.
    fn key_file(&self, i: usize) -> String {
        let p = self.path(&format!("key{i}.hex"));
        std::fs::write(&p, &self.accounts[i].1).unwrap();
        p.display().to_string()
    }

    /// `oracle <args>` with `--rpc` and `--deployment` (unless `raw`).
    fn oracle(&self, args: &[&str]) -> Command {
        let mut c = oracle();
        c.args(args)
            .args(["--rpc", &self.rpc])
            .arg("--deployment")
            .arg(self.path("deployment.json"));
        c
    }

    fn provider(&self) -> impl Provider {
        ProviderBuilder::new().connect_http(self.rpc.parse().unwrap())
    }

    async fn wallet(&self, i: usize) -> U256 {
        self.provider()
            .get_balance(self.accounts[i].0)
            .await
            .unwrap()
    }

    async fn nonce(&self, a: Address) -> u64 {
        self.provider().get_transaction_count(a).await.unwrap()
    }

    /// `cast` against the chain.
    fn cast(&self, args: &[&str]) -> Output {
        let out = Command::new(oracle_contracts::cast_path())
            .args(args)
            .args(["--rpc-url", &self.rpc])
            .output()
            .unwrap();
        assert_success(&out, &format!("cast {args:?}"));
        out
    }

    fn deployment(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.path("deployment.json")).unwrap()).unwrap()
    }

    fn address(&self, contract: &str) -> String {
        self.deployment()["contracts"][contract]["address"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A request through Prompt, sent with cast from account 2 (unlocked on anvil).
    fn ask(&self, prompt: &str) {
        let p = self.address("prompt");
        let fee = self.cast(&["call", &p, "estimateFee(uint256)(uint256)", "1"]);
        let fee = String::from_utf8_lossy(&fee.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        let from = self.accounts[2].0.to_string();
        self.cast(&[
            "send",
            &p,
            "calculateAIResult(uint256,string)",
            "1",
            prompt,
            "--value",
            &fee,
            "--from",
            &from,
            "--unlocked",
        ]);
    }

    async fn wait_final(&self, id: u64) {
        let o = self.address("oracle");
        let started = Instant::now();
        loop {
            let out = self.cast(&["call", &o, "isFinalized(uint256)(bool)", &id.to_string()]);
            if String::from_utf8_lossy(&out.stdout).trim() == "true" {
                return;
            }
            assert!(
                started.elapsed() < FINAL,
                "request {id} not final\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The bytes Prompt received for `prompt` (its string result, read as bytes).
    fn delivered(&self, prompt: &str) -> Vec<u8> {
        let p = self.address("prompt");
        let out = self.cast(&[
            "call",
            &p,
            "getAIResult(uint256,string)(bytes)",
            "1",
            prompt,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        hex::decode(text.trim().trim_start_matches("0x")).unwrap()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["operator-a.log", "operator-b.log", "validator.log"] {
            let text = std::fs::read_to_string(self.path(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "---- {name}\n{}\n",
                lines[lines.len().saturating_sub(30)..].join("\n")
            ));
        }
        out
    }

    /// A node process from a configuration file `name.toml`.
    fn daemon(&self, role: &str, name: &str, key: &str, extra: &[&str]) -> Proc {
        let config = self.path(&format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "rpc = \"{}\"\ndeployment = \"{}\"\nkey = \"{key}\"\nmodels = \"{}\"\nguest = \"{}\"\nsteps = 16\ndb = \"{}\"\npoll_ms = 100\n",
                self.rpc,
                self.path("deployment.json").display(),
                self.path("models").display(),
                self.path("guest.elf").display(),
                self.path(&format!("{name}.redb")).display(),
            ),
        )
        .unwrap();
        Proc(
            oracle()
                .arg(role)
                .arg("--config")
                .arg(&config)
                .args(extra)
                .env("ORACLE_KEYSTORE_PASSWORD", "operator a")
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(append(&self.path(&format!("{name}.log"))))
                .spawn()
                .unwrap(),
        )
    }
}

fn params(dir: &Path) -> PathBuf {
    let p = dir.join("params.toml");
    std::fs::write(
        &p,
        "submission_bond = \"1 eth\"\nchallenge_bond = \"0.5 eth\"\nunbond_delay_s = 5\nrequest_timeout_s = 3600\nparameter_delay_s = 0\ngame_clock_s = 60\n",
    )
    .unwrap();
    p
}

fn ok(out: Output, what: &str) -> String {
    assert_success(&out, what);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_by_command_on_a_plain_chain() {
    let net = Net::start();
    let deployer = net.key_file(0);
    let params = params(net.dir.path());
    let out = oracle()
        .args(["deploy", "--rpc", &net.rpc, "--key", &deployer])
        .arg("--params")
        .arg(&params)
        .arg("--out")
        .arg(net.path("deployment.json"))
        .output()
        .unwrap();
    ok(out, "oracle deploy");
    assert_eq!(net.deployment()["chain_id"], CHAIN_ID);

    let model = net.path("models/stories.bin");
    let out = net
        .oracle(&[
            "register", "--key", &deployer, "--window", "5", "--steps", "16",
        ])
        .arg("--model")
        .arg(&model)
        .arg("--guest")
        .arg(net.path("guest.elf"))
        .output()
        .unwrap();
    assert_eq!(ok(out, "oracle register").trim(), "1", "the model id");
    let listed = ok(net.oracle(&["models"]).output().unwrap(), "oracle models");
    assert!(listed.contains("two-phase"), "{listed}");

    // operator A keeps its key in an encrypted keystore, B in a file
    let signer_a = PrivateKeySigner::from_slice(&hex::decode(&net.accounts[1].1).unwrap()).unwrap();
    let mut rng = rand08::thread_rng();
    PrivateKeySigner::encrypt_keystore(
        net.dir.path(),
        &mut rng,
        signer_a.credential().to_bytes(),
        "operator a",
        Some("a.keystore"),
    )
    .unwrap();
    let key_a = format!("keystore:{}", net.path("a.keystore").display());
    let key_b = net.key_file(4);
    let key_v = net.key_file(3);
    for key in [&key_a, &key_b] {
        let out = net
            .oracle(&["bond", "--amount", "2 eth", "--key", key])
            .env("ORACLE_KEYSTORE_PASSWORD", "operator a")
            .output()
            .unwrap();
        ok(out, "oracle bond");
    }
    let wallet_a = net.wallet(1).await;
    let wallet_v = net.wallet(3).await;

    // B lies, the validator overturns it
    let _validator = net.daemon("validator", "validator", &key_v, &[]);
    let mut liar = net.daemon(
        "operator",
        "operator-b",
        &key_b,
        &["--fault-wrong-output-for-tests"],
    );
    let first = "Once upon a time";
    net.ask(first);
    net.wait_final(1).await;
    let honest = |prompt: &str| {
        let out = oracle()
            .args(["run", "--steps", "16", "--prompt", prompt, "--model"])
            .arg(&model)
            .output()
            .unwrap();
        ok(out, "oracle run").into_bytes()
    };
    assert_eq!(net.delivered(first), honest(first));
    liar.stop();

    // A serves the next one honestly
    let _a = net.daemon("operator", "operator-a", &key_a, &[]);
    let second = "Lily had a cat";
    net.ask(second);
    net.wait_final(2).await;
    assert_eq!(net.delivered(second), honest(second));

    // withdraw: A's fees and bond, the validator's bond and reward
    let balance = |key: &str| {
        ok(
            net.oracle(&["balance", "--key", key])
                .env("ORACLE_KEYSTORE_PASSWORD", "operator a")
                .output()
                .unwrap(),
            "oracle balance",
        )
    };
    assert!(
        balance(&key_b).contains("bond      1000000000000000000 wei"),
        "B lost a bond: {}",
        balance(&key_b)
    );
    let out = net
        .oracle(&["unbond", "--key", &key_a])
        .env("ORACLE_KEYSTORE_PASSWORD", "operator a")
        .output()
        .unwrap();
    ok(out, "oracle unbond");
    tokio::time::sleep(Duration::from_secs(7)).await;
    // the validator's reward is claimed by its node once the request is final
    let started = Instant::now();
    while !balance(&key_v).contains("credit    1") {
        assert!(
            started.elapsed() < FINAL,
            "no credit for the validator: {}",
            balance(&key_v)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for key in [&key_a, &key_v] {
        let out = net
            .oracle(&["withdraw", "--key", key])
            .env("ORACLE_KEYSTORE_PASSWORD", "operator a")
            .output()
            .unwrap();
        ok(out, "oracle withdraw");
    }
    let eth = U256::from(10u64).pow(U256::from(18u64));
    let gas_margin = eth / U256::from(100u64);
    let a_after = net.wallet(1).await;
    assert!(
        a_after + gas_margin >= wallet_a + U256::from(2u64) * eth,
        "A got its 2 ETH bond and fees back: {wallet_a} -> {a_after}"
    );
    let v_after = net.wallet(3).await;
    assert!(
        v_after >= wallet_v + eth / U256::from(2u64) - gas_margin,
        "the validator gained the 0.5 ETH reward (its bond returned): {wallet_v} -> {v_after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_deployment_resumes_without_duplicates() {
    let net = Net::start();
    let deployer = net.key_file(0);
    let params = params(net.dir.path());
    let deploy = |crash: Option<&str>| {
        let mut c = oracle();
        c.args(["deploy", "--rpc", &net.rpc, "--key", &deployer])
            .arg("--params")
            .arg(&params)
            .arg("--out")
            .arg(net.path("deployment.json"));
        if let Some(point) = crash {
            c.env("ORACLE_TEST_CRASH_AT", point);
        }
        c.output().unwrap()
    };
    let out = deploy(Some("deploy-sent:AIOracle"));
    assert!(!out.status.success(), "the deployment stops half-way");
    let half = net.deployment();
    assert_eq!(half["complete"], false);
    let oracle_at = net.address("oracle");
    ok(deploy(None), "the resumed deployment");
    assert_eq!(net.deployment()["complete"], true);
    assert_eq!(
        net.address("oracle"),
        oracle_at,
        "the in-flight AIOracle was kept, not made twice"
    );
    // five creations and setDisputeGameFactory: six transactions, none twice
    assert_eq!(net.nonce(net.accounts[0].0).await, 6);
    let again = ok(deploy(None), "a third run");
    assert!(again.contains("is complete"), "{again}");
    assert_eq!(net.nonce(net.accounts[0].0).await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_fail_clearly_and_send_nothing() {
    let net = Net::start();
    let deployer = net.key_file(0);
    let params = params(net.dir.path());
    let deploy_out = oracle()
        .args(["deploy", "--rpc", &net.rpc, "--key", &deployer])
        .arg("--params")
        .arg(&params)
        .arg("--out")
        .arg(net.path("deployment.json"))
        .output()
        .unwrap();
    ok(deploy_out, "oracle deploy");
    let nonce = net.nonce(net.accounts[0].0).await;
    let stderr = |out: Output| {
        assert!(!out.status.success(), "must fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // the deployment file of another chain
    let other = start_anvil(0, &[]);
    let e = stderr(
        oracle()
            .args(["bond", "--amount", "1 eth", "--key", &deployer, "--rpc"])
            .arg(other.endpoint_url().to_string())
            .arg("--deployment")
            .arg(net.path("deployment.json"))
            .output()
            .unwrap(),
    );
    assert!(
        e.contains("RPC serves chain 31337") && e.contains("nothing was sent"),
        "{e}"
    );

    // a model file that is not one, and one whose root is not registered
    std::fs::write(net.path("broken.bin"), b"ORCLMDL\0 not really a model").unwrap();
    let e = stderr(
        net.oracle(&["register", "--key", &deployer])
            .arg("--model")
            .arg(net.path("broken.bin"))
            .arg("--guest")
            .arg(net.path("guest.elf"))
            .output()
            .unwrap(),
    );
    assert!(e.contains("nothing was sent"), "{e}");
    let e = stderr(
        net.oracle(&["register", "--configure-only", "--key", &deployer])
            .arg("--model")
            .arg(net.path("models/stories.bin"))
            .arg("--guest")
            .arg(net.path("guest.elf"))
            .output()
            .unwrap(),
    );
    assert!(
        e.contains("is registered on this deployment") && e.contains("nothing was sent"),
        "{e}"
    );

    // an unfunded key
    let poor = PrivateKeySigner::random();
    std::fs::write(net.path("poor.hex"), hex::encode(poor.to_bytes())).unwrap();
    let poor_key = net.path("poor.hex").display().to_string();
    let e = stderr(
        oracle()
            .args(["deploy", "--rpc", &net.rpc, "--key", &poor_key, "--out"])
            .arg(net.path("poor.json"))
            .output()
            .unwrap(),
    );
    assert!(
        e.contains("fund it first") && e.contains("nothing was sent"),
        "{e}"
    );
    assert_eq!(net.nonce(poor.address()).await, 0);
    let e = stderr(
        net.oracle(&["bond", "--amount", "1 eth", "--key", &poor_key])
            .output()
            .unwrap(),
    );
    assert!(e.contains("nothing was sent"), "{e}");

    // a raw key on the command line
    let raw = format!("0x{}", net.accounts[0].1);
    let e = stderr(
        net.oracle(&["bond", "--amount", "1 eth", "--key", &raw])
            .output()
            .unwrap(),
    );
    assert!(e.contains("refusing a raw private key"), "{e}");
    assert!(!e.contains(&net.accounts[0].1), "the key is not echoed");

    assert_eq!(
        net.nonce(net.accounts[0].0).await,
        nonce,
        "nothing was sent"
    );
}
