//! Deploy the oracle contracts on a devnet (anvil) in one call: AIOracle, Prompt, the dispute game
//! factory (with the RISC-V step verifier and the preimage oracle), one model.
//!
//! Mirrors `contracts/script/DeployDevnet.s.sol`. Transactions are sent with `from` set and no
//! signer, which suits anvil's unlocked accounts; use a provider with a wallet elsewhere.

use alloy::{
    contract::{CallBuilder, CallDecoder},
    primitives::{keccak256, Address, Uint, U256},
    providers::Provider,
    rpc::types::TransactionReceipt,
};

use crate::{AIOracle, DisputeGameFactory, PreimageOracle, Prompt, RISCV};

/// Parameters of a devnet deployment. [`Default`] gives short windows for demos.
///
/// The default bonds (1 ETH submission, 0.5 ETH challenge, 50% reward share) are sized so an
/// honest challenger never loses money at the devnet gas price (2 gwei): its worst whole game
/// costs about 3.1M gas, 5.0M with a 64 KiB input (`contracts/README.md`, "The honest side's
/// gas"), against a reward of at least `challenge_bond / 2 / (k + 1)` per wrong result it defeats,
/// `k` the sock puppets sharing it with the true claim.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    /// ETH an operator locks per submitted result.
    pub submission_bond: U256,
    /// ETH a challenger posts.
    pub challenge_bond: U256,
    /// Share of the request's pot of slashed bonds split among the winning challengers with the
    /// final claim, in basis points (the rest goes to the treasury).
    pub challenger_reward_bps: U256,
    /// Seconds between `requestUnbond` and `withdrawBond`.
    pub unbond_delay: U256,
    /// Seconds an operator has to serve a request.
    pub request_timeout: U256,
    /// Floor of the callback gas price, in wei.
    pub min_callback_gas_price: u128,
    /// Seconds between proposing and applying owner parameters (treasury, protocol share, price
    /// floor); at most 30 days.
    pub parameter_delay: U256,
    /// The model to register (its publisher is the deployer).
    pub model: AIOracle::ModelConfig,
    /// Traces of a disputed request (one-phase game) are at most `2^game_max_depth` VM steps
    /// (1..=63); such a game takes `game_max_depth + 1` moves and the step.
    pub game_max_depth: u8,
    /// Traces of the one disputed transition of a two-phase game are at most
    /// `2^game_transition_depth` VM steps (1..=63); its phase-2 game takes
    /// `game_transition_depth + 1` moves and the step. The default 28 (268M steps) covers
    /// every position of stories260K's 512-token context (~45M steps at position 511).
    pub game_transition_depth: u8,
    /// Seconds each side of a dispute game has in total for its turns (chess clock).
    pub game_clock: u32,
    /// The model's sampling parameters, the guest's local preimage 3 (see [`greedy_params`]); they
    /// must be what the operator serves with, or the VM trace the game checks is another one.
    pub sampling_params: Vec<u8>,
    /// Whether the model's disputes are two-phase (`PositionGame`: decode positions first, then the
    /// VM game of one transition; needs 20-byte `sampling_params`). Default `false` (one-phase).
    pub two_phase: bool,
}

/// Sampling parameters of greedy decoding of `steps` positions, as the guest reads them and the
/// operator encodes them: the core's canonical encoding of text parameters
/// (`oracle_core::TextParams::encode` with `SamplingParams::GREEDY`).
pub fn greedy_params(steps: u32) -> Vec<u8> {
    greedy_chat_params(steps, false)
}

/// [`greedy_params`], with the chat flag (`oracle_core::TextParams::chat`: every request's
/// prompt is one user message in the model's chat template) when `chat`.
pub fn greedy_chat_params(steps: u32, chat: bool) -> Vec<u8> {
    oracle_core::TextParams {
        steps,
        sampling: oracle_core::SamplingParams::GREEDY,
        chat,
    }
    .encode()
    .to_vec()
}

