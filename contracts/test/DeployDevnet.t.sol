// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {DeployDevnet} from "../script/DeployDevnet.s.sol";
import {AIOracle} from "../src/AIOracle.sol";
import {Prompt} from "../src/Prompt.sol";

contract DeployDevnetTest is Test {
    function test_run_succeeds() public {
        vm.setEnv("MODEL_ROOT", vm.toString(keccak256("root")));
        vm.setEnv("CHALLENGE_WINDOW", "5");
        DeployDevnet script = new DeployDevnet();
        (AIOracle oracle, Prompt prompt, uint256 modelId) = script.run();
        assertEq(modelId, 1);
        AIOracle.Model memory m = oracle.getModel(modelId);
        assertEq(m.modelRoot, keccak256("root"));
        assertEq(m.challengeWindow, 5);
        assertEq(address(prompt.aiOracle()), address(oracle));
        assertGt(prompt.estimateFee(modelId), 0.001 ether);
    }
}
