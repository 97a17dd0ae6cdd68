// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIOracle} from "../src/AIOracle.sol";
import {AIOracleCallbackReceiver} from "../src/AIOracleCallbackReceiver.sol";
import {BaseTest} from "./utils/BaseTest.sol";
import {
    GasEaterReceiver,
    RecordingReceiver,
    ReentrantReceiver,
    ReturnBombReceiver,
    RevertingReceiver
} from "./utils/Receivers.sol";

/// @notice Receivers that misbehave cannot block finality, steal fees, or run twice.
contract AdversarialReceiverTest is BaseTest {
    function _serve(address cb) internal returns (uint256 id) {
        id = _requestTo(cb);
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
    }

    /// @dev Finalizes `id` (served to `cb`) as the finalizer; returns the gas the call used.
    function _finalizeGasUsed(uint256 id, address cb) internal returns (uint256 used) {
        vm.prank(finalizer);
        uint256 g = gasleft();
        oracle.finalize(id, keccak256(INPUT), cb, CB_DATA, OUTPUT);
        used = g - gasleft();
    }

    function _assertFinalPaid(uint256 id, AIOracle.CallbackStatus want) internal view {
        assertTrue(oracle.isFinalized(id));
        AIOracle.Request memory r = oracle.getRequest(id);
        assertEq(uint8(r.callbackStatus), uint8(want));
        assertEq(r.callbackAttempts, 1);
        assertEq(oracle.balanceOf(finalizer, address(0)), GAS_LIMIT * GAS_PRICE_FLOOR, "finalizer paid");
        assertGt(oracle.balanceOf(operator, address(0)), 0, "operator paid");
        assertEq(oracle.getOperator(operator).locked, 0);
    }

    function test_finalize_revertingReceiver_recordsFailure() public {
        RevertingReceiver bad = new RevertingReceiver(oracle);
        uint256 id = _serve(address(bad));
        vm.expectEmit(address(oracle));
        emit AIOracle.CallbackDispatched(
            id, 1, false, abi.encodeWithSelector(RevertingReceiver.Nope.selector, id)
        );
        _finalize(id, address(bad));
        _assertFinalPaid(id, AIOracle.CallbackStatus.FAILED);
    }

    function test_finalize_gasEater_boundedByGasLimit() public {
        GasEaterReceiver eater = new GasEaterReceiver(oracle);
        uint256 id = _serve(address(eater));
        uint256 used = _finalizeGasUsed(id, address(eater));
        _assertFinalPaid(id, AIOracle.CallbackStatus.FAILED);
        assertLt(used, GAS_LIMIT + 150_000, "the eater only burned its own gas limit");
    }

    function test_finalize_returnBombOnRevert_bounded() public {
        ReturnBombReceiver bomb = new ReturnBombReceiver(oracle, true);
        uint256 id = _serve(address(bomb));
        uint256 used = _finalizeGasUsed(id, address(bomb));
        _assertFinalPaid(id, AIOracle.CallbackStatus.FAILED);
        // copying 1 MiB of returndata would cost millions of gas in memory expansion
        assertLt(used, GAS_LIMIT + 150_000, "returndata was not copied");
    }

    function test_finalize_returnBombOnSuccess_notCopied() public {
        ReturnBombReceiver bomb = new ReturnBombReceiver(oracle, false);
        uint256 id = _serve(address(bomb));
        uint256 used = _finalizeGasUsed(id, address(bomb));
        AIOracle.Request memory r = oracle.getRequest(id);
        // 1 MiB of memory costs more than the gas limit, so the callee runs out of gas: a failure, but a
        // bounded one.
        assertTrue(oracle.isFinalized(id));
        assertEq(r.callbackAttempts, 1);
        assertLt(used, GAS_LIMIT + 150_000);
    }

    function test_finalize_reentrantReceiver_blocked() public {
        ReentrantReceiver re = new ReentrantReceiver(oracle);
        uint256 id = _serve(address(re));
        // the receiver tries to finalize the same request again from inside its callback
        re.setFinalizeData(
            abi.encodeCall(AIOracle.finalize, (id, keccak256(INPUT), address(re), CB_DATA, OUTPUT))
        );
        _finalize(id, address(re));
        assertTrue(re.attempted());
        assertFalse(re.reentered(), "re-entry must fail");
        assertEq(bytes4(re.failure()), bytes4(keccak256("ReentrancyGuardReentrantCall()")));
        _assertFinalPaid(id, AIOracle.CallbackStatus.SUCCEEDED);
    }

    function test_finalize_reentrantWithdraw_blocked() public {
        ReentrantReceiver re = new ReentrantReceiver(oracle);
        uint256 id = _serve(address(re));
        re.setFinalizeData(abi.encodeCall(AIOracle.withdraw, (address(0))));
        _finalize(id, address(re));
        assertFalse(re.reentered());
        assertEq(address(re).balance, 0);
    }

    function test_RevertIf_callbackNotFromOracle() public {
        vm.expectRevert(
            abi.encodeWithSelector(AIOracleCallbackReceiver.UnauthorizedCallbackSource.selector, oracle, user)
        );
        vm.prank(user);
        receiver.aiOracleCallback(1, "forged", "");
    }

    function test_finalize_eoaCallback_succeeds() public {
        address eoa = makeAddr("eoa");
        uint256 id = _serve(eoa);
        _finalize(id, eoa);
        _assertFinalPaid(id, AIOracle.CallbackStatus.SUCCEEDED);
    }

    // ------------------------------------------------------------------- retries

    function test_retryCallback_succeeds() public {
        RevertingReceiver bad = new RevertingReceiver(oracle);
        uint256 id = _serve(address(bad));
        _finalize(id, address(bad));
        bad.setShouldRevert(false);
        vm.expectEmit(address(oracle));
        emit AIOracle.CallbackDispatched(id, 2, true, "");
        vm.prank(user);
        oracle.retryCallback(id, keccak256(INPUT), address(bad), CB_DATA, OUTPUT);
        AIOracle.Request memory r = oracle.getRequest(id);
        assertEq(uint8(r.callbackStatus), uint8(AIOracle.CallbackStatus.SUCCEEDED));
        assertEq(r.callbackAttempts, 2);
        assertEq(bad.calls(), 1);
        // a succeeded callback never runs again
        vm.expectRevert(AIOracle.CallbackNotRetryable.selector);
        vm.prank(user);
        oracle.retryCallback(id, keccak256(INPUT), address(bad), CB_DATA, OUTPUT);
    }

    /// A failed error callback (the error outcome of a rejected request) is retried the same way.
    function test_retryCallback_errorOutcome_succeeds() public {
        RevertingReceiver bad = new RevertingReceiver(oracle);
        uint256 id = _requestTo(address(bad));
        vm.prank(operator);
        oracle.submit(id, "", "");
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectEmit(address(oracle));
        emit AIOracle.CallbackDispatched(
            id, 1, false, abi.encodeWithSelector(RevertingReceiver.Nope.selector, id)
        );
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), address(bad), CB_DATA, "");
        bad.setShouldRevert(false);
        vm.prank(user);
        oracle.retryCallback(id, keccak256(INPUT), address(bad), CB_DATA, "");
        assertEq(bad.calls(), 1);
        assertEq(uint8(oracle.getRequest(id).callbackStatus), uint8(AIOracle.CallbackStatus.SUCCEEDED));
    }

    function test_RevertIf_retryCallbackBeyondLimit() public {
        RevertingReceiver bad = new RevertingReceiver(oracle);
        uint256 id = _serve(address(bad));
        _finalize(id, address(bad));
        vm.startPrank(user);
        for (uint256 i; i < 3; ++i) {
            oracle.retryCallback(id, keccak256(INPUT), address(bad), CB_DATA, OUTPUT);
        }
        assertEq(oracle.getRequest(id).callbackAttempts, 4);
        vm.expectRevert(AIOracle.CallbackNotRetryable.selector);
        oracle.retryCallback(id, keccak256(INPUT), address(bad), CB_DATA, OUTPUT);
        vm.stopPrank();
    }

    function test_RevertIf_retryCallbackNotRequester() public {
        RevertingReceiver bad = new RevertingReceiver(oracle);
        uint256 id = _serve(address(bad));
        _finalize(id, address(bad));
        vm.expectRevert(AIOracle.NotRequester.selector);
        vm.prank(operator);
        oracle.retryCallback(id, keccak256(INPUT), address(bad), CB_DATA, OUTPUT);
    }

    function test_RevertIf_retryCallbackSucceeded() public {
        uint256 id = _serve(address(receiver));
        _finalize(id, address(receiver));
        vm.expectRevert(AIOracle.CallbackNotRetryable.selector);
        vm.prank(user);
        oracle.retryCallback(id, keccak256(INPUT), address(receiver), CB_DATA, OUTPUT);
        assertEq(receiver.calls(), 1);
    }

    function test_RevertIf_retryCallbackNotFinal() public {
        uint256 id = _serve(address(receiver));
        vm.expectRevert(AIOracle.CallbackNotRetryable.selector);
        vm.prank(user);
        oracle.retryCallback(id, keccak256(INPUT), address(receiver), CB_DATA, OUTPUT);
    }

    function test_RevertIf_retryCallbackWrongPayloadOrOutput() public {
        RevertingReceiver bad = new RevertingReceiver(oracle);
        uint256 id = _serve(address(bad));
        _finalize(id, address(bad));
        vm.startPrank(user);
        vm.expectRevert(AIOracle.PayloadMismatch.selector);
        oracle.retryCallback(id, keccak256(INPUT), address(receiver), CB_DATA, OUTPUT);
        vm.expectRevert(AIOracle.OutputMismatch.selector);
        oracle.retryCallback(id, keccak256(INPUT), address(bad), CB_DATA, "forged");
        vm.stopPrank();
    }

    function test_RevertIf_retryCallbackTooLittleGas() public {
        RevertingReceiver bad = new RevertingReceiver(oracle);
        uint256 id = _serve(address(bad));
        _finalize(id, address(bad));
        vm.expectRevert(AIOracle.InsufficientGasForCallback.selector);
        vm.prank(user);
        oracle.retryCallback{gas: GAS_LIMIT}(id, keccak256(INPUT), address(bad), CB_DATA, OUTPUT);
    }
}
