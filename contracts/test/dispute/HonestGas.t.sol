// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIOracle} from "../../src/AIOracle.sol";
import {GameView} from "../../src/dispute/Bisection.sol";
import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {DisputeGameFactory} from "../../src/dispute/DisputeGameFactory.sol";
import {PositionGame} from "../../src/dispute/PositionGame.sol";
import {GameStatus} from "../../src/interfaces/IDisputeGame.sol";
import {ITrace, SyntheticTrace} from "./DisputeBase.sol";
import {PositionBase, PositionChain} from "./PositionBase.sol";
import {console2} from "forge-std/console2.sol";

/// @notice What a whole dispute costs the honest challenger at the devnet's game parameters (one-phase: trace
///         bound 2^32; two-phase: N = 66, i.e. 64 positions, and transition bound 2^28): every transaction it
///         sends, from its challenge to its withdrawal, as the gas of a transaction (execution measured with the
///         touched contracts cold, plus 21,000 and calldata at the EIP-7623 floor when higher). It plays the
///         challenger's side, which sends the opening move, and here also the last verdict and so the step
///         (one-phase) and the claim that creates the phase-2 game (two-phase): the expensive roles. The final
///         step is the synthetic verifier's; README's worst case replaces it by the real `RISCV.step` reading
///         the largest input (`DisputeRealStepTest`). The figures are in contracts/README.md.
contract HonestGasTest is PositionBase {
    uint256 internal honestGas;
    uint256 internal honestTxs;

    /// @dev `challenger` (the honest side here) sends `data` to `target`; adds the transaction's gas.
    function _send(address target, uint256 value, bytes memory data) internal returns (uint256 txGas) {
        vm.cool(address(oracle));
        vm.cool(address(gameFactory));
        vm.cool(address(gameFactory.IMPLEMENTATION()));
        vm.cool(address(gameFactory.TRANSITION_IMPLEMENTATION()));
        vm.cool(address(gameFactory.POSITION_IMPLEMENTATION()));
        vm.cool(address(preimages));
        vm.cool(address(verifier));
        vm.cool(address(receiver));
        vm.cool(target);
        vm.deal(challenger, challenger.balance + value);
        vm.prank(challenger);
        uint256 before = gasleft();
        (bool ok,) = target.call{value: value}(data);
        uint256 used = before - gasleft();
        assertTrue(ok, "honest call");
        txGas = _txGas(data, used);
        honestGas += txGas;
        honestTxs++;
    }

    /// @dev Plays `g` to its end: the honest side (the challenger) from `truth`, the operator from `liar`.
    function _playVm(DisputeGame g, ITrace truth, ITrace liar, bool honestDefends)
        internal
        returns (uint256 stepGas)
    {
        while (g.status() == GameStatus.IN_PROGRESS) {
            GameView memory v = g.gameState();
            bool honestToMove = v.defenderToMove == honestDefends;
            if (v.hi - v.lo == 1) {
                assertTrue(honestToMove, "the honest side sends the step");
                stepGas =
                    _send(address(g), 0, abi.encodeCall(DisputeGame.step, (abi.encode(v.lo), bytes(""))));
            } else if (honestToMove) {
                (bool agree, bytes32 mid) = _nextMove(g, truth);
                _send(address(g), 0, abi.encodeCall(DisputeGame.move, (agree, mid)));
            } else {
                (bool agree, bytes32 mid) = _nextMove(g, liar);
                vm.prank(honestDefends ? g.params().challenger : g.params().submitter);
                g.move(agree, mid);
            }
        }
        assertEq(
            uint8(g.status()), uint8(honestDefends ? GameStatus.DEFENDER_WINS : GameStatus.CHALLENGER_WINS)
        );
    }

    /// @dev After the game: resolve, finalize (the honest side has a stake, so it may have to), claim, withdraw.
    function _settle(uint256 id, uint256 did) internal returns (uint256 after_) {
        uint256 before = honestGas;
        _send(address(oracle), 0, abi.encodeCall(AIOracle.resolveDispute, (did)));
        vm.warp(block.timestamp + WINDOW + 1);
        _send(
            address(oracle),
            0,
            abi.encodeCall(AIOracle.finalize, (id, keccak256(INPUT), address(receiver), CB_DATA, GOOD))
        );
        _send(address(oracle), 0, abi.encodeCall(AIOracle.claimReward, (did)));
        _send(address(oracle), 0, abi.encodeCall(AIOracle.withdraw, (address(0))));
        after_ = honestGas - before;
    }

    function test_gas_honestChallengerWholeGame_onePhaseDepth32() public {
        gameFactory = _newFactory(32);
        uint64 len = 428_900_000; // stories260K W8, 64 greedy positions (docs/dispute.md)
        bytes memory honestState = _finalState(GOOD, len, 0, 1);
        bytes memory lyingState = _finalState(BAD, len, 0, 1);
        SyntheticTrace truth = _truth(len, honestState);
        SyntheticTrace liar = _liar(truth, len - 1000, len, lyingState);
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, BAD, lyingState);
        uint256 challengeGas = _send(
            address(oracle),
            CHALLENGE_BOND,
            abi.encodeCall(
                AIOracle.challenge,
                (id, keccak256(INPUT), address(receiver), keccak256(CB_DATA), GOOD, honestState)
            )
        );
        uint256 did = oracle.disputeCount();
        DisputeGame g = DisputeGame(address(oracle.getDispute(did).game));
        uint256 beforeGame = honestGas;
        uint256 stepGas = _playVm(g, truth, liar, false);
        uint256 gameGas = honestGas - beforeGame;
        uint256 settleGas = _settle(id, did);
        assertEq(honestTxs, 1 + 17 + 1 + 4, "challenge, 17 moves, the step, resolve/finalize/claim/withdraw");
        console2.log("one-phase depth 32, honest challenger: transactions", honestTxs);
        console2.log("  challenge", challengeGas);
        console2.log("  17 moves and the synthetic step", gameGas);
        console2.log("  of which the synthetic step", stepGas);
        console2.log("  resolve, finalize, claimReward, withdraw", settleGas);
        console2.log("  total", honestGas);
    }

    function test_gas_honestChallengerWholeGame_twoPhaseN66Depth28() public {
        gameFactory = _newTwoPhaseFactoryDepth(SAMPLING, 28);
        PositionChain truth = _honestChain(SAMPLING);
        // lying only at s_66 (the output): 8 phase-1 moves, the operator's last verdict agrees with s_65, so it
        // claims first and the honest side's claim creates the phase-2 game (the output transition); the
        // operator owns s_66, so the honest side is the phase-2 challenger: it opens, makes the odd moves, gives
        // the last (28th) verdict and sends the step
        PositionChain liar = _lyingChain(truth, 66);
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, BAD, "");
        console2.log("two-phase N 66 depth 28, honest challenger");
        console2.log(
            "  challenge",
            _send(
                address(oracle),
                CHALLENGE_BOND,
                abi.encodeCall(
                    AIOracle.challenge,
                    (id, keccak256(INPUT), address(receiver), keccak256(CB_DATA), GOOD, "")
                )
            )
        );
        uint256 did = oracle.disputeCount();
        PositionGame g = PositionGame(address(oracle.getDispute(did).game));
        console2.log("  phase-1 moves", _phase1(g, truth, liar));
        _phase2(g, truth, liar);
        console2.log("  resolve, finalize, claimReward, withdraw", _settle(id, did));
        console2.log("  transactions", honestTxs);
        console2.log("  total", honestGas);
    }

    /// @dev Phase 1, the honest side the challenger; returns its gas.
    function _phase1(PositionGame g, PositionChain truth, PositionChain liar) internal returns (uint256) {
        uint256 before = honestGas;
        while (true) {
            GameView memory v = g.gameState();
            if (v.hi - v.lo == 1) break;
            if (!v.defenderToMove) {
                (bool agree, bytes32 mid) = _nextMove(g, truth);
                _send(address(g), 0, abi.encodeCall(PositionGame.move, (agree, mid)));
            } else {
                (bool agree, bytes32 mid) = _nextMove(g, liar);
                vm.prank(operator);
                g.move(agree, mid);
            }
        }
        return honestGas - before;
    }

    /// @dev Both claims (the honest side's second, creating the phase-2 game) and the phase-2 game over a
    ///      position transition of ~15.7M steps.
    function _phase2(PositionGame g, PositionChain truth, PositionChain liar) internal {
        GameView memory w = g.gameState();
        assertTrue(w.defenderToMove, "the operator gave the last verdict: the honest side claims second");
        bytes memory honestState = _transitionState(truth.at(w.hi), 3_390_000, 0, 1);
        bytes memory lyingState = _transitionState(liar.at(w.hi), 3_390_000, 0, 1);
        vm.prank(operator);
        g.claimTransition(lyingState);
        console2.log(
            "  the claim creating the phase-2 game",
            _send(address(g), 0, abi.encodeCall(PositionGame.claimTransition, (honestState)))
        );
        SyntheticTrace vmTruth = _truth(3_390_000, honestState);
        SyntheticTrace vmLiar = _liar(vmTruth, 3_380_000, 3_390_000, lyingState);
        uint256 before = honestGas;
        uint256 stepGas = _playVm(g.transitionGame(), vmTruth, vmLiar, !w.defenderOwnsHi);
        console2.log("  phase-2 moves and the synthetic step", honestGas - before);
        console2.log("  of which the synthetic step", stepGas);
    }

    /// @notice A dispute between two other parties that nobody finishes: the honest side (with a stake in the
    ///         request) claims its timeout and resolves it so the request can finalize. The worst of the two
    ///         outcomes for its cost: the challenger wins and replaces the result (slashing into the pot).
    function test_gas_cleanupOfAForeignDispute() public {
        gameFactory = _newFactory(32);
        bytes memory a = _finalState(GOOD, 1000, 0, 1);
        bytes memory b = _finalState(BAD, 1000, 0, 1);
        (, uint256 did, DisputeGame g) = _open(BAD, b, GOOD, a);
        vm.prank(challenger);
        g.move(false, keccak256("mid"));
        vm.warp(block.timestamp + CLOCK + 1);
        uint256 timeoutGas = _send(address(g), 0, abi.encodeCall(DisputeGame.claimTimeout, ()));
        uint256 resolveGas = _send(address(oracle), 0, abi.encodeCall(AIOracle.resolveDispute, (did)));
        console2.log("cleanup of a foreign dispute: claimTimeout / resolveDispute", timeoutGas, resolveGas);
    }

    function _newTwoPhaseFactoryDepth(bytes memory params, uint8 depth)
        internal
        returns (DisputeGameFactory f)
    {
        f = new DisputeGameFactory(owner, address(oracle), verifier, preimages, 32, depth, CLOCK);
        vm.prank(owner);
        f.setSamplingParams(ROOT, PROGRAM, params, true);
        _registerWith(f);
    }
}
