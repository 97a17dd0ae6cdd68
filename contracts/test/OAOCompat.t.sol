// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {AIOracle} from "../src/AIOracle.sol";
import {AIOracleCallbackReceiver} from "../src/AIOracleCallbackReceiver.sol";
import {IAIOracle} from "../src/interfaces/IAIOracle.sol";
import {BaseTest} from "./utils/BaseTest.sol";
import {OraStylePrompt} from "./utils/OraStylePrompt.sol";

/// @notice Pins the ORA OAO surface by its canonical signature strings: an OAO dapp finds the same
///         selectors and event topics here, so porting it is changing the oracle address.
contract OAOCompatTest is Test {
    function test_selectors_matchOAO() public pure {
        assertEq(
            IAIOracle.requestCallback.selector,
            bytes4(keccak256("requestCallback(uint256,bytes,address,uint64,bytes)"))
        );
        assertEq(IAIOracle.estimateFee.selector, bytes4(keccak256("estimateFee(uint256,uint256)")));
        assertEq(IAIOracle.isFinalized.selector, bytes4(keccak256("isFinalized(uint256)")));
        assertEq(
            AIOracleCallbackReceiver.aiOracleCallback.selector,
            bytes4(keccak256("aiOracleCallback(uint256,bytes,bytes)"))
        );
        // ORA's error path: the enum is a uint8 in the ABI
        assertEq(
            AIOracleCallbackReceiver.aiOracleCallbackError.selector,
            bytes4(keccak256("aiOracleCallbackError(uint256,uint8,bytes,bytes)"))
        );
        assertEq(AIOracleCallbackReceiver.isFinalized.selector, bytes4(keccak256("isFinalized(uint256)")));
        assertEq(uint8(AIOracleCallbackReceiver.AIOracleError.InvalidInput), 0);
        assertEq(uint8(AIOracleCallbackReceiver.AIOracleError.InvalidBatchSize), 1);
        // the concrete oracle implements exactly these (it is an IAIOracle; `requestCallback` is overloaded
        // there with a `maxModelFee` bound, the ORA signature above is the interface's)
        assertEq(AIOracle.estimateFee.selector, IAIOracle.estimateFee.selector);
        assertEq(AIOracle.isFinalized.selector, IAIOracle.isFinalized.selector);
    }

    function test_eventTopics_matchOAO() public pure {
        assertEq(
            IAIOracle.AICallbackRequest.selector,
            keccak256("AICallbackRequest(address,uint256,uint256,bytes,address,uint64,bytes)")
        );
        assertEq(
            IAIOracle.AICallbackResult.selector, keccak256("AICallbackResult(address,uint256,address,bytes)")
        );
        assertEq(
            AIOracleCallbackReceiver.AICallbackError.selector,
            keccak256("AICallbackError(uint256,uint8,bytes,bytes)")
        );
    }
}

/// @notice A receiver written in the shape of ORA's example Prompt (test/utils/OraStylePrompt.sol) works with
///         this oracle unchanged: it pays by forwarding `msg.value`, gets its answers through
///         `aiOracleCallback`, a rejected request through `aiOracleCallbackError`, and asks `isFinalized`.
contract OraStylePromptTest is BaseTest {
    OraStylePrompt internal ora;

    function setUp() public override {
        super.setUp();
        ora = new OraStylePrompt(oracle);
    }

    function _ask(string memory prompt) internal returns (uint256 id) {
        uint256 fee = ora.estimateFee(modelId);
        vm.prank(user);
        id = ora.calculateAIResult{value: fee}(modelId, prompt);
    }

    function _submit(uint256 id, bytes memory output) internal {
        vm.prank(operator);
        oracle.submit(id, output, "");
        vm.warp(block.timestamp + WINDOW + 1);
        assertFalse(ora.isFinalized(id));
    }

    function _finalize(uint256 id, string memory prompt, bytes memory output) internal {
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(bytes(prompt)), address(ora), "", output);
        assertTrue(ora.isFinalized(id), "isFinalized on the receiver asks the oracle");
    }

    function test_oraStylePrompt_successCallback_succeeds() public {
        uint256 id = _ask("What is 2+2?");
        _submit(id, "4\n");
        vm.expectEmit(address(ora));
        emit OraStylePrompt.promptsUpdated(id, modelId, "What is 2+2?", "4\n", "");
        _finalize(id, "What is 2+2?", "4\n");
        assertEq(ora.getAIResult(modelId, "What is 2+2?"), "4\n");
        assertFalse(ora.failed(id));
        assertEq(uint8(oracle.getRequest(id).callbackStatus), uint8(AIOracle.CallbackStatus.SUCCEEDED));
    }

    function test_oraStylePrompt_errorCallback_succeeds() public {
        uint256 id = _ask("a prompt the model rejects");
        _submit(id, "");
        vm.expectEmit(address(ora));
        emit AIOracleCallbackReceiver.AICallbackError(
            id, AIOracleCallbackReceiver.AIOracleError.InvalidInput, "", ""
        );
        _finalize(id, "a prompt the model rejects", "");
        assertTrue(ora.failed(id));
        assertEq(ora.getAIResult(modelId, "a prompt the model rejects"), "");
        assertEq(uint8(oracle.getRequest(id).callbackStatus), uint8(AIOracle.CallbackStatus.SUCCEEDED));
    }
}
