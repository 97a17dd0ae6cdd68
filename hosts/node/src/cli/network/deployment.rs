//! The deployment file `oracle deploy` writes and every other command reads: the
//! chain id, the contracts' addresses, the block the deployment started at (where
//! the nodes start reading events), the deployer and the parameters. It is written
//! after every step (atomically: a temporary file renamed over it), so an
//! interrupted deployment resumes from it.
//!
//! It holds no secret and no RPC URL (a provider URL often carries an API key), so it
//! can be published for operators, validators and dapp developers.

use std::path::Path;

use alloy::primitives::Address;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::params::Params;

/// A contract deployed (or being deployed) by `oracle deploy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    /// Its address (known before its creation is sent: from the deployer's nonce).
    pub address: Address,
    /// The deployer nonce of its creation.
    pub nonce: u64,
    /// Whether its creation is mined (otherwise it was sent, or about to be, when the
    /// deployment was interrupted; the chain decides on resume).
    pub mined: bool,
}

/// The contracts of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contracts {
    /// The preimage oracle the step verifier reads.
    pub preimage_oracle: Option<Deployed>,
    /// The RISC-V step verifier.
    pub riscv: Option<Deployed>,
    /// AIOracle.
    pub oracle: Option<Deployed>,
    /// The dispute game factory.
    pub factory: Option<Deployed>,
    /// The Prompt example contract.
    pub prompt: Option<Deployed>,
}

/// A deployment file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The chain's id.
    pub chain_id: u64,
    /// Who deployed (owner of AIOracle and of the factory, treasury).
    pub deployer: Address,
    /// The block the deployment started at.
    pub start_block: u64,
    /// The checked parameters.
    pub params: Params,
    /// The contracts.
    pub contracts: Contracts,
    /// Whether AIOracle's dispute game factory is set.
    pub factory_set: bool,
    /// Whether every step is done.
    pub complete: bool,
}

impl Deployment {
    /// Read a deployment file.
    pub fn read(path: &Path) -> Result<Deployment> {
        let text = std::fs::read(path).with_context(|| {
            format!(
                "reading the deployment file {} (write one with `oracle deploy`)",
                path.display()
            )
        })?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a deployment file", path.display()))
    }

    /// Write it atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("writing next to {}", path.display()))?;
        serde_json::to_writer_pretty(&mut tmp, self)?;
        std::io::Write::write_all(&mut tmp, b"\n")?;
        tmp.as_file().sync_all()?;
        tmp.persist(path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// A complete deployment's AIOracle address, or an error saying what is missing.
    pub fn oracle(&self) -> Result<Address> {
        match self.contracts.oracle {
            Some(d) if self.complete => Ok(d.address),
            _ => bail!("the deployment is not complete: run `oracle deploy` again to finish it"),
        }
    }

    /// A complete deployment's Prompt address.
    pub fn prompt(&self) -> Result<Address> {
        self.oracle()?;
        self.contracts
            .prompt
            .map(|d| d.address)
            .context("the deployment has no Prompt contract")
    }

    /// A complete deployment's dispute game factory.
    pub fn factory(&self) -> Result<Address> {
        self.oracle()?;
        self.contracts
            .factory
            .map(|d| d.address)
            .context("the deployment has no dispute game factory")
    }

    /// Fail unless the chain at hand (`chain_id`) is the deployment's.
    pub fn check_chain(&self, chain_id: u64, path: &Path) -> Result<()> {
        if chain_id != self.chain_id {
            bail!(
                "the RPC serves chain {chain_id} but {} is a deployment on chain {}: wrong --rpc or wrong deployment file (nothing was sent)",
                path.display(),
                self.chain_id
            );
        }
        Ok(())
    }
}
