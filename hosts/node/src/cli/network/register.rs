//! Model publishers: `oracle register` checks a model file (it loads, the guest can
//! hold it, and one small request runs in the VM exactly as natively), registers it
//! with its Merkle root and the guest's program hash, configures its dispute game on
//! the factory (when the key is the factory's owner; otherwise it prints what the
//! owner must run) and prints the model id. `oracle models` lists the registered
//! models.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use anyhow::{bail, Context, Result};
use oracle_contracts::{AIOracle, DisputeGameFactory};

use super::{ChainArgs, KeyArgs, Session};
use crate::chain::transact;
use crate::cli::daemon::DEFAULT_GUEST;
use crate::cli::network::params::parse_amount;
use crate::faults::Faults;
use crate::serve::image::{ImageArgs, ImageParams};
use crate::serve::models::{check_file, ModelKind, ServedModel};
use crate::serve::outputs::OutputStore;
use crate::serve::{program_hash, serve};

/// The dispute game a model is registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Game {
    /// Decode positions first, then one transition in the VM (text models).
    TwoPhase,
    /// One VM game over the whole request (text or image models).
    OnePhase,
}

/// Arguments of `oracle register`.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// The model file (from `oracle-quant convert`).
    #[arg(long)]
    pub model: PathBuf,
    /// The guest program the model is registered with (its prestate hash is the
    /// program hash operators must run).
    #[arg(long, default_value = DEFAULT_GUEST)]
    pub guest: PathBuf,
    /// Model fee per request: wei, or a decimal with eth / gwei.
    #[arg(long, default_value = "0")]
    pub fee: String,
    /// Who receives the publisher's share of the fee.
    #[arg(long)]
    pub fee_receiver: Option<Address>,
    /// The receiver's share of the fee, basis points (at most 9000).
    #[arg(long, default_value_t = 0)]
    pub receiver_share_bps: u16,
    /// Challenge window, seconds (1 s to 30 days).
    #[arg(long, default_value_t = 3600)]
    pub window: u32,
    /// Largest request input, bytes (at most 65536).
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_input: u32,
    /// Largest callback gas a request may ask for.
    #[arg(long, default_value_t = 5_000_000)]
    pub max_callback_gas: u32,
    /// The dispute game (text models; image models are one-phase).
    #[arg(long, value_enum, default_value_t = Game::TwoPhase)]
    pub game: Game,
    /// Text models: positions every request runs (prompt included); operators
    /// serve with `--steps` equal to it.
    #[arg(long, default_value_t = 64)]
    pub steps: u32,
    /// Text models with a chat template (`oracle run --chat`): every request's
    /// prompt is one user message in the model's template. Part of the registered
    /// parameters, so the games check it.
    #[arg(long)]
    pub chat: bool,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Only configure an already registered model's game on the factory (the
    /// factory owner's part, when the publisher is someone else).
    #[arg(long)]
    pub configure_only: bool,
}

/// Run `oracle register`.
pub async fn run(args: &RegisterArgs) -> Result<()> {
    let bytes = check_file(&args.model)
        .map_err(|why| anyhow::anyhow!("{}: {why} (nothing was sent)", args.model.display()))?;
    let guest = std::fs::read(&args.guest)
        .with_context(|| format!("reading the guest {}", args.guest.display()))?;
    if args.chat {
        crate::serve::models::check_chat(&bytes)
            .map_err(|why| anyhow::anyhow!("{}: {why} (nothing was sent)", args.model.display()))?;
    }
    let image_params = args.image.params()?;
    let root: B256 = oracle_core::commit::merkle::model_root(&bytes).into();
    let program: B256 = program_hash(&guest)?.into();
    let session = Session::open(&args.chain, &args.key).await?;
    let d = &session.deployment;
    let p = &d.params;
    let (params, kind) = crate::serve::models::registration(
        &bytes,
        args.game == Game::TwoPhase,
        args.steps,
        args.chat,
        image_params,
        1u64 << p.game_max_depth,
        1u64 << p.game_transition_depth,
    );
    let two_phase = kind.two_phase();
    if args.game == Game::TwoPhase && !two_phase && args.configure_only {
        bail!("an image model's disputes are one-phase games");
    }
    let oracle = AIOracle::new(d.oracle()?, &session.provider);
    if !args.configure_only {
        probe(&bytes, &guest, kind).await?;
        let fee = parse_amount(&args.fee).with_context(|| format!("--fee {}", args.fee))?;
        let config = AIOracle::ModelConfig {
            modelRoot: root,
            programHash: program,
            fee: alloy::primitives::Uint::from(fee.to::<u128>()),
            feeToken: Address::ZERO,
            feeReceiver: args.fee_receiver.unwrap_or(Address::ZERO),
            receiverShareBps: args.receiver_share_bps,
            challengeWindow: args.window,
            maxInputSize: args.max_input,
            maxCallbackGas: args.max_callback_gas,
        };
        let call = oracle.registerModel(config).from(session.account);
        let receipt = transact(&call, "the registration (registerModel)").await?;
        let id = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<AIOracle::ModelRegistered>().ok())
            .map(|l| l.inner.data.modelId)
            .context("no ModelRegistered event")?;
        eprintln!("registered model {id}: root {root}, program hash {program}");
        println!("{id}");
    }
    if args.configure_only && !is_registered(&oracle, root, program).await? {
        bail!(
            "no model with root {root} and program hash {program} is registered on this deployment (another file, or another guest?): nothing was sent"
        );
    }
    let factory = DisputeGameFactory::new(d.factory()?, &session.provider);
    let key = factory.modelKey(root, program).call().await?;
    if !factory.samplingParams(key).call().await?.is_empty() {
        eprintln!("its dispute game is configured already");
        return Ok(());
    }
    let owner = factory.owner().call().await?;
    if owner != session.account {
        eprintln!(
            "its dispute game is not configured yet: the factory's owner {owner} must run\n  oracle register --configure-only --model {} --game {} ...\n(results cannot be submitted before)",
            args.model.display(),
            if two_phase { "two-phase" } else { "one-phase" }
        );
        return Ok(());
    }
    let call = factory
        .setSamplingParams(root, program, params.into(), two_phase)
        .from(session.account);
    transact(&call, "the game configuration (setSamplingParams)").await?;
    eprintln!(
        "configured its dispute game: {}",
        if two_phase { "two-phase" } else { "one-phase" }
    );
    Ok(())
}

