//! Playing the dispute games (`contracts/src/dispute/DisputeGame.sol` and the two-phase
//! `PositionGame.sol`, [`PositionGameClient`]) from Rust.
//!
//! Three layers, each usable alone:
//! - [`GameState`]: a typed snapshot of a game ([`GameClient::state`]): the disputed range
//!   `[lo, hi]`, the agreed hash at `lo`, the asserted hash at `hi` and who owns it, the pending
//!   midpoint, whose turn it is and until when.
//! - [`GameClient`]: sends a player's action (`move`, `step`, `claimTimeout`) and returns the
//!   receipt; the calls it shares with [`PositionGameClient`] are those of [`Bisection`].
//!
//! Which action to take is the player's business: the honest strategy is the node's
//! (`hosts/node/src/strategy.rs`), a pure function of a [`GameState`].
//!
//! There is no reveal: both claims of a game were bound to their outputs on chain before it
//! started (`DisputeGameFactory.resultClaim`, called by `AIOracle.submit` and `challenge`), so a
//! game starts with both final states checked and the challenger to move.
//!
//! `hosts/node/tests/anvil_game.rs` plays a whole game against a real guest trace.
//!
//! ```no_run
//! # async fn play<P: alloy::providers::Provider>(provider: P, game: alloy::primitives::Address,
//! #     me: alloy::primitives::Address, agree: bool, mid_hash: alloy::primitives::B256)
//! #     -> Result<(), oracle_contracts::game::GameError> {
//! use oracle_contracts::game::{Bisection, GameClient};
//! let client = GameClient::new(game, &provider);
//! let state = client.state().await?;
//! if state.at_one_step() { return Ok(()); }
//! client.make_move(me, agree, mid_hash).await?;
//! # Ok(()) }
//! ```

use alloy::{
    primitives::{Address, Bytes, B256},
    providers::Provider,
    rpc::types::TransactionReceipt,
};

use crate::{AIOracle, DisputeGame};

mod position;
pub use position::{game_kind, GameKind, PositionGameClient};

use std::future::Future;

/// A side of a game.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The submitter of the challenged result.
    Defender,
    /// The challenger.
    Challenger,
}

impl Side {
    /// The side `who` plays in a game between `submitter` and `challenger`, if any.
    pub fn of(who: Address, submitter: Address, challenger: Address) -> Option<Side> {
        if who == submitter {
            Some(Side::Defender)
        } else if who == challenger {
            Some(Side::Challenger)
        } else {
            None
        }
    }

    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Defender => Side::Challenger,
            Side::Challenger => Side::Defender,
        }
    }
}

/// A game's outcome so far (`GameStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Still being played.
    InProgress,
    /// The challenger won: the challenged result is replaced.
    ChallengerWins,
    /// The defender won: the result stands.
    DefenderWins,
}

/// A snapshot of a game (`DisputeGame.gameState()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GameState {
    /// Outcome so far.
    pub status: Status,
    /// Lower end of the disputed range (steps); its hash is agreed.
    pub lo: u64,
    /// Upper end of the disputed range (steps); its hash is asserted by `hi_owner`.
    pub hi: u64,
    /// The midpoint position (of the pending hash, or the next one to post).
    pub mid: u64,
    /// The agreed state hash at `lo`.
    pub lo_hash: B256,
    /// The state hash at `hi` asserted by `hi_owner`.
    pub hi_hash: B256,
    /// The opponent's hash at `mid` awaiting a verdict (zero before the first move and at one step).
    pub mid_hash: B256,
    /// Whose turn it is.
    pub to_move: Side,
    /// Who asserts `hi_hash`.
    pub hi_owner: Side,
    /// Unix time after which the side to move has run out of time.
    pub deadline: u64,
    /// Seconds the defender had left at its last move.
    pub defender_clock: u32,
    /// Seconds the challenger had left at its last move.
    pub challenger_clock: u32,
}

impl GameState {
    /// Whether the range is one step (the next action is `step`).
    pub fn at_one_step(&self) -> bool {
        self.hi - self.lo == 1
    }

    /// The winner, once the game is over.
    pub fn winner(&self) -> Option<Side> {
        match self.status {
            Status::InProgress => None,
            Status::ChallengerWins => Some(Side::Challenger),
            Status::DefenderWins => Some(Side::Defender),
        }
    }
}

