//! `oracle request`: ask the Prompt contract for a completion and, with `--wait`,
//! wait for the callback and print the text (or, with `--output`, save it: for an
//! image model the PNG, fetched from the node and checked against the posted hash
//! when the image was too large to post). Against a running `oracle devnet` it
//! needs no other flag.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::{bail, Context, Result};
use oracle_contracts::{AIOracle, Prompt};
use std::io::Write;

use crate::cli::devnet::{DevnetState, DEFAULT_STATE_FILE};

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
    // Requests sent at the same time from the same account (other `oracle request`
    // processes) may take the same nonce: the one that loses is sent again.
    let mut attempt = 0;
    let pending = loop {
        match call.send().await {
            Ok(p) => break p,
            Err(e) if attempt < 8 && lost_a_nonce_race(&e.to_string()) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => return Err(e).context("sending the request"),
        }
    };
    let receipt = pending.get_receipt().await?;
    anyhow::ensure!(receipt.status(), "the request reverted");
    // The id is the oracle's, from this transaction's own event: a simulation before
    // sending would race other requests sent at the same time.
    let request_id = receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == oracle_addr)
        .find_map(|l| l.log_decode::<AIOracle::AICallbackRequest>().ok())
        .map(|l| l.inner.data.requestId)
        .context("the request's receipt has no AICallbackRequest event")?;
    let sent_in = receipt.block_number.unwrap_or_default();
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
    let mut announced = false;
    while !oracle.isFinalized(request_id).call().await? {
        if started.elapsed() > Duration::from_secs(args.timeout) {
            bail!("no result after {}s", args.timeout);
        }
        if !announced {
            if let Some(posted) = posted_output(&provider, oracle_addr, request_id, sent_in).await?
            {
                announced = true;
                if posted.is_empty() {
                    eprintln!(
                        "request {request_id}: the operator posted the error outcome (the model rejects the request); final after the challenge window"
                    );
                } else {
                    eprintln!(
                        "request {request_id}: a result is posted ({} bytes); final after the challenge window",
                        posted.len()
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let delivered = final_output(&provider, oracle_addr, request_id, sent_in).await?;
    eprintln!(
        "result after {:.1}s ({} bytes)",
        started.elapsed().as_secs_f64(),
        delivered.len()
    );
    if delivered.is_empty() {
        bail!(
            "request {request_id} was rejected by the model (prompt too long for its context, or parameters it refuses): the oracle delivered the error outcome InvalidInput"
        );
    }
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

/// The output of the current result of `id` as last posted (`ResultSubmitted`, or a
/// challenger's that replaced it), if any.
async fn posted_output(
    provider: &impl Provider,
    oracle: Address,
    id: U256,
    from: u64,
) -> Result<Option<Vec<u8>>> {
    let filter = Filter::new()
        .address(oracle)
        .event_signature(AIOracle::ResultSubmitted::SIGNATURE_HASH)
        .topic1(B256::from(id))
        .from_block(from);
    let logs = provider
        .get_logs(&filter)
        .await
        .context("reading the result")?;
    Ok(logs
        .iter()
        .rev()
        .find_map(|l| l.log_decode::<AIOracle::ResultSubmitted>().ok())
        .map(|l| l.inner.data.output.to_vec()))
}

/// The output delivered when `id` finalized (`AICallbackResult`).
async fn final_output(
    provider: &impl Provider,
    oracle: Address,
    id: U256,
    from: u64,
) -> Result<Vec<u8>> {
    let filter = Filter::new()
        .address(oracle)
        .event_signature(AIOracle::AICallbackResult::SIGNATURE_HASH)
        .topic2(B256::from(id))
        .from_block(from);
    let logs = provider
        .get_logs(&filter)
        .await
        .context("reading the final result")?;
    logs.iter()
        .find_map(|l| l.log_decode::<AIOracle::AICallbackResult>().ok())
        .map(|l| l.inner.data.output.to_vec())
        .context("the request is final but its AICallbackResult event is missing")
}

/// GET `<base>/outputs/0x<hash>.png` and check that the bytes hash to `hash`.
async fn fetch_output(base: &str, hash: &[u8; 32]) -> Result<Vec<u8>> {
    let url = format!(
        "{}{}{}",
        base.trim_end_matches('/'),
        crate::http::OUTPUTS_PATH,
        crate::serve::outputs::file_name(hash)
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
    if oracle_core::commit::merkle::keccak(&bytes) != *hash {
        bail!(
            "{url} served {} bytes whose keccak256 is not the hash posted on chain: refusing them",
            bytes.len()
        );
    }
    eprintln!("fetched {url} ({} bytes, keccak256 checked)", bytes.len());
    Ok(bytes.to_vec())
}

/// Whether a send failed because another transaction of the same account took its
/// nonce first.
fn lost_a_nonce_race(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("nonce too low") || e.contains("underpriced") || e.contains("already known")
}
