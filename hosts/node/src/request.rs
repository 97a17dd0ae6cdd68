//! `oracle request`: ask the Prompt contract for a completion and, with `--wait`,
//! wait for the callback and print the text. Against a running `oracle devnet` it
//! needs no other flag.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::ProviderBuilder;
use anyhow::{bail, Context, Result};
use oracle_contracts::Prompt;

use crate::devnet::{DevnetState, DEFAULT_STATE_FILE};

/// Arguments of `oracle request`.
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// The prompt.
    #[arg(long)]
    pub prompt: String,
    /// The devnet state file (RPC URL and addresses) written by `oracle devnet`.
    #[arg(long, default_value = DEFAULT_STATE_FILE)]
    pub state_file: PathBuf,
    /// JSON-RPC URL (overrides the state file).
    #[arg(long)]
    pub rpc: Option<String>,
    /// Model id (overrides the state file).
    #[arg(long)]
    pub model_id: Option<u64>,
    /// Wait for the callback and print the delivered text on stdout.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting for the result after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// Send the request and print the result.
pub async fn run(args: &RequestArgs) -> Result<()> {
    let text = std::fs::read(&args.state_file).with_context(|| {
        format!(
            "reading {} (is `oracle devnet` running?)",
            args.state_file.display()
        )
    })?;
    let state: DevnetState =
        serde_json::from_slice(&text).context("parsing the devnet state file")?;
    let rpc = args.rpc.clone().unwrap_or(state.rpc);
    let provider = ProviderBuilder::new().connect_http(rpc.parse().context("bad RPC URL")?);
    let prompt_addr = Address::from_str(&state.prompt).context("bad Prompt address")?;
    let user = Address::from_str(&state.user).context("bad user address")?;
    let model_id = U256::from(args.model_id.unwrap_or(state.model_id));
    let prompt = Prompt::new(prompt_addr, &provider);
    let fee = prompt
        .estimateFee(model_id)
        .call()
        .await
        .context("estimating the fee")?;
    let call = prompt
        .calculateAIResult(model_id, args.prompt.clone())
        .value(fee)
        .from(user);
    let request_id = call.call().await.context("simulating the request")?;
    let receipt = call
        .send()
        .await
        .context("sending the request")?
        .get_receipt()
        .await?;
    anyhow::ensure!(receipt.status(), "the request reverted");
    if !args.wait {
        println!("{request_id}");
        eprintln!(
            "request {request_id} sent (fee {fee} wei); add --wait to wait for the text, or read it with Prompt.getAIResult({model_id}, prompt)"
        );
        return Ok(());
    }
    eprintln!("request {request_id} sent (fee {fee} wei); waiting for the result");
    let started = Instant::now();
    loop {
        let result = prompt
            .getAIResult(model_id, args.prompt.clone())
            .call()
            .await?;
        if !result.is_empty() {
            print!("{result}");
            eprintln!("result after {:.1}s", started.elapsed().as_secs_f64());
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(args.timeout) {
            bail!("no result after {}s", args.timeout);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
