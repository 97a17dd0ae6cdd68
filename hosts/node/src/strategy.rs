//! The honest strategy of the dispute games: the next action of a player, as a pure
//! function of the game's state ([`GameState`], read by `oracle_contracts::game`),
//! its side, the time and its own trace. The node plays it ([`crate`]'s binary,
//! `dispute/board.rs`); the bindings only read games and send moves.

use alloy::primitives::B256;
use oracle_contracts::game::{GameState, Side, Status};

/// What a player does next ([`decide`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The game is over.
    Over,
    /// The opponent is to move and still has time.
    Wait,
    /// The opponent's clock ran out: `claimTimeout`.
    ClaimTimeout,
    /// `move(agree, mid_hash)`: the verdict on the pending midpoint and the own hash at the new one
    /// (`mid_position`; none, and a zero hash, when the verdict leaves one step).
    Move {
        /// Whether the opponent's pending midpoint hash is right.
        agree: bool,
        /// The own hash at `mid_position`.
        mid_hash: B256,
        /// Position of `mid_hash`.
        mid_position: Option<u64>,
    },
    /// `step(state, proof)` with the witness of the step from `pre` (the agreed `lo`).
    Step {
        /// The pre-state position.
        pre: u64,
    },
}

/// The honest strategy: the next action of `me` in `state` at unix time `now`, where `hash_at(i)`
/// is `me`'s state hash after `i` steps. Agree with a pending midpoint exactly when it equals the
/// own hash there; post the own hash at the new midpoint. At one step, execute it.
pub fn decide<E>(
    state: &GameState,
    me: Side,
    now: u64,
    mut hash_at: impl FnMut(u64) -> Result<B256, E>,
) -> Result<Action, E> {
    if state.status != Status::InProgress {
        return Ok(Action::Over);
    }
    if state.to_move != me {
        return Ok(if now > state.deadline {
            Action::ClaimTimeout
        } else {
            Action::Wait
        });
    }
    if state.at_one_step() {
        return Ok(Action::Step { pre: state.lo });
    }
    let (mut lo, mut hi) = (state.lo, state.hi);
    let mut agree = false;
    if state.mid_hash != B256::ZERO {
        agree = hash_at(state.mid)? == state.mid_hash;
        if agree {
            lo = state.mid;
        } else {
            hi = state.mid;
        }
    }
    if hi - lo == 1 {
        return Ok(Action::Move {
            agree,
            mid_hash: B256::ZERO,
            mid_position: None,
        });
    }
    let mid = lo + (hi - lo) / 2;
    Ok(Action::Move {
        agree,
        mid_hash: hash_at(mid)?,
        mid_position: Some(mid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oracle_contracts::game::{GameState, Side, Status};
    use std::convert::Infallible;

    fn h(i: u64) -> B256 {
        B256::left_padding_from(&i.to_be_bytes())
    }

    fn state(lo: u64, hi: u64, mid_hash: B256, to_move: Side) -> GameState {
        GameState {
            status: Status::InProgress,
            lo,
            hi,
            mid: lo + (hi - lo) / 2,
            lo_hash: h(lo),
            hi_hash: h(hi),
            mid_hash,
            to_move,
            hi_owner: Side::Defender,
            deadline: 100,
            defender_clock: 60,
            challenger_clock: 60,
        }
    }

    #[test]
    fn decide_follows_the_rules() {
        let trace = |i: u64| Ok::<_, Infallible>(h(i));
        // first move: no verdict, the own hash at the midpoint
        let s = state(0, 16, B256::ZERO, Side::Challenger);
        assert_eq!(
            decide(&s, Side::Challenger, 0, trace).unwrap(),
            Action::Move {
                agree: false,
                mid_hash: h(8),
                mid_position: Some(8)
            }
        );
        // a right midpoint is agreed: lo moves up, the next midpoint is 12
        let s = state(0, 16, h(8), Side::Defender);
        assert_eq!(
            decide(&s, Side::Defender, 0, trace).unwrap(),
            Action::Move {
                agree: true,
                mid_hash: h(12),
                mid_position: Some(12)
            }
        );
        // a wrong one is denied: hi moves down to 8, the next midpoint is 4
        let s = state(0, 16, h(99), Side::Defender);
        assert_eq!(
            decide(&s, Side::Defender, 0, trace).unwrap(),
            Action::Move {
                agree: false,
                mid_hash: h(4),
                mid_position: Some(4)
            }
        );
        // a verdict that leaves one step posts nothing; at one step, step
        let s = state(4, 6, h(5), Side::Defender);
        assert_eq!(
            decide(&s, Side::Defender, 0, trace).unwrap(),
            Action::Move {
                agree: true,
                mid_hash: B256::ZERO,
                mid_position: None
            }
        );
        let s = state(5, 6, B256::ZERO, Side::Defender);
        assert_eq!(
            decide(&s, Side::Defender, 0, trace).unwrap(),
            Action::Step { pre: 5 }
        );
        // the opponent's turn: wait, or claim the timeout after its deadline
        assert_eq!(
            decide(&s, Side::Challenger, 100, trace).unwrap(),
            Action::Wait
        );
        assert_eq!(
            decide(&s, Side::Challenger, 101, trace).unwrap(),
            Action::ClaimTimeout
        );
        // a new game: the challenger opens at once (both claims were checked at submission)
        let mut s = state(0, 16, B256::ZERO, Side::Challenger);
        assert_eq!(decide(&s, Side::Defender, 0, trace).unwrap(), Action::Wait);
        s.status = Status::DefenderWins;
        assert_eq!(
            decide(&s, Side::Challenger, 0, trace).unwrap(),
            Action::Over
        );
    }
}
