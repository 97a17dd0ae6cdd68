// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {GameParams, GameStatus, IDisputeGame} from "../interfaces/IDisputeGame.sol";
import {PreimageOracle} from "../vm/PreimageOracle.sol";
import {Bisection, GameView} from "./Bisection.sol";
import {IStepVerifier} from "./IStepVerifier.sol";
import {StateLayout} from "./StateLayout.sol";

/// @title DisputeGame
/// @notice The bisection game over VM steps between a result's submitter (the *defender*) and a challenger,
///         with a chess clock per side, settled at one step by the RISC-V step verifier.
/// @dev Positions are step counts: the hash at position `i` is the VM state hash after `i` steps from the
///      absolute prestate (the model's program hash). A halted state is a fixed point, so the hash at
///      `2^MAX_DEPTH` is the final state of any trace of at most `2^MAX_DEPTH` steps: both claims are hashes
///      at that position. Both claims were bound to their outputs before the game exists
///      (`DisputeGameFactory.resultClaim`, called by AIOracle at submission and at challenge: exited 0, the
///      output field the posted output's hash, within the bound; or, for a phase-2 game, checked by the
///      parent `PositionGame`), so the game starts with both final states known good. Rules
///      (contracts/README.md has them with the move bound):
///      - Invariant: the hash `loHash` at `lo` is agreed by both sides (at first: the program hash at 0);
///        `hiHash` at `hi` is asserted by `hiOwner` and denied by the other side (at first: the defender's
///        claim at `2^MAX_DEPTH`, denied by the challenger's very challenge).
///      - `move(agree, midHash)`: the side to move first judges the midpoint hash its opponent posted
///        (agree: `lo` moves up to it; disagree: `hi` moves down to it and the opponent owns `hi`), then
///        posts its own hash at the new midpoint; the turn passes. The challenger moves first (no verdict).
///        One move per halving: `MAX_DEPTH` verdicts reach a range of one step.
///      - `step(state, proof)`: at a range of one step, anyone executes the step from `loHash`; if the
///        post-state equals `hiHash` its owner wins, otherwise the other side does.
///      - Clocks: each side has `CLOCK` seconds in total for its turns (the side to move after the last
///        verdict must also see the step executed in its time). `claimTimeout` ends the game against a side
///        whose time ran out; a side out of time can no longer move, nor can the step be executed.
///      The game holds no funds: AIOracle moves the bonds once `status()` is final. Its parameters are the
///      clone's immutable arguments (`abi.encode(GameParams)`); all mutable state is four storage slots.
///      The board, clocks and bisection round are `Bisection`'s, shared with `PositionGame`, which also
///      creates one of these per two-phase dispute for its disputed transition (`initialize` with a
///      pre-state).
contract DisputeGame is Bisection {
    /// @notice Length of a state encoding.
    uint256 public constant STATE_SIZE = StateLayout.STATE_SIZE;

    /// @notice The localization context of this game's local preimages. Every game is its own address (the
    ///         oracle localizes by caller), so the context is constant.
    bytes32 public constant LOCAL_CONTEXT = bytes32(0);

    /// @notice The step verifier (`RISCV`).
    IStepVerifier public immutable VM;
    /// @notice The preimage oracle the game writes its local data into.
    PreimageOracle public immutable ORACLE;
    /// @notice Traces are at most `2^MAX_DEPTH` steps; the claims sit at that position.
    uint8 public immutable MAX_DEPTH;

    /// @notice `stateHash` of an encoding of another length than `STATE_SIZE`.
    error InvalidFinalState();
    /// @notice `step` while the range is wider than one step.
    error NotStepPhase();

    /// @notice The step from `lo` was executed on chain.
    event StepVerified(uint64 lo, bytes32 postStateHash);

    /// @param vm The step verifier.
    /// @param oracle The preimage oracle (the one `vm` reads local data from).
    /// @param factory The factory allowed to initialize clones.
    /// @param maxDepth Trace bound exponent, 1..63.
    /// @param clock Seconds per side, > 0.
    constructor(IStepVerifier vm, PreimageOracle oracle, address factory, uint8 maxDepth, uint32 clock)
        Bisection(factory, clock)
    {
        if (maxDepth == 0 || maxDepth > 63) revert InvalidConfig();
        VM = vm;
        ORACLE = oracle;
        MAX_DEPTH = maxDepth;
    }

    /// @notice Called once by the factory right after cloning: writes the local data (model root, input
    ///         hash, sampling parameters, and the pre-state if any) under this game's localization and starts
    ///         the clocks. The starting state is the program hash at position 0; no party supplies any of it.
    /// @param samplingParams Local 3: the model's 20 sampling-parameter bytes (one-phase game), or those
    ///        followed by the transition mode byte (the phase-2 game of a `PositionGame`).
    /// @param preState Local 4 (`LOCAL_PRE_STATE`), the agreed phase-1 commitment the transition starts from;
    ///        zero: none is written (the one-phase game, and the init transition).
    function initialize(bytes calldata samplingParams, bytes32 preState) external {
        GameParams memory p = params();
        _start(uint64(1) << MAX_DEPTH, p.programHash, p.submitterClaim);
        ORACLE.loadLocalData(StateLayout.LOCAL_MODEL_ROOT, LOCAL_CONTEXT, abi.encodePacked(p.modelRoot));
        ORACLE.loadLocalData(StateLayout.LOCAL_INPUT_HASH, LOCAL_CONTEXT, abi.encodePacked(p.inputHash));
        ORACLE.loadLocalData(StateLayout.LOCAL_SAMPLING_PARAMS, LOCAL_CONTEXT, samplingParams);
        if (preState != bytes32(0)) {
            ORACLE.loadLocalData(StateLayout.LOCAL_PRE_STATE, LOCAL_CONTEXT, abi.encodePacked(preState));
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Moves
    // ------------------------------------------------------------------------------------------------

    /// @notice The side to move judges the opponent's pending midpoint hash (`agree`, ignored on the
    ///         challenger's first move) and posts its own hash at the new midpoint (`newMidHash`, zero when
    ///         the verdict leaves a range of one step; then the same side stays to move for `step`).
    function move(bool agree, bytes32 newMidHash) external override {
        (Board memory b, bool defender) = _turn();
        _move(b, defender, agree, newMidHash);
    }

    /// @notice At a range of one step, execute the step from the agreed `loHash` on chain (anyone may
    ///         call, while the side to move has time): `state` is the pre-state encoding, `proof` its memory
    ///         proofs and preimage data (`fpvm` witness). The post-state decides the game.
    function step(bytes calldata state, bytes calldata proof) external {
        Board memory b = _board;
        _requireLive(b);
        if (b.hi - b.lo != 1) revert NotStepPhase();
        _tick(b, b.flags & DEFENDER_TO_MOVE != 0);
        bytes32 post = VM.verifyStep(loHash, state, proof, LOCAL_CONTEXT);
        emit StepVerified(b.lo, post);
        bool ownerRight = post == hiHash;
        bool defenderOwnsHi = b.flags & DEFENDER_OWNS_HI != 0;
        _finish(b, ownerRight == defenderOwnsHi);
    }

    /// @notice End the game against the side to move once its clock has run out. Anyone may call.
    function claimTimeout() external override {
        _claimTimeout();
    }

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IDisputeGame
    function status() external view returns (GameStatus) {
        return _board.status;
    }

    /// @notice The whole game state for a player.
    function gameState() external view override returns (GameView memory) {
        return _view();
    }

    /// @notice The state hash of an encoding, as `RISCV.stateHash`: keccak256(state) with byte 0 set to the
    ///         VM status (0 exited with code 0, 1 exited otherwise, 2 panicked, 3 running).
    function stateHash(bytes calldata state) public pure returns (bytes32) {
        if (state.length != STATE_SIZE) revert InvalidFinalState();
        return StateLayout.hash(state);
    }
}
