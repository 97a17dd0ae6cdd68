// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {GameView} from "../../src/dispute/Bisection.sol";
import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {GameStatus} from "../../src/interfaces/IDisputeGame.sol";
import {DisputeBase, SyntheticTrace} from "./DisputeBase.sol";
import {console2} from "forge-std/console2.sol";

/// @notice Gas of each kind of move (the metered part of each test is the one call; .gas-snapshot keeps them),
///         and a whole game at the depth that covers 10^10 steps (2^34), with the gas per side. Every call is
///         measured with the touched contracts cooled (`vm.cool`), as in a transaction of its own; the 21,000
///         base gas and calldata of a transaction are not included.
contract DisputeGasTest is DisputeBase {
    uint64 internal constant LEN = 300;
    bytes internal goodState;
    bytes internal badState;
    SyntheticTrace internal truth;
    SyntheticTrace internal liar;

    function setUp() public override {
        super.setUp();
        goodState = _finalState(GOOD, LEN, 0, 1);
        badState = _finalState(BAD, LEN, 0, 1);
        truth = _truth(LEN, goodState);
        liar = _liar(truth, 100, LEN, badState);
    }

    function _ready() internal returns (DisputeGame g) {
        (,, g) = _open(GOOD, goodState, BAD, badState);
    }

    /// @dev Cool every contract a game call touches (and the game, if any).
    function _cool(address game) internal {
        vm.cool(address(oracle));
        vm.cool(address(gameFactory));
        vm.cool(address(gameFactory.IMPLEMENTATION()));
        vm.cool(address(preimages));
        vm.cool(address(verifier));
        vm.cool(address(verifier.truth()));
        if (game != address(0)) vm.cool(game);
    }

    function test_gas_challengeCreatesGame() public {
        vm.pauseGasMetering();
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, GOOD, goodState);
        vm.deal(challenger, CHALLENGE_BOND);
        bytes memory proof = badState;
        _cool(address(0));
        vm.prank(challenger);
        vm.resumeGasMetering();
        oracle.challenge{value: CHALLENGE_BOND}(
            id, keccak256(INPUT), address(receiver), keccak256(CB_DATA), BAD, proof
        );
    }

    /// @notice `submit` with the 245-byte final state bound through the real factory (a one-phase model):
    ///         the call's execution gas stays within 110k (binding the claim costs ~11k over the mock's).
    function test_gas_submitBoundFinalState() public {
        vm.pauseGasMetering();
        uint256 id = _request();
        bytes memory proof = goodState;
        _cool(address(0));
        vm.prank(operator);
        vm.resumeGasMetering();
        oracle.submit(id, GOOD, proof);
        vm.pauseGasMetering();
        uint256 used = vm.lastCallGas().gasTotalUsed;
        console2.log("submit, one-phase binding", used);
        assertLe(used, 110_000);
        vm.resumeGasMetering();
    }

    function test_gas_firstMove() public {
        vm.pauseGasMetering();
        DisputeGame g = _ready();
        bytes32 mid = liar.at(512);
        _cool(address(g));
        vm.prank(challenger);
        vm.resumeGasMetering();
        g.move(false, mid);
    }

    function test_gas_verdictMove() public {
        vm.pauseGasMetering();
        DisputeGame g = _ready();
        _moveFrom(g, truth, liar);
        _moveFrom(g, truth, liar);
        (bool agree, bytes32 mid) = _nextMove(g, liar);
        _cool(address(g));
        vm.prank(challenger);
        vm.resumeGasMetering();
        g.move(agree, mid);
    }

    function test_gas_step() public {
        vm.pauseGasMetering();
        DisputeGame g = _ready();
        _bisectToOne(g, truth, liar);
        bytes memory s = abi.encode(g.gameState().lo);
        _cool(address(g));
        vm.resumeGasMetering();
        g.step(s, "");
    }

    function test_gas_claimTimeout() public {
        vm.pauseGasMetering();
        DisputeGame g = _ready();
        vm.warp(block.timestamp + CLOCK + 1);
        _cool(address(g));
        vm.resumeGasMetering();
        g.claimTimeout();
    }

    /// @notice A whole game over a trace bound of 2^34 >= 10^10 steps, the liar departing near the end of a
    ///         10^10-step trace: counts the transactions and sums the execution gas of each side's calls.
    function test_gas_wholeGameDepth34() public {
        gameFactory = _newFactory(34);
        uint64 len = 10_000_000_000;
        bytes memory honest = _finalState(GOOD, len, 0, 1);
        bytes memory lying = _finalState(BAD, len, 0, 1);
        truth = _truth(len, honest);
        liar = _liar(truth, len - 1000, len, lying);
        (,, DisputeGame g) = _open(GOOD, honest, BAD, lying);
        uint256[2] memory gasOf; // [defender, challenger]
        uint256[2] memory txs;
        uint256 before;
        while (g.status() == GameStatus.IN_PROGRESS) {
            GameView memory v = g.gameState();
            uint256 side = v.defenderToMove ? 0 : 1;
            bytes memory stepState = abi.encode(v.lo);
            (bool agree, bytes32 mid) = _nextMove(g, v.defenderToMove ? truth : liar);
            _cool(address(g));
            vm.prank(v.defenderToMove ? operator : challenger);
            before = gasleft();
            if (v.hi - v.lo == 1) g.step(stepState, "");
            else g.move(agree, mid);
            gasOf[side] += before - gasleft();
            txs[side]++;
        }
        assertEq(uint8(g.status()), uint8(GameStatus.DEFENDER_WINS));
        assertEq(txs[0] + txs[1], 36, "35 moves + 1 step");
        console2.log("depth 34: transactions defender / challenger", txs[0], txs[1]);
        console2.log("depth 34: execution gas defender / challenger", gasOf[0], gasOf[1]);
    }
}
