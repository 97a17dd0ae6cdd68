//! Deploy the oracle contracts on a devnet (anvil) in one call: AIOracle, Prompt, one model.
//!
//! Mirrors `contracts/script/DeployDevnet.s.sol`. Transactions are sent with `from` set and no
//! signer, which suits anvil's unlocked accounts; use a provider with a wallet elsewhere.

use alloy::{
    primitives::{keccak256, Address, Uint, U256},
    providers::Provider,
};

use crate::{AIOracle, Prompt};

/// Parameters of a devnet deployment. [`Default`] gives short windows for demos.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    /// ETH an operator locks per submitted result.
    pub submission_bond: U256,
    /// ETH a challenger posts.
    pub challenge_bond: U256,
    /// Share of a slashed submission bond paid to the winning challenger, in basis points.
    pub challenger_reward_bps: U256,
    /// Seconds between `requestUnbond` and `withdrawBond`.
    pub unbond_delay: U256,
    /// Seconds an operator has to serve a request.
    pub request_timeout: U256,
    /// Floor of the callback gas price, in wei.
    pub min_callback_gas_price: u128,
    /// The model to register (its publisher is the deployer).
    pub model: AIOracle::ModelConfig,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        const ETH: u128 = 1_000_000_000_000_000_000;
        Self {
            submission_bond: U256::from(ETH),
            challenge_bond: U256::from(ETH / 2),
            challenger_reward_bps: U256::from(5000u64),
            unbond_delay: U256::from(24 * 3600u64),
            request_timeout: U256::from(3600u64),
            min_callback_gas_price: 1_000_000_000,
            model: AIOracle::ModelConfig {
                modelRoot: keccak256(b"devnet model root"),
                programHash: keccak256(b"devnet program"),
                fee: Uint::from(ETH / 1000),
                feeToken: Address::ZERO,
                feeReceiver: Address::ZERO,
                receiverShareBps: 0,
                challengeWindow: 60,
                maxInputSize: 16 * 1024,
                maxCallbackGas: 5_000_000,
            },
        }
    }
}

/// Addresses of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The AIOracle contract.
    pub oracle: Address,
    /// The Prompt example contract.
    pub prompt: Address,
    /// The id of the registered model.
    pub model_id: U256,
}

/// Why a deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Sending a deployment or call failed (RPC error, revert on estimation, ...).
    #[error("contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// Waiting for a transaction's receipt failed.
    #[error("waiting for the receipt failed: {0}")]
    Pending(#[from] alloy::providers::PendingTransactionError),
    /// A transaction was mined but reverted.
    #[error("transaction `{0}` reverted")]
    Reverted(&'static str),
}

/// Deploy AIOracle (owner and treasury `from`), set its parameters (no dispute game yet), deploy
/// Prompt, and register `config.model` published by `from`.
pub async fn deploy<P: Provider>(
    provider: &P,
    from: Address,
    config: &DevnetConfig,
) -> Result<Deployment, DeployError> {
    let oracle = AIOracle::deploy_builder(
        provider,
        from,
        from,
        config.submission_bond,
        config.challenge_bond,
        config.challenger_reward_bps,
        config.unbond_delay,
        config.request_timeout,
    )
    .from(from)
    .deploy()
    .await?;
    let oracle_contract = AIOracle::new(oracle, provider);

    let receipt = oracle_contract
        .setParameters(from, 0, config.min_callback_gas_price, Address::ZERO)
        .from(from)
        .send()
        .await?
        .get_receipt()
        .await?;
    if !receipt.status() {
        return Err(DeployError::Reverted("setParameters"));
    }

    let prompt = Prompt::deploy_builder(provider, oracle, from)
        .from(from)
        .deploy()
        .await?;

    let register = oracle_contract
        .registerModel(config.model.clone())
        .from(from);
    let model_id = register.call().await?;
    let receipt = register.send().await?.get_receipt().await?;
    if !receipt.status() {
        return Err(DeployError::Reverted("registerModel"));
    }
    Ok(Deployment {
        oracle,
        prompt,
        model_id,
    })
}
