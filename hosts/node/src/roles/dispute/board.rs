//! The two kinds of board a dispute is played on, behind one [`Board`] so that
//! [`Disputes::play_board`](super::Disputes) plays both with one loop:
//! - [`Vm`]: a `DisputeGame` over VM steps, answered from a [`Trace`];
//! - [`Positions`]: phase 1 of a `PositionGame`, over decode positions, answered
//!   from our native commitments; its one-step end is our claim of the disputed
//!   transition's final VM state.

use std::sync::Arc;

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use anyhow::{Context, Result};
use oracle_contracts::game::{Bisection, GameClient, GameState, PositionGameClient, Side};
use oracle_node::strategy::{decide, Action};

use super::{DisputeRecord, Disputes, Trace};
use crate::chain::chain_now;

/// The receipt of a transaction we sent in a game, or why it failed on chain.
pub(super) type Sent =
    std::result::Result<alloy::rpc::types::TransactionReceipt, oracle_contracts::game::GameError>;

/// A game board as this node plays it: the game's client and where our answers
/// come from. Where a method returns `Result<Sent>`, the outer error is ours (an
/// answer we could not compute), the inner one the transaction's.
pub(super) trait Board {
    /// The game's client.
    type Game: Bisection;

    /// The game.
    fn game(&self) -> &Self::Game;

    /// How the logs name the disputed range.
    fn range(&self) -> &'static str;

    /// The phase-2 game this game went on to, if any.
    async fn phase_two(&self) -> Result<Option<Address>>;

    /// Our next action in `state` as `side`, at the chain's time now.
    async fn next_action(
        &self,
        record: &DisputeRecord,
        state: GameState,
        side: Side,
    ) -> Result<Action>;

    /// The range is one step, from `pre`: settle it.
    async fn step(&self, record: &DisputeRecord, pre: u64) -> Result<Sent>;
}

/// A VM game, played from our trace of what it disputes.
pub(super) struct Vm<'a> {
    /// The games this one is among.
    pub disputes: &'a Disputes,
    /// The game.
    pub game: &'a GameClient<DynProvider>,
    /// Our trace of the request (one-phase) or of the disputed transition (phase 2).
    pub trace: Arc<Trace>,
}

impl Board for Vm<'_> {
    type Game = GameClient<DynProvider>;

    fn game(&self) -> &Self::Game {
        self.game
    }

    fn range(&self) -> &'static str {
        "steps"
    }

    async fn phase_two(&self) -> Result<Option<Address>> {
        Ok(None)
    }

    async fn next_action(
        &self,
        _record: &DisputeRecord,
        state: GameState,
        side: Side,
    ) -> Result<Action> {
        let now = chain_now(&self.disputes.node.provider).await?;
        let trace = self.trace.clone();
        tokio::task::spawn_blocking(move || decide(&state, side, now, |i| trace.hash_at(i)))
            .await
            .context("the bisection task panicked")?
    }

    /// Execute the last step on chain, with its witness from our trace.
    async fn step(&self, record: &DisputeRecord, pre: u64) -> Result<Sent> {
        let witness = {
            let trace = self.trace.clone();
            tokio::task::spawn_blocking(move || trace.witness(pre))
                .await
                .context("the witness task panicked")??
        };
        tracing::warn!(
            dispute = %record.dispute, "one step left ({pre} → {}): executing it on chain",
            pre + 1
        );
        Ok(self
            .game
            .step(self.disputes.node.account, witness.state, witness.proof)
            .await)
    }
}

/// Phase 1 of a two-phase game, played from our native commitments.
pub(super) struct Positions<'a> {
    /// The games this one is among.
    pub disputes: &'a Disputes,
    /// The game.
    pub game: &'a PositionGameClient<DynProvider>,
}

impl Board for Positions<'_> {
    type Game = PositionGameClient<DynProvider>;

    fn game(&self) -> &Self::Game {
        self.game
    }

    fn range(&self) -> &'static str {
        "positions"
    }

    async fn phase_two(&self) -> Result<Option<Address>> {
        self.game
            .transition_game()
            .await
            .context("reading the transition game")
    }

    async fn next_action(
        &self,
        record: &DisputeRecord,
        state: GameState,
        side: Side,
    ) -> Result<Action> {
        let chain = self.disputes.commitments(record).await?;
        let now = chain_now(&self.disputes.node.provider).await?;
        decide(&state, side, now, |i| {
            usize::try_from(i)
                .ok()
                .and_then(|i| chain.commitments.hashes.get(i).copied())
                .ok_or_else(|| anyhow::anyhow!("index {i} is past our chain"))
        })
    }

    /// Claim our final VM state of the disputed transition (its phase-2 game
    /// starts once both sides claimed).
    async fn step(&self, record: &DisputeRecord, pre: u64) -> Result<Sent> {
        let trace = self.disputes.transition_trace(record, pre).await?;
        tracing::warn!(
            dispute = %record.dispute, "phase 1 settled on transition {pre} → {}: claiming our final VM state of it ({} steps)",
            pre + 1,
            trace.steps()
        );
        Ok(self
            .game
            .claim_transition(self.disputes.node.account, trace.final_state.clone())
            .await)
    }
}
