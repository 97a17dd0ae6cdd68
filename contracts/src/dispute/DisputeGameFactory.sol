// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {GameParams, IDisputeGame, IDisputeGameFactory} from "../interfaces/IDisputeGame.sol";
import {PreimageOracle} from "../vm/PreimageOracle.sol";
import {DisputeGame} from "./DisputeGame.sol";
import {IStepVerifier} from "./IStepVerifier.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";

/// @title DisputeGameFactory
/// @notice Creates one `DisputeGame` per challenge (an EIP-1167 clone whose immutable arguments are the
///         `GameParams` AIOracle derived), and holds the sampling parameters of each model: the guest's local
///         preimage 3 (`oracle_core::generate::Request::encode_params`: steps, temperature, top-p, seed).
/// @dev The node serves every request of a model with the same parameters (greedy, a fixed number of
///      positions), so they are a per-model value, keyed by (model root, program hash), set once by the
///      owner before the model can be disputed and never changed afterwards (a change would alter the
///      computation under a result already posted).
contract DisputeGameFactory is IDisputeGameFactory, Ownable2Step {
    /// @notice The only caller of `create`.
    address public immutable AI_ORACLE;
    /// @notice The game implementation the clones delegate to.
    DisputeGame public immutable IMPLEMENTATION;

    /// @notice Sampling parameters by `modelKey` (empty: the model cannot be disputed yet).
    mapping(bytes32 modelKey => bytes params) public samplingParams;
    /// @notice Games created so far, in order.
    IDisputeGame[] public games;

    /// @notice `create` by other than AIOracle.
    error NotAIOracle();
    /// @notice A model without sampling parameters.
    error ModelNotConfigured(bytes32 modelKey);
    /// @notice Sampling parameters set twice, or empty.
    error InvalidSamplingParams();

    /// @notice A model's sampling parameters were set.
    event SamplingParamsSet(bytes32 indexed modelRoot, bytes32 indexed programHash, bytes params);
    /// @notice A game was created.
    event GameCreated(
        IDisputeGame indexed game, uint256 indexed requestId, address submitter, address challenger
    );

    /// @param owner_ Sets sampling parameters.
    /// @param aiOracle The AIOracle allowed to create games.
    /// @param vm The step verifier (`RISCV`).
    /// @param oracle The preimage oracle `vm` reads.
    /// @param maxDepth Traces are at most `2^maxDepth` steps.
    /// @param clock Seconds per side.
    constructor(
        address owner_,
        address aiOracle,
        IStepVerifier vm,
        PreimageOracle oracle,
        uint8 maxDepth,
        uint32 clock
    ) Ownable(owner_) {
        AI_ORACLE = aiOracle;
        IMPLEMENTATION = new DisputeGame(vm, oracle, address(this), maxDepth, clock);
    }

    /// @notice The key of a model: keccak256(abi.encode(modelRoot, programHash)).
    function modelKey(bytes32 modelRoot, bytes32 programHash) public pure returns (bytes32) {
        return keccak256(abi.encode(modelRoot, programHash));
    }

    /// @notice Set a model's sampling parameters, once.
    function setSamplingParams(bytes32 modelRoot, bytes32 programHash, bytes calldata params)
        external
        onlyOwner
    {
        bytes32 key = modelKey(modelRoot, programHash);
        if (params.length == 0 || samplingParams[key].length != 0) revert InvalidSamplingParams();
        samplingParams[key] = params;
        emit SamplingParamsSet(modelRoot, programHash, params);
    }

    /// @inheritdoc IDisputeGameFactory
    function create(GameParams calldata p) external returns (IDisputeGame) {
        if (msg.sender != AI_ORACLE) revert NotAIOracle();
        bytes32 key = modelKey(p.modelRoot, p.programHash);
        bytes memory sp = samplingParams[key];
        if (sp.length == 0) revert ModelNotConfigured(key);
        DisputeGame game = DisputeGame(Clones.cloneWithImmutableArgs(address(IMPLEMENTATION), abi.encode(p)));
        game.initialize(sp);
        games.push(game);
        emit GameCreated(game, p.requestId, p.submitter, p.challenger);
        return game;
    }

    /// @notice Number of games created.
    function gameCount() external view returns (uint256) {
        return games.length;
    }
}