#[cfg(test)]
mod tests {
    #[test]
    fn greedy_params_are_steps_and_top_p_one() {
        let mut want = vec![0u8; 20];
        want[0..4].copy_from_slice(&16u32.to_be_bytes());
        want[8..12].copy_from_slice(&(1u32 << 16).to_be_bytes());
        assert_eq!(super::greedy_params(16), want);
    }
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
            parameter_delay: U256::from(24 * 3600u64),
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
            game_max_depth: 32,
            game_transition_depth: 28,
            game_clock: 120,
            sampling_params: greedy_params(64),
            two_phase: false,
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
    /// The dispute game factory (set on AIOracle).
    pub game_factory: Address,
    /// The RISC-V step verifier.
    pub riscv: Address,
    /// The preimage oracle the step verifier reads.
    pub preimage_oracle: Address,
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

/// Deploy AIOracle (owner and treasury `from`, no protocol share), the PreimageOracle, RISCV and
/// the dispute game factory (owner `from`), set that factory on AIOracle, deploy Prompt, register
/// `config.model` published by `from` (it gets the factory for good), and set its sampling
/// parameters and game kind (`config.two_phase`) on the factory.
pub async fn deploy<P: Provider>(
    provider: &P,
    from: Address,
    config: &DevnetConfig,
) -> Result<Deployment, DeployError> {
    let oracle_config = AIOracle::OracleConfig {
        treasury: from,
        protocolFeeBps: 0,
        minCallbackGasPrice: config.min_callback_gas_price,
        submissionBond: config.submission_bond,
        challengeBond: config.challenge_bond,
        challengerRewardBps: config.challenger_reward_bps,
        unbondDelay: config.unbond_delay,
        requestTimeout: config.request_timeout,
        parameterDelay: config.parameter_delay,
    };
    let oracle = AIOracle::deploy_builder(provider, from, oracle_config)
        .from(from)
        .deploy()
        .await?;
    let oracle_contract = AIOracle::new(oracle, provider);

    let preimage_oracle = PreimageOracle::deploy_builder(provider)
        .from(from)
        .deploy()
        .await?;
    let riscv = RISCV::deploy_builder(provider, preimage_oracle)
        .from(from)
        .deploy()
        .await?;
    let game_factory = DisputeGameFactory::deploy_builder(
        provider,
        from,
        oracle,
        riscv,
        preimage_oracle,
        config.game_max_depth,
        config.game_transition_depth,
        config.game_clock,
    )
    .from(from)
    .deploy()
    .await?;

    transact(
        oracle_contract
            .setDisputeGameFactory(game_factory)
            .from(from),
        "setDisputeGameFactory",
    )
    .await?;

    let prompt = Prompt::deploy_builder(provider, oracle, from)
        .from(from)
        .deploy()
        .await?;

    let register = oracle_contract
        .registerModel(config.model.clone())
        .from(from);
    let model_id = register.call().await?;
    transact(register, "registerModel").await?;

    transact(
        DisputeGameFactory::new(game_factory, provider)
            .setSamplingParams(
                config.model.modelRoot,
                config.model.programHash,
                config.sampling_params.clone().into(),
                config.two_phase,
            )
            .from(from),
        "setSamplingParams",
    )
    .await?;
    Ok(Deployment {
        oracle,
        prompt,
        model_id,
        game_factory,
        riscv,
        preimage_oracle,
    })
}

/// Send `call` (named `what` in the error) and wait until it is mined: its receipt; a mined revert
/// is [`DeployError::Reverted`].
pub async fn transact<P: Provider, D: CallDecoder>(
    call: CallBuilder<P, D>,
    what: &'static str,
) -> Result<TransactionReceipt, DeployError> {
    let receipt = call.send().await?.get_receipt().await?;
    if receipt.status() {
        Ok(receipt)
    } else {
        Err(DeployError::Reverted(what))
    }
}
