//! `oracle devnet`: a local chain with everything deployed and an operator serving.
//!
//! Starts anvil (the npm-installed binary), deploys AIOracle and Prompt, registers
//! the model file with its model root and the guest's program hash, bonds an
//! operator (anvil account 1) and a validator (account 3), writes what `oracle
//! request` needs to a state file, prints how to use it, and runs the operator and
//! the validator in-process (each with its own key and database, under
//! `--data-dir`, emptied at start: the chain is new) until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alloy::node_bindings::Anvil;
use alloy::primitives::U256;
use alloy::providers::ProviderBuilder;
use anyhow::{Context, Result};
use oracle_contracts::devnet::{deploy, DevnetConfig};
use oracle_contracts::{anvil_path, AIOracle};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::cli::daemon::{start, Settings, DEFAULT_GUEST};
use crate::faults::Faults;
use crate::roles::operator::Operator;
use crate::roles::validator::Validator;
use crate::serve::image::ImageArgs;
use crate::serve::outputs::{dir_for_db, OutputStore};
use crate::serve::program_hash;

/// Where `oracle devnet` leaves its addresses for `oracle request`.
pub const DEFAULT_STATE_FILE: &str = "target/devnet.json";

/// Arguments of `oracle devnet`.
#[derive(Debug, clap::Args)]
pub struct DevnetArgs {
    /// Model file to register and serve (from `oracle-quant convert`).
    #[arg(long, default_value = "target/models/stories260K-q8.bin")]
    pub model: PathBuf,
    /// The guest program (built by hosts/guest/build.sh); its prestate hash is the
    /// registered program hash and the operator's claims come from running it.
    #[arg(long, default_value = DEFAULT_GUEST)]
    pub guest: PathBuf,
    /// Challenge window of the model, in seconds.
    #[arg(long, default_value_t = 5)]
    pub challenge_window: u64,
    /// Positions the operator runs per request.
    #[arg(long, default_value_t = 64)]
    pub steps: u32,
    /// Text models with a chat template (byte-level BPE vocabularies): register
    /// the model as chat, so every request's prompt is one user message in it.
    #[arg(long)]
    pub chat: bool,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Seconds each side of a dispute game has for all its moves (chess clock).
    #[arg(long, default_value_t = 120)]
    pub game_clock: u32,
    /// Port for anvil (0 = any free port).
    #[arg(long, default_value_t = 8545)]
    pub port: u16,
    /// Where to write the addresses for `oracle request`.
    #[arg(long, default_value = DEFAULT_STATE_FILE)]
    pub state_file: PathBuf,
    /// Where the operator's and the validator's databases live (emptied at start).
    #[arg(long, default_value = "target/devnet")]
    pub data_dir: PathBuf,
    /// Do not start the validator.
    #[arg(long)]
    pub no_validator: bool,
    /// Also start a dishonest operator (anvil account 4, bonded) that races the
    /// honest one and posts a wrong output, bound to a claim of its own, for every
    /// request it serves: the validator challenges it, the game is played move by
    /// move (in the logs), the liar loses and is slashed, and the true result is
    /// delivered. For watching a fraud proof happen; its database is liar.redb.
    #[arg(long, conflicts_with = "no_validator")]
    pub liar: bool,
    /// Dispute a text model's results with the one-phase game over the VM steps of
    /// the whole request instead of the two-phase game (decode positions, then one
    /// token's forward pass in the VM). Image models always use the one-phase game.
    #[arg(long)]
    pub one_phase_game: bool,
    /// Serve Prometheus `/metrics`, the operator's JSON API `/api/` (with the
    /// validator's and the liar's games beside its own) and the web console at `/`
    /// on this address (`oracle status --node http://ADDR` reads it). The console
    /// asks with the devnet's user account through the devnet's RPC.
    #[arg(long, visible_alias = "http")]
    pub metrics_addr: Option<SocketAddr>,
    /// The core's WebAssembly module for the console's "verify in this browser"
    /// [default: target/wasm32-unknown-unknown/release/oracle_wasm.wasm, when built].
    #[arg(long)]
    pub console_wasm: Option<PathBuf>,
    /// The console's chain module, for "Ask" and the on-chain view of a request
    /// [default: target/console/ask.js, when built: bash hosts/node/console/build.sh].
    #[arg(long)]
    pub console_ask: Option<PathBuf>,
    /// Serve the operator's image outputs posted as their hash on this address
    /// (`/outputs/0x<keccak256>.png`; `oracle request --output` fetches them).
    #[arg(long)]
    pub outputs_addr: Option<SocketAddr>,
    /// Milliseconds between the nodes' polls of the chain.
    #[arg(long, default_value_t = 200)]
    pub poll_ms: u64,
}

/// What a devnet leaves for clients.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DevnetState {
    /// JSON-RPC URL of the chain.
    pub rpc: String,
    /// AIOracle address.
    pub oracle: String,
    /// Prompt address.
    pub prompt: String,
    /// The registered model's id.
    pub model_id: u64,
    /// An unlocked account for requests.
    pub user: String,
    /// Base URL of the operator's HTTP endpoint (image outputs posted as their hash
    /// are at `<url>/outputs/0x<hash>.png`), when the devnet serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_url: Option<String>,
}

