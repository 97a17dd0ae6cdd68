// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {DisputeBase, FlakyTrace, SyntheticTrace} from "./DisputeBase.sol";

/// @notice Property tests: for random traces and random lying points, the honest side always wins, within
///         `DEPTH + 2` moves, and every bond is accounted for.
contract DisputeGamePropertyTest is DisputeBase {
    /// @dev Opens a game between the honest trace and a liar, plays it, and settles it (`_settleHonestWin`).
    function _check(
        SyntheticTrace truth,
        bytes memory honestState,
        bool defenderHonest,
        bool liarStalls,
        SyntheticTrace liar,
        bytes memory liarState
    ) internal {
        (uint256 id, uint256 did, DisputeGame g) = defenderHonest
            ? _open(GOOD, honestState, BAD, liarState)
            : _open(BAD, liarState, GOOD, honestState);
        uint256 moves = defenderHonest ? _play(g, truth, liar, liarStalls) : _play(g, liar, truth, liarStalls);
        assertLe(moves, DEPTH + 2, "at most DEPTH + 1 moves and the step");
        _settleHonestWin(id, did, g, defenderHonest);
    }

    /// @notice A liar that agrees with the truth up to a random point and claims its own trace after it
    ///         (of any length, shorter or longer than the honest one: past both ends the fixed point holds).
    function testFuzz_honestSideAlwaysWins_departingLiar(
        uint64 len,
        uint64 liarLen,
        uint64 lieFrom,
        bool defenderHonest,
        bool liarStalls
    ) public {
        uint64 top = uint64(1) << DEPTH;
        len = uint64(bound(len, 1, top));
        liarLen = uint64(bound(liarLen, 1, top));
        lieFrom = uint64(bound(lieFrom, 1, top));
        bytes memory honestState = _finalState(GOOD, len, 0, 1);
        bytes memory liarState = _finalState(BAD, liarLen, 0, 1);
        SyntheticTrace truth = _truth(len, honestState);
        _check(
            truth,
            honestState,
            defenderHonest,
            liarStalls,
            _liar(truth, lieFrom, liarLen, liarState),
            liarState
        );
    }

    /// @notice A liar that lies at scattered random positions and tells the truth elsewhere.
    function testFuzz_honestSideAlwaysWins_flakyLiar(
        uint64 len,
        bytes32 seed,
        uint256 odds,
        bool defenderHonest,
        bool liarStalls
    ) public {
        uint64 top = uint64(1) << DEPTH;
        len = uint64(bound(len, 1, top));
        odds = bound(odds, 1, 16);
        bytes memory honestState = _finalState(GOOD, len, 0, 1);
        bytes memory liarState = _finalState(BAD, len, 0, 1);
        SyntheticTrace truth = _truth(len, honestState);
        FlakyTrace liar = new FlakyTrace(truth, seed, _hash(liarState), top, odds);
        _check(truth, honestState, defenderHonest, liarStalls, liar, liarState);
    }
}
