// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {DeployDevnet} from "../../script/DeployDevnet.s.sol";
import {AIOracle} from "../../src/AIOracle.sol";
import {Prompt} from "../../src/Prompt.sol";
import {DisputeGameFactory} from "../../src/dispute/DisputeGameFactory.sol";

/// @notice The devnet script sets a real dispute game factory with the model's sampling parameters.
contract DeployDevnetGameTest is Test {
    function test_run_setsGameFactory_succeeds() public {
        vm.setEnv("MODEL_ROOT", vm.toString(keccak256("root")));
        vm.setEnv("GAME_MAX_DEPTH", "30");
        vm.setEnv("GAME_TRANSITION_DEPTH", "25");
        DeployDevnet script = new DeployDevnet();
        (AIOracle oracle,, uint256 modelId) = script.run();
        DisputeGameFactory f = DisputeGameFactory(address(oracle.disputeGameFactory()));
        assertEq(f.AI_ORACLE(), address(oracle));
        assertEq(f.IMPLEMENTATION().MAX_DEPTH(), 30);
        assertEq(f.IMPLEMENTATION().CLOCK(), 120);
        AIOracle.Model memory m = oracle.getModel(modelId);
        assertEq(
            f.samplingParams(f.modelKey(m.modelRoot, m.programHash)),
            hex"0000004000000000000100000000000000000000"
        );
        assertFalse(f.twoPhase(f.modelKey(m.modelRoot, m.programHash)), "TWO_PHASE defaults to one-phase");
        assertEq(address(f.POSITION_IMPLEMENTATION().FACTORY()), address(f));
        assertEq(f.POSITION_IMPLEMENTATION().MAX_DEPTH(), 25);
        assertEq(f.TRANSITION_IMPLEMENTATION().MAX_DEPTH(), 25);
    }
}