/// Why a game call failed.
#[derive(Debug, thiserror::Error)]
pub enum GameError {
    /// Sending or estimating a call failed (RPC error, revert on estimation, ...).
    #[error("game call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// Waiting for a transaction's receipt failed.
    #[error("waiting for the receipt failed: {0}")]
    Pending(#[from] alloy::providers::PendingTransactionError),
    /// A transaction was mined but reverted.
    #[error("`{0}` reverted")]
    Reverted(&'static str),
    /// The contract returned a status this crate does not know.
    #[error("unknown game status {0}")]
    UnknownStatus(u8),
}

/// The `Status` of a `GameStatus` value.
pub(crate) fn status_of(s: u8) -> Result<Status, GameError> {
    match s {
        0 => Ok(Status::InProgress),
        1 => Ok(Status::ChallengerWins),
        2 => Ok(Status::DefenderWins),
        s => Err(GameError::UnknownStatus(s)),
    }
}

/// The side a `defender…` flag names.
pub(crate) fn side_of_flag(defender: bool) -> Side {
    if defender {
        Side::Defender
    } else {
        Side::Challenger
    }
}

/// The calls of the bisection both games are played with: phase 1 of a `PositionGame` is the same
/// bisection as a `DisputeGame`, under the same Solidity names. Implemented by [`GameClient`] and
/// [`PositionGameClient`].
pub trait Bisection {
    /// The side `who` plays, if any.
    fn side_of(&self, who: Address)
        -> impl Future<Output = Result<Option<Side>, GameError>> + Send;

    /// A snapshot of the game (of a `PositionGame`: of phase 1, see [`PositionGameClient`]).
    fn state(&self) -> impl Future<Output = Result<GameState, GameError>> + Send;

    /// `move(agree, midHash)`.
    fn make_move(
        &self,
        from: Address,
        agree: bool,
        mid_hash: B256,
    ) -> impl Future<Output = Result<TransactionReceipt, GameError>> + Send;

    /// `claimTimeout()` (in a `PositionGame`: phase 1 and the claim turns).
    fn claim_timeout(
        &self,
        from: Address,
    ) -> impl Future<Output = Result<TransactionReceipt, GameError>> + Send;
}

/// Implements [`Bisection`] for a client whose `game` field is a generated binding of a contract
/// with the bisection's calls (`DisputeGame`'s and `PositionGame`'s `GameView` and `GameParams`
/// are the same structs, generated as different Rust types).
macro_rules! impl_bisection {
    ($client:ident) => {
        impl<P: Provider> $crate::game::Bisection for $client<P> {
            async fn side_of(&self, who: Address) -> Result<Option<Side>, GameError> {
                let p = self.game.params().call().await?;
                Ok(Side::of(who, p.submitter, p.challenger))
            }

            async fn state(&self) -> Result<GameState, GameError> {
                let v = self.game.gameState().call().await?;
                Ok(GameState {
                    status: $crate::game::status_of(v.status)?,
                    lo: v.lo,
                    hi: v.hi,
                    mid: v.mid,
                    lo_hash: v.loHash,
                    hi_hash: v.hiHash,
                    mid_hash: v.midHash,
                    to_move: $crate::game::side_of_flag(v.defenderToMove),
                    hi_owner: $crate::game::side_of_flag(v.defenderOwnsHi),
                    deadline: v.deadline.saturating_to::<u64>(),
                    defender_clock: v.defenderClock,
                    challenger_clock: v.challengerClock,
                })
            }

            async fn make_move(
                &self,
                from: Address,
                agree: bool,
                mid_hash: B256,
            ) -> Result<TransactionReceipt, GameError> {
                let call = self.game.r#move(agree, mid_hash).from(from);
                $crate::game::send(call, "move").await
            }

            async fn claim_timeout(&self, from: Address) -> Result<TransactionReceipt, GameError> {
                let call = self.game.claimTimeout().from(from);
                $crate::game::send(call, "claimTimeout").await
            }
        }
    };
}
pub(crate) use impl_bisection;

/// A dispute game on chain.
pub struct GameClient<P> {
    game: DisputeGame::DisputeGameInstance<P>,
}

impl<P: Provider> GameClient<P> {
    /// The game at `address`.
    pub fn new(address: Address, provider: P) -> Self {
        Self {
            game: DisputeGame::new(address, provider),
        }
    }

    /// The game of dispute `dispute_id` of `oracle` (`AIOracle.getDispute(id).game`), played
    /// through `provider` (the oracle binding may use another provider type, e.g. a reference).
    pub async fn of_dispute<Q: Provider>(
        oracle: &AIOracle::AIOracleInstance<Q>,
        dispute_id: alloy::primitives::U256,
        provider: P,
    ) -> Result<Self, GameError> {
        let d = oracle.getDispute(dispute_id).call().await?;
        Ok(Self::new(d.game, provider))
    }

    /// The game's address.
    pub fn address(&self) -> Address {
        *self.game.address()
    }

    /// The typed binding, for anything this API does not wrap.
    pub fn contract(&self) -> &DisputeGame::DisputeGameInstance<P> {
        &self.game
    }

    /// The game's parameters (request, players, claims, output hashes, model).
    pub async fn params(&self) -> Result<crate::DisputeGame::GameParams, GameError> {
        Ok(self.game.params().call().await?)
    }

    /// `step(state, proof)`: the witness of the step from the agreed `lo` (`fpvm` witness).
    pub async fn step(
        &self,
        from: Address,
        state: Vec<u8>,
        proof: Vec<u8>,
    ) -> Result<TransactionReceipt, GameError> {
        let call = self
            .game
            .step(Bytes::from(state), Bytes::from(proof))
            .from(from);
        send(call, "step").await
    }
}

impl_bisection!(GameClient);

/// Gas added to a game call's estimate, on top of a quarter of it.
const GAS_MARGIN: u64 = 20_000;

/// Send a game call with gas above its estimate and wait for its receipt. A move's
/// cost depends on the block's timestamp (the clock charged to the mover is written
/// only if time passed since the last move), so an estimate made in the second of
/// the opponent's move falls short when the call is mined in the next one.
pub(crate) async fn send<P: Provider, D: alloy::contract::CallDecoder>(
    call: alloy::contract::CallBuilder<P, D>,
    what: &'static str,
) -> Result<TransactionReceipt, GameError> {
    // Estimated at the pending block, as a send is: at the latest one, a clock
    // that ran out since the last block still looks alive (`ClockNotExpired`).
    let call = call.block(alloy::eips::BlockId::pending());
    let gas = call.estimate_gas().await?;
    let call = call.gas(gas.saturating_add(gas / 4).saturating_add(GAS_MARGIN));
    finish(call.send().await?.get_receipt().await?, what)
}

/// The receipt of a mined transaction `what`, or [`GameError::Reverted`].
pub(crate) fn finish(
    receipt: TransactionReceipt,
    what: &'static str,
) -> Result<TransactionReceipt, GameError> {
    if receipt.status() {
        Ok(receipt)
    } else {
        Err(GameError::Reverted(what))
    }
}
