// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {GameParams, IDisputeGame, IDisputeGameFactory} from "../interfaces/IDisputeGame.sol";
import {PreimageOracle} from "../vm/PreimageOracle.sol";
import {DisputeGame} from "./DisputeGame.sol";
import {IStepVerifier} from "./IStepVerifier.sol";
import {PositionGame} from "./PositionGame.sol";
import {StateLayout} from "./StateLayout.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";

/// @title DisputeGameFactory
/// @notice Creates one game per challenge (an EIP-1167 clone whose immutable arguments are the `GameParams`
///         AIOracle derived): a `DisputeGame` over the VM steps of the whole request, or for a two-phase
///         model a `PositionGame` over its decode positions, whose phase-2 `DisputeGame` it creates too
///         (`createTransition`). Holds the sampling parameters of each model: the guest's local preimage 3
///         (`oracle_core::generate::Request::encode_params`: steps, temperature, top-p, seed), and its kind.
/// @dev The node serves every request of a model with the same parameters (greedy, a fixed number of
///      positions), so they are a per-model value, keyed by (model root, program hash), set once by the
///      owner before the model can be disputed and never changed afterwards (a change would alter the
///      computation under a result already posted). `resultClaim` binds a posted output to its claim: until
///      a model is configured no claim can be bound, so nothing can be submitted for it.
contract DisputeGameFactory is IDisputeGameFactory, Ownable2Step {
    /// @notice The only caller of `create`.
    address public immutable AI_ORACLE;
    /// @notice The implementation of the one-phase games (VM steps of a whole request, `2^maxDepth`).
    DisputeGame public immutable IMPLEMENTATION;
    /// @notice The implementation of the phase-2 games (VM steps of one transition, `2^transitionDepth`).
    DisputeGame public immutable TRANSITION_IMPLEMENTATION;
    /// @notice The two-phase game implementation.
    PositionGame public immutable POSITION_IMPLEMENTATION;
    /// @notice The one-phase trace bound exponent (`IMPLEMENTATION.MAX_DEPTH()`): a final state claimed for a
    ///         whole request is at most `2^MAX_DEPTH` steps.
    uint8 public immutable MAX_DEPTH;

    /// @notice Sampling parameters by `modelKey` (empty: the model cannot be disputed yet).
    mapping(bytes32 modelKey => bytes params) public samplingParams;
    /// @notice Whether a model's disputes are two-phase (`PositionGame`), set with its sampling parameters.
    mapping(bytes32 modelKey => bool) public twoPhase;
    /// @notice The `PositionGame`s this factory created (the only callers of `createTransition`).
    mapping(address game => bool) public isPositionGame;
    /// @notice Games created so far, in order.
    IDisputeGame[] public games;

    /// @notice `create` by other than AIOracle.
    error NotAIOracle();
    /// @notice A model without sampling parameters.
    error ModelNotConfigured(bytes32 modelKey);
    /// @notice Sampling parameters set twice, or empty, or (two-phase) not 20 bytes.
    error InvalidSamplingParams();
    /// @notice `createTransition` by other than a `PositionGame` of this factory.
    error NotPositionGame();
    /// @notice A proof that does not bind the claim to the output (see `resultClaim`).
    error UnboundClaim();

    /// @notice A model's sampling parameters and game kind were set.
    event SamplingParamsSet(
        bytes32 indexed modelRoot, bytes32 indexed programHash, bytes params, bool twoPhase
    );
    /// @notice A game was created.
    event GameCreated(
        IDisputeGame indexed game, uint256 indexed requestId, address submitter, address challenger
    );

    /// @notice A `PositionGame` reached one index and created its phase-2 game for transition `index`.
    event TransitionGameCreated(address indexed parent, address indexed game, uint64 index);

    /// @param owner_ Sets sampling parameters.
    /// @param aiOracle The AIOracle allowed to create games.
    /// @param vm The step verifier (`RISCV`).
    /// @param oracle The preimage oracle `vm` reads.
    /// @param maxDepth The trace of a whole request (one-phase game) is at most `2^maxDepth` steps.
    /// @param transitionDepth The trace of one transition of a two-phase game is at most
    ///        `2^transitionDepth` steps: a phase-2 game takes `transitionDepth + 1` moves and the step.
    /// @param clock Seconds per side.
    constructor(
        address owner_,
        address aiOracle,
        IStepVerifier vm,
        PreimageOracle oracle,
        uint8 maxDepth,
        uint8 transitionDepth,
        uint32 clock
    ) Ownable(owner_) {
        AI_ORACLE = aiOracle;
        MAX_DEPTH = maxDepth;
        IMPLEMENTATION = new DisputeGame(vm, oracle, address(this), maxDepth, clock);
        TRANSITION_IMPLEMENTATION = new DisputeGame(vm, oracle, address(this), transitionDepth, clock);
        POSITION_IMPLEMENTATION = new PositionGame(address(this), transitionDepth, clock);
    }

    /// @notice The key of a model: keccak256(abi.encode(modelRoot, programHash)).
    function modelKey(bytes32 modelRoot, bytes32 programHash) public pure returns (bytes32) {
        return keccak256(abi.encode(modelRoot, programHash));
    }

    /// @notice Set a model's sampling parameters and game kind, once. `twoPhase`: its disputes bisect over
    ///         decode positions first (`PositionGame`; LLMs, 20-byte parameters); else over the VM steps of
    ///         the whole request (`DisputeGame`; image models stay one-phase).
    function setSamplingParams(bytes32 modelRoot, bytes32 programHash, bytes calldata params, bool twoPhase_)
        external
        onlyOwner
    {
        bytes32 key = modelKey(modelRoot, programHash);
        if (params.length == 0 || samplingParams[key].length != 0) revert InvalidSamplingParams();
        if (twoPhase_ && params.length != POSITION_IMPLEMENTATION.PARAMS_SIZE()) {
            revert InvalidSamplingParams();
        }
        samplingParams[key] = params;
        twoPhase[key] = twoPhase_;
        emit SamplingParamsSet(modelRoot, programHash, params, twoPhase_);
    }

    /// @inheritdoc IDisputeGameFactory
    /// @dev Two-phase model: `proof` is empty and the claim is `keccak256(output)`, the commitment `s_N` its
    ///      game ends at. One-phase model: `proof` is the 245-byte final VM state (`StateLayout`), which must
    ///      have exited with code 0 (state-hash status `HASH_VALID`; a request the model rejects is such a run
    ///      too, committing the empty output), have `keccak256(output)` as its output field and at most
    ///      `2^MAX_DEPTH` steps; the claim is its state hash. A model without sampling parameters reverts
    ///      `ModelNotConfigured`; anything else unbound `UnboundClaim`.
    function resultClaim(bytes32 modelRoot, bytes32 programHash, bytes calldata output, bytes calldata proof)
        external
        view
        returns (bytes32 claim)
    {
        bytes32 key = modelKey(modelRoot, programHash);
        if (twoPhase[key]) {
            if (proof.length != 0) revert UnboundClaim();
            return keccak256(output);
        }
        if (samplingParams[key].length == 0) revert ModelNotConfigured(key);
        if (proof.length != StateLayout.STATE_SIZE) revert UnboundClaim();
        claim = StateLayout.hash(proof);
        if (
            uint8(claim[0]) != StateLayout.HASH_VALID || StateLayout.output(proof) != keccak256(output)
                || StateLayout.step(proof) > uint64(1) << MAX_DEPTH
        ) revert UnboundClaim();
    }

    /// @inheritdoc IDisputeGameFactory
    function create(GameParams calldata p) external returns (IDisputeGame) {
        if (msg.sender != AI_ORACLE) revert NotAIOracle();
        bytes32 key = modelKey(p.modelRoot, p.programHash);
        bytes memory sp = samplingParams[key];
        if (sp.length == 0) revert ModelNotConfigured(key);
        IDisputeGame game;
        if (twoPhase[key]) {
            PositionGame pg =
                PositionGame(Clones.cloneWithImmutableArgs(address(POSITION_IMPLEMENTATION), abi.encode(p)));
            isPositionGame[address(pg)] = true;
            pg.initialize(sp);
            game = pg;
        } else {
            DisputeGame dg =
                DisputeGame(Clones.cloneWithImmutableArgs(address(IMPLEMENTATION), abi.encode(p)));
            dg.initialize(sp, bytes32(0));
            game = dg;
        }
        games.push(game);
        emit GameCreated(game, p.requestId, p.submitter, p.challenger);
        return game;
    }

    /// @notice The phase-2 game of a `PositionGame` (its only caller): a `DisputeGame` over the VM steps of
    ///         the disputed transition, between the players and claims in `p`, with `localParams` (params ‖
    ///         mode) as local 3 and `preState` as local 4 (none if zero); the parent checked both final states.
    function createTransition(GameParams calldata p, bytes calldata localParams, bytes32 preState)
        external
        returns (DisputeGame game)
    {
        if (!isPositionGame[msg.sender]) revert NotPositionGame();
        game = DisputeGame(Clones.cloneWithImmutableArgs(address(TRANSITION_IMPLEMENTATION), abi.encode(p)));
        game.initialize(localParams, preState);
        emit TransitionGameCreated(msg.sender, address(game), PositionGame(msg.sender).gameState().lo);
    }

    /// @notice Number of games created.
    function gameCount() external view returns (uint256) {
        return games.length;
    }
}
