//! Deploys AIOracle and Prompt on a real anvil (the npm-installed binary) and reads fees back.

use alloy::{
    node_bindings::Anvil,
    primitives::{keccak256, Address, U256},
    providers::{Provider, ProviderBuilder},
};
use oracle_contracts::{anvil_path, AIOracle, Prompt};

#[tokio::test]
async fn deploys_oracle_and_prompt_and_reads_estimate_fee() {
    let path = anvil_path();
    assert!(
        path.exists(),
        "anvil not found at {} (run .ci/contracts-install.sh, or set ANVIL)",
        path.display()
    );
    let anvil = Anvil::at(&path)
        .port(0u16)
        .try_spawn()
        .unwrap_or_else(|e| panic!("could not start anvil at {}: {e}", path.display()));
    let deployer = anvil.addresses()[0];
    let publisher = anvil.addresses()[1];
    // anvil's accounts are unlocked: transactions are sent unsigned with `from` and anvil signs them.
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());

    let oracle_address = AIOracle::deploy_builder(
        &provider,
        deployer,
        deployer,
        U256::from(10u64).pow(U256::from(18u64)),
        U256::from(5u64).pow(U256::from(17u64)),
        U256::from(5000u64),
        U256::from(14 * 24 * 3600u64),
        U256::from(24 * 3600u64),
    )
    .from(deployer)
    .deploy()
    .await
    .expect("deploy AIOracle");
    let oracle = AIOracle::new(oracle_address, &provider);
    let prompt_address = Prompt::deploy_builder(&provider, oracle_address, deployer)
        .from(deployer)
        .deploy()
        .await
        .expect("deploy Prompt");
    let prompt = Prompt::new(prompt_address, &provider);

    let model_fee = 10_000_000_000_000_000u128; // 0.01 ETH
    let config = AIOracle::ModelConfig {
        modelRoot: keccak256(b"model root"),
        programHash: keccak256(b"program"),
        fee: alloy::primitives::Uint::from(model_fee),
        feeToken: Address::ZERO,
        feeReceiver: publisher,
        receiverShareBps: 2000,
        challengeWindow: 3600,
        maxInputSize: 4096,
        maxCallbackGas: 2_000_000,
    };
    let receipt = oracle
        .registerModel(config)
        .from(publisher)
        .send()
        .await
        .expect("send registerModel")
        .get_receipt()
        .await
        .expect("registerModel receipt");
    assert!(receipt.status(), "registerModel reverted");
    assert_eq!(oracle.modelCount().call().await.unwrap(), 1);

    // Prompt's fee is the model fee plus its default callback gas at the oracle's gas price.
    let gas_price = oracle.callbackGasPrice().call().await.unwrap();
    let gas_limit = prompt.DEFAULT_CALLBACK_GAS_LIMIT().call().await.unwrap();
    let expected = U256::from(model_fee) + U256::from(gas_limit) * gas_price;
    let via_prompt = prompt.estimateFee(U256::from(1)).call().await.unwrap();
    let via_oracle = oracle
        .estimateFee(U256::from(1), U256::from(gas_limit))
        .call()
        .await
        .unwrap();
    assert_eq!(via_prompt, expected);
    assert_eq!(via_oracle, expected);
    assert!(
        via_prompt > U256::from(model_fee),
        "gas part must be priced"
    );

    // An unknown model reverts with the typed error.
    let err = prompt
        .estimateFee(U256::from(99))
        .call()
        .await
        .expect_err("unknown model must revert");
    let decoded = err.as_decoded_error::<AIOracle::UnknownModel>();
    assert_eq!(decoded.map(|e| e.modelId), Some(U256::from(99)));

    // The runtime code is the embedded one, with the `aiOracle` immutable filled in.
    let code = provider.get_code_at(*prompt.address()).await.unwrap();
    assert_eq!(code.len(), Prompt::DEPLOYED_BYTECODE.len());
    assert_eq!(prompt.aiOracle().call().await.unwrap(), *oracle.address());
}
