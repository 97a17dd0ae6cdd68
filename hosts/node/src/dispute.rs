//! Playing dispute games: the operator defends its results, the validator (or
//! `oracle challenge`) attacks wrong ones, each to the end of the game.
//!
//! A side answers bisection queries from its own trace of the request in the
//! fault-proof VM, recorded once as checkpoints ([`Trace`]): the state hash at any
//! step is a restore of the nearest snapshot plus a replay shorter than
//! [`CHECKPOINT_INTERVAL`] steps, never a run from step 0. The moves themselves are
//! chosen by the honest strategy of [`oracle_contracts::game::decide`].
//!
//! A model's games are of one of two kinds (set with its sampling parameters on
//! the game factory, `docs/dispute.md`):
//! - **one-phase**: the VM game over the steps of the whole request, answered from
//!   the trace of the whole request;
//! - **two-phase** (text models): first a bisection over decode positions, answered
//!   from the node's native chain of position states ([`crate::positions`]), then
//!   each side claims the final VM state of the one disputed transition and the VM
//!   game of that transition alone is played from a trace of it.
//!
//! A game is recorded in the database ([`DisputeRecord`]) before the first move, so
//! a restarted node finds it, records its trace again and carries on from whatever
//! the chain says the game's state is: the chain, not the database, holds the board.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::sol_types::SolEvent;
use anyhow::{bail, Context, Result};
use oracle_contracts::game::{
    game_kind, Action, Bisection, GameClient, GameKind, PositionGameClient, Side, Status,
};
use oracle_contracts::AIOracle;
use oracle_core::{Request, SamplingParams};
use oracle_fpvm::layout::state::{OUTPUT, SIZE as STATE_SIZE};
use oracle_fpvm::preimage::guest_oracle;
use oracle_fpvm::state::state_hash;
use oracle_fpvm::{Checkpoints, InMemoryOracle, SharedOracle, Vm};
use serde::{Deserialize, Serialize};

use crate::chain::{chain_now, on_chain, Status as RequestStatus};
use crate::node::Node;
use crate::positions::{self, Commitments};

mod board;
use board::Board;

/// Steps between two checkpoints of a trace: a query replays fewer than this many
/// steps (about 5 ms at the VM's ~200 M steps/s).
pub const CHECKPOINT_INTERVAL: u64 = 1 << 20;

/// A request's run of the guest program in the fault-proof VM, kept as checkpoints.
pub struct Trace {
    checkpoints: Checkpoints,
    total: u64,
    final_state: Vec<u8>,
    final_hash: B256,
}

impl Trace {
    /// Run the guest on `prompt` with `model_bytes` (greedy, `steps` positions, as the
    /// operator serves) and record it.
    pub fn record(
        model_bytes: &[u8],
        guest_elf: &[u8],
        prompt: &[u8],
        steps: u32,
    ) -> Result<Trace> {
        let request = Request {
            prompt,
            steps,
            sampling: SamplingParams::GREEDY,
        };
        Trace::run(guest_elf, guest_oracle(model_bytes, &request))
    }

    /// Run the guest with the local data and preimages of `oracle` and record it.
    pub fn run(guest_elf: &[u8], oracle: InMemoryOracle) -> Result<Trace> {
        let oracle: SharedOracle = Arc::new(oracle);
        let mut vm = Vm::from_elf(guest_elf, oracle).context("loading the guest program")?;
        let checkpoints = Checkpoints::record(&mut vm, CHECKPOINT_INTERVAL, u64::MAX)
            .context("running the guest in the VM")?;
        if !vm.halted() {
            bail!("the guest did not halt");
        }
        Ok(Trace {
            checkpoints,
            total: vm.cpu.step,
            final_state: vm.encode_state().to_vec(),
            final_hash: B256::from(vm.state_hash()),
        })
    }

    /// The output commitment of the final state.
    pub fn output(&self) -> B256 {
        B256::from_slice(&self.final_state[OUTPUT..OUTPUT + 32])
    }

    /// Test only: the same trace ending in a final state that claims `output`
    /// instead (a liar's claim: every step agrees with the true run but the last).
    pub fn claiming(mut self, output: B256) -> Result<Trace> {
        self.final_state[OUTPUT..OUTPUT + 32].copy_from_slice(output.as_slice());
        let encoded: &[u8; STATE_SIZE] = self.final_state[..]
            .try_into()
            .context("a final state of the wrong size")?;
        self.final_hash = B256::from(state_hash(encoded));
        Ok(self)
    }