/// Whether a model with `root` and `program` is registered.
async fn is_registered<P: alloy::providers::Provider>(
    oracle: &AIOracle::AIOracleInstance<P>,
    root: B256,
    program: B256,
) -> Result<bool> {
    let count = oracle.modelCount().call().await?;
    for id in 1..=count {
        let m = oracle.getModel(U256::from(id)).call().await?;
        if m.modelRoot == root && m.programHash == program {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Serve one small request of the model the way operators will (native and in the
/// VM, within the game's bounds), so a model whose results could not be defended
/// is never registered.
async fn probe(bytes: &[u8], guest: &[u8], kind: ModelKind) -> Result<()> {
    let model = ServedModel {
        id: U256::ZERO,
        bytes: std::sync::Arc::new(bytes.to_vec()),
        name: "the model".into(),
        root: oracle_core::commit::merkle::model_root(bytes).into(),
        kind: match kind {
            ModelKind::Image {
                params,
                trace_bound,
            } => ModelKind::Image {
                params: ImageParams { steps: 1, ..params },
                trace_bound,
            },
            other => other,
        },
    };
    let guest = guest.to_vec();
    let started = Instant::now();
    let store = OutputStore::new(tempfile::tempdir()?.keep());
    let served = tokio::task::spawn_blocking(move || {
        serve(
            &model,
            &guest,
            b"",
            1,
            &store,
            Faults::default(),
            Instant::now() + Duration::from_secs(600),
        )
    })
    .await
    .context("the probe panicked")?
    .context("the guest cannot serve the model as natively (nothing was sent)")?;
    eprintln!(
        "checked: a request runs in the VM as natively ({} VM steps, {:.1} s)",
        served.steps,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Arguments of `oracle models`.
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// JSON-RPC URL of the chain.
    #[arg(long, env = "ORACLE_RPC")]
    pub rpc: String,
    /// The deployment file written by `oracle deploy`.
    #[arg(long, default_value = "deployment.json")]
    pub deployment: PathBuf,
}

/// Run `oracle models`: every registered model with its root, program hash, fee,
/// window and game.
pub async fn models(args: &ModelsArgs) -> Result<()> {
    let d = super::deployment::Deployment::read(&args.deployment)?;
    let url = args
        .rpc
        .parse()
        .with_context(|| format!("bad RPC URL {}", crate::chain::redacted(&args.rpc)))?;
    let provider: alloy::providers::DynProvider = alloy::providers::Provider::erased(
        alloy::providers::ProviderBuilder::new().connect_http(url),
    );
    super::check_chain(&provider, &d, &args.deployment).await?;
    let oracle = AIOracle::new(d.oracle()?, &provider);
    let count = oracle.modelCount().call().await?;
    println!("id  root  program hash  fee (wei)  window (s)  game  publisher");
    for id in 1..=count {
        let m = oracle.getModel(U256::from(id)).call().await?;
        let factory = DisputeGameFactory::new(m.factory, &provider);
        let key = factory.modelKey(m.modelRoot, m.programHash).call().await?;
        let params = factory.samplingParams(key).call().await?;
        let game = if params.is_empty() {
            "not configured".to_string()
        } else if factory.twoPhase(key).call().await? {
            format!("two-phase, params 0x{}", alloy::hex::encode(&params))
        } else {
            format!("one-phase, params 0x{}", alloy::hex::encode(&params))
        };
        println!(
            "{id}  {}  {}  {}  {}  {game}  {}",
            m.modelRoot, m.programHash, m.fee, m.challengeWindow, m.publisher
        );
    }
    Ok(())
}
