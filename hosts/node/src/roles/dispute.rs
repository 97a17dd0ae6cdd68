//! Playing dispute games: the operator defends its results, the validator (or
//! `oracle challenge`) attacks wrong ones, each to the end of the game.
//!
//! A side answers bisection queries from its own trace of the request in the
//! fault-proof VM, recorded once as checkpoints ([`Trace`]): the state hash at any
//! step is a restore of the nearest snapshot plus a replay shorter than
//! [`CHECKPOINT_INTERVAL`] steps, never a run from step 0. The moves themselves are
//! chosen by the honest strategy of [`oracle_node::strategy::decide`].
//!
//! A model's games are of one of two kinds (set with its sampling parameters on
//! the game factory, `docs/dispute.md`):
//! - **one-phase**: the VM game over the steps of the whole request, answered from
//!   the trace of the whole request;
//! - **two-phase** (text models): first a bisection over decode positions, answered
//!   from the node's native chain of position states ([`crate::serve::positions`]), then
//!   each side claims the final VM state of the one disputed transition and the VM
//!   game of that transition alone is played from a trace of it.
//!
//! A game is recorded in the database ([`DisputeRecord`]) before the first move, so
//! a restarted node finds it, records its trace again and carries on from whatever
//! the chain says the game's state is: the chain, not the database, holds the board.
//! Once a game is over, its outcome is applied on AIOracle (`resolveDispute`), its
//! traces are dropped from memory, and, once the request is final, a won dispute's
//! bond and reward are claimed (`claimReward`); a result we hold (as the winning
//! challenger) is finalized by us.
//!
//! **What we answer with.** Our answers come from our honest trace (or chain). Only
//! when the output we posted is not the honest one (a test fault,
//! [`crate::faults`]) do they end elsewhere: in a fabricated final state (or
//! output commitment) that commits to the output we posted, so the liar loses where
//! its claim departs from the truth.

use oracle_core::model::request::TextParams;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::sol_types::SolEvent;
use anyhow::{bail, Context, Result};
use oracle_contracts::game::{
    game_kind, Bisection, GameClient, GameKind, PositionGameClient, Side, Status,
};
use oracle_contracts::AIOracle;
use oracle_fpvm::layout::state::{OUTPUT, SIZE as STATE_SIZE};
use oracle_fpvm::state::state_hash;
use oracle_fpvm::{Checkpoints, InMemoryOracle, SharedOracle, Vm};
use oracle_node::strategy::Action;
use oracle_vm_host::guest_oracle;
use serde::{Deserialize, Serialize};

use crate::chain::{chain_now, on_chain, Status as RequestStatus};
use crate::roles::node::Node;
use crate::serve::positions::{self, Commitments};

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
    /// Run the guest with the local data and preimages of `oracle` and record it,
    /// within the VM memory budget (snapshots included) and the game's trace bound.
    pub fn run(guest_elf: &[u8], oracle: InMemoryOracle, bound: u64) -> Result<Trace> {
        let oracle: SharedOracle = Arc::new(oracle);
        let mut vm = Vm::from_elf(guest_elf, oracle).context("loading the guest program")?;
        let budget = oracle_fpvm::Budget {
            steps: bound,
            memory: 2 * crate::serve::VM_MEMORY_BUDGET,
        };
        let (checkpoints, outcome) =
            Checkpoints::record_with_budget(&mut vm, CHECKPOINT_INTERVAL, &budget)
                .context("running the guest in the VM")?;
        if let oracle_fpvm::RunOutcome::BudgetExceeded(limit) = outcome {
            bail!(
                "the guest's trace ran over its {limit:?} budget at step {}",
                vm.cpu.step
            );
        }
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

    /// The same trace ending in a final state that claims `output` instead (a test
    /// liar's claim: every step agrees with the true run but the last).
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
    /// challenger that won then waits for the request to be final, finalizing it
    /// itself when the result is its own, and claims its bond and reward).
    Won,
    /// We won as challenger, the request is final and our reward is claimed.
    Settled,
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
    /// The output we posted (as the operator, or with our challenge), which our
    /// answers commit to (finalized by us if we win as challenger).
    pub output: Bytes,
    /// The request's callback contract.
    pub callback: Address,
    /// The request's callback data.
    pub callback_data: Bytes,
    /// Where we stand.
    pub state: DisputeState,
    /// Transactions we sent in this game.
    pub moves: u64,
    /// Each of our moves, in order: what the range was and what we did.
    #[serde(default)]
    pub history: Vec<MoveRecord>,
}

