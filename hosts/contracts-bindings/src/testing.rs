//! For tests against a local chain (this crate's and the node's): anvil, and the calls such tests
//! make again and again (a bonded deployment, a request, a challenge, anvil's clock).

use alloy::{
    node_bindings::{Anvil, AnvilInstance, NodeError},
    primitives::{keccak256, Address, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionReceipt,
};

use crate::devnet::{self, transact, DeployError, Deployment, DevnetConfig};
use crate::{anvil_path, AIOracle};

/// The callback gas limit of [`request`].
pub const CALLBACK_GAS_LIMIT: u64 = 200_000;

/// The bond [`deploy_bonded`] posts for the operator: 10 ETH.
pub const OPERATOR_BOND: u128 = 10 * 10u128.pow(18);

/// Why a test call failed.
#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    /// anvil did not start.
    #[error("starting anvil (run .ci/contracts-install.sh): {0}")]
    Anvil(#[from] NodeError),
    /// A contract call failed.
    #[error("contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// Deploying, or a transaction, failed.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// An RPC request failed.
    #[error("RPC request failed: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    /// The node has no latest block.
    #[error("no latest block")]
    NoBlock,
}

/// anvil (the npm-installed binary, [`anvil_path`]) on `port` (0: any free port) with `extra`
/// arguments.
pub fn spawn_anvil(port: u16, extra: &[&str]) -> Result<AnvilInstance, TestingError> {
    Ok(Anvil::at(anvil_path())
        .port(port)
        .args(extra.iter().map(|s| s.to_string()))
        .try_spawn()?)
}

/// [`devnet::deploy`] with `config` from `deployer`, then a bond of [`OPERATOR_BOND`] from
/// `operator`: the deployment and its AIOracle.
pub async fn deploy_bonded<P: Provider + Clone>(
    provider: &P,
    deployer: Address,
    operator: Address,
    config: &DevnetConfig,
) -> Result<(Deployment, AIOracle::AIOracleInstance<P>), TestingError> {
    let d = devnet::deploy(provider, deployer, config).await?;
    let oracle = AIOracle::new(d.oracle, provider.clone());
    let bond = oracle
        .bond()
        .value(U256::from(OPERATOR_BOND))
        .from(operator);
    transact(bond, "bond").await?;
    Ok((d, oracle))
}

/// The latest block's timestamp.
pub async fn now<P: Provider>(provider: &P) -> Result<u64, TestingError> {
    let block = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .ok_or(TestingError::NoBlock)?;
    Ok(block.header.timestamp)
}

/// Move anvil's clock `seconds` on and mine a block at the new time.
pub async fn advance<P: Provider>(provider: &P, seconds: u64) -> Result<(), TestingError> {
    // Both answer a number (the new offset, "0x0"), which is all that is read of them.
    provider
        .raw_request::<_, U256>("evm_increaseTime".into(), (seconds,))
        .await?;
    provider
        .raw_request::<_, U256>("evm_mine".into(), ())
        .await?;
    Ok(())
}

/// `requestCallback` of model `model_id` with `input`, callback `callback` (no callback data,
/// [`CALLBACK_GAS_LIMIT`]), paying the estimated fee from `from`: the request id.
pub async fn request<P: Provider>(
    oracle: &AIOracle::AIOracleInstance<P>,
    model_id: U256,
    input: &[u8],
    callback: Address,
    from: Address,
) -> Result<U256, TestingError> {
    let fee = oracle
        .estimateFee(model_id, U256::from(CALLBACK_GAS_LIMIT))
        .call()
        .await?;
    let call = oracle
        .requestCallback_1(
            model_id,
            Bytes::from(input.to_vec()),
            callback,
            CALLBACK_GAS_LIMIT,
            Bytes::new(),
        )
        .value(fee)
        .from(from);
    let id = call.call().await?;
    transact(call, "requestCallback").await?;
    Ok(id)
}

/// `submit` of request `id` by `operator` with `output` and `proof` (the 245-byte final VM state
/// for a one-phase model, empty for a two-phase one): the receipt.
pub async fn submit<P: Provider>(
    oracle: &AIOracle::AIOracleInstance<P>,
    id: U256,
    output: &[u8],
    proof: &[u8],
    operator: Address,
) -> Result<TransactionReceipt, TestingError> {
    let call = oracle
        .submit(
            id,
            Bytes::from(output.to_vec()),
            Bytes::from(proof.to_vec()),
        )
        .from(operator);
    Ok(transact(call, "submit").await?)
}

/// `challenge` of request `id` (made by [`request`] with `input` and no callback) with the
/// challenge bond, from `challenger`, with `output` and `proof` (as [`submit`]): the dispute id and
/// the receipt.
pub async fn challenge<P: Provider>(
    oracle: &AIOracle::AIOracleInstance<P>,
    id: U256,
    input: &[u8],
    output: &[u8],
    proof: &[u8],
    challenger: Address,
) -> Result<(U256, TransactionReceipt), TestingError> {
    let bond = oracle.challengeBond().call().await?;
    let call = oracle
        .challenge(
            id,
            keccak256(input),
            Address::ZERO,
            keccak256([]),
            Bytes::from(output.to_vec()),
            Bytes::from(proof.to_vec()),
        )
        .value(U256::from(bond))
        .from(challenger);
    let dispute = call.call().await?;
    Ok((dispute, transact(call, "challenge").await?))
}
