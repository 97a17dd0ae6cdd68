// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {GameParams, GameStatus, IDisputeGame} from "../interfaces/IDisputeGame.sol";
import {Bisection, GameView} from "./Bisection.sol";
import {DisputeGame} from "./DisputeGame.sol";
import {DisputeGameFactory} from "./DisputeGameFactory.sol";
import {StateLayout} from "./StateLayout.sol";

/// @title PositionGame
/// @notice The two-phase dispute game (`docs/dispute.md`): phase 1 bisects over the commitments
///         `s_0 .. s_N` of a request's decode positions (`N = T + 2`, `T` the steps in the sampling
///         parameters), phase 2 is a `DisputeGame` over the VM steps of the one disputed transition.
/// @dev Phase 1 is `Bisection` over indices `[0, N]`: `loHash = s_0 = keccak256(modelRoot ‖ inputHash ‖
///      params)`, derived on chain; `hiHash = s_N` is the submitter's output hash, owned by the defender
///      (the claims at `N` are the output hashes themselves: `DisputeGameFactory.resultClaim`); the
///      challenger opens.
///      At a range of one index `(i, i+1)`, `claimTransition`: first the side to move, then the other, each
///      posts the final VM state of its run of transition `i` (the owner of `hiHash`: exited 0 with output
///      `hiHash`; the other side: anything else halted). The second claim creates the phase-2 game through
///      the factory: a `DisputeGame` between the owner of `hiHash` (its defender) and the other side, with
///      local 3 = params ‖ mode (1 init if `i = 0`, 3 output if `i = N - 1`, 2 position otherwise) and
///      local 4 = `s_i` (modes 2 and 3). From then on `status()` is the child's outcome in this game's
///      roles. The game holds no funds.
contract PositionGame is Bisection {
    /// @notice Length of the sampling parameters (`Request::encode_params`).
    uint256 public constant PARAMS_SIZE = 20;
    /// @notice Transition mode of `i = 0`: tokenize and validate the request, commit `P_0`.
    uint8 public constant MODE_INIT = 1;
    /// @notice Transition mode of `1 <= i <= T`: one position from `s_i`.
    uint8 public constant MODE_POSITION = 2;
    /// @notice Transition mode of `i = T + 1`: decode the done state `s_i` into the output commitment.
    uint8 public constant MODE_OUTPUT = 3;

    // ---- flag bits of `Board.flags` above `Bisection`'s ----
    uint8 internal constant HI_OWNER_CLAIMED = 8;
    uint8 internal constant OTHER_CLAIMED = 16;

    /// @notice Phase-2 traces are at most `2^MAX_DEPTH` steps (the factory's transition depth).
    uint8 public immutable MAX_DEPTH;

    /// @notice The phase-2 game, zero until both transition claims are in.
    DisputeGame public transitionGame;
    bytes20 internal _samplingParams;
    bytes32 internal _hiOwnerClaim;
    bytes32 internal _otherClaim;
    bytes32 internal _otherOutput;

    /// @notice Sampling parameters of another length than `PARAMS_SIZE`.
    error InvalidSamplingParams();
    /// @notice `claimTransition` while the range is wider than one index.
    error NotTransitionPhase();
    /// @notice A transition claim that is not a halted state within the bound, or (the owner of `hiHash`)
    ///         not exited 0 with output `hiHash`, or (the other side) exited 0 with output `hiHash`.
    error InvalidFinalState();
    /// @notice Both transition claims are in: the game goes on in `transitionGame`.
    error TransitionStarted();

    /// @notice A side posted the final-state hash of its run of the disputed transition.
    event TransitionClaimed(bool indexed defender, bytes32 stateHash);

    /// @param factory The factory allowed to initialize clones (and the one creating the phase-2 games).
    /// @param maxDepth Phase-2 trace bound exponent, 1..63 (the factory's `TRANSITION_IMPLEMENTATION`'s).
    /// @param clock Seconds per side, > 0.
    constructor(address factory, uint8 maxDepth, uint32 clock) Bisection(factory, clock) {
        if (maxDepth == 0 || maxDepth > 63) revert InvalidConfig();
        MAX_DEPTH = maxDepth;
    }

    /// @notice Called once by the factory right after cloning: phase 1 over `[0, N]`, `s_0` derived from
    ///         the request, `s_N` the defender's output hash, the challenger to move, both clocks full.
    function initialize(bytes calldata params20) external {
        if (params20.length != PARAMS_SIZE) revert InvalidSamplingParams();
        // casting to 'bytes20' is safe because the length is exactly 20
        // forge-lint: disable-next-line(unsafe-typecast)
        bytes20 sp = bytes20(params20);
        GameParams memory p = params();
        _start(_length(sp), keccak256(abi.encodePacked(p.modelRoot, p.inputHash, sp)), p.submitterOutputHash);
        _samplingParams = sp;
    }

    // ------------------------------------------------------------------------------------------------
    // Moves
    // ------------------------------------------------------------------------------------------------

    /// @notice The side to move judges the opponent's pending commitment (`agree`, ignored on the
    ///         challenger's first move) and posts its own commitment at the new midpoint index (`newMidHash`,
    ///         zero when the verdict leaves a range of one index; then the same side claims first).
    function move(bool agree, bytes32 newMidHash) external override {
        (Board memory b, bool defender) = _turn();
        _move(b, defender, agree, newMidHash);
    }

    /// @notice At a range of one index `(i, i+1)`, the side to move posts the 245-byte final VM state of
    ///         its own run of transition `i`, then the other side does; the second claim creates the
    ///         phase-2 game (`transitionGame`) in the same transaction.
    function claimTransition(bytes calldata finalState) external {
        (Board memory b, bool defender) = _turn();
        if (b.hi - b.lo != 1) revert NotTransitionPhase();
        if (address(transitionGame) != address(0)) revert TransitionStarted();
        _tick(b, defender);
        if (finalState.length != StateLayout.STATE_SIZE) revert InvalidFinalState();
        bytes32 h = StateLayout.hash(finalState);
        bytes32 out = StateLayout.output(finalState);
        if (!StateLayout.halted(h) || StateLayout.step(finalState) > uint64(1) << MAX_DEPTH) {
            revert InvalidFinalState();
        }
        bool valid = uint8(h[0]) == StateLayout.HASH_VALID && out == hiHash;
        if (defender == (b.flags & DEFENDER_OWNS_HI != 0)) {
            if (!valid) revert InvalidFinalState();
            _hiOwnerClaim = h;
            b.flags |= HI_OWNER_CLAIMED;
        } else {
            // a valid owner's state and this one differ in output or status byte, so their hashes differ
            if (valid) revert InvalidFinalState();
            _otherClaim = h;
            _otherOutput = out;
            b.flags |= OTHER_CLAIMED;
        }
        emit TransitionClaimed(defender, h);
        b.lastMoveAt = uint40(block.timestamp);
        if (b.flags & (HI_OWNER_CLAIMED | OTHER_CLAIMED) == HI_OWNER_CLAIMED | OTHER_CLAIMED) {
            _board = b;
            _createTransition(b);
        } else {
            b.flags ^= DEFENDER_TO_MOVE;
            _board = b;
        }
    }

    /// @notice End the game against the side to move once its clock has run out, in phase 1 and in the
    ///         claim turns. Anyone may call. Phase 2's timeouts are claimed on `transitionGame`.
    function claimTimeout() external override {
        if (address(transitionGame) != address(0)) revert TransitionStarted();
        _claimTimeout();
    }

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IDisputeGame
    /// @dev A phase-1 timeout, else the phase-2 game's outcome in this game's roles (its defender is the
    ///      owner of `hiHash`), else `IN_PROGRESS`. Final once the deciding game is.
    function status() public view returns (GameStatus) {
        GameStatus s = _board.status;
        DisputeGame child = transitionGame;
        if (s != GameStatus.IN_PROGRESS || address(child) == address(0)) return s;
        GameStatus c = child.status();
        if (c == GameStatus.IN_PROGRESS) return c;
        bool hiOwnerWon = c == GameStatus.DEFENDER_WINS;
        bool defenderOwnsHi = _board.flags & DEFENDER_OWNS_HI != 0;
        return hiOwnerWon == defenderOwnsHi ? GameStatus.DEFENDER_WINS : GameStatus.CHALLENGER_WINS;
    }

    /// @notice The phase-1 state for a player, in `DisputeGame`'s shape: `lo`, `hi`, `mid` are indices,
    ///         `midHash` is zero at one index, `status` is `status()`.
    function gameState() external view override returns (GameView memory v) {
        v = _view();
        v.status = status();
    }

    /// @notice `N = T + 2`: phase 1 runs over the commitments `s_0 .. s_N`.
    function length() external view returns (uint64) {
        return _length(_samplingParams);
    }

    /// @notice `s_0 = keccak256(modelRoot ‖ inputHash ‖ params)`, agreed by construction.
    function startHash() external view returns (bytes32) {
        GameParams memory p = params();
        return keccak256(abi.encodePacked(p.modelRoot, p.inputHash, _samplingParams));
    }

    /// @notice The final-state hashes posted by `claimTransition` (zero until posted): the owner of `hiHash`
    ///         (the phase-2 defender) and the other side.
    function transitionClaims() external view returns (bytes32 hiOwnerClaim, bytes32 otherClaim) {
        return (_hiOwnerClaim, _otherClaim);
    }

    /// @notice The model's 20 sampling-parameter bytes.
    function samplingParams() external view returns (bytes memory) {
        return abi.encodePacked(_samplingParams);
    }

    // ------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------

    /// @dev `N = T + 2`, `T` the big-endian u32 at bytes 0..4 (at most 2^32 + 1, no overflow in u64).
    function _length(bytes20 sp) internal pure returns (uint64) {
        // casting to 'bytes4' is intended: T is the first 4 bytes
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint64(uint32(bytes4(sp))) + 2;
    }

    /// @dev The phase-2 game of transition `i = lo`: the owner of `hiHash` defends its claim.
    function _createTransition(Board memory b) internal {
        GameParams memory p = params();
        bool defenderOwnsHi = b.flags & DEFENDER_OWNS_HI != 0;
        (address owner, address other) =
            defenderOwnsHi ? (p.submitter, p.challenger) : (p.challenger, p.submitter);
        p.submitter = owner;
        p.submitterClaim = _hiOwnerClaim;
        p.submitterOutputHash = hiHash;
        p.challenger = other;
        p.challengerClaim = _otherClaim;
        p.challengerOutputHash = _otherOutput;
        bytes20 sp = _samplingParams;
        uint8 mode;
        if (b.lo == 0) mode = MODE_INIT;
        else if (b.lo == _length(sp) - 1) mode = MODE_OUTPUT;
        else mode = MODE_POSITION;
        // s_i: never zero past index 0 (midpoints are non-zero), and not written for the init transition
        bytes32 pre = mode == MODE_INIT ? bytes32(0) : loHash;
        transitionGame = DisputeGameFactory(FACTORY).createTransition(p, abi.encodePacked(sp, mode), pre);
    }
}
