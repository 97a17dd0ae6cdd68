//! `oracle deploy`: the whole contract stack on any EVM chain, from a parameters file
//! checked before anything is sent, resumable when interrupted.
//!
//! The order: PreimageOracle, RISCV (the step verifier), AIOracle, the dispute game
//! factory (which deploys the game implementations), `setDisputeGameFactory`,
//! Prompt. Each contract's address is known before its creation is sent (it is the
//! deployer's address and nonce), so the deployment file records it first
//! (write-ahead) and the receipt after: a re-run finds the contracts that exist,
//! waits for or re-sends a creation that was in flight with the same nonce (so it
//! can never be created twice), and goes on from there. Before the first
//! transaction it checks that the deployer can pay for all of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use anyhow::{bail, Context, Result};
use oracle_contracts::{AIOracle, DisputeGameFactory, PreimageOracle, Prompt, RISCV};

use super::deployment::{Contracts, Deployed, Deployment};
use super::params::ParamsFile;
use super::KeyArgs;
use crate::chain::{connect, transact};
use crate::roles::node::crash_point;

/// Arguments of `oracle deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// JSON-RPC URL of the chain.
    #[arg(long, env = "ORACLE_RPC")]
    pub rpc: String,
    #[command(flatten)]
    pub key: KeyArgs,
    /// The parameters file (TOML: bonds, windows, clocks, depths, fees; see
    /// `docs/network.md`). Without it, the defaults.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// The deployment file to write (resumed if it exists).
    #[arg(long, default_value = "deployment.json")]
    pub out: PathBuf,
}

/// One step of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    PreimageOracle,
    Riscv,
    Oracle,
    Factory,
    SetFactory,
    Prompt,
}

impl Step {
    const ALL: [Step; 6] = [
        Step::PreimageOracle,
        Step::Riscv,
        Step::Oracle,
        Step::Factory,
        Step::SetFactory,
        Step::Prompt,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::PreimageOracle => "PreimageOracle",
            Step::Riscv => "RISCV",
            Step::Oracle => "AIOracle",
            Step::Factory => "DisputeGameFactory",
            Step::SetFactory => "setDisputeGameFactory",
            Step::Prompt => "Prompt",
        }
    }

    fn slot(self, c: &mut Contracts) -> Option<&mut Option<Deployed>> {
        match self {
            Step::PreimageOracle => Some(&mut c.preimage_oracle),
            Step::Riscv => Some(&mut c.riscv),
            Step::Oracle => Some(&mut c.oracle),
            Step::Factory => Some(&mut c.factory),
            Step::Prompt => Some(&mut c.prompt),
            Step::SetFactory => None,
        }
    }
}