    /// Steps until the guest halted.
    pub fn steps(&self) -> u64 {
        self.total
    }

    /// The state hash after `step` steps (the final state from the halt on: a halted
    /// state is a fixed point).
    pub fn hash_at(&self, step: u64) -> Result<B256> {
        if step >= self.total {
            return Ok(self.final_hash);
        }
        let mut vm = self
            .checkpoints
            .vm_at(step)
            .with_context(|| format!("replaying to step {step}"))?;
        Ok(B256::from(vm.state_hash()))
    }

    /// The witness (encoded pre-state and proof) of the step from `pre`.
    pub fn witness(&self, pre: u64) -> Result<oracle_fpvm::Witness> {
        self.checkpoints
            .witness_at(pre)
            .with_context(|| format!("proving the step from {pre}"))
    }
}

/// Where this node stands in a game.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DisputeState {
    /// The game is being played.
    Playing,
    /// The game ended in our favour and the outcome was applied on AIOracle (a
    /// challenger that won then finalizes its result after the new window).
    Won,
    /// We won as challenger and our result was finalized.
    Finalized,
    /// The game ended against us and the outcome was applied on AIOracle.
    Lost,
}

/// A game this node plays, as recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeRecord {
    /// The dispute's id on AIOracle.
    pub dispute: U256,
    /// The request it is about.
    pub request: U256,
    /// The game contract.
    pub game: Address,
    /// Our side: true when we defend our own result.
    pub defending: bool,
    /// The model that serves the request.
    pub model: U256,
    /// The request's input (the prompt our trace runs).
    pub prompt: Bytes,
    /// Our output for the request (finalized by us if we win as challenger).
    pub output: Bytes,
    /// The request's callback contract.
    pub callback: Address,
    /// The request's callback data.
    pub callback_data: Bytes,
    /// Where we stand.
    pub state: DisputeState,
    /// Transactions we sent in this game.
    pub moves: u64,
}

impl DisputeRecord {
    fn side(&self) -> Side {
        if self.defending {
            Side::Defender
        } else {
            Side::Challenger
        }
    }
}

/// How far a game went in one turn of play.
enum Progress {
    /// It waits for the opponent.
    Waiting,
    /// It is over; the winner, if the board names one.
    Over(Option<Side>),
    /// Phase 1 of a two-phase game is over: its phase-2 game `game` plays the
    /// disputed transition `transition → transition + 1`.
    PhaseTwo {
        /// The phase-2 game.
        game: Address,
        /// The index of the disputed transition (phase 1's agreed `lo`).
        transition: u64,
    },
}

/// The games a node plays, with their traces cached in memory.
pub struct Disputes {
    node: Node,
    traces: Mutex<HashMap<U256, Arc<Trace>>>,
    /// Phase-1 commitments of two-phase games, by dispute.
    chains: Mutex<HashMap<U256, Arc<Commitments>>>,
    /// Test only: the prompt our traces run is altered (see [`lie`]).
    lying: bool,
}

/// Test only: the prompt a lying node answers instead of `prompt`.
pub fn lie(prompt: &[u8]) -> Vec<u8> {
    let mut p = b"Tom".to_vec();
    p.extend_from_slice(prompt);
    p
}

impl Disputes {
    /// The games of `node`; `lying` (tests only) plays from a trace of another prompt.
    pub fn new(node: Node, lying: bool) -> Self {
        Disputes {
            node,
            traces: Mutex::new(HashMap::new()),
            chains: Mutex::new(HashMap::new()),
            lying,
        }
    }

    /// Record a game to play (idempotent).
    pub fn join(&self, record: DisputeRecord) -> Result<()> {
        if self.node.db.dispute(record.dispute)?.is_none() {
            tracing::warn!(
                "dispute {} over request {}: playing as {} in game {}",
                record.dispute,
                record.request,
                if record.defending {
                    "defender"
                } else {
                    "challenger"
                },
                record.game
            );
            self.node.db.put_dispute(&record)?;
        }
        Ok(())
    }

