// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Bisection, GameView} from "../../src/dispute/Bisection.sol";
import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {PositionGame} from "../../src/dispute/PositionGame.sol";
import {SyntheticTrace} from "./DisputeBase.sol";
import {PositionBase, PositionChain} from "./PositionBase.sol";

/// @notice Property tests of the two-phase game: for random lengths and lying points, phase 1 ends at the
///         first lying index within `ceil(log2 N) + 1` moves; and through AIOracle end to end (phase 1, both
///         claims, the phase-2 game, `resolveDispute`, finalization) the honest side wins and every bond
///         is accounted for.
contract PositionGamePropertyTest is PositionBase {
    function _ceilLog2(uint64 n) internal pure returns (uint256 k) {
        while ((uint256(1) << k) < n) k++;
    }

    /// @notice Random N (1..600 steps), an honest chain and a liar that differs from index `lieFrom` on
    ///         (1..N; `s_0` is derived on chain), honest defender or honest challenger.
    function testFuzz_phase1EndsAtFirstLie(uint32 steps, uint64 lieFrom, bool defenderHonest) public {
        steps = uint32(bound(steps, 1, 600));
        bytes memory params = _params(steps);
        gameFactory = _newTwoPhaseFactory(params);
        uint64 n = _n(params);
        lieFrom = uint64(bound(lieFrom, 1, n));
        PositionChain truth = _honestChain(params);
        PositionChain liar = _lyingChain(truth, lieFrom);
        (,, PositionGame g) = defenderHonest ? _openPosition(GOOD, BAD) : _openPosition(BAD, GOOD);
        assertEq(g.length(), n);
        uint256 moves = _bisectToOne(g, defenderHonest ? truth : liar, defenderHonest ? liar : truth);
        GameView memory v = g.gameState();
        assertEq(v.lo, lieFrom - 1, "s_i agreed");
        assertEq(v.hi, lieFrom, "s_{i+1} is the first lying index");
        assertEq(v.loHash, truth.at(v.lo));
        assertEq(v.loHash, liar.at(v.lo));
        // the owner of hiHash holds its own commitment there
        bool honestOwns = v.defenderOwnsHi == defenderHonest;
        assertEq(v.hiHash, honestOwns ? truth.at(v.hi) : liar.at(v.hi));
        assertLe(moves, _ceilLog2(n) + 1, "ceil(log2 N) + 1 moves");
    }

    /// @notice The whole dispute through AIOracle: phase 1, both claims (the liar's transition run departs
    ///         from the honest VM trace at a random step), the phase-2 game, `resolveDispute`, finalization.
    function testFuzz_endToEnd_honestSideWins(uint64 lieFrom, uint64 vmLieFrom, bool defenderHonest) public {
        uint64 n = _n(SAMPLING);
        lieFrom = uint64(bound(lieFrom, 1, n));
        uint64 top = uint64(1) << DEPTH;
        _endToEnd(lieFrom, uint64(bound(vmLieFrom, 1, top)), defenderHonest);
    }

    function test_endToEnd_honestDefender_succeeds() public {
        _endToEnd(30, 77, true);
    }

    function test_endToEnd_honestChallenger_succeeds() public {
        _endToEnd(66, 250, false);
    }

    function _endToEnd(uint64 lieFrom, uint64 vmLieFrom, bool defenderHonest) internal {
        PositionChain truth = _honestChain(SAMPLING);
        PositionChain liar = _lyingChain(truth, lieFrom);
        (uint256 id, uint256 did, PositionGame g) =
            defenderHonest ? _openPosition(GOOD, BAD) : _openPosition(BAD, GOOD);
        _bisectToOne(g, defenderHonest ? truth : liar, defenderHonest ? liar : truth);
        _phase2(g, truth, liar, vmLieFrom, defenderHonest);
        _settleHonestWin(id, did, g, defenderHonest);
    }

    /// @dev Phase 2 at the index phase 1 ended on: both claims and the phase-2 game played to the end (the
    ///      liar's VM trace departs from the honest one at `vmLieFrom`).
    function _phase2(
        PositionGame g,
        PositionChain truth,
        PositionChain liar,
        uint64 vmLieFrom,
        bool defenderHonest
    ) internal {
        GameView memory v = g.gameState();
        bool honestOwns = v.defenderOwnsHi == defenderHonest;
        // the honest run of transition i ends in the true s_{i+1}; the liar's in its own
        bytes memory honestState = _transitionState(truth.at(v.hi), 300, 0, 1);
        bytes memory lyingState = _transitionState(liar.at(v.hi), 300, 0, 1);
        SyntheticTrace vmTruth = _truth(300, honestState);
        SyntheticTrace vmLiar = _liar(vmTruth, vmLieFrom, 300, lyingState);
        DisputeGame child =
            honestOwns ? _claimBoth(g, honestState, lyingState) : _claimBoth(g, lyingState, honestState);
        uint256 moves =
            honestOwns ? _play(child, vmTruth, vmLiar, false) : _play(child, vmLiar, vmTruth, false);
        assertLe(moves, DEPTH + 2, "phase 2: DEPTH + 1 moves and the step");
    }
}
