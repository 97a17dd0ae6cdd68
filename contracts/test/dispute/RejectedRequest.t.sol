// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIOracleCallbackReceiver} from "../../src/AIOracleCallbackReceiver.sol";
import {GameView} from "../../src/dispute/Bisection.sol";
import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {PositionGame} from "../../src/dispute/PositionGame.sol";
import {SyntheticTrace} from "./DisputeBase.sol";
import {PositionBase, PositionChain} from "./PositionBase.sol";

/// @notice A request the model rejects (prompt longer than the context, bad parameters, a model that does not
///         load) has a deterministic result: the guest exits 0 committing `keccak256("")`, the empty output.
///         An operator that posts a made-up answer instead is challenged with the empty output, loses, and
///         the receiver gets the error callback. Both game kinds, through the real AIOracle and factory.
contract RejectedRequestTest is PositionBase {
    bytes internal constant LIE = "Once upon a time there was no error.\n";

    function _expectErrorCallback(uint256 id) internal {
        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, "");
        assertEq(receiver.calls(), 0);
        assertEq(receiver.errorCalls(), 1);
        assertEq(receiver.lastRequestId(), id);
        assertEq(uint8(receiver.lastErrorCode()), uint8(AIOracleCallbackReceiver.AIOracleError.InvalidInput));
        assertEq(receiver.lastErrorMessage(), "");
    }

    /// One-phase: the honest final state exits 0 with the empty output; the liar's commits to its answer.
    function test_rejectedRequest_lyingAnswerLoses_onePhase() public {
        gameFactory = _newFactory(DEPTH);
        bytes memory honestState = _finalState("", 120, 0, 1);
        bytes memory lyingState = _finalState(LIE, 400, 0, 1);
        SyntheticTrace truth = _truth(120, honestState);
        (uint256 id, uint256 did, DisputeGame g) = _open(LIE, lyingState, "", honestState);
        _play(g, _liar(truth, 60, 400, lyingState), truth, false);
        oracle.resolveDispute(did);
        assertEq(oracle.getResult(id).outputHash, keccak256(""), "the error outcome replaced the answer");
        _expectErrorCallback(id);
        assertEq(oracle.claimReward(did), CHALLENGE_BOND + uint256(SUBMISSION_BOND) * REWARD_BPS / 10_000);
    }

    /// Two-phase: the claims are the output hashes, `keccak256("")` for the honest side.
    function test_rejectedRequest_lyingAnswerLoses_twoPhase() public {
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, LIE, "");
        uint256 did = _challenge(id, address(receiver), "", "");
        PositionGame g = PositionGame(address(oracle.getDispute(did).game));
        bytes memory params = SAMPLING;
        // the honest chain rejects at init: every commitment after s_1 is the error state, s_N the empty hash
        PositionChain truth = new PositionChain(
            _start(params), keccak256("rejected"), _n(params), keccak256(""), PositionChain(address(0)), 0
        );
        PositionChain liar =
            new PositionChain(truth.START(), keccak256("lie"), truth.N(), keccak256(LIE), truth, 1);
        _bisectToOne(g, liar, truth);
        GameView memory v = g.gameState();
        assertEq(v.lo, 0, "the lie starts at the init transition");
        bool honestOwns = !v.defenderOwnsHi;
        bytes memory honestState = _transitionState(truth.at(v.hi), 300, 0, 1);
        bytes memory lyingState = _transitionState(liar.at(v.hi), 300, 0, 1);
        SyntheticTrace vmTruth = _truth(300, honestState);
        SyntheticTrace vmLiar = _liar(vmTruth, 7, 300, lyingState);
        DisputeGame child =
            honestOwns ? _claimBoth(g, honestState, lyingState) : _claimBoth(g, lyingState, honestState);
        if (honestOwns) _play(child, vmTruth, vmLiar, false);
        else _play(child, vmLiar, vmTruth, false);
        oracle.resolveDispute(did);
        _expectErrorCallback(id);
    }
}
