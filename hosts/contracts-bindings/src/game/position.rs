//! The two-phase game (`contracts/src/dispute/PositionGame.sol`, `docs/dispute.md`).
//!
//! Phase 1 is the same bisection as the VM game over the indices `0..=N` of the commitments
//! `s_0 .. s_N` (`N` = [`PositionGameClient::length`]), so the node's honest strategy plays it
//! unchanged with `hash_at(i)` = the player's own `s_i`. At one index `(i, i+1)` its step
//! from `i` means: post the final VM state of the own run
//! of transition `i` with [`PositionGameClient::claim_transition`] (the side to move first, then
//! the other). The second claim creates the phase-2 game ([`PositionGameClient::transition_game`]),
//! a one-phase `DisputeGame` played with [`GameClient`](super::GameClient) between the owner of
//! `hiHash` (its defender) and the other side; from then on this game's status follows it.

use alloy::{
    primitives::{Address, Bytes, B256},
    providers::Provider,
    rpc::types::TransactionReceipt,
};

use super::{impl_bisection, GameError, GameState, Side};
use crate::{DisputeGame, DisputeGameFactory, PositionGame};

/// Which game an address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GameKind {
    /// A `DisputeGame` over VM steps (a one-phase game, or the phase-2 game of a `PositionGame`).
    Vm,
    /// A two-phase `PositionGame`.
    Positions,
}

/// The kind of the game at `game`: asks the factory that created it (`FACTORY()`, the same in
/// both games) whether it is one of its `PositionGame`s.
pub async fn game_kind<P: Provider>(provider: P, game: Address) -> Result<GameKind, GameError> {
    let factory = DisputeGame::new(game, &provider).FACTORY().call().await?;
    let positions = DisputeGameFactory::new(factory, &provider)
        .isPositionGame(game)
        .call()
        .await?;
    Ok(if positions {
        GameKind::Positions
    } else {
        GameKind::Vm
    })
}

/// A two-phase dispute game on chain. Its [`Bisection::state`](super::Bisection::state) is a
/// snapshot of phase 1 (`lo`, `hi`, `mid` are indices; the status is the phase-2 game's outcome in
/// this game's roles once there is one).
pub struct PositionGameClient<P> {
    game: PositionGame::PositionGameInstance<P>,
}

impl<P: Provider> PositionGameClient<P> {
    /// The game at `address`.
    pub fn new(address: Address, provider: P) -> Self {
        Self {
            game: PositionGame::new(address, provider),
        }
    }

    /// The game's address.
    pub fn address(&self) -> Address {
        *self.game.address()
    }

    /// The typed binding, for anything this API does not wrap.
    pub fn contract(&self) -> &PositionGame::PositionGameInstance<P> {
        &self.game
    }

    /// The game's parameters (request, players, output hashes, model; the claims are unused in
    /// phase 1).
    pub async fn params(&self) -> Result<PositionGame::GameParams, GameError> {
        Ok(self.game.params().call().await?)
    }

    /// `N = T + 2`: phase 1 runs over `s_0 .. s_N`.
    pub async fn length(&self) -> Result<u64, GameError> {
        Ok(self.game.length().call().await?)
    }

    /// `s_0 = keccak256(modelRoot ‖ inputHash ‖ params)`.
    pub async fn start_hash(&self) -> Result<B256, GameError> {
        Ok(self.game.startHash().call().await?)
    }

    /// The model's 20 sampling-parameter bytes.
    pub async fn sampling_params(&self) -> Result<Vec<u8>, GameError> {
        Ok(self.game.samplingParams().call().await?.to_vec())
    }

    /// The final-state hashes posted by `claimTransition` (zero until posted): the owner of
    /// `hiHash`'s (the phase-2 defender's) and the other side's.
    pub async fn transition_claims(&self) -> Result<(B256, B256), GameError> {
        let c = self.game.transitionClaims().call().await?;
        Ok((c.hiOwnerClaim, c.otherClaim))
    }

    /// The phase-2 game, once both transition claims are in.
    pub async fn transition_game(&self) -> Result<Option<Address>, GameError> {
        let a = self.game.transitionGame().call().await?;
        Ok((a != Address::ZERO).then_some(a))
    }

    /// `claimTransition(finalState)`: the 245-byte final VM state of the own run of the disputed
    /// transition (for the owner of `hiHash`: exited 0 with output `hiHash`).
    pub async fn claim_transition(
        &self,
        from: Address,
        state: Vec<u8>,
    ) -> Result<TransactionReceipt, GameError> {
        let call = self.game.claimTransition(Bytes::from(state)).from(from);
        super::send(call, "claimTransition").await
    }
}

impl_bisection!(PositionGameClient);
