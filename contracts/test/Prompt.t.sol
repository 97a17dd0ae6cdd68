// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {AIOracle} from "../src/AIOracle.sol";
import {AIOracleCallbackReceiver} from "../src/AIOracleCallbackReceiver.sol";
import {Prompt} from "../src/Prompt.sol";
import {BaseTest} from "./utils/BaseTest.sol";

contract PromptTest is BaseTest {
    Prompt internal prompt;
    string internal constant PROMPT = "What is 2+2?";

    function setUp() public override {
        super.setUp();
        prompt = new Prompt(oracle, owner);
    }

    function _ask() internal returns (uint256 id) {
        uint256 fee = prompt.estimateFee(modelId);
        vm.prank(user);
        id = prompt.calculateAIResult{value: fee}(modelId, PROMPT);
    }

    function _answer(uint256 id, bytes memory output) internal {
        vm.prank(operator);
        oracle.submit(id, output, "");
        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(bytes(PROMPT)), address(prompt), "", output);
    }

    function _refundable() internal returns (uint256 id, uint256 paid) {
        id = _ask();
        AIOracle.Request memory r = oracle.getRequest(id);
        paid = uint256(r.modelFee) + r.gasFee;
        vm.warp(r.deadline + 1);
    }

    function test_estimateFee_succeeds() public view {
        assertEq(
            prompt.estimateFee(modelId), oracle.estimateFee(modelId, prompt.DEFAULT_CALLBACK_GAS_LIMIT())
        );
    }

    function test_calculateAIResult_succeeds() public {
        uint256 fee = prompt.estimateFee(modelId);
        vm.expectEmit(address(prompt));
        emit Prompt.promptRequest(1, user, modelId, PROMPT);
        vm.prank(user);
        uint256 id = prompt.calculateAIResult{value: fee}(modelId, PROMPT);
        assertEq(id, 1);
        (address sender, uint256 mId, bytes memory input) = prompt.requests(id);
        assertEq(sender, user);
        assertEq(mId, modelId);
        assertEq(input, bytes(PROMPT));
        AIOracle.Request memory r = oracle.getRequest(id);
        assertEq(r.requester, address(prompt));
        assertEq(r.gasLimit, prompt.DEFAULT_CALLBACK_GAS_LIMIT());
    }

    function test_calculateAIResult_refundsExcess() public {
        uint256 fee = prompt.estimateFee(modelId);
        uint256 before = user.balance;
        vm.prank(user);
        prompt.calculateAIResult{value: fee + 1 ether}(modelId, PROMPT);
        assertEq(user.balance, before - fee);
        assertEq(address(prompt).balance, 0);
    }

    function test_RevertIf_calculateAIResultUnderpaid() public {
        uint256 fee = prompt.estimateFee(modelId);
        vm.expectRevert(abi.encodeWithSelector(Prompt.InsufficientFee.selector, fee - 1, fee));
        vm.prank(user);
        prompt.calculateAIResult{value: fee - 1}(modelId, PROMPT);
    }

    function test_RevertIf_calculateAIResultUnknownModel() public {
        vm.expectRevert(abi.encodeWithSelector(AIOracle.UnknownModel.selector, 9));
        vm.prank(user);
        prompt.calculateAIResult{value: 1 ether}(9, PROMPT);
    }

    function test_getAIResult_succeeds() public {
        uint256 id = _ask();
        assertEq(prompt.getAIResult(modelId, PROMPT), "");
        vm.prank(operator);
        oracle.submit(id, "4", "");
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectEmit(address(prompt));
        emit Prompt.promptsUpdated(id, modelId, PROMPT, "4", "");
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(bytes(PROMPT)), address(prompt), "", "4");
        assertEq(prompt.getAIResult(modelId, PROMPT), "4");
        assertEq(uint8(oracle.getRequest(id).callbackStatus), uint8(AIOracle.CallbackStatus.SUCCEEDED));
    }

    function test_getAIResult_longOutputFitsDefaultGas() public {
        uint256 id = _ask();
        bytes memory out = new bytes(1024);
        for (uint256 i; i < out.length; ++i) {
            out[i] = bytes1(uint8(97 + i % 26));
        }
        _answer(id, out);
        assertEq(bytes(prompt.getAIResult(modelId, PROMPT)), out);
    }

    function test_RevertIf_aiOracleCallbackNotOracle() public {
        vm.expectRevert(
            abi.encodeWithSelector(AIOracleCallbackReceiver.UnauthorizedCallbackSource.selector, oracle, user)
        );
        vm.prank(user);
        prompt.aiOracleCallback(1, "x", "");
    }

    function test_RevertIf_aiOracleCallbackUnknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(Prompt.UnknownRequest.selector, 5));
        vm.prank(address(oracle));
        prompt.aiOracleCallback(5, "x", "");
    }

    /// A request the model rejects: the error outcome reaches Prompt's error path, which records it and
    /// leaves the stored answer alone.
    function test_aiOracleCallbackError_recordsRejection_succeeds() public {
        uint256 id = _ask();
        vm.prank(operator);
        oracle.submit(id, "", "");
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectEmit(address(prompt));
        emit Prompt.promptRejected(id, modelId, PROMPT, AIOracleCallbackReceiver.AIOracleError.InvalidInput);
        vm.expectEmit(address(prompt));
        emit AIOracleCallbackReceiver.AICallbackError(
            id, AIOracleCallbackReceiver.AIOracleError.InvalidInput, "", ""
        );
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(bytes(PROMPT)), address(prompt), "", "");
        assertTrue(prompt.rejected(id));
        assertEq(prompt.getAIResult(modelId, PROMPT), "");
        assertEq(uint8(oracle.getRequest(id).callbackStatus), uint8(AIOracle.CallbackStatus.SUCCEEDED));
    }

    function test_RevertIf_aiOracleCallbackErrorNotOracle() public {
        uint256 id = _ask();
        vm.expectRevert(
            abi.encodeWithSelector(AIOracleCallbackReceiver.UnauthorizedCallbackSource.selector, oracle, user)
        );
        vm.prank(user);
        prompt.aiOracleCallbackError(id, AIOracleCallbackReceiver.AIOracleError.InvalidInput, "", "");
    }

    /// The finding: the oracle refunds an unserved request to its requester, which is Prompt, where the ETH
    /// was stuck. The prompt's sender now gets it back (Prompt refunds it on the oracle if nobody did, pulls
    /// its credit and pays the sender exactly that request's fees).
    function test_claimRefund_refundCreditedToPromptReachesSender() public {
        (uint256 id, uint256 paid) = _refundable();
        uint256 before = user.balance;
        vm.expectEmit(address(prompt));
        emit Prompt.RefundPaid(id, user, paid);
        vm.prank(user);
        prompt.claimRefund(id);
        assertEq(user.balance, before + paid);
        assertTrue(prompt.refunded(id));
        assertEq(uint8(oracle.getRequest(id).status), uint8(AIOracle.RequestStatus.REFUNDED));
        assertEq(address(prompt).balance, 0);
        assertEq(oracle.balanceOf(address(prompt), address(0)), 0);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(Prompt.AlreadyRefunded.selector, id));
        prompt.claimRefund(id);
    }

    /// Someone else refunded it on the oracle first, and another prompt's refund is pending: each sender
    /// gets exactly its own request's fees.
    function test_claimRefund_afterOracleRefund_paysEachSenderItsOwn() public {
        address other = makeAddr("other");
        vm.deal(other, 1 ether);
        uint256 a = _ask();
        uint256 fee = prompt.estimateFee(modelId);
        vm.prank(other);
        uint256 b = prompt.calculateAIResult{value: fee}(modelId, "another prompt");
        vm.warp(oracle.getRequest(b).deadline + 1);
        oracle.refund(a);
        oracle.refund(b);
        uint256 beforeOther = other.balance;
        vm.prank(other);
        prompt.claimRefund(b);
        assertEq(other.balance, beforeOther + fee);
        uint256 beforeUser = user.balance;
        vm.prank(user);
        prompt.claimRefund(a);
        assertEq(user.balance, beforeUser + fee);
        assertEq(address(prompt).balance, 0);
    }

    function test_RevertIf_claimRefundNotSenderServedOrEarly() public {
        (uint256 id,) = _refundable();
        vm.prank(finalizer);
        vm.expectRevert(abi.encodeWithSelector(Prompt.NotSender.selector, id));
        prompt.claimRefund(id);
        uint256 served = _ask();
        vm.prank(user);
        vm.expectRevert(AIOracle.RequestNotExpired.selector);
        prompt.claimRefund(served);
        vm.prank(operator);
        oracle.submit(served, "4", "");
        vm.warp(oracle.getRequest(served).deadline + 1);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(Prompt.NotRefundable.selector, served));
        prompt.claimRefund(served);
    }

    function test_RevertIf_receiveNotFromOracle() public {
        vm.prank(user);
        (bool ok,) = address(prompt).call{value: 1}("");
        assertFalse(ok);
    }

    /// The finding: only a request's requester may retry its failed callback, and Prompt is the requester
    /// of every prompt, so a failed Prompt callback could never be retried. The sender retries through
    /// Prompt now. (The first callback fails transiently: the receiver is made to revert for that call.)
    function test_retryCallback_throughPrompt_succeeds() public {
        uint256 id = _ask();
        vm.mockCallRevert(address(prompt), abi.encodeWithSelector(Prompt.aiOracleCallback.selector), "down");
        _answer(id, "4");
        vm.clearMockedCalls();
        assertEq(uint8(oracle.getRequest(id).callbackStatus), uint8(AIOracle.CallbackStatus.FAILED));
        assertEq(prompt.getAIResult(modelId, PROMPT), "");
        vm.prank(user);
        vm.expectRevert(AIOracle.NotRequester.selector);
        oracle.retryCallback(id, keccak256(bytes(PROMPT)), address(prompt), "", "4");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Prompt.NotSender.selector, id));
        prompt.retryCallback(id, "4");
        vm.prank(user);
        vm.expectRevert(AIOracle.OutputMismatch.selector);
        prompt.retryCallback(id, "5");
        vm.prank(user);
        prompt.retryCallback(id, "4");
        assertEq(prompt.getAIResult(modelId, PROMPT), "4");
        assertEq(uint8(oracle.getRequest(id).callbackStatus), uint8(AIOracle.CallbackStatus.SUCCEEDED));
    }

    function test_setCallbackGasLimit_succeeds() public {
        vm.expectEmit(address(prompt));
        emit Prompt.CallbackGasLimitUpdated(modelId, 123_456);
        vm.prank(owner);
        prompt.setCallbackGasLimit(modelId, 123_456);
        assertEq(prompt.gasLimitOf(modelId), 123_456);
        assertEq(prompt.estimateFee(modelId), oracle.estimateFee(modelId, 123_456));
        vm.prank(owner);
        prompt.setCallbackGasLimit(modelId, 0);
        assertEq(prompt.gasLimitOf(modelId), prompt.DEFAULT_CALLBACK_GAS_LIMIT());
    }

    function test_RevertIf_setCallbackGasLimitNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, user));
        vm.prank(user);
        prompt.setCallbackGasLimit(modelId, 1);
    }
}
