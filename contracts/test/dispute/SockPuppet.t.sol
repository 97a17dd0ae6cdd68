// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIOracle} from "../../src/AIOracle.sol";
import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {DisputeGameFactory} from "../../src/dispute/DisputeGameFactory.sol";
import {GameStatus} from "../../src/interfaces/IDisputeGame.sol";
import {DisputeBase} from "./DisputeBase.sol";

/// @notice The sock-puppet replacement attack, through the real AIOracle, factory and games: the operator
///         posts a wrong result, its own second address challenges it with an output of its choice and the
///         operator throws that game, so the puppet's output replaces the wrong result (with a fresh window)
///         while the honest challenger's game against the original is stalled. Before the fix the puppet
///         took the slashed bond's reward at once and the honest challenger, winning later against a result
///         already replaced, only got its bond back; a wrong claim installed again could not be challenged
///         again by anyone who had challenged it before.
contract SockPuppetTest is DisputeBase {
    uint64 internal constant LEN = 300;
    bytes internal constant JUNK = "junk";
    address internal honest = makeAddr("honest");
    address internal puppet = makeAddr("puppet");
    bytes internal goodState;
    bytes internal badState;
    bytes internal junkState;

    function setUp() public override {
        super.setUp();
        goodState = _finalState(GOOD, LEN, 0, 1);
        badState = _finalState(BAD, LEN, 0, 1);
        junkState = _finalState(JUNK, LEN, 0, 1);
        _truth(LEN, goodState);
    }

    function _gameOf(uint256 did) internal view returns (DisputeGame) {
        return DisputeGame(address(oracle.getDispute(did).game));
    }

    /// @dev The challenger of `did` opens its game (any midpoint will do: the defender never answers).
    function _open(uint256 did) internal {
        DisputeGame g = _gameOf(did);
        vm.prank(g.params().challenger);
        g.move(false, keccak256(abi.encode("mid", did)));
    }

    /// @dev Past every clock: every game whose side to move is silent ends against it.
    function _timeOut(uint256[] memory dids) internal {
        vm.warp(block.timestamp + CLOCK + 1);
        for (uint256 i = 0; i < dids.length; i++) {
            _gameOf(dids[i]).claimTimeout();
        }
    }

    function _one(uint256 a) internal pure returns (uint256[] memory l) {
        l = new uint256[](1);
        l[0] = a;
    }

    function _two(uint256 a, uint256 b) internal pure returns (uint256[] memory l) {
        l = new uint256[](2);
        (l[0], l[1]) = (a, b);
    }

    function _finalizeGood(uint256 id) internal {
        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, GOOD);
        assertEq(receiver.lastOutput(), GOOD, "the true output is delivered");
    }

    /// The attack played out: the puppet's dispute resolves first and installs its own output; the honest
    /// challenger's win against the original comes later, against a replaced version, then it challenges and
    /// beats the puppet's output. The slashed bonds went into the pot, not to the puppet: at finality both of
    /// the honest challenger's winning disputes share it, the puppet (slashed) gets nothing.
    function test_sockPuppetReplacement_honestChallengerRewardedThoughPuppetResolvedFirst() public {
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, BAD, badState);
        uint256 dH = _challengeAs(honest, id, address(receiver), GOOD, goodState);
        uint256 dP = _challengeAs(puppet, id, address(receiver), JUNK, junkState);
        _open(dH);
        _open(dP);
        // the operator answers neither game (it stalls the honest one and throws the puppet's)
        _timeOut(_two(dH, dP));
        assertEq(uint8(_gameOf(dH).status()), uint8(GameStatus.CHALLENGER_WINS));
        oracle.resolveDispute(dP);
        assertEq(oracle.getResult(id).claim, _hash(junkState), "the puppet's output replaced the result");
        assertEq(oracle.getResult(id).version, 1);
        assertEq(oracle.balanceOf(puppet, address(0)), 0, "no reward before finality");
        assertEq(oracle.getPot(id).amount, SUBMISSION_BOND, "the operator's bond is in the pot");
        oracle.resolveDispute(dH);
        assertEq(uint8(oracle.getDispute(dH).status), uint8(AIOracle.DisputeStatus.CHALLENGER_WON), "held");

        // the puppet's output is wrong: the honest challenger challenges the new version and wins
        uint256 dH2 = _challengeAs(honest, id, address(receiver), GOOD, goodState);
        _open(dH2);
        _timeOut(_one(dH2));
        oracle.resolveDispute(dH2);
        assertEq(uint8(oracle.getDispute(dP).status), uint8(AIOracle.DisputeStatus.SLASHED));
        _finalizeGood(id);

        uint256 pot = uint256(SUBMISSION_BOND) + CHALLENGE_BOND;
        uint256 share = pot * REWARD_BPS / 10_000 / 2;
        assertEq(oracle.claimReward(dH), CHALLENGE_BOND + share);
        assertEq(oracle.claimReward(dH2), CHALLENGE_BOND + share);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.NothingToClaim.selector, dP));
        oracle.claimReward(dP);
        assertEq(oracle.balanceOf(puppet, address(0)), 0, "the puppet lost its bond");
        assertEq(oracle.balanceOf(honest, address(0)), 2 * CHALLENGE_BOND + 2 * share + OP_SHARE);
        assertGt(oracle.balanceOf(honest, address(0)), 2 * CHALLENGE_BOND, "more than its two bonds back");
        assertEq(address(oracle).balance, _owed() + oracle.balanceOf(honest, address(0)), "conservation");
    }

    /// Replacement results are bound exactly like submissions: the puppet cannot install an output with a
    /// final state that commits to another output (the honest one, or the operator's).
    function test_RevertIf_sockPuppetReplacementUnbound() public {
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, BAD, badState);
        vm.expectRevert(DisputeGameFactory.UnboundClaim.selector);
        _challengeAs(puppet, id, address(receiver), JUNK, goodState);
        vm.expectRevert(DisputeGameFactory.UnboundClaim.selector);
        _challengeAs(puppet, id, address(receiver), GOOD, junkState);
        vm.expectRevert(DisputeGameFactory.UnboundClaim.selector);
        _challengeAs(puppet, id, address(receiver), JUNK, "");
    }

    /// A wrong claim installed again later is a new version: whoever challenged it before may challenge it
    /// again (keyed by claim, the honest challenger's earlier challenge squatted its re-challenge, and the
    /// re-installed wrong output finalized).
    function test_rechallengeOfReinstalledWrongClaim_notSquattable() public {
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, BAD, badState);
        uint256 dH = _challengeAs(honest, id, address(receiver), GOOD, goodState);
        uint256 dP = _challengeAs(puppet, id, address(receiver), JUNK, junkState);
        _open(dH);
        _open(dP);
        _timeOut(_two(dH, dP));
        oracle.resolveDispute(dP); // JUNK, version 1
        oracle.resolveDispute(dH); // stale
        // the operator challenges the puppet's result with its own wrong output again; the puppet throws
        uint256 dO = _challengeAs(operator, id, address(receiver), BAD, badState);
        _open(dO);
        _timeOut(_one(dO));
        oracle.resolveDispute(dO);
        assertEq(oracle.getResult(id).claim, _hash(badState), "the wrong claim is back");
        assertEq(oracle.getResult(id).version, 2);
        assertFalse(oracle.hasChallenged(id, 2, honest));
        // the honest challenger challenges it again
        uint256 dH2 = _challengeAs(honest, id, address(receiver), GOOD, goodState);
        vm.expectRevert(AIOracle.AlreadyChallenged.selector);
        _challengeAs(honest, id, address(receiver), GOOD, goodState);
        _open(dH2);
        _timeOut(_one(dH2));
        oracle.resolveDispute(dH2);
        _finalizeGood(id);
        // pot: the operator's bond (v0), the puppet's (v1), the operator's challenge bond (v2)
        uint256 pot = uint256(SUBMISSION_BOND) + 2 * CHALLENGE_BOND;
        uint256 share = pot * REWARD_BPS / 10_000 / 2;
        assertEq(oracle.claimReward(dH) + oracle.claimReward(dH2), 2 * (CHALLENGE_BOND + share));
    }

    /// Rewards do not depend on who resolves first: a puppet holding the true claim shares the pot equally
    /// with the honest challenger, whichever dispute installs the truth.
    function test_sockPuppetWithTrueClaim_sharesEquallyWhateverTheOrder() public {
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, BAD, badState);
        uint256 dH = _challengeAs(honest, id, address(receiver), GOOD, goodState);
        uint256 dP = _challengeAs(puppet, id, address(receiver), GOOD, goodState);
        _open(dH);
        _open(dP);
        _timeOut(_two(dH, dP));
        uint256 share = uint256(SUBMISSION_BOND) * REWARD_BPS / 10_000 / 2;
        for (uint256 k = 0; k < 2; k++) {
            uint256 snap = vm.snapshotState();
            (uint256 first, uint256 second) = k == 0 ? (dP, dH) : (dH, dP);
            oracle.resolveDispute(first);
            oracle.resolveDispute(second);
            assertEq(oracle.getResult(id).submitter, oracle.getDispute(first).challenger);
            _finalizeGood(id);
            assertEq(oracle.claimReward(dH), CHALLENGE_BOND + share, "the honest challenger's reward");
            assertEq(oracle.claimReward(dP), CHALLENGE_BOND + share, "the puppet's, the same");
            vm.revertToState(snap);
        }
    }
}
