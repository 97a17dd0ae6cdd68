//! Every role by command on any EVM chain (an L2, a testnet, a private chain):
//! `oracle deploy` writes a deployment file ([`deployment`]) that every other command
//! reads; model publishers `oracle register` and `oracle models`; operators `oracle
//! bond`, `unbond`, `withdraw` and `balance`. Keys are encrypted keystores, files or
//! environment variables, never raw on the command line; the RPC's chain id must be
//! the deployment's.

pub mod deploy;
pub mod deployment;
pub mod operator_cmds;
pub mod params;
pub mod register;

use std::path::{Path, PathBuf};

use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Result;

use crate::chain::{connect, load_signer_with};
use deployment::Deployment;

/// Where a command's key comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// The signing key: `keystore:FILE` (an encrypted JSON keystore), a file holding
    /// the key in hex, or `env:NAME` (default: $ORACLE_PRIVATE_KEY). A raw key here
    /// is refused.
    #[arg(long)]
    pub key: Option<String>,
    /// The keystore's password file (default: $ORACLE_KEYSTORE_PASSWORD).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The signer.
    pub fn signer(&self) -> Result<PrivateKeySigner> {
        load_signer_with(self.key.as_deref(), self.password_file.as_deref())
    }
}

/// The chain and deployment a command works on.
#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// JSON-RPC URL of the chain.
    #[arg(long, env = "ORACLE_RPC")]
    pub rpc: String,
    /// The deployment file written by `oracle deploy`.
    #[arg(long, default_value = "deployment.json")]
    pub deployment: PathBuf,
}

/// A signing connection to a deployment's chain, checked to be that chain.
pub struct Session {
    /// The provider (signs with the key).
    pub provider: DynProvider,
    /// The key's address.
    pub account: alloy::primitives::Address,
    /// The deployment.
    pub deployment: Deployment,
}

impl Session {
    /// Connect with `key` to the chain of `chain`'s deployment; fails before sending
    /// anything if the RPC serves another chain.
    pub async fn open(chain: &ChainArgs, key: &KeyArgs) -> Result<Session> {
        let deployment = Deployment::read(&chain.deployment)?;
        let signer = key.signer()?;
        let account = signer.address();
        let provider = connect(&chain.rpc, signer)?;
        check_chain(&provider, &deployment, &chain.deployment).await?;
        Ok(Session {
            provider,
            account,
            deployment,
        })
    }
}

/// Fail unless `provider`'s chain is `deployment`'s.
pub async fn check_chain(
    provider: &DynProvider,
    deployment: &Deployment,
    path: &Path,
) -> Result<()> {
    let id = provider
        .get_chain_id()
        .await
        .map_err(|e| anyhow::anyhow!("reading the chain id: {e}"))?;
    deployment.check_chain(id, path)
}
