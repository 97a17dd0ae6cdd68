//! The models a node serves: every model file in `--models <dir>`, matched to the
//! AIOracle registry by its Merkle root. A file that fails [`check_file`]
//! (unreadable, not a model, over the guest's memory budget) is refused (logged),
//! and so is one whose root is registered under no id, a registered model whose
//! program hash differs from the guest this node runs, or one with dispute-game
//! sampling parameters other than the greedy `--steps` this node serves (its
//! claims would lose every dispute). An image model file is served with the
//! parameters registered for it ([`crate::image`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;
use anyhow::{Context, Result};
use oracle_contracts::{AIOracle, DisputeGame, DisputeGameFactory};
use oracle_core::footprint::GUEST_MEMORY_BUDGET;

use crate::image::ImageParams;
use crate::serve::program_hash;

/// One model file this node serves under a registered id.
#[derive(Clone)]
pub struct ServedModel {
    /// Its id on the AIOracle.
    pub id: U256,
    /// The model file.
    pub bytes: Arc<Vec<u8>>,
    /// Its file name (for logs).
    pub name: String,
    /// Whether its disputes are two-phase games (over decode positions, then one
    /// transition in the VM): its claim is then the output commitment, and no VM run
    /// is needed to submit.
    pub two_phase: bool,
    /// For an image model file, the parameters it is served with (see
    /// [`crate::image`]); `None` for a LLaMA model.
    pub image: Option<ImageParams>,
    /// The most VM steps a one-phase claim's trace may take: the factory's
    /// `2^maxDepth` (`None` without a factory, or for a two-phase model, whose
    /// claim needs no VM run).
    pub trace_bound: Option<u64>,
}

/// Registered model id → the file that serves it.
pub type ModelSet = BTreeMap<U256, ServedModel>;

/// Read every file in `dir` (or the one file `dir` names), compute its root, and
/// keep those registered on the oracle with the guest's program hash. Refusals are
/// logged, not errors.
pub async fn load(
    dir: &Path,
    provider: &DynProvider,
    oracle: Address,
    guest_elf: &[u8],
    steps: u32,
) -> Result<ModelSet> {
    let program: B256 = program_hash(guest_elf)?.into();
    let paths = if dir.is_file() {
        vec![dir.to_path_buf()]
    } else {
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir)
            .with_context(|| format!("listing models in {}", dir.display()))?
        {
            paths.push(entry?.path());
        }
        paths.sort();
        paths
    };
    let mut files = Vec::new();
    for path in paths {
        if !path.is_file() {
            continue;
        }
        let bytes = match check_file(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!("refusing {}: {e}", path.display());
                continue;
            }
        };
        let root: B256 = oracle_core::merkle::model_root(&bytes).into();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((root, name, Arc::new(bytes)));
    }
    let c = AIOracle::new(oracle, provider);
    let count = c.modelCount().call().await.context("reading modelCount")?;
    let mut set = ModelSet::new();
    let mut matched = vec![false; files.len()];
    for id in 1..=count {
        let id = U256::from(id);
        let m = c
            .getModel(id)
            .call()
            .await
            .with_context(|| format!("reading model {id}"))?;
        for (i, (root, name, bytes)) in files.iter().enumerate() {
            if *root != m.modelRoot {
                continue;
            }
            matched[i] = true;
            if m.programHash != program {
                tracing::error!(
                    "refusing {name} for model {id}: registered program hash {} differs from this guest's {}",
                    m.programHash,
                    program
                );
                continue;
            }
            let game = game_params(provider, oracle, *root, program).await?;
            let two_phase = game.as_ref().is_some_and(|g| g.two_phase);
            let trace_bound = game
                .as_ref()
                .filter(|g| !g.two_phase)
                .map(|g| g.trace_bound);
            let registered = game.map(|g| g.params);
            let image = crate::image::is_image(bytes).then(|| {
                registered
                    .as_deref()
                    .and_then(ImageParams::decode)
                    .unwrap_or(ImageParams::DEFAULT)
            });
            if image.is_some() && two_phase {
                tracing::error!(
                    "refusing {name} for model {id}: an image model registered for two-phase disputes (the phase-1 game is over decode positions, which an image request has none of)"
                );
                continue;
            }
            if let Some(p) = image {
                tracing::info!(
                    "{name}: an image model, served with {} steps, seed {}",
                    p.steps,
                    p.seed
                );
            } else if let Some(registered) = registered {
                let ours = oracle_contracts::devnet::greedy_params(steps);
                if registered != ours {
                    tracing::error!(
                        "refusing {name} for model {id}: the dispute game checks it with sampling parameters 0x{} but this node serves greedy --steps {steps} (0x{}); its claims would lose every dispute",
                        alloy::hex::encode(&registered),
                        alloy::hex::encode(&ours)
                    );
                    continue;
                }
            }
            tracing::info!(
                "serving model {id} from {name} (root {root}, {} disputes)",
                if two_phase { "two-phase" } else { "one-phase" }
            );
            set.insert(
                id,
                ServedModel {
                    id,
                    bytes: bytes.clone(),
                    name: name.clone(),
                    two_phase,
                    image,
                    trace_bound,
                },
            );
        }
    }
    for (i, (root, name, _)) in files.iter().enumerate() {
        if !matched[i] {
            tracing::error!(
                "refusing {name}: its model root {root} is not registered on the oracle (a different file than the one registered?)"
            );
        }
    }
    Ok(set)
}

