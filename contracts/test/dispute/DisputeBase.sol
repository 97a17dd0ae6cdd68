// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIOracle} from "../../src/AIOracle.sol";
import {Bisection, GameView} from "../../src/dispute/Bisection.sol";
import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {DisputeGameFactory} from "../../src/dispute/DisputeGameFactory.sol";
import {IStepVerifier} from "../../src/dispute/IStepVerifier.sol";
import {
    GameParams,
    GameStatus,
    IDisputeGame,
    IDisputeGameFactory
} from "../../src/interfaces/IDisputeGame.sol";
import {PreimageOracle} from "../../src/vm/PreimageOracle.sol";
import {BaseTest} from "../utils/BaseTest.sol";

/// @notice What a scripted player answers from: the hash its trace holds at a position (a VM trace, or a
///         phase-1 chain of commitments).
interface ITrace {
    /// @notice The hash at position `i`.
    function at(uint64 i) external view returns (bytes32);
}

/// @notice A synthetic deterministic trace: the hash after `i` steps. Position 0 is the program hash,
///         positions `1..len-1` are running states, every position from `len` on is the final state (a halted
///         state is a fixed point). A lying trace follows `truth` below `lieFrom` and its own hashes after.
contract SyntheticTrace is ITrace {
    bytes32 public immutable PROGRAM;
    bytes32 public immutable SEED;
    uint64 public immutable LEN;
    bytes32 public immutable FINAL;
    SyntheticTrace public immutable TRUTH;
    uint64 public immutable LIE_FROM;

    constructor(
        bytes32 program,
        bytes32 seed,
        uint64 len,
        bytes32 finalHash,
        SyntheticTrace truth,
        uint64 lieFrom
    ) {
        PROGRAM = program;
        SEED = seed;
        LEN = len;
        FINAL = finalHash;
        TRUTH = truth;
        LIE_FROM = lieFrom;
    }

    /// @notice The hash this trace holds at position `i`.
    function at(uint64 i) public view virtual returns (bytes32) {
        if (address(TRUTH) != address(0) && i < LIE_FROM) return TRUTH.at(i);
        if (i == 0) return PROGRAM;
        if (i >= LEN) return FINAL;
        bytes32 h = keccak256(abi.encode(SEED, i));
        // byte 0 = 3: a running state
        return (h & ~bytes32(uint256(0xff) << 248)) | bytes32(uint256(3) << 248);
    }
}

/// @notice A liar that lies at scattered positions (about one in `ODDS`, chosen by its seed) and tells the
///         truth elsewhere, with its own claim at the top position.
contract FlakyTrace is SyntheticTrace {
    uint64 public immutable TOP;
    uint256 public immutable ODDS;

    constructor(SyntheticTrace truth, bytes32 seed, bytes32 claim, uint64 top, uint256 odds)
        SyntheticTrace(truth.PROGRAM(), seed, 0, claim, truth, 0)
    {
        TOP = top;
        ODDS = odds;
    }

    function at(uint64 i) public view override returns (bytes32) {
        if (i >= TOP) return FINAL;
        if (i == 0 || uint256(keccak256(abi.encode(SEED, i))) % ODDS != 0) return TRUTH.at(i);
        return keccak256(abi.encode(SEED, "lie", i));
    }
}

/// @notice A step verifier over a synthetic trace, with `RISCV.verifyStep`'s interface: the "state" is
///         `abi.encode(uint64 i)`, valid for the agreed pre-state if the true trace has `claimedPre` at `i`;
///         the post-state is the true hash at `i + 1`. It also checks that the calling game wrote its local
///         data under its own localization, as `RISCV.step` would read it.
contract TraceVerifier is IStepVerifier {
    SyntheticTrace public truth;
    PreimageOracle public immutable ORACLE;

    error BadPreState();
    error LocalDataMissing();

    constructor(PreimageOracle oracle) {
        ORACLE = oracle;
    }

    function setTruth(SyntheticTrace t) external {
        truth = t;
    }

    function verifyStep(bytes32 claimedPre, bytes calldata state, bytes calldata, bytes32 localContext)
        external
        view
        returns (bytes32)
    {
        for (uint64 ident = 1; ident <= 3; ident++) {
            (bool set,) = ORACLE.localData(ORACLE.localize(ORACLE.localKey(ident), msg.sender, localContext));
            if (!set) revert LocalDataMissing();
        }
        uint64 i = abi.decode(state, (uint64));
        if (truth.at(i) != claimedPre) revert BadPreState();
        return truth.at(i + 1);
    }
}

