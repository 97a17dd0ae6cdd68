// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {console2} from "forge-std/console2.sol";

import {AIOracle} from "../src/AIOracle.sol";
import {BaseTest} from "./utils/BaseTest.sol";

/// @notice Gas of the hot paths: the execution gas of the call frame itself (`vm.lastCallGas`, no 21k base,
///         no calldata), with the oracle's storage cooled first (`vm.cool`) so each call pays cold access
///         as a real transaction does. Budgets are asserted so a regression fails CI; figures in README.md.
contract GasTest is BaseTest {
    uint256 internal constant BUDGET = 100_000;

    function _cool() internal {
        vm.cool(address(oracle));
        vm.cool(address(receiver));
    }

    function _measureRequest() internal returns (uint256 id, uint256 used) {
        return _measureRequest(address(receiver));
    }

    function _measureRequest(address cb) internal returns (uint256 id, uint256 used) {
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        _cool();
        vm.prank(user);
        id = oracle.requestCallback{value: fee}(modelId, INPUT, cb, GAS_LIMIT, CB_DATA);
        used = vm.lastCallGas().gasTotalUsed;
    }

    function _measureSubmit(uint256 id) internal returns (uint256 used) {
        _cool();
        vm.prank(operator);
        oracle.submit(id, OUTPUT, "");
        used = vm.lastCallGas().gasTotalUsed;
    }

    function _measureFinalize(uint256 id, address cb) internal returns (uint256 used) {
        _cool();
        vm.prank(operator);
        oracle.finalize(id, keccak256(INPUT), cb, CB_DATA, OUTPUT);
        used = vm.lastCallGas().gasTotalUsed;
    }

    function test_gas_requestCallback() public {
        _measureRequest(); // the first request pays for lastRequestId's first write
        (, uint256 used) = _measureRequest();
        console2.log("requestCallback", used);
        assertLe(used, BUDGET);
    }

    function test_gas_submit() public {
        (uint256 id,) = _measureRequest();
        uint256 used = _measureSubmit(id);
        console2.log("submit", used);
        assertLe(used, BUDGET);
    }

    /// Steady state: the operator (here also the finalizer), fee receiver and treasury already hold a
    /// balance, as they do after their first request. No callback contract, so this is finalize alone.
    function test_gas_finalize() public {
        (uint256 a,) = _measureRequest();
        (uint256 b,) = _measureRequest(address(0));
        _measureSubmit(a);
        _measureSubmit(b);
        vm.warp(block.timestamp + WINDOW + 1);
        _measureFinalize(a, address(receiver));
        uint256 used = _measureFinalize(b, address(0));
        console2.log("finalize (no callback)", used);
        assertLe(used, BUDGET);
    }

    /// First finalization ever: every credited balance is written from zero.
    function test_gas_finalizeColdBalances() public {
        (uint256 id,) = _measureRequest(address(0));
        _measureSubmit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        uint256 used = _measureFinalize(id, address(0));
        console2.log("finalize (no callback, first credits)", used);
    }

    /// With the RecordingReceiver's callback (which itself writes four storage slots).
    function test_gas_finalizeWithCallback() public {
        (uint256 a,) = _measureRequest(address(0));
        (uint256 b,) = _measureRequest();
        _measureSubmit(a);
        _measureSubmit(b);
        vm.warp(block.timestamp + WINDOW + 1);
        _measureFinalize(a, address(0));
        uint256 used = _measureFinalize(b, address(receiver));
        console2.log("finalize (recording callback)", used);
    }

    /// A request with an input of `MAX_INPUT_SIZE` (non-zero bytes): execution gas (the input goes into the
    /// `AICallbackRequest` log, 8 gas a byte) and the whole transaction at the EIP-7623 calldata floor.
    function test_gas_requestCallbackMaxInput() public {
        AIOracle.ModelConfig memory c = _config(address(0));
        c.maxInputSize = oracle.MAX_INPUT_SIZE();
        vm.prank(publisher);
        uint256 m = oracle.registerModel(c);
        bytes memory input = new bytes(c.maxInputSize);
        for (uint256 i = 0; i < input.length; i++) {
            input[i] = bytes1(uint8(97 + i % 26));
        }
        uint256 fee = oracle.estimateFee(m, GAS_LIMIT);
        _cool();
        vm.prank(user);
        oracle.requestCallback{value: fee}(m, input, address(receiver), GAS_LIMIT, CB_DATA);
        uint256 used = vm.lastCallGas().gasTotalUsed;
        uint256 tokens = 4 * input.length + 4 * 400; // the input and (generously) the other arguments
        uint256 txGas = 21_000 + (4 * tokens + used > 10 * tokens ? 4 * tokens + used : 10 * tokens);
        console2.log("requestCallback, 64 KiB input: execution", used);
        console2.log("requestCallback, 64 KiB input: transaction (EIP-7623 floor)", txGas);
        assertLt(txGas, 30_000_000 / 6);
    }
}
