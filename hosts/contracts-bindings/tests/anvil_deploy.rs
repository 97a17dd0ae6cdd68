//! Deploys AIOracle and Prompt on a real anvil (the npm-installed binary) and reads fees back.

use alloy::{
    node_bindings::Anvil,
    primitives::{Address, U256},
    providers::{Provider, ProviderBuilder},
};
use oracle_contracts::{
    anvil_path,
    devnet::{self, DevnetConfig},
    AIOracle, Prompt,
};

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
    // anvil's accounts are unlocked: transactions are sent unsigned with `from` and anvil signs them.
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());

    let mut config = DevnetConfig::default();
    let model_fee = 10_000_000_000_000_000u128; // 0.01 ETH
    config.model.fee = alloy::primitives::Uint::from(model_fee);
    config.model.feeReceiver = anvil.addresses()[1];
    config.model.receiverShareBps = 2000;
    let deployment = devnet::deploy(&provider, deployer, &config)
        .await
        .expect("deploy the devnet contracts");
    assert_eq!(deployment.model_id, U256::from(1));

    let oracle = AIOracle::new(deployment.oracle, &provider);
    let prompt = Prompt::new(deployment.prompt, &provider);
    assert_eq!(oracle.modelCount().call().await.unwrap(), 1);
    assert_eq!(oracle.owner().call().await.unwrap(), deployer);
    let model = oracle.getModel(deployment.model_id).call().await.unwrap();
    assert_eq!(model.modelRoot, config.model.modelRoot);
    assert_eq!(model.publisher, deployer);

    // Prompt's fee is the model fee plus its default callback gas at the oracle's gas price.
    let gas_price = oracle.callbackGasPrice().call().await.unwrap();
    assert!(gas_price >= U256::from(config.min_callback_gas_price));
    let gas_limit = prompt.DEFAULT_CALLBACK_GAS_LIMIT().call().await.unwrap();
    let expected = U256::from(model_fee) + U256::from(gas_limit) * gas_price;
    let via_prompt = prompt
        .estimateFee(deployment.model_id)
        .call()
        .await
        .unwrap();
    let via_oracle = oracle
        .estimateFee(deployment.model_id, U256::from(gas_limit))
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
    let code = provider.get_code_at(deployment.prompt).await.unwrap();
    assert_eq!(code.len(), Prompt::DEPLOYED_BYTECODE.len());
    assert_eq!(prompt.aiOracle().call().await.unwrap(), deployment.oracle);
    assert_ne!(deployment.oracle, Address::ZERO);
}
