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
