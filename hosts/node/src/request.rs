//! `oracle request`: ask the Prompt contract for a completion and, with `--wait`,
//! wait for the callback and print the text (or, with `--output`, save it: for an
//! image model the PNG, fetched from the node and checked against the posted hash
//! when the image was too large to post). Against a running `oracle devnet` it
//! needs no other flag.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::ProviderBuilder;
use alloy::sol_types::SolType;
use anyhow::{bail, Context, Result};
use oracle_contracts::{AIOracle, Prompt};
use std::io::Write;

use crate::devnet::{DevnetState, DEFAULT_STATE_FILE};

/// Arguments of `oracle request`.
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// The prompt (empty for an unconditional image model).
    #[arg(long, default_value = "")]
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
    /// With --wait: write the delivered output to this file instead of stdout. For
    /// an image model that is the PNG: the delivered bytes, or, when a hash was
    /// posted (a PNG over the inline limit), the PNG fetched from the node and
    /// checked against that hash.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Base URL of the node serving image outputs posted as their hash (default:
    /// the running devnet's, when it serves one).
    #[arg(long)]
    pub fetch_from: Option<String>,
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
    let oracle_addr = Address::from_str(&state.oracle).context("bad AIOracle address")?;
    let fetch_from = args.fetch_from.clone().or(state.outputs_url.clone());
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
    let oracle = AIOracle::new(oracle_addr, &provider);
    while !oracle.isFinalized(request_id).call().await? {
        if started.elapsed() > Duration::from_secs(args.timeout) {
            bail!("no result after {}s", args.timeout);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Raw bytes (an ABI string decoded as bytes): a PNG is not UTF-8.
    let raw = prompt
        .getAIResult(model_id, args.prompt.clone())
        .call_raw()
        .await
        .context("reading the result")?;
    let delivered = <alloy::sol_types::sol_data::Bytes as SolType>::abi_decode(&raw)
        .context("decoding the result")?
        .to_vec();
    eprintln!(
        "result after {:.1}s ({} bytes)",
        started.elapsed().as_secs_f64(),
        delivered.len()
    );
    let Some(path) = &args.output else {
        std::io::stdout().write_all(&delivered)?;
        return Ok(());
    };
    let bytes = match <[u8; 32]>::try_from(delivered.as_slice()) {
        Ok(hash) => {
            let url = fetch_from.context(
                "the result is a 32-byte hash (an image over the inline limit): give --fetch-from http://<node>",
            )?;
            fetch_output(&url, &hash).await?
        }
        Err(_) => delivered,
    };
    std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {} bytes to {}", bytes.len(), path.display());
    Ok(())
}

/// GET `<base>/outputs/0x<hash>.png` and check that the bytes hash to `hash`.
async fn fetch_output(base: &str, hash: &[u8; 32]) -> Result<Vec<u8>> {
    let url = format!(
        "{}{}{}",
        base.trim_end_matches('/'),
        crate::http::OUTPUTS_PATH,
        crate::outputs::file_name(hash)
    );
    let response = reqwest::get(&url)
        .await
        .with_context(|| format!("fetching {url}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "fetching {url}: HTTP {}",
        response.status()
    );
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("reading {url}"))?;
    if oracle_core::merkle::keccak(&bytes) != *hash {
        bail!(
            "{url} served {} bytes whose keccak256 is not the hash posted on chain: refusing them",
            bytes.len()
        );
    }
    eprintln!("fetched {url} ({} bytes, keccak256 checked)", bytes.len());
    Ok(bytes.to_vec())
}
