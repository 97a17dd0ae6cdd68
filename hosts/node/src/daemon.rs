//! `oracle operator` and `oracle validator`: the long-running roles, started from
//! the command line (the devnet starts the same ones in-process).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result};
use tokio::sync::Semaphore;

use crate::chain::{connect, load_signer, retry};
use crate::db::Db;
use crate::devnet::{DevnetState, DEFAULT_STATE_FILE};
use crate::faults::{FaultArgs, Faults};
use crate::node::Node;
use crate::operator::Operator;
use crate::outputs::OutputStore;
use crate::validator::Validator;

/// Default guest program path (built by `hosts/guest/build.sh`).
pub const DEFAULT_GUEST: &str =
    "hosts/guest/target/riscv32im-unknown-none-elf/release/oracle-guest";

/// Arguments shared by `oracle operator` and `oracle validator`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// JSON-RPC URL of the chain (default: the running devnet's).
    #[arg(long)]
    pub rpc: Option<String>,
    /// The AIOracle address (default: the running devnet's).
    #[arg(long)]
    pub oracle: Option<String>,
    /// Private key: a file holding it in hex, or `env:NAME` for an environment
    /// variable (default: $ORACLE_PRIVATE_KEY).
    #[arg(long)]
    pub key: Option<String>,
    /// Directory of model files; each is served under the registered id whose
    /// model root it matches (files that match none are refused).
    #[arg(long)]
    pub models: PathBuf,
    /// The guest program; models registered with another program hash are refused.
    #[arg(long, default_value = DEFAULT_GUEST)]
    pub guest: PathBuf,
    /// Positions run per request (prompt included).
    #[arg(long, default_value_t = 64)]
    pub steps: u32,
    /// The database file (created if missing).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Blocks an event must be buried under before it is acted on (0 on a devnet).
    #[arg(long, default_value_t = 0)]
    pub confirmations: u64,
    /// Milliseconds between polls of the chain.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// Serve Prometheus `/metrics` on this address (keep it on loopback or a
    /// private network, e.g. 127.0.0.1:9100).
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Serve the image outputs posted as their hash, `/outputs/0x<keccak256>.png`,
    /// on this address (public, e.g. 0.0.0.0:8080): requesters fetch them there.
    /// Connections are capped and timed out.
    #[arg(long)]
    pub outputs_addr: Option<SocketAddr>,
    /// The devnet state file consulted when --rpc or --oracle is missing.
    #[arg(long, default_value = DEFAULT_STATE_FILE)]
    pub state_file: PathBuf,
    /// Requests computed at once (inference and VM runs); more wait, earliest
    /// deadline first. Dispute moves never wait for them.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Seconds one request's computation may take once it has a worker.
    #[arg(long, default_value_t = 600)]
    pub request_budget_s: u64,
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
async fn open(args: &NodeArgs, role: &str, faults: Faults) -> Result<Node> {
    let db_path = args.db.clone().unwrap_or_else(|| default_db(role));
    if let Some(addr) = args.metrics_addr {
        crate::http::serve_metrics(addr, crate::http::Limits::default())?;
    }
    if let Some(addr) = args.outputs_addr {
        let outputs = OutputStore::new(crate::outputs::dir_for_db(&db_path));
        crate::http::serve_outputs(addr, outputs, crate::http::Limits::default())?;
    }
    let state = if args.rpc.is_none() || args.oracle.is_none() {
        let text = std::fs::read(&args.state_file).with_context(|| {
            format!(
                "--rpc/--oracle not given and {} is unreadable (is `oracle devnet` running?)",
                args.state_file.display()
            )
        })?;
        tracing::warn!(
            "--rpc/--oracle not given: using the devnet's {}",
            args.state_file.display()
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
        .context("no --rpc")?;
    let oracle_text = args
        .oracle
        .clone()
        .or_else(|| state.as_ref().map(|s| s.oracle.clone()))
        .context("no --oracle")?;
    let oracle = Address::from_str(&oracle_text).context("bad --oracle address")?;
    let signer = load_signer(args.key.as_deref())?;
    let guest = std::fs::read(&args.guest).with_context(|| {
        format!(
            "reading the guest {} (build it with hosts/guest/build.sh)",
            args.guest.display()
        )
    })?;
    if args.workers == 0 {
        anyhow::bail!("--workers must be at least 1");
    }
    start(
        Settings {
            rpc,
            oracle,
            start_block: 0,
            models: args.models.clone(),
            guest,
            steps: args.steps,
            confirmations: args.confirmations,
            interval: Duration::from_millis(args.poll_ms),
            db: db_path,
            workers: args.workers,
            budget: Duration::from_secs(args.request_budget_s),
            faults,
        },
        signer,
    )
    .await
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
        crate::models::load(
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
        outputs: OutputStore::new(crate::outputs::dir_for_db(&settings.db)),
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
        r = op.run() => r,
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); Ok(()) }
    }
}

/// Run `oracle validator` until Ctrl-C.
pub async fn validator(args: &ValidatorArgs) -> Result<()> {
    let node = open(&args.node, "validator", args.faults.faults()).await?;
    let v = Validator::new(node);
    tokio::select! {
        r = v.run() => r,
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
        r = v.challenge_one(alloy::primitives::U256::from(args.request)) => r,
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); Ok(()) }
    }
}