    /// Play every open game as far as it goes now: each side moves until it waits
    /// for the opponent.
    pub async fn round(&self) -> Result<()> {
        self.sync().await?;
        for record in self.node.db.disputes()? {
            let id = record.dispute;
            let done = match record.state {
                DisputeState::Playing => self.play(record).await,
                DisputeState::Won if !record.defending => self.finalize(record).await,
                _ => Ok(()),
            };
            if let Err(e) = done {
                tracing::warn!("dispute {id}: {e:#} (will retry)");
            }
        }
        Ok(())
    }

    /// Join every game we play that is not recorded yet: those opened against our
    /// results (the operator's side) and our own challenges (recorded by the
    /// validator when it challenges, found here again after a crash in between).
    async fn sync(&self) -> Result<()> {
        let Some((from, to)) = self.node.next_range("challenges").await? else {
            return Ok(());
        };
        let logs = self
            .node
            .logs(AIOracle::ResultChallenged::SIGNATURE_HASH, from, to)
            .await?;
        for log in logs {
            let Ok(e) = log.log_decode::<AIOracle::ResultChallenged>() else {
                continue;
            };
            let e = e.inner.data;
            if self.node.db.dispute(e.disputeId)?.is_some() {
                continue;
            }
            let game = GameClient::new(e.game, self.node.provider.clone());
            let Some(side) = game.side_of(self.node.account).await? else {
                continue;
            };
            let Some(request) = self.node.request_event(e.requestId, None).await? else {
                tracing::error!(
                    "dispute {}: no request event for request {}",
                    e.disputeId,
                    e.requestId
                );
                continue;
            };
            self.join(DisputeRecord {
                dispute: e.disputeId,
                request: e.requestId,
                game: e.game,
                defending: side == Side::Defender,
                model: request.modelId,
                prompt: request.input,
                output: if side == Side::Challenger {
                    e.output
                } else {
                    Bytes::new()
                },
                callback: request.callbackContract,
                callback_data: request.callbackData,
                state: DisputeState::Playing,
                moves: 0,
            })?;
        }
        self.node.db.set_cursor("challenges", to)?;
        Ok(())
    }

    /// A challenger that won holds the result: finalize it after its new window.
    async fn finalize(&self, mut record: DisputeRecord) -> Result<()> {
        let chain = on_chain(&self.node.provider, self.node.oracle, record.request).await?;
        match chain.status {
            RequestStatus::Finalized => {
                record.state = DisputeState::Finalized;
                return Ok(self.node.db.put_dispute(&record)?);
            }
            RequestStatus::Submitted if chain.submitter == self.node.account => {}
            _ => return Ok(()),
        }
        if chain_now(&self.node.provider).await? <= chain.challenge_deadline {
            return Ok(());
        }
        let oracle = AIOracle::new(self.node.oracle, &self.node.provider);
        let receipt = oracle
            .finalize(
                record.request,
                keccak256(&record.prompt),
                record.callback,
                record.callback_data.clone(),
                record.output.clone(),
            )
            .send()
            .await
            .context("sending the finalization")?
            .get_receipt()
            .await
            .context("waiting for the finalization")?;
        self.node.account_gas(&receipt, "finalize");
        if receipt.status() {
            tracing::info!(
                "dispute {}: our result for request {} finalized; callback dispatched",
                record.dispute,
                record.request
            );
            record.state = DisputeState::Finalized;
            self.node.db.put_dispute(&record)?;
        }
        Ok(())
    }

    /// Our trace of `record`'s game (cached by dispute: a game has one), recorded
    /// by `record_it` on the blocking pool the first time; `what` names it in the log.
    async fn cached_trace(
        &self,
        record: &DisputeRecord,
        what: &str,
        record_it: impl FnOnce() -> Result<Trace> + Send + 'static,
    ) -> Result<Arc<Trace>> {
        if let Some(t) = self
            .traces
            .lock()
            .expect("trace cache")
            .get(&record.dispute)
        {
            return Ok(t.clone());
        }
        let started = std::time::Instant::now();
        let trace = tokio::task::spawn_blocking(record_it)
            .await
            .context("the trace task panicked")??;
        tracing::info!(
            "dispute {}: recorded our trace{what} ({} steps) in {:.1} s",
            record.dispute,
            trace.steps(),
            started.elapsed().as_secs_f64()
        );
        let trace = Arc::new(trace);
        self.traces
            .lock()
            .expect("trace cache")
            .insert(record.dispute, trace.clone());
        Ok(trace)
    }

