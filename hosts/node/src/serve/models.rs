//! The models a node serves: every model file in `--models <dir>`, matched to the
//! AIOracle registry by its Merkle root, with the kind its registration gives it
//! ([`ModelKind`]).
//!
//! Refused, each with an error log and never a crash: a file that is not a model
//! file; a file the guest program could not run (over the guest's memory budget:
//! its results could not be defended in a dispute); a file whose root is
//! registered nowhere; a model registered with another guest program hash; a model
//! whose dispute game factory has no configuration for it (its results cannot be
//! submitted), or whose sampling parameters are not the ones this node serves
//! (its claims would lose every dispute); an image model registered for two-phase
//! disputes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;
use anyhow::{Context, Result};
use oracle_contracts::{AIOracle, DisputeGame, DisputeGameFactory};
use oracle_core::footprint::GUEST_MEMORY_BUDGET;
use oracle_core::model::request::TextParams;
use oracle_core::{Request, RequestParams, SamplingParams};

use crate::serve::image::ImageParams;
use crate::serve::program_hash;

/// How a model's requests are served and its results disputed: its registration
/// on the dispute game factory decides, one value per model, so no combination
/// that the protocol does not have can be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A text model disputed by one VM game over the whole request: its claim is
    /// the guest's final state, whose trace must fit `trace_bound` steps.
    Text {
        /// `2^maxDepth` of the factory's one-phase games.
        trace_bound: u64,
        /// Registered as chat: every prompt is a user message in the model's chat
        /// template (`TextParams::chat`).
        chat: bool,
    },
    /// A text model disputed in two phases (decode positions, then one transition
    /// in the VM): its claim is the output commitment; every transition must fit
    /// `transition_bound` steps.
    TwoPhaseText {
        /// `2^transitionDepth` of the factory's phase-2 games.
        transition_bound: u64,
        /// Registered as chat (see [`ModelKind::Text`]).
        chat: bool,
    },
    /// An image model (one-phase), served with its registered parameters.
    Image {
        /// The parameters every request is served with.
        params: ImageParams,
        /// `2^maxDepth` of the factory's one-phase games.
        trace_bound: u64,
    },
}

impl ModelKind {
    /// Whether its disputes are two-phase games.
    pub fn two_phase(&self) -> bool {
        matches!(self, ModelKind::TwoPhaseText { .. })
    }

    /// The most VM steps a one-phase claim's trace may take, or a two-phase
    /// transition's.
    pub fn trace_bound(&self) -> u64 {
        match *self {
            ModelKind::Text { trace_bound, .. } | ModelKind::Image { trace_bound, .. } => {
                trace_bound
            }
            ModelKind::TwoPhaseText {
                transition_bound, ..
            } => transition_bound,
        }
    }

    /// How the logs name it.
    pub fn name(&self) -> &'static str {
        match self {
            ModelKind::Text { .. } => "text, one-phase disputes",
            ModelKind::TwoPhaseText { .. } => "text, two-phase disputes",
            ModelKind::Image { .. } => "image, one-phase disputes",
        }
    }
}

/// One model file this node serves under a registered id.
#[derive(Clone)]
pub struct ServedModel {
    /// Its id on the AIOracle.
    pub id: U256,
    /// The model file.
    pub bytes: Arc<Vec<u8>>,
    /// Its file name (for logs).
    pub name: String,
    /// Its model root (the Merkle root of its chunks, as registered).
    pub root: B256,
    /// How it is served and disputed.
    pub kind: ModelKind,
}

impl ServedModel {
    /// The request the node serves for `input`: greedy decoding of `steps`
    /// positions for a text model (as a chat message when registered so), the
    /// registered parameters for an image model.
    pub fn request<'p>(&self, input: &'p [u8], steps: u32) -> Request<'p> {
        match self.kind {
            ModelKind::Image { params, .. } => Request::image(input, params),
            ModelKind::Text { .. } | ModelKind::TwoPhaseText { .. } => {
                Request::new(input, RequestParams::Text(self.text_params(steps)))
            }
        }
    }

    /// The parameters of a text model's requests: greedy, `steps` positions, the
    /// registered chat flag.
    pub fn text_params(&self, steps: u32) -> TextParams {
        let chat = matches!(
            self.kind,
            ModelKind::Text { chat: true, .. } | ModelKind::TwoPhaseText { chat: true, .. }
        );
        TextParams {
            steps,
            sampling: SamplingParams::GREEDY,
            chat,
        }
    }
}