/// One move this node made in a game, with the board as it stood before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRecord {
    /// The board: `positions` (phase 1 of a two-phase game) or `steps` (a VM game).
    pub board: String,
    /// The disputed range before the move.
    pub lo: u64,
    /// Its upper end.
    pub hi: u64,
    /// What we did: `agree` / `deny` (the midpoint), `step` (the one-step end on
    /// chain), `claim timeout`.
    pub action: String,
    /// The defender's clock (seconds left at its last move), before the move.
    pub defender_clock: u32,
    /// The challenger's clock, before the move.
    pub challenger_clock: u32,
    /// Gas the move's transaction used.
    pub gas_used: u64,
}

impl DisputeRecord {
    /// A game we play from now: over `request`, in `game`, as defender or not,
    /// committing to `output`.
    pub fn ours(
        dispute: U256,
        game: Address,
        defending: bool,
        request: &crate::db::RequestEvent,
        output: Bytes,
    ) -> DisputeRecord {
        DisputeRecord {
            dispute,
            request: request.id,
            game,
            defending,
            model: request.model_id,
            prompt: request.input.clone(),
            output,
            callback: request.callback,
            callback_data: request.callback_data.clone(),
            state: DisputeState::Playing,
            moves: 0,
            history: Vec::new(),
        }
    }

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

/// Our phase-1 chain in a two-phase game.
pub struct OurChain {
    /// The commitments `s_0..s_N`.
    pub commitments: Commitments,
    /// Whether it is the test-only one-token lie ([`positions::commitments`]).
    pub lying: bool,
    /// Whether it is the honest chain.
    pub honest: bool,
}

impl OurChain {
    /// The chain that ends in `output`: the honest one, the test-only one-token lie,
    /// or the honest chain with a fabricated output commitment at its end.
    fn of(bytes: &[u8], prompt: &[u8], params: TextParams, output: &[u8]) -> Result<OurChain> {
        let honest = positions::commitments(bytes, prompt, params, false)?;
        if honest.output == output {
            return Ok(OurChain {
                commitments: honest,
                lying: false,
                honest: true,
            });
        }
        let lie = positions::commitments(bytes, prompt, params, true)?;
        if lie.output == output {
            return Ok(OurChain {
                commitments: lie,
                lying: true,
                honest: false,
            });
        }
        let mut made_up = honest;
        if let Some(last) = made_up.hashes.last_mut() {
            *last = keccak256(output);
        }
        made_up.output = output.to_vec();
        Ok(OurChain {
            commitments: made_up,
            lying: false,
            honest: false,
        })
    }
}

/// `AIOracle.DisputeStatus.OPEN`: the game is not applied yet.
const OPEN: u8 = 1;
/// `AIOracle.DisputeStatus.CHALLENGER_WON`: won, bond held until the request is final.
const CHALLENGER_WON: u8 = 3;

/// The games a node plays, with the traces of the open ones cached in memory.
pub struct Disputes {
    node: Node,
    traces: Mutex<HashMap<U256, Arc<Trace>>>,
    /// Phase-1 commitments of two-phase games, by dispute.
    chains: Mutex<HashMap<U256, Arc<OurChain>>>,
}

impl Disputes {
    /// The games of `node`.
    pub fn new(node: Node) -> Self {
        Disputes {
            node,
            traces: Mutex::new(HashMap::new()),
            chains: Mutex::new(HashMap::new()),
        }
    }

    /// Drop the cached traces of a game that is over.
    fn evict(&self, dispute: U256) {
        self.traces.lock().expect("trace cache").remove(&dispute);
        self.chains.lock().expect("chain cache").remove(&dispute);
    }