    /// Our trace of the whole request (one-phase games).
    async fn trace(&self, record: &DisputeRecord) -> Result<Arc<Trace>> {
        let Some(model) = self.node.models.get(&record.model) else {
            bail!("model {} is not held by this node", record.model);
        };
        let bytes = model.bytes.clone();
        let guest = self.node.guest.clone();
        // An image model runs with its served parameters (a lying node: the next seed).
        let image = model.image.map(|p| if self.lying { p.lie() } else { p });
        let prompt = if self.lying && image.is_none() {
            lie(&record.prompt)
        } else {
            record.prompt.to_vec()
        };
        let steps = self.node.steps;
        self.cached_trace(record, "", move || match image {
            Some(p) => Trace::run(&guest, guest_oracle(&bytes, &p.request(&prompt))),
            None => Trace::record(&bytes, &guest, &prompt, steps),
        })
        .await
    }

    /// Play `record`'s game as far as it goes now; a two-phase game goes on to its
    /// phase-2 game once both transition claims are in.
    async fn play(&self, mut record: DisputeRecord) -> Result<()> {
        let side = record.side();
        let progress = if game_kind(&self.node.provider, record.game).await? == GameKind::Positions
        {
            let game = PositionGameClient::new(record.game, self.node.provider.clone());
            let phase_one = board::Positions {
                disputes: self,
                game: &game,
            };
            match self.play_board(&mut record, &phase_one, side).await? {
                Progress::PhaseTwo {
                    game: child,
                    transition,
                } => {
                    match self.play_transition(&mut record, child, transition).await? {
                        // The phase-2 game's outcome in this game's roles.
                        Progress::Over(_) => {
                            Progress::Over(game.state().await.context("reading the game")?.winner())
                        }
                        waiting => waiting,
                    }
                }
                progress => progress,
            }
        } else {
            let game = GameClient::new(record.game, self.node.provider.clone());
            let trace = self.trace(&record).await?;
            let board = board::Vm {
                disputes: self,
                game: &game,
                trace,
            };
            self.play_board(&mut record, &board, side).await?
        };
        match progress {
            Progress::Over(winner) => self.finish(record, winner == Some(side)).await,
            Progress::Waiting | Progress::PhaseTwo { .. } => Ok(()),
        }
    }

    /// Play the phase-2 VM game `child` of transition `index → index + 1` from our
    /// trace of that transition alone.
    async fn play_transition(
        &self,
        record: &mut DisputeRecord,
        child: Address,
        index: u64,
    ) -> Result<Progress> {
        let game = GameClient::new(child, self.node.provider.clone());
        let Some(side) = game.side_of(self.node.account).await? else {
            bail!("this node plays no side of transition game {child}");
        };
        let trace = self.transition_trace(record, index).await?;
        let board = board::Vm {
            disputes: self,
            game: &game,
            trace,
        };
        self.play_board(record, &board, side).await
    }

    /// Our phase-1 commitments for `record`'s request (computed once, cached).
    async fn commitments(&self, record: &DisputeRecord) -> Result<Arc<Commitments>> {
        if let Some(c) = self
            .chains
            .lock()
            .expect("chain cache")
            .get(&record.dispute)
        {
            return Ok(c.clone());
        }
        let Some(model) = self.node.models.get(&record.model) else {
            bail!("model {} is not held by this node", record.model);
        };
        let (bytes, prompt, steps, lying) = (
            model.bytes.clone(),
            record.prompt.to_vec(),
            self.node.steps,
            self.lying,
        );
        let chain = tokio::task::spawn_blocking(move || {
            positions::commitments(&bytes, &prompt, steps, lying)
        })
        .await
        .context("the commitments task panicked")??;
        let chain = Arc::new(chain);
        self.chains
            .lock()
            .expect("chain cache")
            .insert(record.dispute, chain.clone());
        Ok(chain)
    }

