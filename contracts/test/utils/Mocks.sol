// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

import {
    GameParams,
    GameStatus,
    IDisputeGame,
    IDisputeGameFactory
} from "../../src/interfaces/IDisputeGame.sol";

/// @notice Plain mintable ERC-20 for fee-token tests.
contract TestToken is ERC20 {
    constructor() ERC20("Test Token", "TT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @notice ERC-20 that burns 1% of every transfer (AIOracle must refuse it as a fee token).
contract FeeOnTransferToken is ERC20 {
    constructor() ERC20("Fee On Transfer", "FOT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 burn = value / 100;
            super._update(from, address(0), burn);
            value -= burn;
        }
        super._update(from, to, value);
    }
}

/// @notice Test-only dispute game: the test decides the outcome.
contract MockDisputeGame is IDisputeGame {
    GameStatus public status;
    GameParams internal _params;

    constructor(GameParams memory p) {
        _params = p;
    }

    function params() external view returns (GameParams memory) {
        return _params;
    }

    function setStatus(GameStatus s) external {
        status = s;
    }
}

/// @notice Test-only factory creating MockDisputeGame and remembering the last one. Its claims are bound to
///         the output as the real factory's are: `keccak256(output)` with an empty proof (the two-phase rule),
///         else `keccak256(keccak256(output) ‖ proof)` (so tests can post several claims for one output).
contract MockDisputeGameFactory is IDisputeGameFactory {
    MockDisputeGame public lastGame;
    uint256 public created;

    function resultClaim(bytes32, bytes32, bytes calldata output, bytes calldata proof)
        external
        pure
        returns (bytes32)
    {
        if (proof.length == 0) return keccak256(output);
        return keccak256(abi.encodePacked(keccak256(output), proof));
    }

    function create(GameParams calldata p) external returns (IDisputeGame) {
        lastGame = new MockDisputeGame(p);
        created++;
        return lastGame;
    }
}
