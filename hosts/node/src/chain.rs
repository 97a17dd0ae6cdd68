//! Connecting to the chain: the local signer (a private key from a file or an
//! environment variable), a provider that signs with it, and retry with backoff.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{bail, Context, Result};
use oracle_contracts::AIOracle;

/// Environment variable read when `--key` is not given.
pub const KEY_ENV: &str = "ORACLE_PRIVATE_KEY";

/// Environment variable holding a keystore's password (when no password file is given).
pub const KEYSTORE_PASSWORD_ENV: &str = "ORACLE_KEYSTORE_PASSWORD";

/// Load the signing key. `spec` is `keystore:PATH` (an encrypted JSON keystore, as
/// geth, foundry's `cast wallet` and alloy write them; its password from
/// `password_file` or `$ORACLE_KEYSTORE_PASSWORD`), `env:NAME` (the variable holds
/// the key), a path to a file holding the key (hex, optional `0x`, surrounding
/// whitespace ignored), or absent (then `$ORACLE_PRIVATE_KEY`). A raw key is
/// refused.
pub fn load_signer_with(
    spec: Option<&str>,
    password_file: Option<&Path>,
) -> Result<PrivateKeySigner> {
    if let Some(path) = spec.and_then(|s| s.strip_prefix("keystore:")) {
        let password = match password_file {
            Some(f) => std::fs::read_to_string(f)
                .with_context(|| format!("reading the password file {}", f.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
            None => std::env::var(KEYSTORE_PASSWORD_ENV).with_context(|| {
                format!("the keystore needs a password: --password-file FILE or ${KEYSTORE_PASSWORD_ENV}")
            })?,
        };
        if !Path::new(path).is_file() {
            bail!("the keystore {path} is not a readable file");
        }
        return PrivateKeySigner::decrypt_keystore(path, password)
            .with_context(|| format!("opening the keystore {path} (wrong password?)"));
    }
    load_signer(spec)
}

/// Load the signing key from `spec` as [`load_signer_with`] does, without a keystore
/// password file.
pub fn load_signer(spec: Option<&str>) -> Result<PrivateKeySigner> {
    if let Some(path) = spec.and_then(|s| s.strip_prefix("keystore:")) {
        return load_signer_with(Some(&format!("keystore:{path}")), None);
    }
    if spec.is_some_and(looks_like_a_key) {
        bail!(
            "refusing a raw private key on the command line (other users see it in the process list, and it stays in the shell history): use an encrypted keystore (--key keystore:FILE), a file (--key FILE), an environment variable (--key env:NAME) or ${KEY_ENV}"
        );
    }
    let text = match spec {
        None => std::env::var(KEY_ENV)
            .with_context(|| format!("no --key given and ${KEY_ENV} is not set"))?,
        Some(s) => match s.strip_prefix("env:") {
            Some(var) => {
                std::env::var(var).with_context(|| format!("reading the key from ${var}"))?
            }
            None => std::fs::read_to_string(Path::new(s))
                .with_context(|| format!("reading the key file {}", Path::new(s).display()))?,
        },
    };
    let trimmed = text.trim();
    let hex_part = trimmed.strip_prefix("0x").unwrap_or(trimmed);
    if hex_part.len() != 64 {
        bail!("the private key must be 32 bytes of hex (64 digits)");
    }
    hex_part
        .parse::<PrivateKeySigner>()
        .context("the private key is not valid hex or not a valid secp256k1 key")
}

/// `rpc` as logs may show it: scheme, host and port only (a provider URL often
/// carries an API key in its path, query or user part).
pub fn redacted(rpc: &str) -> String {
    match rpc.parse::<reqwest::Url>() {
        Ok(url) => {
            let host = url.host_str().unwrap_or("?");
            let secret = !url.username().is_empty()
                || url.password().is_some()
                || url.query().is_some()
                || url.path().len() > 1;
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{host}{port}{}",
                url.scheme(),
                if secret { "/…" } else { "" }
            )
        }
        Err(_) => "<an unparsable RPC URL>".to_string(),
    }
}

/// Whether a `--key` argument is itself a private key (64 hex digits, with or
/// without `0x`) rather than where to find one.
fn looks_like_a_key(spec: &str) -> bool {
    let hex = spec.strip_prefix("0x").unwrap_or(spec);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A provider at `rpc` that signs with `signer` (nonce, gas and chain id filled in).
///
/// Nonces are read from the chain (the pending count) for every transaction, not
/// cached: alloy's cached manager reserves a nonce before the gas estimate, so a
/// send whose estimate reverts (a move racing the opponent's, a finalization one
/// second early) would leave a gap that every later transaction queues behind,
/// forever. The node sends one transaction at a time and retries a failed round,
/// so the extra RPC call per transaction is all this costs.
pub fn connect(rpc: &str, signer: PrivateKeySigner) -> Result<DynProvider> {
    let url = rpc
        .parse()
        .with_context(|| format!("bad RPC URL {}", redacted(rpc)))?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased())
}

/// Wait for a sent transaction's receipt; `what` names it in the error. The
/// receipt may be a revert: the caller reads `status()`.
pub async fn mined(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
    what: &str,
) -> Result<TransactionReceipt> {
    pending
        .get_receipt()
        .await
        .with_context(|| format!("waiting for {what}"))
}

/// Send `call` and wait for its receipt (which may be a revert); `what` names it
/// in errors.
pub async fn send_call<P: Provider, D: alloy::contract::CallDecoder>(
    call: &alloy::contract::CallBuilder<P, D>,
    what: &str,
) -> Result<TransactionReceipt> {
    let pending = call
        .send()
        .await
        .with_context(|| format!("sending {what}"))?;
    mined(pending, what).await
}

/// Simulate `call` at the pending block (a refusal is reported with its revert
/// reason, and nothing is sent), then send it and wait for a successful receipt;
/// `what` names it in errors.
pub async fn transact<P: Provider, D: alloy::contract::CallDecoder>(
    call: &alloy::contract::CallBuilder<P, D>,
    what: &str,
) -> Result<TransactionReceipt> {
    if let Err(e) = call.call().block(alloy::eips::BlockId::pending()).await {
        bail!(
            "{what} is refused: {} (nothing was sent)",
            revert_reason(&e)
        );
    }
    let receipt = send_call(call, what).await?;
    if !receipt.status() {
        bail!("{what} reverted (tx {})", receipt.transaction_hash);
    }
    Ok(receipt)
}

/// Why a call to the oracle reverts, named by the contracts' own errors where they
/// are known (AIOracle's, or the dispute game factory's, which binds claims).
pub fn revert_reason(e: &alloy::contract::Error) -> String {
    use oracle_contracts::{AIOracle, DisputeGameFactory};
    if let Some(err) = e.as_decoded_interface_error::<AIOracle::AIOracleErrors>() {
        return format!("{err:?}");
    }
    if let Some(err) =
        e.as_decoded_interface_error::<DisputeGameFactory::DisputeGameFactoryErrors>()
    {
        return format!("{err:?}");
    }
    e.to_string()
}

/// Exponential backoff between retries of a failing RPC round: doubles from
/// `start` up to `max`, back to `start` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    start: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// A backoff from `start` to `max`.
    pub fn new(start: Duration, max: Duration) -> Self {
        Backoff {
            start,
            max,
            current: start,
        }
    }

    /// The next delay after a failure.
    pub fn fail(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        d
    }

    /// Reset after a success; returns the normal interval.
    pub fn succeed(&mut self) -> Duration {
        self.current = self.start;
        self.start
    }
}