/// The file `oracle devnet` leaves in its data directory: the mark that the
/// directory is a devnet's, which a later devnet may empty.
const DATA_DIR_MARK: &str = ".oracle-devnet";

/// Empty `dir` for a new devnet: only a directory a devnet made (it holds
/// [`DATA_DIR_MARK`]), an empty one, or a missing one; anything else is refused,
/// so a mistyped `--data-dir` never deletes someone's files.
fn empty_data_dir(dir: &std::path::Path) -> Result<()> {
    if dir.exists() {
        let marked = dir.join(DATA_DIR_MARK).is_file();
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !marked && !empty {
            anyhow::bail!(
                "--data-dir {} is not empty and was not made by `oracle devnet` (no {DATA_DIR_MARK} in it): refusing to delete it; pick another directory",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(DATA_DIR_MARK),
        b"made by oracle devnet; emptied by the next one\n",
    )
    .with_context(|| format!("marking {}", dir.display()))?;
    Ok(())
}

/// Run the devnet until Ctrl-C.
pub async fn run(args: &DevnetArgs) -> Result<()> {
    let model = crate::serve::models::check_file(&args.model).map_err(|why| {
        anyhow::anyhow!(
            "{}: {why} (make it with scripts/quickstart.sh or oracle-quant convert)",
            args.model.display()
        )
    })?;
    let guest = std::fs::read(&args.guest).with_context(|| {
        format!(
            "reading {} (build it with hosts/guest/build.sh)",
            args.guest.display()
        )
    })?;

    let anvil_bin = anvil_path();
    let anvil = Anvil::at(&anvil_bin)
        .port(args.port)
        .try_spawn()
        .with_context(|| {
            format!(
                "starting anvil at {} (run .ci/contracts-install.sh)",
                anvil_bin.display()
            )
        })?;
    let accounts = anvil.addresses().to_vec();
    let keys = anvil.keys().to_vec();
    anyhow::ensure!(accounts.len() >= 4, "anvil has fewer than 4 accounts");
    let (deployer, operator, user, validator) =
        (accounts[0], accounts[1], accounts[2], accounts[3]);
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());

    if args.chat {
        crate::serve::models::check_chat(&model)
            .map_err(|why| anyhow::anyhow!("--chat: the model {why}"))?;
    }
    let mut config = DevnetConfig::default();
    let root = oracle_core::commit::merkle::model_root(&model);
    config.model.modelRoot = root.into();
    config.model.programHash = program_hash(&guest)?.into();
    config.model.challengeWindow = args
        .challenge_window
        .try_into()
        .context("--challenge-window too large")?;
    let (params, kind) = crate::serve::models::registration(
        &model,
        !args.one_phase_game,
        args.steps,
        args.chat,
        args.image.params()?,
        1u64 << config.game_max_depth,
        1u64 << config.game_transition_depth,
    );
    config.sampling_params = params;
    config.game_clock = args.game_clock;
    config.two_phase = kind.two_phase();
    let deployment = deploy(&provider, deployer, &config)
        .await
        .context("deploying the contracts")?;
    let oracle = AIOracle::new(deployment.oracle, &provider);
    let liar = accounts.get(4).copied().filter(|_| args.liar);
    let bonded = [
        ("the operator", Some(operator)),
        ("the dishonest operator", liar),
    ];
    for (who, account) in bonded {
        let Some(account) = account else { continue };
        let receipt = oracle
            .bond()
            .value(config.submission_bond * U256::from(100))
            .from(account)
            .send()
            .await
            .with_context(|| format!("bonding {who}"))?
            .get_receipt()
            .await?;
        anyhow::ensure!(receipt.status(), "bonding {who} reverted");
    }

    let state = DevnetState {
        rpc: anvil.endpoint_url().to_string(),
        oracle: deployment.oracle.to_string(),
        prompt: deployment.prompt.to_string(),
        model_id: deployment.model_id.to::<u64>(),
        user: user.to_string(),
        outputs_url: args.outputs_addr.map(|a| format!("http://{a}")),
    };
    if let Some(dir) = args.state_file.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&args.state_file, serde_json::to_vec_pretty(&state)?)
        .with_context(|| format!("writing {}", args.state_file.display()))?;

    println!("devnet up");
    println!("  rpc       {}", state.rpc);
    println!("  AIOracle  {}", state.oracle);
    println!("  Prompt    {}", state.prompt);
    println!(
        "  model     id {} root {}",
        state.model_id,
        oracle_core::commit::merkle::to_hex(&root)
    );
    println!(
        "  operator  {operator} (bonded), challenge window {}s",
        args.challenge_window
    );
    if !args.no_validator {
        println!("  validator {validator}");
    }
    if let Some(liar) = liar {
        println!("  liar      {liar} (bonded): posts wrong outputs for every request it wins");
    }
    println!("  data      {}", args.data_dir.display());
    println!();
    if let crate::serve::models::ModelKind::Image { .. } = kind {
        println!(
            "an image model ({} steps, seed {}); ask for an image (another terminal):",
            args.image.image_steps, args.image.image_seed
        );
        println!("  ./target/release/oracle request --wait --output image.png");
        if state.outputs_url.is_none() {
            println!(
                "  (a PNG over {} bytes is posted as its hash: start the devnet with --metrics-addr to serve it)",
                oracle_core::diffusion::request::OUTPUT_INLINE_LIMIT
            );
        }
    } else {
        println!("ask for a story (another terminal):");
        println!("  ./target/release/oracle request --wait --prompt \"Once upon a time\"");
        println!("or with cast:");
        println!(
            "  cast send {} 'calculateAIResult(uint256,string)' {} \"Once upon a time\" --value $(cast call {} 'estimateFee(uint256)(uint256)' {} --rpc-url {}) --from {} --unlocked --rpc-url {}",
            state.prompt, state.model_id, state.prompt, state.model_id, state.rpc, state.user, state.rpc
        );
        println!(
            "  cast call {} 'getAIResult(uint256,string)(string)' {} \"Once upon a time\" --rpc-url {}",
            state.prompt, state.model_id, state.rpc
        );
    }
    println!();
    println!(
        "logs: RUST_LOG=debug for more; databases in {} (oracle status --db {}/operator.redb once stopped)",
        args.data_dir.display(),
        args.data_dir.display()
    );
    println!("serving; Ctrl-C stops everything");

    empty_data_dir(&args.data_dir)?;
    if let Some(addr) = args.outputs_addr {
        let outputs = OutputStore::new(dir_for_db(&args.data_dir.join("operator.redb")));
        crate::http::serve_outputs(addr, outputs, crate::http::Limits::default())?;
    }
    let settings = |db: &str, faults: Faults| Settings {
        rpc: anvil.endpoint_url().to_string(),
        oracle: deployment.oracle,
        start_block: 0,
        models: args.model.clone(),
        guest: guest.clone(),
        steps: args.steps,
        confirmations: 0,
        interval: Duration::from_millis(args.poll_ms),
        db: args.data_dir.join(db),
        workers: 1,
        budget: Duration::from_secs(600),
        faults,
    };
    let op_node = start(
        settings("operator.redb", Faults::default()),
        keys[1].clone().into(),
    )
    .await?;
    let validator_node = if args.no_validator {
        None
    } else {
        Some(
            start(
                settings("validator.redb", Faults::default()),
                keys[3].clone().into(),
            )
            .await?,
        )
    };
    let liar_node = match liar {
        None => None,
        Some(_) => {
            let lies = Faults {
                wrong_output: true,
                ..Faults::default()
            };
            Some(start(settings("liar.redb", lies), keys[4].clone().into()).await?)
        }
    };
    if let Some(addr) = args.metrics_addr {
        let mut api = crate::cli::daemon::api(&op_node, "operator");
        api.wasm = crate::api::load_wasm(args.console_wasm.as_deref())?;
        api.ask = crate::api::load_ask(args.console_ask.as_deref())?;
        let user_key = format!("0x{}", alloy::hex::encode(keys[2].to_bytes()));
        api.chain = Some(
            crate::cli::daemon::chain_info(
                &op_node,
                Some((state.rpc.clone(), deployment.prompt, user_key)),
            )
            .await?,
        );
        let peers = [("validator", &validator_node), ("liar", &liar_node)];
        for (role, node) in peers {
            if let Some(node) = node {
                api.peers.push(crate::api::Peer {
                    role,
                    account: node.account,
                    db: node.db.clone(),
                });
            }
        }
        crate::http::serve_node(addr, Some(api), crate::http::Limits::default())?;
    }
    let op = Operator::new(op_node);
    let validator_task = async {
        match validator_node {
            Some(node) => Validator::new(node).run().await,
            None => std::future::pending().await,
        }
    };
    let liar_task = async {
        match liar_node {
            Some(node) => {
                Operator::new(node)
                    .run()
                    .instrument(tracing::info_span!("liar"))
                    .await
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = op.run() => r,
        r = validator_task => r,
        r = liar_task => r,
        _ = tokio::signal::ctrl_c() => {
            println!("stopping");
            Ok(())
        }
    }
    // `anvil` is dropped here, which stops the chain.
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `--data-dir` that holds someone's files is never deleted; a devnet's own
    /// (marked) directory and an empty one are.
    #[test]
    fn only_a_devnet_data_dir_is_emptied() {
        let root = tempfile::tempdir().unwrap();
        let precious = root.path().join("home");
        std::fs::create_dir_all(&precious).unwrap();
        std::fs::write(precious.join("thesis.tex"), b"years of work").unwrap();
        let e = format!("{:#}", empty_data_dir(&precious).unwrap_err());
        assert!(e.contains("refusing to delete"), "{e}");
        assert!(precious.join("thesis.tex").is_file());

        let dir = root.path().join("devnet");
        empty_data_dir(&dir).unwrap();
        std::fs::write(dir.join("operator.redb"), b"old chain").unwrap();
        empty_data_dir(&dir).unwrap();
        assert!(!dir.join("operator.redb").exists());
        assert!(dir.join(DATA_DIR_MARK).is_file());
    }
}
