// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Bisection, GameView} from "../../src/dispute/Bisection.sol";
import {PositionGame} from "../../src/dispute/PositionGame.sol";
import {PositionBase, PositionChain} from "./PositionBase.sol";
import {console2} from "forge-std/console2.sol";

/// @notice Gas of the two-phase game's calls (the metered part of each test is the one call; .gas-snapshot
///         keeps them) and of a whole phase 1 at N = 66 (64 positions), per side. Every call is measured with
///         the touched contracts cooled (`vm.cool`); the 21,000 base gas and calldata are not included.
contract PositionGasTest is PositionBase {
    PositionChain internal truth;
    PositionChain internal liar;

    function setUp() public override {
        super.setUp();
        truth = _honestChain(SAMPLING);
        liar = _lyingChain(truth, 30);
    }

    function _cool(address game) internal {
        vm.cool(address(oracle));
        vm.cool(address(gameFactory));
        vm.cool(address(gameFactory.IMPLEMENTATION()));
        vm.cool(address(gameFactory.POSITION_IMPLEMENTATION()));
        vm.cool(address(preimages));
        if (game != address(0)) vm.cool(game);
    }

    function test_gas_challengeCreatesPositionGame() public {
        vm.pauseGasMetering();
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, GOOD, "");
        vm.deal(challenger, CHALLENGE_BOND);
        _cool(address(0));
        vm.prank(challenger);
        vm.resumeGasMetering();
        oracle.challenge{value: CHALLENGE_BOND}(
            id, keccak256(INPUT), address(receiver), keccak256(CB_DATA), BAD, ""
        );
    }

    function test_gas_positionFirstMove() public {
        vm.pauseGasMetering();
        (,, PositionGame g) = _openPosition(GOOD, BAD);
        bytes32 mid = liar.at(33);
        _cool(address(g));
        vm.prank(challenger);
        vm.resumeGasMetering();
        g.move(false, mid);
    }

    function test_gas_positionVerdictMove() public {
        vm.pauseGasMetering();
        (,, PositionGame g) = _openPosition(GOOD, BAD);
        _moveFrom(g, truth, liar);
        _moveFrom(g, truth, liar);
        (bool agree, bytes32 mid) = _nextMove(g, liar);
        _cool(address(g));
        vm.prank(challenger);
        vm.resumeGasMetering();
        g.move(agree, mid);
    }

    /// @dev Phase 1 to one index; returns the states of the first and second claimer and their addresses.
    function _claims(PositionGame g)
        internal
        returns (address first, bytes memory firstState, address second, bytes memory secondState)
    {
        _bisectToOne(g, truth, liar);
        GameView memory v = g.gameState();
        bytes memory ownerState = _transitionState(v.hiHash, 500, 0, 1);
        bytes memory otherState =
            _transitionState(v.defenderOwnsHi ? liar.at(v.hi) : truth.at(v.hi), 600, 0, 1);
        bool firstOwner = v.defenderToMove == v.defenderOwnsHi;
        (first, second) = v.defenderToMove ? (operator, challenger) : (challenger, operator);
        (firstState, secondState) = firstOwner ? (ownerState, otherState) : (otherState, ownerState);
    }

    function test_gas_claimTransitionFirst() public {
        vm.pauseGasMetering();
        (,, PositionGame g) = _openPosition(GOOD, BAD);
        (address first, bytes memory firstState,,) = _claims(g);
        _cool(address(g));
        vm.prank(first);
        vm.resumeGasMetering();
        g.claimTransition(firstState);
    }

    /// @notice The second claim creates the phase-2 game (clone, 4 local values).
    function test_gas_claimTransitionSecondCreatesChild() public {
        vm.pauseGasMetering();
        (,, PositionGame g) = _openPosition(GOOD, BAD);
        (address first, bytes memory firstState, address second, bytes memory secondState) = _claims(g);
        _claimAs(g, first, firstState);
        _cool(address(g));
        vm.prank(second);
        vm.resumeGasMetering();
        g.claimTransition(secondState);
    }

    function test_gas_positionClaimTimeout() public {
        vm.pauseGasMetering();
        (,, PositionGame g) = _openPosition(GOOD, BAD);
        vm.warp(block.timestamp + CLOCK + 1);
        _cool(address(g));
        vm.resumeGasMetering();
        g.claimTimeout();
    }

    /// @notice A whole phase 1 at N = 66 and both claims (the second creating the phase-2 game): moves
    ///         and execution gas per side.
    function test_gas_wholePhase1N66() public {
        (,, PositionGame g) = _openPosition(GOOD, BAD);
        uint256[2] memory gasOf; // [defender, challenger]
        uint256[2] memory txs;
        while (true) {
            GameView memory v = g.gameState();
            if (v.hi - v.lo == 1) break;
            uint256 side = v.defenderToMove ? 0 : 1;
            (bool agree, bytes32 mid) = _nextMove(g, v.defenderToMove ? truth : liar);
            _cool(address(g));
            vm.prank(v.defenderToMove ? operator : challenger);
            uint256 before = gasleft();
            g.move(agree, mid);
            gasOf[side] += before - gasleft();
            txs[side]++;
        }
        uint256 moves = txs[0] + txs[1];
        assertLe(moves, 8, "ceil(log2 66) + 1 = 8 moves");
        uint256 phase1 = gasOf[0] + gasOf[1];
        (address first, bytes memory firstState, address second, bytes memory secondState) = _claims(g);
        uint256[2] memory claimGas;
        _cool(address(g));
        vm.prank(first);
        uint256 b0 = gasleft();
        g.claimTransition(firstState);
        claimGas[0] = b0 - gasleft();
        _cool(address(g));
        vm.prank(second);
        b0 = gasleft();
        g.claimTransition(secondState);
        claimGas[1] = b0 - gasleft();
        assertTrue(address(g.transitionGame()) != address(0));
        console2.log("N = 66 phase 1: moves defender / challenger", txs[0], txs[1]);
        console2.log("N = 66 phase 1: execution gas defender / challenger", gasOf[0], gasOf[1]);
        console2.log("N = 66 phase 1: total execution gas", phase1);
        console2.log("claims: first / second (creates the phase-2 game)", claimGas[0], claimGas[1]);
    }
}