/// Retry `f` up to `attempts` times with backoff (for one-shot reads at startup).
pub async fn retry<T, F, Fut>(what: &str, attempts: u32, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut last = None;
    for _ in 0..attempts.max(1) {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                tracing::warn!("{what}: {e:#}; retrying");
                last = Some(e);
                tokio::time::sleep(backoff.fail()).await;
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("{what}: no attempt")))
        .with_context(|| format!("{what}: giving up"))
}

/// The current chain time as the next block will see it: the later of the latest
/// block's timestamp and the wall clock (anvil mines on demand, so the latest block
/// can be old; a block carries at least the wall-clock time).
pub async fn chain_now(provider: &DynProvider) -> Result<u64> {
    let block = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .context("reading the latest block")?
        .context("no latest block")?;
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(block.header.timestamp.max(wall))
}

/// An AIOracle request's status as the contract's enum (`RequestStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No such request.
    None,
    /// Waiting for a result.
    Pending,
    /// A result is posted.
    Submitted,
    /// A result is disputed.
    Disputed,
    /// Final.
    Finalized,
    /// Refunded.
    Refunded,
}

impl Status {
    /// From the contract's `uint8`.
    pub fn from_u8(v: u8) -> Status {
        match v {
            1 => Status::Pending,
            2 => Status::Submitted,
            3 => Status::Disputed,
            4 => Status::Finalized,
            5 => Status::Refunded,
            _ => Status::None,
        }
    }
}

