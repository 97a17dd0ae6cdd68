// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {GameParams, GameStatus, IDisputeGame} from "../interfaces/IDisputeGame.sol";
import {PreimageOracle} from "../vm/PreimageOracle.sol";
import {IStepVerifier} from "./IStepVerifier.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";

/// @title DisputeGame
/// @notice The bisection game over VM steps between a result's submitter (the *defender*) and a challenger,
///         with a chess clock per side, settled at one step by the RISC-V step verifier.
/// @dev Positions are step counts: the hash at position `i` is the VM state hash after `i` steps from the
///      absolute prestate (the model's program hash). A halted state is a fixed point, so the hash at
///      `2^MAX_DEPTH` is the final state of any trace of at most `2^MAX_DEPTH` steps: both claims are hashes
///      at that position. Rules (contracts/README.md has them with the move bound):
///      - `reveal`: each side shows the 245-byte preimage of its claim: halted, its output field equal to
///        the output hash it claims, its step count within the bound. A side moves only once revealed.
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
contract DisputeGame is IDisputeGame {
    // ---- state layout (`hosts/fpvm/src/layout.rs`, `RISCV.sol`): byte offsets, one chain ----
    uint256 internal constant MEM_ROOT = 0;
    uint256 internal constant PREIMAGE_KEY = MEM_ROOT + 32;
    uint256 internal constant OUTPUT = PREIMAGE_KEY + 32;
    uint256 internal constant PC = OUTPUT + 32;
    uint256 internal constant PREIMAGE_OFFSET = PC + 4;
    uint256 internal constant STEP = PREIMAGE_OFFSET + 4;
    uint256 internal constant EXIT_CODE = STEP + 8;
    uint256 internal constant STATUS = EXIT_CODE + 4;
    uint256 internal constant REGS = STATUS + 1;
    /// @notice Length of a state encoding.
    uint256 public constant STATE_SIZE = REGS + 32 * 4;

    // ---- layout::status and layout::hash_status ----
    uint8 internal constant RUNNING = 0;
    uint8 internal constant EXITED = 1;
    uint8 internal constant HASH_VALID = 0;
    uint8 internal constant HASH_INVALID = 1;
    uint8 internal constant HASH_PANIC = 2;
    uint8 internal constant HASH_UNFINISHED = 3;

    // ---- local preimage identifiers (`layout::local_ident`) ----
    uint64 internal constant LOCAL_MODEL_ROOT = 1;
    uint64 internal constant LOCAL_INPUT_HASH = 2;
    uint64 internal constant LOCAL_SAMPLING_PARAMS = 3;

    /// @notice The localization context of this game's local preimages. Every game is its own address (the
    ///         oracle localizes by caller), so the context is constant.
    bytes32 public constant LOCAL_CONTEXT = bytes32(0);

    // ---- flag bits of `Board.flags` ----
    uint8 internal constant DEFENDER_TO_MOVE = 1;
    uint8 internal constant DEFENDER_OWNS_HI = 2;
    uint8 internal constant DEFENDER_REVEALED = 4;
    uint8 internal constant CHALLENGER_REVEALED = 8;
    uint8 internal constant INITIALIZED = 16;

    /// @notice The mutable game state in one slot (64 + 64 + 40 + 32 + 32 + 8 + 8 = 248 bits).
    struct Board {
        uint64 lo;
        uint64 hi;
        uint40 lastMoveAt;
        uint32 defenderClock;
        uint32 challengerClock;
        uint8 flags;
        GameStatus status;
    }

    /// @notice Everything a player needs to decide its next move (`gameState`).
    struct GameView {
        GameStatus status;
        uint64 lo;
        uint64 hi;
        /// @dev Position of the pending midpoint (or of the next one to post on the first move).
        uint64 mid;
        bytes32 loHash;
        bytes32 hiHash;
        /// @dev The opponent's hash at `mid` awaiting a verdict; zero before the first move and at one step.
        bytes32 midHash;
        bool defenderToMove;
        bool defenderOwnsHi;
        bool defenderRevealed;
        bool challengerRevealed;
        uint40 lastMoveAt;
        /// @dev Seconds each side had left at `lastMoveAt`.
        uint32 defenderClock;
        uint32 challengerClock;
        /// @dev When the side to move runs out of time (`lastMoveAt` + its clock).
        uint256 deadline;
    }

    /// @notice The step verifier (`RISCV`).
    IStepVerifier public immutable VM;
    /// @notice The preimage oracle the game writes its local data into.
    PreimageOracle public immutable ORACLE;
    /// @notice The factory that creates and initializes the clones.
    address public immutable FACTORY;
    /// @notice Traces are at most `2^MAX_DEPTH` steps; the claims sit at that position.
    uint8 public immutable MAX_DEPTH;
    /// @notice Seconds each side has in total for its turns.
    uint32 public immutable CLOCK;

    Board internal _board;
    /// @notice The agreed hash at `lo`.
    bytes32 public loHash;
    /// @notice The hash at `hi` asserted by its owner.
    bytes32 public hiHash;
    /// @notice The pending midpoint hash awaiting a verdict.
    bytes32 public midHash;

    /// @notice `initialize` by other than the factory, or twice.
    error NotFactory();
    /// @notice Bad constructor parameters.
    error InvalidConfig();
    /// @notice The game is over.
    error GameOver();
    /// @notice The caller is not the side to move.
    error NotYourTurn();
    /// @notice The side to move ran out of time.
    error ClockExpired();
    /// @notice `claimTimeout` while the side to move still has time.
    error ClockNotExpired();
    /// @notice The side to move has not revealed its final state.
    error NotRevealed();
    /// @notice The revealed state is neither claim.
    error UnknownFinalState();
    /// @notice The revealed state is not halted, its output differs from the claimed output hash, or it
    ///         lies past the trace bound.
    error InvalidFinalState();
    /// @notice `move` at a range of one step (use `step`).
    error StepPhase();
    /// @notice `step` while the range is wider than one step.
    error NotStepPhase();
    /// @notice A zero midpoint hash, or a non-zero one where no midpoint remains.
    error InvalidMidpoint();

    /// @notice A side's final state was shown.
    event Revealed(bool indexed defender);
    /// @notice A move: the verdict on the opponent's midpoint (if any) and the new midpoint hash.
    event Moved(bool indexed defender, bool agree, uint64 lo, uint64 hi, bytes32 midHash);
    /// @notice The step from `lo` was executed on chain.
    event StepVerified(uint64 lo, bytes32 postStateHash);
    /// @notice The game ended.
    event Resolved(GameStatus status);

    /// @param vm The step verifier.
    /// @param oracle The preimage oracle (the one `vm` reads local data from).
    /// @param factory The factory allowed to initialize clones.
    /// @param maxDepth Trace bound exponent, 1..63.
    /// @param clock Seconds per side, > 0.
    constructor(IStepVerifier vm, PreimageOracle oracle, address factory, uint8 maxDepth, uint32 clock) {
        if (maxDepth == 0 || maxDepth > 63 || clock == 0 || factory == address(0)) revert InvalidConfig();
        VM = vm;
        ORACLE = oracle;
        FACTORY = factory;
        MAX_DEPTH = maxDepth;
        CLOCK = clock;
    }

    /// @notice Called once by the factory right after cloning: writes the local data (model root, input
    ///         hash, sampling parameters) under this game's localization and starts the clocks. The
    ///         starting state is the program hash at position 0; no party supplies any of it.
    function initialize(bytes calldata samplingParams) external {
        if (msg.sender != FACTORY || _board.flags & INITIALIZED != 0) revert NotFactory();
        GameParams memory p = params();
        ORACLE.loadLocalData(LOCAL_MODEL_ROOT, LOCAL_CONTEXT, abi.encodePacked(p.modelRoot));
        ORACLE.loadLocalData(LOCAL_INPUT_HASH, LOCAL_CONTEXT, abi.encodePacked(p.inputHash));
        ORACLE.loadLocalData(LOCAL_SAMPLING_PARAMS, LOCAL_CONTEXT, samplingParams);
        _board = Board({
            lo: 0,
            hi: uint64(1) << MAX_DEPTH,
            lastMoveAt: uint40(block.timestamp),
            defenderClock: CLOCK,
            challengerClock: CLOCK,
            flags: INITIALIZED | DEFENDER_OWNS_HI,
            status: GameStatus.IN_PROGRESS
        });
        loHash = p.programHash;
        hiHash = p.submitterClaim;
    }

    // ------------------------------------------------------------------------------------------------
    // Moves
    // ------------------------------------------------------------------------------------------------

    /// @notice Show the final state behind a claim (anyone may call; the state decides whose it is).
    function reveal(bytes calldata state) external {
        Board memory b = _board;
        _requireLive(b);
        if (state.length != STATE_SIZE) revert InvalidFinalState();
        bytes32 h = stateHash(state);
        GameParams memory p = params();
        uint8 bit;
        bytes32 outputHash;
        if (h == p.submitterClaim) {
            (bit, outputHash) = (DEFENDER_REVEALED, p.submitterOutputHash);
        } else if (h == p.challengerClaim) {
            (bit, outputHash) = (CHALLENGER_REVEALED, p.challengerOutputHash);
        } else {
            revert UnknownFinalState();
        }
        if (
            uint8(h[0]) == HASH_UNFINISHED || bytes32(state[OUTPUT:OUTPUT + 32]) != outputHash
                || uint64(bytes8(state[STEP:STEP + 8])) > uint64(1) << MAX_DEPTH
        ) revert InvalidFinalState();
        b.flags |= bit;
        _board = b;
        emit Revealed(bit == DEFENDER_REVEALED);
    }

    /// @notice The side to move judges the opponent's pending midpoint hash (`agree`, ignored on the
    ///         challenger's first move) and posts its own hash at the new midpoint (`newMidHash`, zero when
    ///         the verdict leaves a range of one step; then the same side stays to move for `step`).
    function move(bool agree, bytes32 newMidHash) external {
        Board memory b = _board;
        _requireLive(b);
        bool defender = b.flags & DEFENDER_TO_MOVE != 0;
        GameParams memory p = params();
        if (msg.sender != (defender ? p.submitter : p.challenger)) revert NotYourTurn();
        if (b.flags & (defender ? DEFENDER_REVEALED : CHALLENGER_REVEALED) == 0) revert NotRevealed();
        _tick(b, defender);
        if (b.hi - b.lo == 1) revert StepPhase();
        bytes32 pending = midHash;
        if (pending != bytes32(0)) {
            uint64 mid = b.lo + (b.hi - b.lo) / 2;
            if (agree) {
                b.lo = mid;
                loHash = pending;
            } else {
                b.hi = mid;
                hiHash = pending;
                // the opponent posted `pending`, so it now owns `hi`
                if (defender) b.flags &= ~DEFENDER_OWNS_HI;
                else b.flags |= DEFENDER_OWNS_HI;
            }
        }
        if (b.hi - b.lo == 1) {
            if (newMidHash != bytes32(0)) revert InvalidMidpoint();
            if (pending != bytes32(0)) midHash = bytes32(0);
        } else {
            if (newMidHash == bytes32(0)) revert InvalidMidpoint();
            midHash = newMidHash;
            b.flags ^= DEFENDER_TO_MOVE;
        }
        b.lastMoveAt = uint40(block.timestamp);
        _board = b;
        emit Moved(defender, agree, b.lo, b.hi, newMidHash);
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
    function claimTimeout() external {
        Board memory b = _board;
        _requireLive(b);
        bool defender = b.flags & DEFENDER_TO_MOVE != 0;
        if (block.timestamp <= _deadline(b, defender)) revert ClockNotExpired();
        _finish(b, !defender);
    }

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IDisputeGame
    function status() external view returns (GameStatus) {
        return _board.status;
    }

    /// @notice The game's parameters (the clone's immutable arguments).
    function params() public view returns (GameParams memory) {
        return abi.decode(Clones.fetchCloneArgs(address(this)), (GameParams));
    }

    /// @notice The whole game state for a player.
    function gameState() external view returns (GameView memory v) {
        Board memory b = _board;
        v.status = b.status;
        v.lo = b.lo;
        v.hi = b.hi;
        v.mid = b.lo + (b.hi - b.lo) / 2;
        v.loHash = loHash;
        v.hiHash = hiHash;
        v.midHash = midHash;
        v.defenderToMove = b.flags & DEFENDER_TO_MOVE != 0;
        v.defenderOwnsHi = b.flags & DEFENDER_OWNS_HI != 0;
        v.defenderRevealed = b.flags & DEFENDER_REVEALED != 0;
        v.challengerRevealed = b.flags & CHALLENGER_REVEALED != 0;
        v.lastMoveAt = b.lastMoveAt;
        v.defenderClock = b.defenderClock;
        v.challengerClock = b.challengerClock;
        v.deadline = _deadline(b, v.defenderToMove);
    }

    /// @notice The state hash of an encoding, as `RISCV.stateHash`: keccak256(state) with byte 0 set to the
    ///         VM status (0 exited with code 0, 1 exited otherwise, 2 panicked, 3 running).
    function stateHash(bytes calldata state) public pure returns (bytes32 h) {
        if (state.length != STATE_SIZE) revert InvalidFinalState();
        h = keccak256(state);
        uint8 s = uint8(state[STATUS]);
        uint8 vmStatus;
        if (s == RUNNING) {
            vmStatus = HASH_UNFINISHED;
        } else if (s == EXITED) {
            vmStatus = bytes4(state[EXIT_CODE:EXIT_CODE + 4]) == 0 ? HASH_VALID : HASH_INVALID;
        } else {
            vmStatus = HASH_PANIC;
        }
        h = (h & ~bytes32(uint256(0xff) << 248)) | bytes32(uint256(vmStatus) << 248);
    }

    // ------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------

    function _requireLive(Board memory b) internal pure {
        if (b.status != GameStatus.IN_PROGRESS) revert GameOver();
    }

    function _deadline(Board memory b, bool defender) internal pure returns (uint256) {
        return uint256(b.lastMoveAt) + (defender ? b.defenderClock : b.challengerClock);
    }

    /// @dev Charge the time since the last move to the side to move; revert if it ran out.
    function _tick(Board memory b, bool defender) internal view {
        uint256 elapsed = block.timestamp - b.lastMoveAt;
        uint32 left = defender ? b.defenderClock : b.challengerClock;
        if (elapsed > left) revert ClockExpired();
        // casting to 'uint32' is safe because elapsed <= left < 2^32
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 rest = left - uint32(elapsed);
        if (defender) b.defenderClock = rest;
        else b.challengerClock = rest;
    }

    function _finish(Board memory b, bool defenderWins) internal {
        b.status = defenderWins ? GameStatus.DEFENDER_WINS : GameStatus.CHALLENGER_WINS;
        _board = b;
        emit Resolved(b.status);
    }
}
