// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {GameParams, GameStatus, IDisputeGame} from "../interfaces/IDisputeGame.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";

/// @notice Everything a player needs to decide its next move (`gameState()` of `DisputeGame` and
///         `PositionGame`). File-level, so both games' ABIs name the same struct.
struct GameView {
    GameStatus status;
    uint64 lo;
    uint64 hi;
    /// @dev Position of the pending midpoint (or of the next one to post on the first move).
    uint64 mid;
    bytes32 loHash;
    bytes32 hiHash;
    /// @dev The opponent's hash at `mid` awaiting a verdict; zero before the first move and at a range
    ///      of one.
    bytes32 midHash;
    bool defenderToMove;
    bool defenderOwnsHi;
    uint40 lastMoveAt;
    /// @dev Seconds each side had left at `lastMoveAt`.
    uint32 defenderClock;
    uint32 challengerClock;
    /// @dev When the side to move runs out of time (`lastMoveAt` + its clock).
    uint256 deadline;
}

/// @title Bisection
/// @notice What the two dispute games share: the board (the disputed range, who owns its upper end, whose
///         turn it is), the chess clocks, the bisection move and the player's view.
/// @dev Invariant: the hash `loHash` at `lo` is agreed by both sides; `hiHash` at `hi` is asserted by its
///      owner and denied by the other side. `_move` is one round: the side to move judges the opponent's
///      pending hash at `mid = lo + (hi - lo) / 2` (agree: `lo = mid`; disagree: `hi = mid`, owned by the
///      opponent), then posts its own hash at the new midpoint and the turn passes; the challenger opens
///      (no verdict). When a verdict leaves a range of one, no midpoint is posted and the same side stays
///      to move. Each side has `CLOCK` seconds in total for its turns. Parameters are the clone's immutable
///      arguments (`abi.encode(GameParams)`); the mutable state is four storage slots.
abstract contract Bisection is IDisputeGame {
    // ---- flag bits of `Board.flags` ----
    uint8 internal constant DEFENDER_TO_MOVE = 1;
    uint8 internal constant DEFENDER_OWNS_HI = 2;
    uint8 internal constant INITIALIZED = 4;

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

    /// @notice The factory that creates and initializes the clones.
    address public immutable FACTORY;
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
    /// @notice `move` at a range of one (one VM step, or one phase-1 index).
    error StepPhase();
    /// @notice A zero midpoint hash, or a non-zero one where no midpoint remains.
    error InvalidMidpoint();

    /// @notice A move: the verdict on the opponent's midpoint (if any) and the new midpoint hash.
    event Moved(bool indexed defender, bool agree, uint64 lo, uint64 hi, bytes32 midHash);
    /// @notice The game ended.
    event Resolved(GameStatus status);

    /// @param factory The factory allowed to initialize clones.
    /// @param clock Seconds per side, > 0.
    constructor(address factory, uint32 clock) {
        if (clock == 0 || factory == address(0)) revert InvalidConfig();
        FACTORY = factory;
        CLOCK = clock;
    }

    /// @notice The game's parameters (the clone's immutable arguments).
    function params() public view returns (GameParams memory) {
        return abi.decode(Clones.fetchCloneArgs(address(this)), (GameParams));
    }

    /// @notice One bisection round by the side to move: its verdict on the opponent's pending midpoint hash
    ///         and its own hash at the new midpoint (zero where the verdict leaves a range of one).
    function move(bool agree, bytes32 newMidHash) external virtual;

    /// @notice End the game against the side to move once its clock has run out. Anyone may call.
    function claimTimeout() external virtual;

    /// @notice The game state for a player.
    function gameState() external view virtual returns (GameView memory);

    // ------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------

    /// @dev Check the caller is the factory and the game is new, then start the board over `[0, hi]`
    ///      with `lo`/`hi` hashes, the defender owning `hi`, the challenger to move, both clocks full.
    function _start(uint64 hi, bytes32 lo_, bytes32 hi_) internal {
        if (msg.sender != FACTORY || _board.flags & INITIALIZED != 0) revert NotFactory();
        _board = Board({
            lo: 0,
            hi: hi,
            lastMoveAt: uint40(block.timestamp),
            defenderClock: CLOCK,
            challengerClock: CLOCK,
            flags: INITIALIZED | DEFENDER_OWNS_HI,
            status: GameStatus.IN_PROGRESS
        });
        loHash = lo_;
        hiHash = hi_;
    }

    /// @dev The live board with the side to move checked against the caller and charged for its time.
    function _turn() internal view returns (Board memory b, bool defender) {
        b = _board;
        _requireLive(b);
        defender = b.flags & DEFENDER_TO_MOVE != 0;
        GameParams memory p = params();
        if (msg.sender != (defender ? p.submitter : p.challenger)) revert NotYourTurn();
    }

    /// @dev One bisection round by the side to move (`defender`), on a board `_turn` returned and the
    ///      caller checked further; stores the board.
    function _move(Board memory b, bool defender, bool agree, bytes32 newMidHash) internal {
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

    /// @dev End the game against the side to move once its clock has run out.
    function _claimTimeout() internal {
        Board memory b = _board;
        _requireLive(b);
        bool defender = b.flags & DEFENDER_TO_MOVE != 0;
        if (block.timestamp <= _deadline(b, defender)) revert ClockNotExpired();
        _finish(b, !defender);
    }

    /// @dev The board as a player sees it (the status is the board's; callers override it if needed).
    function _view() internal view returns (GameView memory v) {
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
        v.lastMoveAt = b.lastMoveAt;
        v.defenderClock = b.defenderClock;
        v.challengerClock = b.challengerClock;
        v.deadline = _deadline(b, v.defenderToMove);
    }

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
