//! `oracle operator` and `oracle validator`: the long-running roles, started from
//! the command line (the devnet starts the same ones in-process).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result};
use tokio::sync::Semaphore;

use crate::chain::{connect, load_signer_with, retry};
use crate::cli::devnet::{DevnetState, DEFAULT_STATE_FILE};
use crate::cli::network::deployment::Deployment;
use crate::db::Db;
use crate::faults::{FaultArgs, Faults};
use crate::roles::node::Node;
use crate::roles::operator::Operator;
use crate::roles::validator::Validator;
use crate::serve::outputs::OutputStore;

/// Default guest program path (built by `hosts/guest/build.sh`).
pub const DEFAULT_GUEST: &str =
    "hosts/guest/target/riscv32im-unknown-none-elf/release/oracle-guest";

/// Arguments shared by `oracle operator` and `oracle validator`. Each may also be
/// given in a TOML configuration file (`--config`, the same names with `_` for `-`);
/// a flag overrides the file.
#[derive(Debug, Default, Clone, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeArgs {
    /// A TOML configuration file with any of these settings (flags override it).
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// JSON-RPC URL of the chain (default: the running devnet's).
    #[arg(long)]
    pub rpc: Option<String>,
    /// The deployment file written by `oracle deploy` (the oracle's address, the
    /// block to read events from, the chain id the RPC must serve).
    #[arg(long)]
    pub deployment: Option<PathBuf>,
    /// The AIOracle address (default: the deployment's, or the running devnet's).
    #[arg(long)]
    pub oracle: Option<String>,
    /// The signing key: `keystore:FILE` (encrypted JSON keystore), a file holding
    /// it in hex, or `env:NAME` (default: $ORACLE_PRIVATE_KEY). A raw key is refused.
    #[arg(long)]
    pub key: Option<String>,
    /// The keystore's password file (default: $ORACLE_KEYSTORE_PASSWORD).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Directory of model files; each is served under the registered id whose
    /// model root it matches (files that match none are refused). Required.
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// The guest program; models registered with another program hash are refused
    /// [default: hosts/guest/target/riscv32im-unknown-none-elf/release/oracle-guest].
    #[arg(long)]
    pub guest: Option<PathBuf>,
    /// Positions run per request (prompt included) [default: 64].
    #[arg(long)]
    pub steps: Option<u32>,
    /// The database file, created if missing [default: operator.redb / validator.redb].
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Blocks an event must be buried under before it is acted on [default: 0, a
    /// devnet's; use the chain's finality on a network].
    #[arg(long)]
    pub confirmations: Option<u64>,
    /// Milliseconds between polls of the chain [default: 500].
    #[arg(long)]
    pub poll_ms: Option<u64>,
    /// Serve Prometheus `/metrics` and the JSON API `/api/` (what `oracle status
    /// --node` reads) on this address; keep it on loopback or a private network,
    /// e.g. 127.0.0.1:9100.
    #[arg(long, visible_alias = "http")]
    pub metrics_addr: Option<SocketAddr>,
    /// The core's WebAssembly module the web console runs for "verify in this
    /// browser" [default: target/wasm32-unknown-unknown/release/oracle_wasm.wasm,
    /// when built: cargo build -p oracle-wasm --release --target wasm32-unknown-unknown].
    #[arg(long)]
    pub console_wasm: Option<PathBuf>,
    /// The web console's chain module, for "Ask" (estimateFee and send, signed by an
    /// injected EIP-1193 wallet) and the on-chain view of a request
    /// [default: target/console/ask.js, when built: bash hosts/node/console/build.sh].
    #[arg(long)]
    pub console_ask: Option<PathBuf>,
    /// Serve the image outputs posted as their hash, `/outputs/0x<keccak256>.png`,
    /// on this address (public, e.g. 0.0.0.0:8080): requesters fetch them there.
    /// Connections are capped and timed out.
    #[arg(long)]
    pub outputs_addr: Option<SocketAddr>,
    /// The devnet state file consulted when neither --rpc/--oracle nor --deployment
    /// is given [default: target/devnet.json].
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Requests computed at once (inference and VM runs); more wait, earliest
    /// deadline first. Dispute moves never wait for them [default: 1].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Seconds one request's computation may take once it has a worker [default: 600].
    #[arg(long)]
    pub request_budget_s: Option<u64>,
}

impl NodeArgs {
    /// These flags over the settings of the `--config` file, if any.
    pub fn resolved(&self) -> Result<NodeArgs> {
        let Some(path) = &self.config else {
            return Ok(self.clone());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration {}", path.display()))?;
        let file: NodeArgs = toml::from_str(&text)
            .with_context(|| format!("in the configuration {}", path.display()))?;
        macro_rules! over {
            ($($f:ident),*) => { NodeArgs { config: self.config.clone(), $($f: self.$f.clone().or(file.$f),)* } };
        }
        Ok(over!(
            rpc,
            deployment,
            oracle,
            key,
            password_file,
            models,
            guest,
            steps,
            db,
            confirmations,
            poll_ms,
            metrics_addr,
            console_wasm,
            console_ask,
            outputs_addr,
            state_file,
            workers,
            request_budget_s
        ))
    }
}

/// Arguments of `oracle operator`.
#[derive(Debug, clap::Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    faults: FaultArgs,
}