/// Registered model id → the file that serves it.
pub type ModelSet = BTreeMap<U256, ServedModel>;

/// A model file found in `--models`, checked and hashed.
struct ModelFile {
    root: B256,
    name: String,
    bytes: Arc<Vec<u8>>,
    image: bool,
}

/// The model files in `dir` (or the one file `dir` names) that the guest can run;
/// the others are refused with a log.
fn read_files(dir: &Path) -> Result<Vec<ModelFile>> {
    let paths: Vec<PathBuf> = if dir.is_file() {
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
    for path in paths.into_iter().filter(|p| p.is_file()) {
        let bytes = match check_file(&path) {
            Ok(bytes) => bytes,
            Err(why) => {
                tracing::error!("refusing {}: {why}", path.display());
                continue;
            }
        };
        let image = oracle_core::model::is_image_model(&bytes);
        files.push(ModelFile {
            root: oracle_core::commit::merkle::model_root(&bytes).into(),
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes: Arc::new(bytes),
            image,
        });
    }
    Ok(files)
}

/// The bytes of the model file at `path` if this node can serve it: a file of at
/// most [`GUEST_MEMORY_BUDGET`] bytes (a larger one is not even read) that loads
/// (text or image, every check of the core) and, with one request's run state,
/// fits that budget (`oracle_core::footprint::check`, the guest's own check): a
/// model the guest refuses is one whose results this node could not defend. Never
/// panics, whatever the file holds.
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

/// Why a model file cannot be registered as chat (`--chat`): it must be a text
/// model whose vocabulary has a chat template, or every request would be rejected.
pub fn check_chat(bytes: &[u8]) -> std::result::Result<(), String> {
    match oracle_core::AnyModel::load(bytes).map_err(|e| e.to_string())? {
        oracle_core::AnyModel::Llama(m) => {
            if *m.tokenizer.chat_template() == oracle_core::llama::chat::ChatTemplate::None {
                Err("its vocabulary has no chat template (--chat needs one)".into())
            } else {
                Ok(())
            }
        }
        _ => Err("an image model takes no --chat".into()),
    }
}

/// Read every model file in `dir`, compute its root, and keep those registered on
/// the oracle with the guest's program hash and a game configuration this node
/// serves (see the module docs). Refusals are logged, not errors.
pub async fn load(
    dir: &Path,
    provider: &DynProvider,
    oracle: Address,
    guest_elf: &[u8],
    steps: u32,
) -> Result<ModelSet> {
    let program: B256 = program_hash(guest_elf)?.into();
    let files = read_files(dir)?;
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
        for (i, file) in files.iter().enumerate() {
            if file.root != m.modelRoot {
                continue;
            }
            matched[i] = true;
            let name = &file.name;
            if m.programHash != program {
                tracing::error!(
                    "refusing {name} for model {id}: registered program hash {} differs from this guest's {program}",
                    m.programHash
                );
                continue;
            }
            let Some(game) = registered_game(provider, m.factory, file.root, program).await? else {
                tracing::error!(
                    "refusing {name} for model {id}: its dispute game factory {} has no configuration for it (its results cannot be submitted until the factory's owner sets its sampling parameters)",
                    m.factory
                );
                continue;
            };
            let kind = match kind_of(file.image, &game, steps) {
                Ok(kind) => kind,
                Err(why) => {
                    tracing::error!("refusing {name} for model {id}: {why}");
                    continue;
                }
            };
            tracing::info!(
                "serving model {id} from {name} (root {}, {})",
                file.root,
                kind.name()
            );
            set.insert(
                id,
                ServedModel {
                    id,
                    bytes: file.bytes.clone(),
                    name: name.clone(),
                    root: file.root,
                    kind,
                },
            );
        }
    }
    for (i, file) in files.iter().enumerate() {
        if !matched[i] {
            tracing::error!(
                "refusing {}: its model root {} is not registered on the oracle (a different file than the one registered?)",
                file.name,
                file.root
            );
        }
    }
    Ok(set)
}

