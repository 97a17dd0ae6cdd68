//! `oracle operator` and `oracle validator`: the long-running roles, started from
//! the command line (the devnet starts the same ones in-process).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use anyhow::{Context, Result};

use crate::chain::{connect, load_signer, retry};
use crate::db::Db;
use crate::devnet::{DevnetState, DEFAULT_STATE_FILE};
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
    /// Serve HTTP on this address (e.g. 127.0.0.1:9100): Prometheus `/metrics` and
    /// the image outputs posted as their hash, `/outputs/0x<keccak256>.png`.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// The devnet state file consulted when --rpc or --oracle is missing.
    #[arg(long, default_value = DEFAULT_STATE_FILE)]
    pub state_file: PathBuf,
}

/// Arguments of `oracle operator`.
#[derive(Debug, clap::Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Test only: post wrong results (another prompt's answer, with its VM trace),
    /// to test validators and the dispute game.
    #[arg(long, hide = true)]
    corrupt_output_for_tests: bool,
}

/// Arguments of `oracle validator`.
#[derive(Debug, clap::Args)]
pub struct ValidatorArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Test only: challenge correct results with a wrong claim, to test that
    /// operators defend.
    #[arg(long, hide = true)]
    challenge_correct_for_tests: bool,
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
async fn open(args: &NodeArgs, role: &str) -> Result<Node> {
    let db_path = args.db.clone().unwrap_or_else(|| default_db(role));
    if let Some(addr) = args.metrics_addr {
        let outputs = OutputStore::new(crate::outputs::dir_for_db(&db_path));
        crate::http::serve(addr, Some(outputs))?;
    }
    let state = if args.rpc.is_none() || args.oracle.is_none() {
        let text = std::fs::read(&args.state_file).with_context(|| {
            format!(
                "--rpc/--oracle not given and {} is unreadable (is `oracle devnet` running?)",
                args.state_file.display()
            )
        })?;
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
    start(
        &rpc,
        oracle,
        signer,
        &args.models,
        guest,
        args.steps,
        args.confirmations,
        Duration::from_millis(args.poll_ms),
        &db_path,
    )
    .await
}

/// Connect, open the database and load the models: a node ready to run.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    rpc: &str,
    oracle: Address,
    signer: alloy::signers::local::PrivateKeySigner,
    models: &Path,
    guest: Vec<u8>,
    steps: u32,
    confirmations: u64,
    interval: Duration,
    db_path: &Path,
) -> Result<Node> {
    let account = signer.address();
    let provider = connect(rpc, signer)?;
    let db = Db::open(db_path).with_context(|| format!("opening {}", db_path.display()))?;
    let set = retry("loading the models against the registry", 10, || {
        crate::models::load(models, &provider, oracle, &guest, steps)
    })
    .await?;
    if set.is_empty() {
        tracing::warn!(
            "no model file in {} matches a registered model: nothing to serve",
            models.display()
        );
    }
    tracing::info!(
        "node {account} on {rpc}, oracle {oracle}, database {}",
        db_path.display()
    );
    Ok(Node {
        provider,
        account,
        oracle,
        models: Arc::new(set),
        guest: Arc::new(guest),
        steps,
        confirmations,
        db: Arc::new(db),
        interval,
        outputs: OutputStore::new(crate::outputs::dir_for_db(db_path)),
    })
}

/// Run `oracle operator` until Ctrl-C.
pub async fn operator(args: &OperatorArgs) -> Result<()> {
    let node = open(&args.node, "operator").await?;
    let op = Operator::new(node, args.corrupt_output_for_tests);
    tokio::select! {
        r = op.run() => r,
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); Ok(()) }
    }
}

/// Run `oracle validator` until Ctrl-C.
pub async fn validator(args: &ValidatorArgs) -> Result<()> {
    let node = open(&args.node, "validator").await?;
    let v = Validator::new(node, args.challenge_correct_for_tests);
    tokio::select! {
        r = v.run() => r,
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); Ok(()) }
    }
}

/// Run `oracle challenge --request N`: re-execute the request's result; if it is
/// wrong, challenge it and play the game to the end (Ctrl-C stops; run the same
/// command again to resume the game from the database).
pub async fn challenge(args: &ChallengeArgs) -> Result<()> {
    let node = open(&args.node, "challenge").await?;
    let v = Validator::new(node, false);
    tokio::select! {
        r = v.challenge_one(alloy::primitives::U256::from(args.request)) => r,
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); Ok(()) }
    }
}
