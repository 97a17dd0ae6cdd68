// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Bisection, GameView} from "../../src/dispute/Bisection.sol";
import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {DisputeGameFactory} from "../../src/dispute/DisputeGameFactory.sol";
import {PositionGame} from "../../src/dispute/PositionGame.sol";
import {GameParams, GameStatus} from "../../src/interfaces/IDisputeGame.sol";
import {SyntheticTrace} from "./DisputeBase.sol";
import {PositionBase, PositionChain} from "./PositionBase.sol";

/// @notice Every path and revert of the two-phase game, through the real AIOracle and factory: N = 66
///         (64 greedy positions), synthetic phase-1 chains, the phase-2 game over a synthetic VM trace.
contract PositionGameTest is PositionBase {
    uint64 internal constant N = 66;
    PositionChain internal truth;

    function setUp() public override {
        super.setUp();
        truth = _honestChain(SAMPLING);
    }

    function _honestDefender() internal returns (uint256 id, uint256 did, PositionGame g) {
        return _openPosition(GOOD, BAD);
    }

    /// @dev Honest defender against a challenger lying from `lieFrom`, phase 1 played to one index.
    function _atOneIndex(uint64 lieFrom) internal returns (PositionGame g, PositionChain liar) {
        (,, g) = _honestDefender();
        liar = _lyingChain(truth, lieFrom);
        _bisectToOne(g, truth, liar);
    }

    /// @dev The valid state of the owner of `hiHash` and a differing state of the other side.
    function _states(PositionGame g, PositionChain liar)
        internal
        view
        returns (bytes memory ownerState, bytes memory otherState)
    {
        GameView memory v = g.gameState();
        bytes32 otherOut = v.defenderOwnsHi ? liar.at(v.hi) : truth.at(v.hi);
        ownerState = _transitionState(v.hiHash, 500, 0, 1);
        otherState = _transitionState(otherOut, 600, 0, 1);
    }

    // ---- creation ----

    function test_create_succeeds() public {
        (uint256 id,, PositionGame g) = _honestDefender();
        bytes32 key = gameFactory.modelKey(ROOT, PROGRAM);
        assertTrue(gameFactory.twoPhase(key));
        assertTrue(gameFactory.isPositionGame(address(g)));
        assertEq(address(gameFactory.games(0)), address(g));
        GameParams memory p = g.params();
        assertEq(p.requestId, id);
        assertEq(p.submitter, operator);
        assertEq(p.challenger, challenger);
        assertEq(p.submitterOutputHash, keccak256(GOOD));
        assertEq(g.length(), N);
        assertEq(g.startHash(), _start(SAMPLING));
        assertEq(g.startHash(), keccak256(abi.encodePacked(ROOT, keccak256(INPUT), SAMPLING)));
        assertEq(g.samplingParams(), SAMPLING);
        assertEq(address(g.transitionGame()), address(0));
        (bytes32 a, bytes32 b) = g.transitionClaims();
        assertEq(a, bytes32(0));
        assertEq(b, bytes32(0));
        GameView memory v = g.gameState();
        assertEq(uint8(v.status), uint8(GameStatus.IN_PROGRESS));
        assertEq(v.lo, 0);
        assertEq(v.hi, N);
        assertEq(v.mid, N / 2);
        assertEq(v.loHash, _start(SAMPLING), "s_0");
        assertEq(v.hiHash, keccak256(GOOD), "s_N = the submitter's output hash");
        assertEq(v.midHash, bytes32(0));
        assertFalse(v.defenderToMove, "the challenger moves first");
        assertTrue(v.defenderOwnsHi);
        assertEq(v.deadline, block.timestamp + CLOCK);
        // phase 1 writes no local data: the phase-2 game does
        (bool set,) = _local(address(g), 1);
        assertFalse(set);
    }

    function test_create_oneStepModelStillGetsDisputeGame_succeeds() public {
        // a one-phase factory (DisputeBase's) creates a DisputeGame, not a PositionGame
        gameFactory = _newFactory(DEPTH);
        (,, DisputeGame g) = _open(GOOD, _finalState(GOOD, 9, 0, 1), BAD, _finalState(BAD, 9, 0, 1));
        assertFalse(gameFactory.isPositionGame(address(g)));
        assertFalse(gameFactory.twoPhase(gameFactory.modelKey(ROOT, PROGRAM)));
        assertEq(g.gameState().hi, uint64(1) << DEPTH);
    }

    function test_RevertIf_setSamplingParamsTwoPhaseNot20Bytes() public {
        DisputeGameFactory f =
            new DisputeGameFactory(owner, address(oracle), verifier, preimages, DEPTH, DEPTH, CLOCK);
        vm.startPrank(owner);
        vm.expectRevert(DisputeGameFactory.InvalidSamplingParams.selector);
        f.setSamplingParams(ROOT, PROGRAM, hex"0000004000", true);
        // write-once: the kind cannot be changed afterwards either
        f.setSamplingParams(ROOT, PROGRAM, SAMPLING, true);
        vm.expectRevert(DisputeGameFactory.InvalidSamplingParams.selector);
        f.setSamplingParams(ROOT, PROGRAM, SAMPLING, false);
        vm.stopPrank();
        assertTrue(f.twoPhase(f.modelKey(ROOT, PROGRAM)));
    }

    function test_RevertIf_initializeTwiceBadLengthOrNotFactory() public {
        (,, PositionGame g) = _honestDefender();
        vm.expectRevert(Bisection.NotFactory.selector);
        g.initialize(SAMPLING);
        vm.startPrank(address(gameFactory));
        vm.expectRevert(Bisection.NotFactory.selector);
        g.initialize(SAMPLING);
        vm.expectRevert(PositionGame.InvalidSamplingParams.selector);
        g.initialize(hex"00000040");
        vm.stopPrank();
    }

    function test_RevertIf_constructorBadConfig() public {
        vm.expectRevert(Bisection.InvalidConfig.selector);
        new PositionGame(address(this), 0, CLOCK);
        vm.expectRevert(Bisection.InvalidConfig.selector);
        new PositionGame(address(this), 64, CLOCK);
        vm.expectRevert(Bisection.InvalidConfig.selector);
        new PositionGame(address(this), 10, 0);
        vm.expectRevert(Bisection.InvalidConfig.selector);
        new PositionGame(address(0), 10, CLOCK);
    }

    function test_RevertIf_createTransitionNotPositionGame() public {
        (,, PositionGame g) = _honestDefender();
        GameParams memory p = g.params();
        vm.expectRevert(DisputeGameFactory.NotPositionGame.selector);
        gameFactory.createTransition(p, SAMPLING, bytes32(0));
        vm.prank(operator);
        vm.expectRevert(DisputeGameFactory.NotPositionGame.selector);
        gameFactory.createTransition(p, SAMPLING, bytes32(0));
    }

    // ---- claims bound to outputs ----

    function test_resultClaim_twoPhase_succeeds() public view {
        assertEq(gameFactory.resultClaim(ROOT, PROGRAM, GOOD, ""), keccak256(GOOD));
        assertEq(gameFactory.resultClaim(ROOT, PROGRAM, "", ""), keccak256(""), "the error outcome");
    }

    /// The attack: post a wrong output with the honest claim (`keccak256` of the true output), so that the
    /// honest challenger's claim equals the defender's and it cannot challenge. A two-phase claim is now the
    /// posted output's hash, computed on chain: any proof is refused, the wrong output carries its own
    /// claim, and the honest challenger's challenge opens a game it wins; the true output finalizes.
    function test_wrongOutputWithHonestClaim_twoPhase_isChallengedAndLoses() public {
        uint256 id = _request();
        vm.prank(operator);
        vm.expectRevert(DisputeGameFactory.UnboundClaim.selector);
        oracle.submit(id, BAD, abi.encode(keccak256(GOOD)));
        vm.prank(operator);
        oracle.submit(id, BAD, "");
        assertEq(oracle.getResult(id).claim, keccak256(BAD));
        uint256 did = _challenge(id, address(receiver), GOOD, "");
        PositionGame g = PositionGame(address(oracle.getDispute(did).game));
        PositionChain liar = _lyingChain(truth, 40);
        _bisectToOne(g, liar, truth);
        GameView memory v = g.gameState();
        bool honestOwns = !v.defenderOwnsHi;
        bytes memory honestState = _transitionState(truth.at(v.hi), 300, 0, 1);
        bytes memory lyingState = _transitionState(liar.at(v.hi), 300, 0, 1);
        SyntheticTrace vmTruth = _truth(300, honestState);
        DisputeGame child =
            honestOwns ? _claimBoth(g, honestState, lyingState) : _claimBoth(g, lyingState, honestState);
        SyntheticTrace vmLiar = _liar(vmTruth, 100, 300, lyingState);
        if (honestOwns) _play(child, vmTruth, vmLiar, false);
        else _play(child, vmLiar, vmTruth, false);
        _settleHonestWin(id, did, g, false);
    }

    // ---- phase 1 ----

    function test_move_firstAndVerdicts_succeeds() public {
        (,, PositionGame g) = _honestDefender();
        PositionChain liar = _lyingChain(truth, 40);
        // challenger opens at 33
        bytes32 mid = liar.at(33);
        vm.prank(challenger);
        vm.expectEmit(address(g));
        emit Bisection.Moved(false, false, 0, N, mid);
        g.move(false, mid);
        GameView memory v = g.gameState();
        assertEq(v.midHash, truth.at(33));
        assertTrue(v.defenderToMove);
        // defender agrees (the liar departs at 40): lo = 33, posts s_49
        _moveAs(g, operator, true, truth.at(49));
        v = g.gameState();
        assertEq(v.lo, 33);
        assertEq(v.loHash, truth.at(33));
        assertEq(v.mid, 49);
        // challenger disagrees: hi = 49 owned by the defender; posts s_41
        _moveAs(g, challenger, false, liar.at(41));
        v = g.gameState();
        assertEq(v.hi, 49);
        assertEq(v.hiHash, truth.at(49));
        assertTrue(v.defenderOwnsHi);
        // defender disagrees with s_41: hi = 41 owned by the challenger
        _moveAs(g, operator, false, truth.at(37));
        v = g.gameState();
        assertEq(v.hi, 41);
        assertEq(v.hiHash, liar.at(41));
        assertFalse(v.defenderOwnsHi);
    }

    function test_RevertIf_moveNotYourTurnOrZeroMidpoint() public {
        (,, PositionGame g) = _honestDefender();
        bytes32 mid = truth.at(33);
        vm.prank(operator);
        vm.expectRevert(Bisection.NotYourTurn.selector);
        g.move(false, mid);
        vm.prank(user);
        vm.expectRevert(Bisection.NotYourTurn.selector);
        g.move(false, mid);
        vm.prank(challenger);
        vm.expectRevert(Bisection.InvalidMidpoint.selector);
        g.move(false, bytes32(0));
    }

    function test_clock_chargesOnlyTheSideToMove() public {
        (,, PositionGame g) = _honestDefender();
        GameView memory v = _checkClocks(g, truth.at(33), truth.at(49));
        vm.warp(v.deadline + 1);
        bytes32 mid = truth.at(57);
        vm.prank(challenger);
        vm.expectRevert(Bisection.ClockExpired.selector);
        g.move(true, mid);
    }

    function test_RevertIf_moveAtOneIndex() public {
        (PositionGame g,) = _atOneIndex(30);
        GameView memory v = g.gameState();
        assertEq(v.lo, 29);
        assertEq(v.hi, 30);
        assertEq(v.midHash, bytes32(0), "no midpoint at one index");
        (, address who) = _mover(g);
        vm.prank(who);
        vm.expectRevert(Bisection.StepPhase.selector);
        g.move(true, bytes32(0));
    }

    // ---- claimTransition ----

    function test_RevertIf_claimTransitionBeforeOneIndex() public {
        (,, PositionGame g) = _honestDefender();
        vm.prank(challenger);
        vm.expectRevert(PositionGame.NotTransitionPhase.selector);
        g.claimTransition(_transitionState(keccak256(GOOD), 10, 0, 1));
    }

    function test_RevertIf_claimTransitionWrongTurn() public {
        (PositionGame g, PositionChain liar) = _atOneIndex(30);
        (bytes memory ownerState, bytes memory otherState) = _states(g, liar);
        (bool defender,) = _mover(g);
        address waiting = defender ? challenger : operator;
        vm.prank(waiting);
        vm.expectRevert(Bisection.NotYourTurn.selector);
        g.claimTransition(otherState);
        vm.prank(user);
        vm.expectRevert(Bisection.NotYourTurn.selector);
        g.claimTransition(ownerState);
    }

    /// @dev Checks for the owner of `hiHash` and for the other side, whichever claims first.
    function test_RevertIf_claimTransitionInvalidStates() public {
        (PositionGame g, PositionChain liar) = _atOneIndex(30);
        GameView memory v = g.gameState();
        (bool defender, address who) = _mover(g);
        bool owner = defender == v.defenderOwnsHi;
        bytes32 hi = v.hiHash;
        bytes[] memory bad = new bytes[](owner ? 6 : 5);
        bad[0] = new bytes(244); // length
        bad[1] = _transitionState(hi, 10, 0, 0); // running
        bad[2] = _transitionState(hi, (uint64(1) << DEPTH) + 1, 0, 1); // past the bound
        if (owner) {
            bad[3] = _transitionState(keccak256("other"), 10, 0, 1); // output != hiHash
            bad[4] = _transitionState(hi, 10, 1, 1); // exit code 1
            bad[5] = _transitionState(hi, 10, 0, 2); // panicked
        } else {
            bad[3] = _transitionState(hi, 10, 0, 1); // the owner's own claim: agrees with hiHash
            bad[4] = _transitionState(hi, 99, 0, 1); // any valid state with output hiHash
        }
        for (uint256 k = 0; k < bad.length; k++) {
            vm.prank(who);
            vm.expectRevert(PositionGame.InvalidFinalState.selector);
            g.claimTransition(bad[k]);
        }
        (bytes memory ownerState, bytes memory otherState) = _states(g, liar);
        _claimAs(g, who, owner ? ownerState : otherState);
        // now the other side: the same checks, the other way round
        (defender, who) = _mover(g);
        owner = !owner;
        bytes memory wrong = owner ? _transitionState(hi, 10, 3, 1) : _transitionState(hi, 10, 0, 1);
        vm.prank(who);
        vm.expectRevert(PositionGame.InvalidFinalState.selector);
        g.claimTransition(wrong);
        vm.prank(who);
        vm.expectRevert(PositionGame.InvalidFinalState.selector);
        g.claimTransition(_transitionState(owner ? hi : keccak256("x"), 10, 0, 0));
    }

    function test_claimTransition_otherSideMayAgreeOnOutputWithAFailedRun_succeeds() public {
        // the other side's run may end in the same output field with a non-zero exit: that is a dispute too
        (PositionGame g,) = _atOneIndex(30);
        bytes32 hi = g.gameState().hiHash;
        DisputeGame child = _claimBoth(g, _transitionState(hi, 10, 0, 1), _transitionState(hi, 10, 6, 1));
        assertEq(child.params().challengerOutputHash, hi);
        assertEq(uint8(child.params().challengerClaim[0]), 1, "exited non-zero");
    }

    function test_claimTransition_turnsAndClocks_succeeds() public {
        (PositionGame g, PositionChain liar) = _atOneIndex(30);
        (bytes memory ownerState, bytes memory otherState) = _states(g, liar);
        GameView memory v = g.gameState();
        bool firstDefender = v.defenderToMove;
        bool firstOwner = firstDefender == v.defenderOwnsHi;
        bytes memory first = firstOwner ? ownerState : otherState;
        vm.warp(block.timestamp + 100);
        uint32 clockBefore = firstDefender ? v.defenderClock : v.challengerClock;
        vm.expectEmit(address(g));
        emit PositionGame.TransitionClaimed(firstDefender, _hash(first));
        _claimAs(g, firstDefender ? operator : challenger, first);
        GameView memory w = g.gameState();
        assertEq(w.defenderToMove, !firstDefender, "the turn passes");
        assertEq(firstDefender ? w.defenderClock : w.challengerClock, clockBefore - 100 - 0, "charged");
        assertEq(address(g.transitionGame()), address(0));
        (bytes32 a, bytes32 b) = g.transitionClaims();
        assertEq(firstOwner ? a : b, _hash(first));
        assertEq(firstOwner ? b : a, bytes32(0));
        // the first claimer cannot claim again
        vm.prank(firstDefender ? operator : challenger);
        vm.expectRevert(Bisection.NotYourTurn.selector);
        g.claimTransition(first);
    }

    function _checkChild(uint64 lieFrom, uint8 mode) internal {
        (PositionGame g, PositionChain liar) = _atOneIndex(lieFrom);
        GameView memory v = g.gameState();
        uint64 i = lieFrom - 1;
        assertEq(v.lo, i);
        assertEq(v.hi, lieFrom);
        assertEq(v.loHash, truth.at(i), "s_i agreed");
        (bytes memory ownerState, bytes memory otherState) = _states(g, liar);
        bool firstOwner = v.defenderToMove == v.defenderOwnsHi;
        _claimAs(g, v.defenderToMove ? operator : challenger, firstOwner ? ownerState : otherState);
        // the second claim creates the child: the factory's event with the transition index (the game
        // address is not known yet)
        vm.expectEmit(true, false, false, true, address(gameFactory));
        emit DisputeGameFactory.TransitionGameCreated(address(g), address(0), i);
        _claimAs(g, v.defenderToMove ? challenger : operator, firstOwner ? otherState : ownerState);
        DisputeGame child = g.transitionGame();
        assertTrue(address(child) != address(0));
        assertEq(child.MAX_DEPTH(), DEPTH, "the transition depth, not the one-phase depth");
        assertEq(gameFactory.IMPLEMENTATION().MAX_DEPTH(), WHOLE_DEPTH);
        (bytes32 a, bytes32 b) = g.transitionClaims();
        assertEq(a, _hash(ownerState));
        assertEq(b, _hash(otherState));
        _checkChildParams(g, child, v, ownerState, otherState);
        assertEq(child.params().challengerOutputHash, v.defenderOwnsHi ? liar.at(lieFrom) : truth.at(lieFrom));
        _checkChildLocals(child, i, mode);
        // phase 1 is over
        vm.expectRevert(PositionGame.TransitionStarted.selector);
        g.claimTimeout();
        (, address who) = _mover(g);
        vm.prank(who);
        vm.expectRevert(PositionGame.TransitionStarted.selector);
        g.claimTransition(ownerState);
        assertEq(uint8(g.status()), uint8(GameStatus.IN_PROGRESS));
    }

    function _checkChildParams(
        PositionGame g,
        DisputeGame child,
        GameView memory v,
        bytes memory ownerState,
        bytes memory otherState
    ) internal view {
        GameParams memory p = child.params();
        GameParams memory q = g.params();
        assertEq(p.requestId, q.requestId);
        assertEq(p.modelRoot, ROOT);
        assertEq(p.programHash, PROGRAM);
        assertEq(p.inputHash, keccak256(INPUT));
        (address owner, address other) = v.defenderOwnsHi ? (operator, challenger) : (challenger, operator);
        assertEq(p.submitter, owner, "phase-2 defender = owner of hiHash");
        assertEq(p.submitterClaim, _hash(ownerState));
        assertEq(p.submitterOutputHash, v.hiHash);
        assertEq(p.challenger, other);
        assertEq(p.challengerClaim, _hash(otherState));
        GameView memory c = child.gameState();
        assertEq(uint8(c.status), uint8(GameStatus.IN_PROGRESS));
        assertEq(c.loHash, PROGRAM);
        assertEq(c.hiHash, _hash(ownerState));
        assertEq(c.hi, uint64(1) << DEPTH);
        assertEq(c.deadline, block.timestamp + CLOCK);
    }

    /// @dev Local data of the child: 1, 2, then params ‖ mode (21 bytes), then s_i for modes 2 and 3.
    function _checkChildLocals(DisputeGame child, uint64 i, uint8 mode) internal view {
        (bool set, bytes32 digest) = _local(address(child), 1);
        assertTrue(set);
        assertEq(digest, keccak256(abi.encodePacked(ROOT)));
        (set, digest) = _local(address(child), 2);
        assertEq(digest, keccak256(abi.encodePacked(keccak256(INPUT))));
        (set, digest) = _local(address(child), 3);
        assertTrue(set);
        assertEq(digest, keccak256(abi.encodePacked(SAMPLING, mode)), "params || mode");
        (set, digest) = _local(address(child), 4);
        if (mode == 1) {
            assertFalse(set, "no pre-state for init");
        } else {
            assertTrue(set);
            assertEq(digest, keccak256(abi.encodePacked(truth.at(i))), "local 4 = s_i");
        }
    }

    function test_claimTransition_createsChild_init_succeeds() public {
        _checkChild(1, 1);
    }

    function test_claimTransition_createsChild_position_succeeds() public {
        _checkChild(30, 2);
    }

    function test_claimTransition_createsChild_lastPosition_succeeds() public {
        _checkChild(N - 1, 2);
    }

    function test_claimTransition_createsChild_output_succeeds() public {
        _checkChild(N, 3);
    }

    // ---- status mapping ----

    /// @dev Phase 1 with the defender lying from `lieFrom` or the challenger; returns the game at one index
    ///      with both claims in.
    function _child(bool defenderHonest, uint64 lieFrom)
        internal
        returns (PositionGame g, DisputeGame child)
    {
        (,, g) = defenderHonest ? _openPosition(GOOD, BAD) : _openPosition(BAD, GOOD);
        PositionChain liar = _lyingChain(truth, lieFrom);
        _bisectToOne(g, defenderHonest ? truth : liar, defenderHonest ? liar : truth);
        GameView memory v = g.gameState();
        bool defenderOwns = v.defenderOwnsHi;
        PositionChain otherChain = (defenderOwns == defenderHonest) ? liar : truth;
        child = _claimBoth(
            g, _transitionState(v.hiHash, 10, 0, 1), _transitionState(otherChain.at(v.hi), 10, 0, 1)
        );
    }

    /// @dev Every combination of who owns `hiHash` and who wins phase 2 (decided here by timeouts).
    function test_status_mapsChildOutcome_succeeds() public {
        uint256 seen;
        for (uint64 lieFrom = 2; lieFrom < N && seen != 15; lieFrom += 3) {
            for (uint256 k = 0; k < 4; k++) {
                uint256 snap = vm.snapshotState();
                bool defenderHonest = k & 1 == 0;
                bool ownerWins = k & 2 == 0;
                (PositionGame g, DisputeGame child) = _child(defenderHonest, lieFrom);
                bool defenderOwns = g.gameState().defenderOwnsHi;
                if (!ownerWins) {
                    // the phase-2 challenger opens, then the phase-2 defender stays silent
                    vm.prank(child.params().challenger);
                    child.move(false, keccak256("mid"));
                }
                vm.warp(block.timestamp + CLOCK + 1);
                child.claimTimeout();
                GameStatus expected =
                    (ownerWins == defenderOwns) ? GameStatus.DEFENDER_WINS : GameStatus.CHALLENGER_WINS;
                assertEq(uint8(g.status()), uint8(expected));
                assertEq(uint8(g.gameState().status), uint8(expected));
                // final forever
                vm.warp(block.timestamp + 365 days);
                assertEq(uint8(g.status()), uint8(expected));
                vm.expectRevert(Bisection.GameOver.selector);
                child.claimTimeout();
                vm.expectRevert(PositionGame.TransitionStarted.selector);
                g.claimTimeout();
                seen |= 2 ** ((defenderOwns ? 1 : 0) + (ownerWins ? 2 : 0));
                vm.revertToState(snap);
            }
        }
        assertEq(seen, 15, "all four (owner, winner) combinations seen");
    }

    // ---- timeouts ----

    function test_claimTimeout_silentChallenger_defenderWins() public {
        (,, PositionGame g) = _honestDefender();
        vm.expectRevert(Bisection.ClockNotExpired.selector);
        g.claimTimeout();
        vm.warp(block.timestamp + CLOCK + 1);
        vm.expectEmit(address(g));
        emit Bisection.Resolved(GameStatus.DEFENDER_WINS);
        vm.prank(user);
        g.claimTimeout();
        assertEq(uint8(g.status()), uint8(GameStatus.DEFENDER_WINS));
        vm.expectRevert(Bisection.GameOver.selector);
        g.claimTimeout();
        bytes32 mid = truth.at(33);
        vm.prank(challenger);
        vm.expectRevert(Bisection.GameOver.selector);
        g.move(false, mid);
    }

    function test_claimTimeout_silentDefender_challengerWins() public {
        (uint256 id, uint256 did, PositionGame g) = _openPosition(BAD, GOOD);
        _moveAs(g, challenger, false, truth.at(33));
        vm.warp(block.timestamp + CLOCK + 1);
        g.claimTimeout();
        assertEq(uint8(g.status()), uint8(GameStatus.CHALLENGER_WINS));
        oracle.resolveDispute(did);
        assertEq(oracle.getResult(id).outputHash, keccak256(GOOD), "replaced");
        vm.warp(block.timestamp + 365 days);
        assertEq(uint8(g.status()), uint8(GameStatus.CHALLENGER_WINS), "final forever");
    }

    function test_claimTimeout_inClaimTurns() public {
        for (uint256 k = 0; k < 2; k++) {
            uint256 snap = vm.snapshotState();
            (PositionGame g, PositionChain liar) = _atOneIndex(30);
            (bytes memory ownerState, bytes memory otherState) = _states(g, liar);
            GameView memory v = g.gameState();
            bool silentDefender = v.defenderToMove;
            if (k == 1) {
                // the first claim is in; the second claimer stays silent
                _claimAs(
                    g,
                    v.defenderToMove ? operator : challenger,
                    v.defenderToMove == v.defenderOwnsHi ? ownerState : otherState
                );
                silentDefender = !silentDefender;
            }
            uint256 deadline = g.gameState().deadline;
            vm.warp(deadline);
            vm.expectRevert(Bisection.ClockNotExpired.selector);
            g.claimTimeout();
            vm.warp(deadline + 1);
            (, address who) = _mover(g);
            vm.prank(who);
            vm.expectRevert(Bisection.ClockExpired.selector);
            g.claimTransition(ownerState);
            g.claimTimeout();
            assertEq(
                uint8(g.status()),
                uint8(silentDefender ? GameStatus.CHALLENGER_WINS : GameStatus.DEFENDER_WINS),
                "the silent side loses"
            );
            assertEq(address(g.transitionGame()), address(0));
            vm.revertToState(snap);
        }
    }
}
