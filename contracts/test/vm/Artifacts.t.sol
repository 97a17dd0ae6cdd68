// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";

/// @notice The Rust differential tests (hosts/fpvm/tests/evm_*.rs) run the creation
///  bytecode embedded in hosts/fpvm/tests/evm/. This fails while those copies differ
///  from this build: run `hosts/fpvm/tests/evm/update.sh`.
contract ArtifactsTest is Test {
    string internal constant DIR = "../hosts/fpvm/tests/evm/";

    function _check(string memory name, string memory artifact) internal view {
        string memory embedded = vm.readFile(string.concat(DIR, name, ".initcode.hex"));
        // Hashes, so that a failure prints two words rather than the whole bytecode.
        assertEq(
            keccak256(bytes(embedded)),
            keccak256(bytes(vm.toString(vm.getCode(artifact)))),
            string.concat(name, ": embedded bytecode is stale, run hosts/fpvm/tests/evm/update.sh")
        );
    }

    function test_embeddedBytecodeIsCurrent() public view {
        _check("RISCV", "RISCV.sol:RISCV");
        _check("PreimageOracle", "PreimageOracle.sol:PreimageOracle");
    }
}