/// @notice AIOracle with the real factory over a synthetic trace, and scripted players.
abstract contract DisputeBase is BaseTest {
    uint8 internal constant DEPTH = 10;
    uint32 internal constant CLOCK = 1 hours;
    bytes internal constant SAMPLING = hex"0000004000000000000100000000000000000000"; // greedy, 64 positions

    PreimageOracle internal preimages;
    TraceVerifier internal verifier;
    DisputeGameFactory internal gameFactory;

    bytes internal constant GOOD = "four";
    bytes internal constant BAD = "five";
    /// @dev The operator's share of the model fee (after the receiver's and the treasury's shares).
    uint256 internal constant OP_SHARE =
        MODEL_FEE - uint256(MODEL_FEE) * RECEIVER_BPS / 10_000 - uint256(MODEL_FEE) * PROTOCOL_BPS / 10_000;

    function setUp() public virtual override {
        super.setUp();
        preimages = new PreimageOracle();
        verifier = new TraceVerifier(preimages);
        gameFactory = _newFactory(DEPTH);
    }

    function _newFactory(uint8 depth) internal returns (DisputeGameFactory f) {
        f = new DisputeGameFactory(owner, address(oracle), verifier, preimages, depth, depth, CLOCK);
        vm.startPrank(owner);
        f.setSamplingParams(ROOT, PROGRAM, SAMPLING, false);
        vm.stopPrank();
        _registerWith(f);
    }

    /// @notice Set `f` on AIOracle and register the test model with it (the model `_request` uses).
    function _registerWith(DisputeGameFactory f) internal {
        vm.prank(owner);
        oracle.setDisputeGameFactory(IDisputeGameFactory(address(f)));
        vm.prank(publisher);
        modelId = oracle.registerModel(_config(address(0)));
    }

    /// @notice A 245-byte halted state encoding with `output` committed after `steps` steps.
    function _finalState(bytes memory output, uint64 steps, uint32 exitCode, uint8 status)
        internal
        pure
        returns (bytes memory s)
    {
        s = new bytes(245);
        bytes32 out = keccak256(output);
        for (uint256 i = 0; i < 32; i++) {
            s[64 + i] = out[i];
        }
        bytes8 stepBytes = bytes8(steps);
        for (uint256 i = 0; i < 8; i++) {
            s[104 + i] = stepBytes[i];
        }
        bytes4 exitBytes = bytes4(exitCode);
        for (uint256 i = 0; i < 4; i++) {
            s[112 + i] = exitBytes[i];
        }
        s[116] = bytes1(status);
        s[0] = 0x42; // some memory root
    }

    function _hash(bytes memory state) internal view returns (bytes32) {
        return gameFactory.IMPLEMENTATION().stateHash(state);
    }

    /// @notice The honest trace of `len` steps ending in `finalState`, installed as the verifier's truth.
    function _truth(uint64 len, bytes memory finalState) internal returns (SyntheticTrace t) {
        t = new SyntheticTrace(
            PROGRAM, keccak256("honest"), len, _hash(finalState), SyntheticTrace(address(0)), 0
        );
        verifier.setTruth(t);
    }

    function _liar(SyntheticTrace truth, uint64 lieFrom, uint64 len, bytes memory finalState)
        internal
        returns (SyntheticTrace)
    {
        return new SyntheticTrace(PROGRAM, keccak256("lie"), len, _hash(finalState), truth, lieFrom);
    }

    /// @notice Request, submit `subOut` with final state `subState`, challenge with `chOut`/`chState`;
    ///         returns the game.
    function _open(bytes memory subOut, bytes memory subState, bytes memory chOut, bytes memory chState)
        internal
        returns (uint256 id, uint256 did, DisputeGame g)
    {
        id = _request();
        vm.prank(operator);
        oracle.submit(id, subOut, subState);
        did = _challenge(id, address(receiver), chOut, chState);
        g = DisputeGame(address(oracle.getDispute(did).game));
    }

    /// @notice `who` makes the move (`agree`, `mid`) in `g`.
    function _moveAs(Bisection g, address who, bool agree, bytes32 mid) internal {
        vm.prank(who);
        g.move(agree, mid);
    }

    /// @notice The side to move in `g` (true: the defender) and its address.
    function _mover(Bisection g) internal view returns (bool defender, address who) {
        defender = g.gameState().defenderToMove;
        GameParams memory p = g.params();
        who = defender ? p.submitter : p.challenger;
    }

    /// @notice The move the player holding `trace` makes now (verdict on the pending midpoint, new midpoint).
    function _nextMove(Bisection g, ITrace trace) internal view returns (bool agree, bytes32 mid) {
        GameView memory v = g.gameState();
        uint64 lo = v.lo;
        uint64 hi = v.hi;
        if (v.midHash != bytes32(0)) {
            agree = trace.at(v.mid) == v.midHash;
            if (agree) lo = v.mid;
            else hi = v.mid;
        }
        if (hi - lo > 1) mid = trace.at(lo + (hi - lo) / 2);
    }

    /// @notice The side to move makes its next move, answering from its trace.
    function _moveFrom(Bisection g, ITrace defenderTrace, ITrace challengerTrace) internal {
        (bool defender, address who) = _mover(g);
        (bool agree, bytes32 mid) = _nextMove(g, defender ? defenderTrace : challengerTrace);
        _moveAs(g, who, agree, mid);
    }

    /// @notice Bisect until the range is one (one step, or one phase-1 index); returns the moves made.
    function _bisectToOne(Bisection g, ITrace defenderTrace, ITrace challengerTrace)
        internal
        returns (uint256 moves)
    {
        while (true) {
            GameView memory v = g.gameState();
            if (v.hi - v.lo == 1) break;
            _moveFrom(g, defenderTrace, challengerTrace);
            moves++;
        }
    }

    /// @notice The chess clocks over the first two moves of `g` (the challenger's `first` midpoint after
    ///         1000 s, the defender's agreeing `second` after 300 s): each side is charged its own time only,
    ///         and the deadline is the challenger's. Returns the state after.
    function _checkClocks(Bisection g, bytes32 first, bytes32 second) internal returns (GameView memory v) {
        vm.warp(block.timestamp + 1000);
        _moveAs(g, challenger, false, first);
        vm.warp(block.timestamp + 300);
        _moveAs(g, operator, true, second);
        v = g.gameState();
        assertEq(v.challengerClock, CLOCK - 1000);
        assertEq(v.defenderClock, CLOCK - 300);
        assertEq(v.deadline, block.timestamp + CLOCK - 1000);
    }

    /// @notice Play to the end: each side answers from its trace; at one step the side to move executes it
    ///         (a liar to move gives up and runs out its clock when `liarStalls`). Returns the moves made.
    function _play(DisputeGame g, ITrace defenderTrace, ITrace challengerTrace, bool liarStalls)
        internal
        returns (uint256 moves)
    {
        SyntheticTrace truth = verifier.truth();
        while (g.status() == GameStatus.IN_PROGRESS) {
            GameView memory v = g.gameState();
            ITrace t = v.defenderToMove ? defenderTrace : challengerTrace;
            vm.warp(block.timestamp + 1 minutes);
            if (v.hi - v.lo == 1) {
                if (address(t) != address(truth) && liarStalls) {
                    vm.warp(v.deadline + 1);
                    g.claimTimeout();
                } else {
                    g.step(abi.encode(v.lo), "");
                }
            } else {
                _moveFrom(g, defenderTrace, challengerTrace);
            }
            moves++;
        }
    }

    /// @notice After a game the honest side (the defender if `defenderHonest`) must have won: checks the
    ///         winner, resolves the dispute on AIOracle, finalizes with the honest output and checks its
    ///         delivery, the bonds (the loser's to the winner: a slashed submission bond through the pot, its
    ///         reward share to the challenger with its bond, the rest to the treasury) and that the oracle
    ///         holds exactly what it owes.
    function _settleHonestWin(uint256 id, uint256 did, IDisputeGame g, bool defenderHonest) internal {
        assertEq(
            uint8(g.status()),
            uint8(defenderHonest ? GameStatus.DEFENDER_WINS : GameStatus.CHALLENGER_WINS),
            "the honest side wins"
        );

        oracle.resolveDispute(did);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, GOOD);
        assertEq(receiver.lastOutput(), GOOD, "the honest output is delivered");
        if (!defenderHonest) oracle.claimReward(did);

        uint256 reward = uint256(SUBMISSION_BOND) * REWARD_BPS / 10_000;
        if (defenderHonest) {
            assertEq(oracle.balanceOf(operator, address(0)), CHALLENGE_BOND + OP_SHARE);
            assertEq(oracle.balanceOf(challenger, address(0)), 0);
            assertEq(oracle.getOperator(operator).bond, 10 ether);
        } else {
            assertEq(oracle.balanceOf(challenger, address(0)), CHALLENGE_BOND + reward + OP_SHARE);
            assertEq(oracle.balanceOf(operator, address(0)), 0);
            assertEq(oracle.getOperator(operator).bond, 10 ether - SUBMISSION_BOND);
        }
        assertEq(oracle.getOperator(operator).locked, 0);
        assertEq(address(oracle).balance, _owed(), "conservation");
    }

    /// @notice Sum of what AIOracle owes in ETH to the accounts of these tests (credits and bonds).
    function _owed() internal view returns (uint256 sum) {
        address[8] memory who =
            [treasury, publisher, feeReceiver, operator, operator2, challenger, user, finalizer];
        for (uint256 i = 0; i < who.length; i++) {
            sum += oracle.balanceOf(who[i], address(0));
        }
        sum += oracle.getOperator(operator).bond + oracle.getOperator(operator2).bond;
    }
}