    /// Our VM trace of transition `index → index + 1` (cached by dispute: a game
    /// has one). It must end in our commitment `s_{index+1}`; a lying node (tests
    /// only) claims its own commitment at the end of the true run.
    async fn transition_trace(&self, record: &DisputeRecord, index: u64) -> Result<Arc<Trace>> {
        let chain = self.commitments(record).await?;
        let Some(ours) = usize::try_from(index + 1)
            .ok()
            .and_then(|i| chain.hashes.get(i).copied())
        else {
            bail!("transition {index} is past our chain");
        };
        let Some(model) = self.node.models.get(&record.model) else {
            bail!("model {} is not held by this node", record.model);
        };
        let (bytes, guest, prompt, steps, lying) = (
            model.bytes.clone(),
            self.node.guest.clone(),
            record.prompt.to_vec(),
            self.node.steps,
            self.lying,
        );
        let what = format!(" of transition {index}");
        self.cached_trace(record, &what, move || {
            let oracle = positions::transition_oracle(&bytes, &prompt, steps, lying, index)?;
            let trace = Trace::run(&guest, oracle)?;
            if trace.output() == ours {
                Ok(trace)
            } else if lying {
                trace.claiming(ours)
            } else {
                bail!(
                    "the VM's run of transition {index} commits {} where our native chain has {ours}",
                    trace.output()
                )
            }
        })
        .await
    }

    /// Play `board` as `side` until it waits for the opponent, is over, or (phase 1
    /// of a two-phase game) went on to its phase-2 game.
    async fn play_board(
        &self,
        record: &mut DisputeRecord,
        board: &impl Board,
        side: Side,
    ) -> Result<Progress> {
        loop {
            let state = board.game().state().await.context("reading the game")?;
            if let Some(game) = board.phase_two().await? {
                return Ok(Progress::PhaseTwo {
                    game,
                    transition: state.lo,
                });
            }
            if state.status != Status::InProgress {
                return Ok(Progress::Over(state.winner()));
            }
            let (lo, hi) = (state.lo, state.hi);
            let action = board.next_action(record, state, side).await?;
            let receipt = match action {
                Action::Over => continue,
                Action::Wait => return Ok(Progress::Waiting),
                Action::Reveal => board.reveal(record).await?,
                Action::ClaimTimeout => {
                    tracing::warn!(
                        "dispute {}: the opponent's clock ran out; claiming the game",
                        record.dispute
                    );
                    board.game().claim_timeout(self.node.account).await
                }
                Action::Move {
                    agree,
                    mid_hash,
                    mid_position,
                } => {
                    tracing::info!(
                        "dispute {}: {} {lo}..{hi}: {} the midpoint, ours at {mid_position:?}",
                        record.dispute,
                        board.range(),
                        if agree { "agree with" } else { "deny" }
                    );
                    board
                        .game()
                        .make_move(self.node.account, agree, mid_hash)
                        .await
                }
                Action::Step { pre } => board.step(record, pre).await?,
            }
            .with_context(|| format!("sending {action:?}"))?;
            self.moved(record, &receipt)?;
        }
    }

    /// Count one of our transactions in a game.
    fn moved(
        &self,
        record: &mut DisputeRecord,
        receipt: &alloy::rpc::types::TransactionReceipt,
    ) -> Result<()> {
        self.node.account_gas(receipt, "dispute");
        metrics::counter!("oracle_dispute_moves_total").increment(1);
        record.moves += 1;
        Ok(self.node.db.put_dispute(record)?)
    }

    /// Apply the outcome on AIOracle (anyone may; the loser has no reason to) and
    /// close the record.
    async fn finish(&self, mut record: DisputeRecord, won: bool) -> Result<()> {
        let oracle = AIOracle::new(self.node.oracle, &self.node.provider);
        let d = oracle
            .getDispute(record.dispute)
            .call()
            .await
            .context("reading the dispute")?;
        if !d.resolved {
            let receipt = oracle
                .resolveDispute(record.dispute)
                .send()
                .await
                .context("sending resolveDispute")?
                .get_receipt()
                .await
                .context("waiting for resolveDispute")?;
            self.node.account_gas(&receipt, "resolveDispute");
            if !receipt.status() {
                let again = oracle.getDispute(record.dispute).call().await?;
                if !again.resolved {
                    bail!("resolveDispute reverted");
                }
            }
        }
        record.state = if won {
            DisputeState::Won
        } else {
            DisputeState::Lost
        };
        if won {
            tracing::warn!(
                "dispute {} over request {}: WON in {} of our moves",
                record.dispute,
                record.request,
                record.moves
            );
        } else {
            tracing::error!(
                "dispute {} over request {}: LOST (our bond is forfeit)",
                record.dispute,
                record.request
            );
        }
        metrics::counter!("oracle_disputes_total", "outcome" => if won { "won" } else { "lost" })
            .increment(1);
        self.node.db.put_dispute(&record)?;
        Ok(())
    }
}
