// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIOracle} from "../../src/AIOracle.sol";
import {Bisection, GameView} from "../../src/dispute/Bisection.sol";
import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {DisputeGameFactory} from "../../src/dispute/DisputeGameFactory.sol";
import {IStepVerifier} from "../../src/dispute/IStepVerifier.sol";
import {GameParams, GameStatus} from "../../src/interfaces/IDisputeGame.sol";
import {PreimageOracle} from "../../src/vm/PreimageOracle.sol";
import {DisputeBase, SyntheticTrace, TraceVerifier} from "./DisputeBase.sol";

/// @notice Every move and revert of the game, through the real AIOracle and factory over a synthetic trace.
contract DisputeGameTest is DisputeBase {
    uint64 internal constant LEN = 300;
    bytes internal goodState;
    bytes internal badState;
    SyntheticTrace internal truth;

    function setUp() public override {
        super.setUp();
        goodState = _finalState(GOOD, LEN, 0, 1);
        badState = _finalState(BAD, LEN, 0, 1);
        truth = _truth(LEN, goodState);
    }

    /// @dev An honest submitter challenged by a liar whose trace departs at `lieFrom`.
    function _openHonestDefender() internal returns (uint256 id, uint256 did, DisputeGame g) {
        return _open(GOOD, goodState, BAD, badState);
    }

    // ---- creation ----

    function test_create_succeeds() public {
        (uint256 id,, DisputeGame g) = _openHonestDefender();
        assertEq(gameFactory.gameCount(), 1);
        assertEq(address(gameFactory.games(0)), address(g));
        GameParams memory p = g.params();
        assertEq(p.requestId, id);
        assertEq(p.submitter, operator);
        assertEq(p.challenger, challenger);
        assertEq(p.modelRoot, ROOT);
        assertEq(p.programHash, PROGRAM);
        assertEq(p.inputHash, keccak256(INPUT));
        assertEq(p.submitterClaim, _hash(goodState));
        assertEq(p.challengerClaim, _hash(badState));
        GameView memory v = g.gameState();
        assertEq(uint8(v.status), uint8(GameStatus.IN_PROGRESS));
        assertEq(v.lo, 0);
        assertEq(v.hi, uint64(1) << DEPTH);
        assertEq(v.loHash, PROGRAM, "the absolute prestate");
        assertEq(v.hiHash, _hash(goodState), "the defender's claim");
        assertEq(v.midHash, bytes32(0));
        assertFalse(v.defenderToMove, "the challenger moves first");
        assertTrue(v.defenderOwnsHi);
        assertEq(v.deadline, block.timestamp + CLOCK);
        // local data under the game's own localization, not the caller's
        bytes[3] memory data = [abi.encodePacked(ROOT), abi.encodePacked(keccak256(INPUT)), SAMPLING];
        for (uint64 ident = 1; ident <= 3; ident++) {
            bytes32 key = preimages.localize(preimages.localKey(ident), address(g), g.LOCAL_CONTEXT());
            (bool set, bytes32 digest) = preimages.localData(key);
            assertTrue(set);
            assertEq(digest, keccak256(data[ident - 1]));
        }
    }

    function test_RevertIf_createNotAIOracle() public {
        GameParams memory p;
        p.modelRoot = ROOT;
        p.programHash = PROGRAM;
        vm.expectRevert(DisputeGameFactory.NotAIOracle.selector);
        gameFactory.create(p);
    }

    function test_RevertIf_createModelNotConfigured() public {
        DisputeGameFactory f =
            new DisputeGameFactory(owner, address(oracle), verifier, preimages, DEPTH, DEPTH, CLOCK);
        _registerWith(f);
        uint256 id = _request();
        bytes32 key = f.modelKey(ROOT, PROGRAM);
        // no claim can be bound for an unconfigured model, so nothing can be submitted
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(DisputeGameFactory.ModelNotConfigured.selector, key));
        oracle.submit(id, GOOD, goodState);
        vm.expectRevert(abi.encodeWithSelector(DisputeGameFactory.ModelNotConfigured.selector, key));
        f.resultClaim(ROOT, PROGRAM, GOOD, goodState);
    }

    function test_RevertIf_setSamplingParamsTwiceEmptyOrNotOwner() public {
        vm.startPrank(owner);
        vm.expectRevert(DisputeGameFactory.InvalidSamplingParams.selector);
        gameFactory.setSamplingParams(ROOT, PROGRAM, hex"01", false);
        vm.expectRevert(DisputeGameFactory.InvalidSamplingParams.selector);
        gameFactory.setSamplingParams(ROOT, keccak256("other"), "", false);
        vm.stopPrank();
        vm.expectRevert();
        gameFactory.setSamplingParams(ROOT, keccak256("other"), hex"01", false);
    }

    function test_RevertIf_initializeTwiceOrImplementation() public {
        (,, DisputeGame g) = _openHonestDefender();
        vm.prank(address(gameFactory));
        vm.expectRevert(Bisection.NotFactory.selector);
        g.initialize(SAMPLING, bytes32(0));
        vm.expectRevert(Bisection.NotFactory.selector);
        g.initialize(SAMPLING, bytes32(0));
        DisputeGame impl = gameFactory.IMPLEMENTATION();
        vm.prank(address(gameFactory));
        vm.expectRevert(); // the implementation has no clone arguments
        impl.initialize(SAMPLING, bytes32(0));
    }

    function test_RevertIf_constructorBadConfig() public {
        vm.expectRevert(Bisection.InvalidConfig.selector);
        new DisputeGame(verifier, preimages, address(this), 0, CLOCK);
        vm.expectRevert(Bisection.InvalidConfig.selector);
        new DisputeGame(verifier, preimages, address(this), 64, CLOCK);
        vm.expectRevert(Bisection.InvalidConfig.selector);
        new DisputeGame(verifier, preimages, address(this), 10, 0);
    }

    function test_RevertIf_challengeAfterWindowOrTwice() public {
        (uint256 id,,) = _openHonestDefender();
        // the same challenger against the same result: once
        vm.expectRevert(AIOracle.AlreadyChallenged.selector);
        _challenge(id, address(receiver), BAD, badState);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectRevert(AIOracle.ChallengeWindowClosed.selector);
        _challengeAs(user, id, address(receiver), BAD, badState);
        assertEq(gameFactory.gameCount(), 1);
    }

    // ---- claims bound to outputs (the factory's resultClaim, at submission and at challenge) ----

    function test_resultClaim_onePhase_succeeds() public view {
        assertEq(gameFactory.resultClaim(ROOT, PROGRAM, GOOD, goodState), _hash(goodState));
        assertEq(uint8(_hash(goodState)[0]), 0, "exited 0");
        // the bound is inclusive: a trace of exactly 2^DEPTH steps still ends at the claims' position
        bytes memory atBound = _finalState(GOOD, uint64(1) << DEPTH, 0, 1);
        assertEq(gameFactory.resultClaim(ROOT, PROGRAM, GOOD, atBound), _hash(atBound));
        // the error outcome of a rejected request: exit 0 with the empty output
        bytes memory rejected = _finalState("", 77, 0, 1);
        assertEq(gameFactory.resultClaim(ROOT, PROGRAM, "", rejected), _hash(rejected));
    }

    /// The attack: post a wrong output with the honest claim (the true final state), so that an honest
    /// challenger, holding the same claim, cannot challenge (`claim == defenderClaim`). The claim is now
    /// computed from the output and its final state: that submission reverts, at submission and at
    /// challenge; the operator must post its wrong output with a final state committing to it, which the
    /// honest challenger's true state differs from.
    function test_RevertIf_wrongOutputWithHonestClaim_onePhase() public {
        uint256 id = _request();
        vm.prank(operator);
        vm.expectRevert(DisputeGameFactory.UnboundClaim.selector);
        oracle.submit(id, BAD, goodState);
        // a lying challenger cannot borrow the honest state either
        vm.prank(operator);
        oracle.submit(id, GOOD, goodState);
        vm.expectRevert(DisputeGameFactory.UnboundClaim.selector);
        _challenge(id, address(receiver), BAD, goodState);
        // the honest way round works: a wrong output with its own state is challengeable by the truth
        uint256 id2 = _request();
        vm.prank(operator);
        oracle.submit(id2, BAD, badState);
        uint256 did = _challenge(id2, address(receiver), GOOD, goodState);
        assertEq(oracle.getDispute(did).claim, _hash(goodState));
        assertEq(oracle.getResult(id2).claim, _hash(badState));
    }

    function test_RevertIf_submitUnboundState() public {
        uint256 id = _request();
        bytes[6] memory bad = [
            new bytes(244), // length
            _finalState(GOOD, LEN, 0, 0), // running
            _finalState(GOOD, (uint64(1) << DEPTH) + 1, 0, 1), // past the bound
            _finalState(GOOD, LEN, 4, 1), // exited with code 4
            _finalState(GOOD, LEN, 1, 2), // panicked
            _finalState(BAD, LEN, 0, 1) // another output
        ];
        for (uint256 k = 0; k < bad.length; k++) {
            vm.prank(operator);
            vm.expectRevert(DisputeGameFactory.UnboundClaim.selector);
            oracle.submit(id, GOOD, bad[k]);
        }
        vm.prank(operator);
        vm.expectRevert(DisputeGameFactory.UnboundClaim.selector);
        oracle.submit(id, GOOD, ""); // a one-phase model needs its final state
    }

    // ---- moves ----

    function test_move_firstAndVerdicts_succeeds() public {
        (,, DisputeGame g) = _openHonestDefender();
        SyntheticTrace liar = _liar(truth, 700, LEN, badState);
        uint64 top = uint64(1) << DEPTH;
        // challenger: no verdict, its hash at 512
        bytes32 mid = liar.at(512);
        vm.prank(challenger);
        vm.expectEmit(address(g));
        emit Bisection.Moved(false, false, 0, top, mid);
        g.move(false, mid);
        GameView memory v = g.gameState();
        assertEq(v.midHash, truth.at(512));
        assertTrue(v.defenderToMove);
        // defender agrees (the liar departs at 700): lo = 512; posts its hash at 768
        _moveAs(g, operator, true, truth.at(768));
        v = g.gameState();
        assertEq(v.lo, 512);
        assertEq(v.loHash, truth.at(512));
        assertEq(v.hi, top);
        assertEq(v.mid, 768);
        assertTrue(v.defenderOwnsHi);
        assertFalse(v.defenderToMove);
        // challenger disagrees: hi = 768, owned by the defender who posted it; posts its hash at 640
        _moveAs(g, challenger, false, liar.at(640));
        v = g.gameState();
        assertEq(v.hi, 768);
        assertEq(v.hiHash, truth.at(768));
        assertTrue(v.defenderOwnsHi);
        // defender agrees at 640: lo = 640, posts 704
        _moveAs(g, operator, true, truth.at(704));
        // challenger agrees with 704? its trace departs at 700, so no: hi = 704 owned by the defender
        _moveAs(g, challenger, false, liar.at(672));
        v = g.gameState();
        assertEq(v.lo, 640);
        assertEq(v.hi, 704);
        assertEq(v.mid, 672);
    }

    function test_RevertIf_moveNotYourTurn() public {
        (,, DisputeGame g) = _openHonestDefender();
        bytes32 mid = truth.at(512);
        vm.prank(operator);
        vm.expectRevert(Bisection.NotYourTurn.selector);
        g.move(false, mid);
        vm.prank(user);
        vm.expectRevert(Bisection.NotYourTurn.selector);
        g.move(false, mid);
    }

    function test_RevertIf_moveZeroMidpoint() public {
        (,, DisputeGame g) = _openHonestDefender();
        vm.prank(challenger);
        vm.expectRevert(Bisection.InvalidMidpoint.selector);
        g.move(false, bytes32(0));
    }

    function test_RevertIf_moveClockExpired() public {
        (,, DisputeGame g) = _openHonestDefender();
        vm.warp(block.timestamp + CLOCK + 1);
        vm.prank(challenger);
        vm.expectRevert(Bisection.ClockExpired.selector);
        g.move(false, keccak256("x"));
    }

    function test_clock_chargesOnlyTheSideToMove() public {
        (,, DisputeGame g) = _openHonestDefender();
        _checkClocks(g, truth.at(512), truth.at(768));
    }

    /// @dev Plays the first DEPTH verdicts (both sides honest about everything but the end) so that the
    ///      range is one step, with the side to move being the one that gave the last verdict.
    function _toOneStep(DisputeGame g, SyntheticTrace liar) internal {
        _bisectToOne(g, truth, liar);
    }

    function test_RevertIf_moveAtOneStepOrMidpointThere() public {
        (,, DisputeGame g) = _openHonestDefender();
        SyntheticTrace liar = _liar(truth, 123, LEN, badState);
        // play until the next verdict leaves one step, then try to post a midpoint with it
        while (true) {
            GameView memory v = g.gameState();
            (bool agree, bytes32 mid) = _nextMove(g, v.defenderToMove ? truth : liar);
            vm.prank(v.defenderToMove ? operator : challenger);
            if (mid == bytes32(0)) {
                vm.expectRevert(Bisection.InvalidMidpoint.selector);
                g.move(agree, keccak256("x"));
                vm.prank(v.defenderToMove ? operator : challenger);
                g.move(agree, bytes32(0));
                break;
            }
            g.move(agree, mid);
        }
        GameView memory w = g.gameState();
        assertEq(w.hi - w.lo, 1);
        assertEq(w.lo, 122, "the last agreed step");
        vm.prank(w.defenderToMove ? operator : challenger);
        vm.expectRevert(Bisection.StepPhase.selector);
        g.move(true, bytes32(0));
    }

    // ---- step ----

    function test_RevertIf_stepNotStepPhase() public {
        (,, DisputeGame g) = _openHonestDefender();
        vm.expectRevert(DisputeGame.NotStepPhase.selector);
        g.step(abi.encode(uint64(0)), "");
    }

    function test_step_honestDefender_succeeds() public {
        (uint256 id, uint256 did, DisputeGame g) = _openHonestDefender();
        SyntheticTrace liar = _liar(truth, 123, LEN, badState);
        _toOneStep(g, liar);
        GameView memory v = g.gameState();
        vm.expectRevert(TraceVerifier.BadPreState.selector);
        g.step(abi.encode(uint64(v.lo + 1)), "");
        vm.expectEmit(address(g));
        emit DisputeGame.StepVerified(122, truth.at(123));
        g.step(abi.encode(uint64(v.lo)), "");
        assertEq(uint8(g.status()), uint8(GameStatus.DEFENDER_WINS));
        vm.expectRevert(Bisection.GameOver.selector);
        g.step(abi.encode(uint64(v.lo)), "");
        vm.expectRevert(Bisection.GameOver.selector);
        g.claimTimeout();
        // AIOracle: the challenge bond goes to the defender, the result stays
        oracle.resolveDispute(did);
        assertEq(oracle.balanceOf(operator, address(0)), CHALLENGE_BOND);
        assertEq(oracle.getResult(id).outputHash, keccak256(GOOD));
    }

    function test_RevertIf_stepAfterClock() public {
        (,, DisputeGame g) = _openHonestDefender();
        _toOneStep(g, _liar(truth, 123, LEN, badState));
        vm.warp(g.gameState().deadline + 1);
        vm.expectRevert(Bisection.ClockExpired.selector);
        g.step(abi.encode(uint64(122)), "");
    }

    // ---- timeouts ----

    function test_claimTimeout_silentChallenger_defenderWins() public {
        (,, DisputeGame g) = _openHonestDefender();
        vm.expectRevert(Bisection.ClockNotExpired.selector);
        g.claimTimeout();
        vm.warp(block.timestamp + CLOCK);
        vm.expectRevert(Bisection.ClockNotExpired.selector);
        g.claimTimeout();
        vm.warp(block.timestamp + 1);
        vm.prank(user);
        g.claimTimeout();
        assertEq(uint8(g.status()), uint8(GameStatus.DEFENDER_WINS));
    }

    function test_claimTimeout_silentDefender_challengerWins() public {
        (uint256 id, uint256 did, DisputeGame g) = _open(BAD, badState, GOOD, goodState);
        _moveAs(g, challenger, false, truth.at(512));
        vm.warp(block.timestamp + CLOCK + 1);
        g.claimTimeout();
        assertEq(uint8(g.status()), uint8(GameStatus.CHALLENGER_WINS));
        oracle.resolveDispute(did);
        assertEq(oracle.getResult(id).outputHash, keccak256(GOOD), "replaced");
    }

    // ---- whole games ----

    function test_game_honestDefenderAgainstLiar_succeeds() public {
        (uint256 id, uint256 did, DisputeGame g) = _openHonestDefender();
        uint256 moves = _play(g, truth, _liar(truth, 77, LEN, badState), false);
        assertEq(moves, DEPTH + 2, "DEPTH + 1 moves and the step");
        assertEq(uint8(g.status()), uint8(GameStatus.DEFENDER_WINS));
        oracle.resolveDispute(did);
        vm.warp(block.timestamp + WINDOW + 1);
        _finalizeWith(id, GOOD);
    }

    function test_game_honestChallengerAgainstLyingSubmitter_succeeds() public {
        (uint256 id, uint256 did, DisputeGame g) = _open(BAD, badState, GOOD, goodState);
        _play(g, _liar(truth, 250, LEN, badState), truth, false);
        assertEq(uint8(g.status()), uint8(GameStatus.CHALLENGER_WINS));
        oracle.resolveDispute(did);
        vm.warp(block.timestamp + WINDOW + 1);
        _finalizeWith(id, GOOD);
    }

    function test_game_lieAfterHalt_fixedPoint_succeeds() public {
        // the liar claims a longer trace: it agrees on every state up to the honest halt, and departs after
        bytes memory longer = _finalState(BAD, LEN + 200, 0, 1);
        (,, DisputeGame g) = _open(GOOD, goodState, BAD, longer);
        _play(g, truth, _liar(truth, LEN + 1, LEN + 200, longer), false);
        assertEq(uint8(g.status()), uint8(GameStatus.DEFENDER_WINS));
    }

    function _finalizeWith(uint256 id, bytes memory output) internal {
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, output);
        assertEq(receiver.lastOutput(), output);
    }
}