/// What registering the model file `bytes` puts on the game factory (the
/// parameters its games check) and how this node then serves it: an image model
/// with the parameters `image` and one-phase games (it has no decode positions for
/// a phase-1 game); a text model with greedy decoding of `steps` positions (each
/// prompt a chat message when `chat`), two-phase games when `two_phase`.
/// `trace_bound` and `transition_bound` are the factory's (`2^maxDepth`,
/// `2^transitionDepth`).
pub fn registration(
    bytes: &[u8],
    two_phase: bool,
    steps: u32,
    chat: bool,
    image: ImageParams,
    trace_bound: u64,
    transition_bound: u64,
) -> (Vec<u8>, ModelKind) {
    if oracle_core::model::is_image_model(bytes) {
        let kind = ModelKind::Image {
            params: image,
            trace_bound,
        };
        (image.encode().to_vec(), kind)
    } else if two_phase {
        let kind = ModelKind::TwoPhaseText {
            transition_bound,
            chat,
        };
        (
            oracle_contracts::devnet::greedy_chat_params(steps, chat),
            kind,
        )
    } else {
        let kind = ModelKind::Text { trace_bound, chat };
        (
            oracle_contracts::devnet::greedy_chat_params(steps, chat),
            kind,
        )
    }
}

/// The kind a model file takes from its game configuration, or why this node
/// cannot serve it.
fn kind_of(
    image: bool,
    game: &RegisteredGame,
    steps: u32,
) -> std::result::Result<ModelKind, String> {
    if image {
        if game.two_phase {
            return Err("an image model registered for two-phase disputes (the phase-1 game is over decode positions, which an image request has none of)".into());
        }
        let params = ImageParams::decode(&game.params).ok_or(
            "its registered image parameters are not their 20-byte encoding (bytes 8..12 zero)",
        )?;
        return Ok(ModelKind::Image {
            params,
            trace_bound: game.trace_bound,
        });
    }
    // Greedy decoding of `steps` positions, as a chat or a plain prompt.
    let chat = TextParams::decode(&game.params).is_some_and(|p| p.chat);
    let ours = oracle_contracts::devnet::greedy_chat_params(steps, chat);
    if game.params != ours {
        return Err(format!(
            "the dispute game checks it with sampling parameters 0x{} but this node serves greedy --steps {steps} (0x{}); its claims would lose every dispute",
            alloy::hex::encode(&game.params),
            alloy::hex::encode(&ours)
        ));
    }
    Ok(if game.two_phase {
        ModelKind::TwoPhaseText {
            transition_bound: game.transition_bound,
            chat,
        }
    } else {
        ModelKind::Text {
            trace_bound: game.trace_bound,
            chat,
        }
    })
}

/// How a model's dispute game factory checks its claims.
struct RegisteredGame {
    /// The sampling parameters (the guest's local preimage 3).
    params: Vec<u8>,
    /// Whether its games are two-phase.
    two_phase: bool,
    /// The most VM steps of a one-phase game's trace (`2^maxDepth`).
    trace_bound: u64,
    /// The most VM steps of a phase-2 game's trace (`2^transitionDepth`).
    transition_bound: u64,
}

/// How `factory` checks the claims of the model (`root`, `program`); `None` before
/// its parameters are set.
async fn registered_game(
    provider: &DynProvider,
    factory: Address,
    root: B256,
    program: B256,
) -> Result<Option<RegisteredGame>> {
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
    let bound = |depth: u8| 1u64.checked_shl(depth.into()).unwrap_or(u64::MAX);
    let one_phase = f
        .IMPLEMENTATION()
        .call()
        .await
        .context("reading the factory's game implementation")?;
    let transition = f
        .TRANSITION_IMPLEMENTATION()
        .call()
        .await
        .context("reading the factory's transition implementation")?;
    let depth = DisputeGame::new(one_phase, provider)
        .MAX_DEPTH()
        .call()
        .await
        .context("reading the games' trace bound")?;
    let transition_depth = DisputeGame::new(transition, provider)
        .MAX_DEPTH()
        .call()
        .await
        .context("reading the transition games' trace bound")?;
    Ok(Some(RegisteredGame {
        params: params.to_vec(),
        two_phase,
        trace_bound: bound(depth),
        transition_bound: bound(transition_depth),
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
