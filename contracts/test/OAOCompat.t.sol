// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {AIOracle} from "../src/AIOracle.sol";
import {AIOracleCallbackReceiver} from "../src/AIOracleCallbackReceiver.sol";
import {IAIOracle} from "../src/interfaces/IAIOracle.sol";

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
        // the concrete oracle implements exactly these
        assertEq(AIOracle.requestCallback.selector, IAIOracle.requestCallback.selector);
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
    }
}