/// Arguments of `oracle validator`.
#[derive(Debug, clap::Args)]
pub struct ValidatorArgs {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    faults: FaultArgs,
}

/// Arguments of `oracle challenge`.
#[derive(Debug, clap::Args)]
pub struct ChallengeArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The request whose result to check and, if wrong, challenge.
    #[arg(long)]
    request: u64,
}

/// Where a role's database lives unless `--db` says.
fn default_db(role: &str) -> PathBuf {
    PathBuf::from(format!("{role}.redb"))
}

/// Open a node from `oracle operator` / `oracle validator` arguments.
async fn open(args: &NodeArgs, role: &'static str, faults: Faults) -> Result<Node> {
    let args = args.resolved()?;
    let models = args
        .models
        .clone()
        .context("--models (or `models` in the configuration file) is required")?;
    let db_path = args.db.clone().unwrap_or_else(|| default_db(role));
    if let Some(addr) = args.outputs_addr {
        let outputs = OutputStore::new(crate::serve::outputs::dir_for_db(&db_path));
        crate::http::serve_outputs(addr, outputs, crate::http::Limits::default())?;
    }
    let deployment = match &args.deployment {
        Some(path) => Some((path.clone(), Deployment::read(path)?)),
        None => None,
    };
    let state = if deployment.is_none() && (args.rpc.is_none() || args.oracle.is_none()) {
        let file = args
            .state_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_FILE));
        let text = std::fs::read(&file).with_context(|| {
            format!(
                "no --deployment or --rpc/--oracle given, and the devnet's {} is unreadable (is `oracle devnet` running?)",
                file.display()
            )
        })?;
        tracing::warn!(
            "no --deployment or --rpc/--oracle given: using the devnet's {}",
            file.display()
        );
        Some(
            serde_json::from_slice::<DevnetState>(&text)
                .context("parsing the devnet state file")?,
        )
    } else {
        None
    };
    let rpc = args
        .rpc
        .clone()
        .or_else(|| state.as_ref().map(|s| s.rpc.clone()))
        .context("--rpc (or `rpc` in the configuration file) is required with a deployment file")?;
    let (oracle, start_block) = match (&args.oracle, &deployment, &state) {
        (Some(text), _, _) => (Address::from_str(text).context("bad --oracle address")?, 0),
        (None, Some((_, d)), _) => (d.oracle()?, d.start_block),
        (None, None, Some(s)) => (
            Address::from_str(&s.oracle).context("bad devnet oracle address")?,
            0,
        ),
        (None, None, None) => anyhow::bail!("no --oracle"),
    };
    let signer = load_signer_with(args.key.as_deref(), args.password_file.as_deref())?;
    let guest_path = args
        .guest
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_GUEST));
    let guest = std::fs::read(&guest_path).with_context(|| {
        format!(
            "reading the guest {} (build it with hosts/guest/build.sh)",
            guest_path.display()
        )
    })?;
    let workers = args.workers.unwrap_or(1);
    if workers == 0 {
        anyhow::bail!("--workers must be at least 1");
    }
    let node = start(
        Settings {
            rpc,
            oracle,
            start_block,
            models,
            guest,
            steps: args.steps.unwrap_or(64),
            confirmations: args.confirmations.unwrap_or(0),
            interval: Duration::from_millis(args.poll_ms.unwrap_or(500)),
            db: db_path,
            workers,
            budget: Duration::from_secs(args.request_budget_s.unwrap_or(600)),
            faults,
        },
        signer,
    )
    .await?;
    if let Some((path, d)) = &deployment {
        crate::cli::network::check_chain(&node.provider, d, path).await?;
    }
    if let Some(addr) = args.metrics_addr {
        let mut api = api(&node, role);
        api.wasm = crate::api::load_wasm(args.console_wasm.as_deref())?;
        api.ask = crate::api::load_ask(args.console_ask.as_deref())?;
        api.chain = Some(chain_info(&node, None).await?);
        crate::http::serve_node(addr, Some(api), crate::http::Limits::default())?;
    }
    Ok(node)
}

/// The JSON API of a running node (without the console's modules, chain access or
/// peers: the caller adds what it has).
pub fn api(node: &Node, role: &'static str) -> crate::api::Api {
    crate::api::Api {
        role,
        account: node.account,
        oracle: node.oracle,
        db: node.db.clone(),
        models: node.models.clone(),
        steps: node.steps,
        wasm: None,
        outputs: Some(node.outputs.clone()),
        ask: None,
        chain: None,
        peers: Vec::new(),
    }
}