/// Run `oracle deploy`.
pub async fn run(args: &DeployArgs) -> Result<()> {
    let file = match &args.params {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            ParamsFile::parse(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => ParamsFile::default(),
    };
    let params = file
        .check()
        .context("the parameters are refused (nothing was sent)")?;
    let signer = args.key.signer()?;
    let deployer = signer.address();
    let provider = connect(&args.rpc, signer)?;
    let chain_id = provider
        .get_chain_id()
        .await
        .context("reading the chain id")?;
    let mut d = if args.out.exists() {
        let d = Deployment::read(&args.out)?;
        d.check_chain(chain_id, &args.out)?;
        if d.params != params {
            bail!(
                "{} was made with other parameters: finish it with the same --params, or write a new deployment to another --out",
                args.out.display()
            );
        }
        if d.deployer != deployer {
            bail!(
                "{} is {}'s deployment, not {deployer}'s: use the same key to resume it",
                args.out.display(),
                d.deployer
            );
        }
        if d.complete {
            println!(
                "{} is complete (AIOracle {})",
                args.out.display(),
                d.oracle()?
            );
            return Ok(());
        }
        eprintln!("resuming the deployment in {}", args.out.display());
        d
    } else {
        let start_block = provider
            .get_block_number()
            .await
            .context("reading the head")?;
        Deployment {
            chain_id,
            deployer,
            start_block,
            params,
            contracts: Contracts::default(),
            factory_set: false,
            complete: false,
        }
    };
    check_funds(&provider, &d).await?;
    for step in Step::ALL {
        match step {
            Step::SetFactory => set_factory(&provider, &mut d, &args.out).await?,
            _ => create(&provider, &mut d, step, &args.out).await?,
        }
    }
    d.complete = true;
    d.write(&args.out)?;
    println!("deployed on chain {chain_id}: AIOracle {}", d.oracle()?);
    println!("  factory {}  Prompt {}", d.factory()?, d.prompt()?);
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The creation transaction of `step` (its init code and constructor arguments).
fn init_code(d: &Deployment, step: Step) -> Result<Bytes> {
    let p = &d.params;
    let addr = |s: Option<Deployed>, what: &str| {
        s.map(|d| d.address)
            .with_context(|| format!("{what} is not deployed yet"))
    };
    let c = &d.contracts;
    // Creation code = bytecode ‖ abi-encoded constructor arguments, as the bindings'
    // `deploy_builder` builds it.
    use alloy::sol_types::SolConstructor;
    Ok(match step {
        Step::PreimageOracle => PreimageOracle::BYTECODE.clone(),
        Step::Riscv => {
            let args = RISCV::constructorCall {
                oracle: addr(c.preimage_oracle, "PreimageOracle")?,
            };
            [RISCV::BYTECODE.to_vec(), args.abi_encode()]
                .concat()
                .into()
        }
        Step::Oracle => {
            let args = AIOracle::constructorCall {
                initialOwner: d.deployer,
                c: AIOracle::OracleConfig {
                    treasury: d.deployer,
                    protocolFeeBps: p.protocol_fee_bps,
                    minCallbackGasPrice: p.min_callback_gas_price,
                    submissionBond: p.submission_bond,
                    challengeBond: p.challenge_bond,
                    challengerRewardBps: U256::from(p.challenger_reward_bps),
                    unbondDelay: U256::from(p.unbond_delay_s),
                    requestTimeout: U256::from(p.request_timeout_s),
                    parameterDelay: U256::from(p.parameter_delay_s),
                },
            };
            [AIOracle::BYTECODE.to_vec(), args.abi_encode()]
                .concat()
                .into()
        }
        Step::Factory => {
            let args = DisputeGameFactory::constructorCall {
                owner_: d.deployer,
                aiOracle: addr(c.oracle, "AIOracle")?,
                vm: addr(c.riscv, "RISCV")?,
                oracle: addr(c.preimage_oracle, "PreimageOracle")?,
                maxDepth: p.game_max_depth,
                transitionDepth: p.game_transition_depth,
                clock: p.game_clock_s,
            };
            [DisputeGameFactory::BYTECODE.to_vec(), args.abi_encode()]
                .concat()
                .into()
        }
        Step::Prompt => {
            let args = Prompt::constructorCall {
                _aiOracle: addr(c.oracle, "AIOracle")?,
                initialOwner: d.deployer,
            };
            [Prompt::BYTECODE.to_vec(), args.abi_encode()]
                .concat()
                .into()
        }
        Step::SetFactory => bail!("setDisputeGameFactory is a call, not a creation"),
    })
}

/// Create `step`'s contract unless it exists (see the module docs for resuming).
async fn create(provider: &DynProvider, d: &mut Deployment, step: Step, out: &Path) -> Result<()> {
    let recorded = step.slot(&mut d.contracts).and_then(|s| *s);
    if let Some(r) = recorded {
        if has_code(provider, r.address).await? {
            if !r.mined {
                mark_mined(d, step, out)?;
            }
            eprintln!("  {} at {} (exists)", step.name(), r.address);
            return Ok(());
        }
        let mined_nonce = provider
            .get_transaction_count(d.deployer)
            .latest()
            .await
            .context("reading the deployer's nonce")?;
        if mined_nonce > r.nonce {
            bail!(
                "the creation of {} with nonce {} was mined but left no code at {} (it reverted?): inspect the chain, then remove it from the deployment file to retry",
                step.name(),
                r.nonce,
                r.address
            );
        }
        eprintln!(
            "  {}: re-sending the interrupted creation with nonce {}",
            step.name(),
            r.nonce
        );
        return send_creation(provider, d, step, r.nonce, out).await;
    }
    let nonce = provider
        .get_transaction_count(d.deployer)
        .pending()
        .await
        .context("reading the deployer's nonce")?;
    if let Some(slot) = step.slot(&mut d.contracts) {
        *slot = Some(Deployed {
            address: d.deployer.create(nonce),
            nonce,
            mined: false,
        });
    }
    d.write(out)?;
    send_creation(provider, d, step, nonce, out).await
}

/// Send `step`'s creation with `nonce` (recorded already) and wait for it.
async fn send_creation(
    provider: &DynProvider,
    d: &mut Deployment,
    step: Step,
    nonce: u64,
    out: &Path,
) -> Result<()> {
    let tx = TransactionRequest::default()
        .with_from(d.deployer)
        .with_nonce(nonce)
        .with_deploy_code(init_code(d, step)?);
    let pending = match provider.send_transaction(tx).await {
        Ok(p) => Some(p),
        Err(e)
            if e.to_string().contains("nonce too low")
                || e.to_string().contains("already known") =>
        {
            None
        }
        Err(e) => {
            return Err(e).with_context(|| format!("sending the creation of {}", step.name()))
        }
    };
    crash_point(&format!("deploy-sent:{}", step.name()));
    if let Some(p) = pending {
        let receipt = p
            .get_receipt()
            .await
            .with_context(|| format!("waiting for the creation of {}", step.name()))?;
        if !receipt.status() {
            bail!(
                "the creation of {} reverted (tx {})",
                step.name(),
                receipt.transaction_hash
            );
        }
    }
    let address = d.deployer.create(nonce);
    for _ in 0..120 {
        if has_code(provider, address).await? {
            mark_mined(d, step, out)?;
            eprintln!("  {} at {address}", step.name());
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!(
        "no code at {address} after the creation of {} was sent",
        step.name()
    )
}

fn mark_mined(d: &mut Deployment, step: Step, out: &Path) -> Result<()> {
    if let Some(Some(r)) = step.slot(&mut d.contracts) {
        r.mined = true;
    }
    d.write(out)
}

async fn has_code(provider: &DynProvider, address: Address) -> Result<bool> {
    Ok(!provider
        .get_code_at(address)
        .await
        .context("reading contract code")?
        .is_empty())
}

/// `setDisputeGameFactory(factory)` unless AIOracle already has it.
async fn set_factory(provider: &DynProvider, d: &mut Deployment, out: &Path) -> Result<()> {
    let oracle = d
        .contracts
        .oracle
        .context("AIOracle is not deployed")?
        .address;
    let factory = d
        .contracts
        .factory
        .context("the factory is not deployed")?
        .address;
    let c = AIOracle::new(oracle, provider);
    if c.disputeGameFactory().call().await? == factory {
        d.factory_set = true;
        return d.write(out);
    }
    let call = c.setDisputeGameFactory(factory).from(d.deployer);
    transact(&call, "setDisputeGameFactory").await?;
    eprintln!("  setDisputeGameFactory({factory})");
    d.factory_set = true;
    d.write(out)
}

/// Refuse to start unless the deployer can pay for every remaining step (estimated
/// gas × the current gas price, with 20% margin).
async fn check_funds(provider: &DynProvider, d: &Deployment) -> Result<()> {
    let mut sim = d.clone();
    let mut nonce = provider
        .get_transaction_count(d.deployer)
        .pending()
        .await
        .context("reading the deployer's nonce")?;
    let mut gas: u128 = 0;
    for step in Step::ALL {
        if step == Step::SetFactory {
            gas += 80_000;
            continue;
        }
        if step.slot(&mut sim.contracts).and_then(|s| *s).is_some() {
            continue;
        }
        let tx = TransactionRequest::default()
            .with_from(d.deployer)
            .with_deploy_code(init_code(&sim, step)?);
        let estimate = provider
            .estimate_gas(tx)
            .await
            .with_context(|| format!("estimating the creation of {}", step.name()))?;
        gas += u128::from(estimate);
        if let Some(slot) = step.slot(&mut sim.contracts) {
            *slot = Some(Deployed {
                address: d.deployer.create(nonce),
                nonce,
                mined: false,
            });
        }
        nonce += 1;
    }
    let price = provider
        .get_gas_price()
        .await
        .context("reading the gas price")?;
    let need = U256::from(gas) * U256::from(price) * U256::from(12u64) / U256::from(10u64);
    let have = provider
        .get_balance(d.deployer)
        .await
        .context("reading the deployer's balance")?;
    if have < need {
        bail!(
            "the deployer {} has {have} wei but the deployment needs about {need} wei ({gas} gas at {price} wei): fund it first (nothing was sent)",
            d.deployer
        );
    }
    Ok(())
}