/// The bytes of the model file at `path` if the guest could serve it: a file of
/// at most [`GUEST_MEMORY_BUDGET`] bytes (a larger one is not even read) that
/// loads (text or image, every check of the core) and, with one request's run
/// state, fits that budget (`oracle_core::footprint::check`, the guest's own
/// check): a model the guest refuses is one whose results this node could not
/// defend. Never panics, whatever the file holds.
pub fn check_file(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    if len > GUEST_MEMORY_BUDGET {
        return Err(format!(
            "{len} bytes, more than the guest's memory budget of {GUEST_MEMORY_BUDGET}"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    oracle_core::footprint::check(&bytes, GUEST_MEMORY_BUDGET).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// How the dispute game factory checks a model's claims.
struct RegisteredGame {
    /// The sampling parameters (the guest's local preimage 3).
    params: Vec<u8>,
    /// Whether its games are two-phase.
    two_phase: bool,
    /// The most VM steps of a one-phase game's trace (`2^maxDepth`).
    trace_bound: u64,
}

/// How the dispute game factory checks a model's claims (`None` without a
/// factory or before the parameters are set).
async fn game_params(
    provider: &DynProvider,
    oracle: Address,
    root: B256,
    program: B256,
) -> Result<Option<RegisteredGame>> {
    let c = AIOracle::new(oracle, provider);
    let factory = c
        .disputeGameFactory()
        .call()
        .await
        .context("reading disputeGameFactory")?;
    if factory.is_zero() {
        return Ok(None);
    }
    let f = DisputeGameFactory::new(factory, provider);
    let key = f
        .modelKey(root, program)
        .call()
        .await
        .context("reading the factory's model key")?;
    let params = f
        .samplingParams(key)
        .call()
        .await
        .context("reading the factory's sampling parameters")?;
    if params.is_empty() {
        return Ok(None);
    }
    let two_phase = f
        .twoPhase(key)
        .call()
        .await
        .context("reading the factory's game kind")?;
    let implementation = f
        .IMPLEMENTATION()
        .call()
        .await
        .context("reading the factory's game implementation")?;
    let depth = DisputeGame::new(implementation, provider)
        .MAX_DEPTH()
        .call()
        .await
        .context("reading the games' trace bound")?;
    Ok(Some(RegisteredGame {
        params: params.to_vec(),
        two_phase,
        trace_bound: 1u64.checked_shl(depth.into()).unwrap_or(u64::MAX),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oracle_tests::hostile::{committed, Class};

    #[test]
    fn hostile_files_are_refused_and_a_good_model_is_kept() {
        for class in [Class::Model, Class::Image, Class::Budget] {
            for c in committed(class) {
                let err = check_file(&c.path).expect_err(c.what);
                assert!(err.contains(c.error), "{}: {err}", c.path.display());
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("stories.bin");
        let bytes = oracle_tests::LLAMA_FIXTURES[0].model_file(oracle_core::quant::QType::Q8);
        std::fs::write(&good, &bytes).expect("write");
        assert_eq!(check_file(&good).expect("a good model passes"), bytes);
        assert!(check_file(&dir.path().join("missing.bin")).is_err());
    }
}