/// What the console is told about `node`'s chain; `devnet` adds the RPC URL the
/// page may use, the Prompt contract and the user's key.
pub async fn chain_info(
    node: &Node,
    devnet: Option<(String, Address, String)>,
) -> Result<crate::api::ChainInfo> {
    use alloy::providers::Provider;
    let chain_id = node
        .provider
        .get_chain_id()
        .await
        .context("reading the chain id")?;
    let (rpc, prompt, devnet_key) = match devnet {
        Some((rpc, prompt, key)) => (Some(rpc), Some(prompt), Some(key)),
        None => (None, None, None),
    };
    Ok(crate::api::ChainInfo {
        chain_id,
        oracle: node.oracle,
        rpc,
        prompt,
        devnet_key,
        from_block: node.start_block,
    })
}

/// What a node is started with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// JSON-RPC URL of the chain.
    pub rpc: String,
    /// The AIOracle contract.
    pub oracle: Address,
    /// The first block to read events from.
    pub start_block: u64,
    /// The model files (a directory, or one file).
    pub models: PathBuf,
    /// The guest program.
    pub guest: Vec<u8>,
    /// Positions run per text request.
    pub steps: u32,
    /// Blocks an event must be buried under.
    pub confirmations: u64,
    /// Pause between rounds.
    pub interval: Duration,
    /// The database file.
    pub db: PathBuf,
    /// Requests computed at once.
    pub workers: usize,
    /// Time one request's computation may take.
    pub budget: Duration,
    /// Test only: how the node lies.
    pub faults: Faults,
}

/// Connect, open the database and load the models: a node ready to run.
pub async fn start(settings: Settings, signer: PrivateKeySigner) -> Result<Node> {
    let account = signer.address();
    let provider = connect(&settings.rpc, signer)?;
    let db =
        Db::open(&settings.db).with_context(|| format!("opening {}", settings.db.display()))?;
    let set = retry("loading the models against the registry", 10, || {
        crate::serve::models::load(
            &settings.models,
            &provider,
            settings.oracle,
            &settings.guest,
            settings.steps,
        )
    })
    .await?;
    if set.is_empty() {
        tracing::warn!(
            "no model file in {} matches a registered model: nothing to serve",
            settings.models.display()
        );
    }
    tracing::info!(
        "node {account} on {}, oracle {}, database {}",
        crate::chain::redacted(&settings.rpc),
        settings.oracle,
        settings.db.display()
    );
    Ok(Node {
        provider,
        account,
        oracle: settings.oracle,
        start_block: settings.start_block,
        models: Arc::new(set),
        guest: Arc::new(settings.guest),
        steps: settings.steps,
        confirmations: settings.confirmations,
        db: Arc::new(db),
        interval: settings.interval,
        outputs: OutputStore::new(crate::serve::outputs::dir_for_db(&settings.db)),
        workers: Arc::new(Semaphore::new(settings.workers)),
        budget: settings.budget,
        faults: settings.faults,
    })
}

/// Run `oracle operator` until Ctrl-C.
pub async fn operator(args: &OperatorArgs) -> Result<()> {
    let node = open(&args.node, "operator", args.faults.faults()).await?;
    let op = Operator::new(node);
    tokio::select! {
        r = op.run().instrument(tracing::info_span!("operator")) => r,
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); Ok(()) }
    }
}

/// Run `oracle validator` until Ctrl-C.
pub async fn validator(args: &ValidatorArgs) -> Result<()> {
    let node = open(&args.node, "validator", args.faults.faults()).await?;
    let v = Validator::new(node);
    tokio::select! {
        r = v.run().instrument(tracing::info_span!("validator")) => r,
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); Ok(()) }
    }
}

/// Run `oracle challenge --request N`: re-execute the request's result; if it is
/// wrong, challenge it and play the game to the end (Ctrl-C stops; run the same
/// command again to resume the game from the database).
pub async fn challenge(args: &ChallengeArgs) -> Result<()> {
    let node = open(&args.node, "challenge", Faults::default()).await?;
    let v = Validator::new(node);
    tokio::select! {
        r = v
            .challenge_one(alloy::primitives::U256::from(args.request))
            .instrument(tracing::info_span!("challenge")) => r,
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example configuration in `contrib/` parses, and a flag overrides it.
    #[test]
    fn the_example_configuration_parses_and_flags_override_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.toml");
        std::fs::write(&path, include_str!("../../../../contrib/operator.toml")).unwrap();
        let flags = NodeArgs {
            config: Some(path),
            steps: Some(16),
            ..NodeArgs::default()
        };
        let r = flags.resolved().unwrap();
        assert_eq!(r.steps, Some(16), "the flag wins");
        assert_eq!(r.confirmations, Some(2), "the file fills the rest");
        assert_eq!(
            r.key.as_deref(),
            Some("keystore:/etc/oracle/operator.keystore")
        );
        std::fs::write(dir.path().join("bad.toml"), "step = 16\n").unwrap();
        let bad = NodeArgs {
            config: Some(dir.path().join("bad.toml")),
            ..NodeArgs::default()
        };
        assert!(bad.resolved().is_err(), "an unknown setting is refused");
    }
}