/// A request's status and deadlines, and its current result.
#[derive(Debug, Clone, Copy)]
pub struct OnChain {
    /// Request status.
    pub status: Status,
    /// The time a result must be submitted by (seconds).
    pub deadline: u64,
    /// End of the challenge window of the current result (seconds).
    pub challenge_deadline: u64,
    /// Current result's submitter (zero if none).
    pub submitter: Address,
    /// The current result's version (replacements by disputes so far).
    pub version: u32,
}

/// Read a request and its result from the AIOracle.
pub async fn on_chain(provider: &DynProvider, oracle: Address, id: U256) -> Result<OnChain> {
    let c = AIOracle::new(oracle, provider);
    let r = c.getRequest(id).call().await.context("getRequest")?;
    let res = c.getResult(id).call().await.context("getResult")?;
    Ok(OnChain {
        status: Status::from_u8(r.status),
        deadline: u64::from(r.deadline),
        challenge_deadline: r.challengeDeadline.to::<u64>(),
        submitter: res.submitter,
        version: res.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_key_on_the_command_line_is_refused_and_never_echoed() {
        let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        for spec in [key, &key[2..]] {
            let e = format!("{:#}", load_signer(Some(spec)).unwrap_err());
            assert!(e.contains("refusing a raw private key"), "{e}");
            assert!(!e.contains(&key[2..]), "the key is echoed: {e}");
        }
        let e = format!("{:#}", load_signer(Some("/no/such/key/file")).unwrap_err());
        assert!(e.contains("reading the key file"), "{e}");
    }

    #[test]
    fn keystores_open_with_their_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let (signer, _uuid) = PrivateKeySigner::new_keystore(
            dir.path(),
            &mut rand08::thread_rng(),
            "correct horse",
            Some("node.json"),
        )
        .unwrap();
        let path = dir.path().join("node.json");
        let spec = format!("keystore:{}", path.display());
        let good = dir.path().join("pw");
        std::fs::write(&good, "correct horse\n").unwrap();
        let opened = load_signer_with(Some(&spec), Some(&good)).unwrap();
        assert_eq!(opened.address(), signer.address());
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "wrong").unwrap();
        let e = format!(
            "{:#}",
            load_signer_with(Some(&spec), Some(&bad)).unwrap_err()
        );
        assert!(e.contains("wrong password"), "{e}");
    }

    #[test]
    fn rpc_urls_are_logged_without_their_secrets() {
        assert_eq!(redacted("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(
            redacted("https://eth-mainnet.example.com/v2/SECRETKEY"),
            "https://eth-mainnet.example.com/…"
        );
        assert_eq!(
            redacted("https://user:pw@node.example:8545/"),
            "https://node.example:8545/…"
        );
        assert_eq!(
            redacted("https://node.example/?apikey=SECRET"),
            "https://node.example/…"
        );
        assert!(!redacted("not a url SECRET").contains("SECRET"));
    }
    use alloy::network::TransactionBuilder;
    use alloy::node_bindings::Anvil;
    use alloy::primitives::Bytes;
    use alloy::rpc::types::TransactionRequest;

    /// A deployment whose init code reverts (PUSH1 0 PUSH1 0 REVERT): its gas
    /// estimate fails before anything is sent.
    const REVERTING_INIT: [u8; 5] = [0x60, 0x00, 0x60, 0x00, 0xfd];

    #[tokio::test(flavor = "current_thread")]
    async fn a_send_whose_estimate_reverts_leaves_no_nonce_gap() {
        let anvil = Anvil::at(oracle_contracts::anvil_path())
            .port(0u16)
            .try_spawn()
            .expect("anvil starts (run .ci/contracts-install.sh)");
        let signer = PrivateKeySigner::from(anvil.keys()[0].clone());
        let from = signer.address();
        let provider = connect(&anvil.endpoint(), signer).unwrap();
        for _ in 0..3 {
            let failing = TransactionRequest::default()
                .with_from(from)
                .with_deploy_code(Bytes::from_static(&REVERTING_INIT));
            assert!(provider.send_transaction(failing).await.is_err());
        }
        let transfer = TransactionRequest::default()
            .with_from(from)
            .with_to(anvil.addresses()[1])
            .with_value(U256::from(1u64));
        let pending = provider.send_transaction(transfer).await.unwrap();
        let receipt = tokio::time::timeout(Duration::from_secs(20), pending.get_receipt())
            .await
            .expect("the transfer is mined, not queued behind a nonce gap")
            .unwrap();
        assert!(receipt.status());
        assert_eq!(provider.get_transaction_count(from).await.unwrap(), 1);
    }
}