    /// Record a game to play (idempotent).
    pub fn join(&self, record: DisputeRecord) -> Result<()> {
        if self.node.db.dispute(record.dispute)?.is_none() {
            tracing::warn!(
                dispute = %record.dispute, request = %record.request, "playing as {} in game {}",
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
    /// for the opponent; settle the won ones once their request is final.
    pub async fn round(&self) -> Result<()> {
        // A challenge we cannot join yet (one against a result our won game
        // installed, seen before that game's record says so) must not keep us from
        // playing the games we know: the game that installs it is among them, and
        // the clock runs on all of them. The cursor stays put, so it is retried.
        if let Err(e) = self.sync().await {
            tracing::warn!("reading new challenges: {e:#} (will retry)");
        }
        for record in self.node.db.disputes()? {
            let id = record.dispute;
            let done = match record.state {
                DisputeState::Playing if self.node.faults.throw_games && record.defending => Ok(()),
                DisputeState::Playing => self.play(record).await,
                DisputeState::Won if !record.defending => self.settle(record).await,
                _ => Ok(()),
            };
            if let Err(e) = done {
                tracing::warn!(dispute = %id, "{e:#} (will retry)");
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
            let Some(request) = self.node.db.payload(e.requestId)? else {
                tracing::error!(
                    dispute = %e.disputeId, "request {} is not recorded by this node (a model it does not hold?)",
                    e.requestId
                );
                continue;
            };
            let output = if side == Side::Challenger {
                e.output
            } else {
                self.defended_output(e.requestId)?
            };
            self.join(DisputeRecord::ours(
                e.disputeId,
                e.game,
                side == Side::Defender,
                &request,
                output,
            ))?;
        }
        self.node.db.set_cursor("challenges", to)?;
        Ok(())
    }

    /// The output of the result of request `id` we defend: the one we submitted as
    /// the operator, or the one our won challenge installed.
    fn defended_output(&self, id: U256) -> Result<Bytes> {
        if let Some(output) = self.node.db.request(id)?.and_then(|r| r.output) {
            return Ok(output);
        }
        let won = self.node.db.disputes()?.into_iter().find(|d| {
            d.request == id
                && !d.defending
                && matches!(d.state, DisputeState::Won | DisputeState::Settled)
        });
        won.map(|d| d.output)
            .with_context(|| format!("we defend a result of request {id} we did not post"))
    }

    /// A challenger that won: once the request is final (finalizing it ourselves
    /// after its window when the result is ours), claim our bond and reward.
    async fn settle(&self, mut record: DisputeRecord) -> Result<()> {
        let chain = on_chain(&self.node.provider, self.node.oracle, record.request).await?;
        let oracle = AIOracle::new(self.node.oracle, &self.node.provider);
        match chain.status {
            RequestStatus::Finalized => {}
            RequestStatus::Submitted if chain.submitter == self.node.account => {
                if chain_now(&self.node.provider).await? <= chain.challenge_deadline {
                    return Ok(());
                }
                let call = oracle.finalize(
                    record.request,
                    keccak256(&record.prompt),
                    record.callback,
                    record.callback_data.clone(),
                    record.output.clone(),
                );
                let receipt = self.node.send(&call, "finalize").await?;
                if !receipt.status() {
                    return Ok(());
                }
                tracing::info!(
                    dispute = %record.dispute, "our result for request {} finalized; callback dispatched",
                    record.request
                );
            }
            _ => return Ok(()),
        }
        let claimable = oracle
            .claimableReward(record.dispute)
            .call()
            .await
            .context("reading claimableReward")?;
        let d = oracle
            .getDispute(record.dispute)
            .call()
            .await
            .context("reading the dispute")?;
        if d.status == CHALLENGER_WON {
            let receipt = self
                .node
                .send(&oracle.claimReward(record.dispute), "claimReward")
                .await?;
            if !receipt.status() {
                bail!("claimReward reverted");
            }
        }
        tracing::warn!(
            dispute = %record.dispute, request = %record.request, "settled; {claimable} wei (our bond and reward) credited"
        );
        record.state = DisputeState::Settled;
        Ok(self.node.db.put_dispute(&record)?)
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
            dispute = %record.dispute, "recorded our trace{what} ({} steps) in {:.1} s",
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

    /// Our trace of the whole request (one-phase games): the honest run, ending in a
    /// fabricated final state if the output we posted is another one.
    async fn trace(&self, record: &DisputeRecord) -> Result<Arc<Trace>> {
        let Some(model) = self.node.models.get(&record.model) else {
            bail!("model {} is not held by this node", record.model);
        };
        let model = model.clone();
        let guest = self.node.guest.clone();
        let prompt = record.prompt.to_vec();
        let ours = keccak256(&record.output);
        let steps = self.node.steps;
        self.cached_trace(record, "", move || {
            let trace = Trace::run(
                &guest,
                guest_oracle(&model.bytes, &model.request(&prompt, steps)),
                model.kind.trace_bound(),
            )?;
            if trace.output() == ours {
                Ok(trace)
            } else {
                trace.claiming(ours)
            }
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

    /// Our phase-1 commitments for `record`'s request (computed once, cached): the
    /// honest chain, or (a test fault) the chain of the output we posted.
    async fn commitments(&self, record: &DisputeRecord) -> Result<Arc<OurChain>> {
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
        let (bytes, prompt, params, output) = (
            model.bytes.clone(),
            record.prompt.to_vec(),
            model.text_params(self.node.steps),
            record.output.to_vec(),
        );
        let chain =
            tokio::task::spawn_blocking(move || OurChain::of(&bytes, &prompt, params, &output))
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
    /// has one). It must end in our commitment `s_{index+1}` (a liar's fabricated
    /// final state does).
    async fn transition_trace(&self, record: &DisputeRecord, index: u64) -> Result<Arc<Trace>> {
        let chain = self.commitments(record).await?;
        let Some(ours) = usize::try_from(index + 1)
            .ok()
            .and_then(|i| chain.commitments.hashes.get(i).copied())
        else {
            bail!("transition {index} is past our chain");
        };
        let Some(model) = self.node.models.get(&record.model) else {
            bail!("model {} is not held by this node", record.model);
        };
        let bound = model.kind.trace_bound();
        let (bytes, guest, prompt, params, lying, honest) = (
            model.bytes.clone(),
            self.node.guest.clone(),
            record.prompt.to_vec(),
            model.text_params(self.node.steps),
            chain.lying,
            chain.honest,
        );
        let what = format!(" of transition {index}");
        self.cached_trace(record, &what, move || {
            let oracle = positions::transition_oracle(&bytes, &prompt, params, lying, index)?;
            let trace = Trace::run(&guest, oracle, bound)?;
            if trace.output() == ours {
                Ok(trace)
            } else if !honest {
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
            let clocks = (state.defender_clock, state.challenger_clock);
            let action = board.next_action(record, state, side).await?;
            let what = match &action {
                Action::Move { agree: true, .. } => "agree",
                Action::Move { agree: false, .. } => "deny",
                Action::Step { .. } => "step",
                _ => "claim timeout",
            };
            let receipt = match action {
                Action::Over => continue,
                Action::Wait => return Ok(Progress::Waiting),
                Action::ClaimTimeout => {
                    tracing::warn!(
                        dispute = %record.dispute, "the opponent's clock ran out; claiming the game"
                    );
                    board.game().claim_timeout(self.node.account).await
                }
                Action::Move {
                    agree,
                    mid_hash,
                    mid_position,
                } => {
                    tracing::info!(
                        dispute = %record.dispute, "{} {lo}..{hi}: {} the midpoint, ours at {mid_position:?}",
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
            let gas_used = self.moved(record, &receipt)?;
            record.history.push(MoveRecord {
                board: board.range().to_string(),
                lo,
                hi,
                action: what.to_string(),
                defender_clock: clocks.0,
                challenger_clock: clocks.1,
                gas_used,
            });
            self.node.db.put_dispute(record)?;
        }
    }

    /// Count one of our transactions in a game; returns its gas.
    fn moved(
        &self,
        record: &mut DisputeRecord,
        receipt: &alloy::rpc::types::TransactionReceipt,
    ) -> Result<u64> {
        let used = self.node.account_gas(receipt, "dispute");
        metrics::counter!("oracle_dispute_moves_total").increment(1);
        record.moves += 1;
        self.node.db.put_dispute(record)?;
        Ok(used)
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
        if d.status == OPEN {
            let receipt = self
                .node
                .send(&oracle.resolveDispute(record.dispute), "resolveDispute")
                .await?;
            if !receipt.status() {
                let again = oracle.getDispute(record.dispute).call().await?;
                if again.status == OPEN {
                    bail!("resolveDispute reverted");
                }
            }
        }
        self.evict(record.dispute);
        record.state = if won {
            DisputeState::Won
        } else {
            DisputeState::Lost
        };
        if won {
            tracing::warn!(
                dispute = %record.dispute, request = %record.request, "WON in {} of our moves",
                record.moves
            );
        } else {
            tracing::error!(
                dispute = %record.dispute, request = %record.request, "LOST (our bond is forfeit)"
            );
        }
        metrics::counter!("oracle_disputes_total", "outcome" => if won { "won" } else { "lost" })
            .increment(1);
        self.node.db.put_dispute(&record)?;
        Ok(())
    }
}
