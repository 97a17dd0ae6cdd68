// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Bisection, GameView} from "../../src/dispute/Bisection.sol";
import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {DisputeGameFactory} from "../../src/dispute/DisputeGameFactory.sol";
import {PositionGame} from "../../src/dispute/PositionGame.sol";
import {DisputeBase, ITrace} from "./DisputeBase.sol";

/// @notice A synthetic phase-1 chain `s_0 .. s_N`: `s_0` the request commitment, `s_N` the output hash, the
///         others `keccak256(seed, i)`. A lying chain follows `truth` below `lieFrom` and its own after.
contract PositionChain is ITrace {
    bytes32 public immutable START;
    bytes32 public immutable SEED;
    uint64 public immutable N;
    bytes32 public immutable OUTPUT;
    PositionChain public immutable TRUTH;
    uint64 public immutable LIE_FROM;

    constructor(
        bytes32 start,
        bytes32 seed,
        uint64 n,
        bytes32 outputHash,
        PositionChain truth,
        uint64 lieFrom
    ) {
        START = start;
        SEED = seed;
        N = n;
        OUTPUT = outputHash;
        TRUTH = truth;
        LIE_FROM = lieFrom;
    }

    /// @notice `s_i` on this chain.
    function at(uint64 i) public view returns (bytes32) {
        if (address(TRUTH) != address(0) && i < LIE_FROM) return TRUTH.at(i);
        if (i == 0) return START;
        if (i >= N) return OUTPUT;
        return keccak256(abi.encode(SEED, i));
    }
}

/// @notice AIOracle with the real factory, a two-phase model, scripted phase-1 players, and the phase-2
///         game over the synthetic VM trace of `DisputeBase`.
abstract contract PositionBase is DisputeBase {
    /// @dev The factory's one-phase depth, other than the transition depth `DEPTH` of the phase-2 games.
    uint8 internal constant WHOLE_DEPTH = DEPTH + 8;

    function setUp() public virtual override {
        super.setUp();
        gameFactory = _newTwoPhaseFactory(SAMPLING);
    }

    function _newTwoPhaseFactory(bytes memory params) internal returns (DisputeGameFactory f) {
        f = new DisputeGameFactory(owner, address(oracle), verifier, preimages, WHOLE_DEPTH, DEPTH, CLOCK);
        vm.startPrank(owner);
        f.setSamplingParams(ROOT, PROGRAM, params, true);
        vm.stopPrank();
        _registerWith(f);
    }

    /// @notice `N = T + 2` of sampling parameters.
    function _n(bytes memory params) internal pure returns (uint64) {
        // casting is intended: T is the first 4 bytes of the 20
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint64(uint32(bytes4(bytes20(params)))) + 2;
    }

    /// @notice Sampling parameters of `steps` greedy positions.
    function _params(uint32 steps) internal pure returns (bytes memory) {
        return abi.encodePacked(steps, hex"00000000000100000000000000000000");
    }

    /// @notice `s_0` of the test request under `params`.
    function _start(bytes memory params) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(ROOT, keccak256(INPUT), params));
    }

    function _honestChain(bytes memory params) internal returns (PositionChain) {
        return new PositionChain(
            _start(params), keccak256("honest"), _n(params), keccak256(GOOD), PositionChain(address(0)), 0
        );
    }

    function _lyingChain(PositionChain truth, uint64 lieFrom) internal returns (PositionChain) {
        return new PositionChain(truth.START(), keccak256("lie"), truth.N(), keccak256(BAD), truth, lieFrom);
    }

    /// @notice A 245-byte halted transition state whose output field is `out` (a phase-1 commitment).
    function _transitionState(bytes32 out, uint64 steps, uint32 exitCode, uint8 status)
        internal
        pure
        returns (bytes memory s)
    {
        s = _finalState("", steps, exitCode, status);
        for (uint256 i = 0; i < 32; i++) {
            s[64 + i] = out[i];
        }
    }

    /// @notice Request, submit `subOut`, challenge with `chOut` (two-phase: the claims are the output hashes,
    ///         the proofs empty); returns the position game.
    function _openPosition(bytes memory subOut, bytes memory chOut)
        internal
        returns (uint256 id, uint256 did, PositionGame g)
    {
        id = _request();
        vm.prank(operator);
        oracle.submit(id, subOut, "");
        did = _challenge(id, address(receiver), chOut, "");
        g = PositionGame(address(oracle.getDispute(did).game));
    }

    function _claimAs(PositionGame g, address who, bytes memory state) internal {
        vm.prank(who);
        g.claimTransition(state);
    }

    /// @notice Both transition claims at one index: the owner of `hiHash` posts `ownerState`, the other
    ///         side `otherState`, in turn order. Returns the phase-2 game.
    function _claimBoth(PositionGame g, bytes memory ownerState, bytes memory otherState)
        internal
        returns (DisputeGame child)
    {
        for (uint256 k = 0; k < 2; k++) {
            GameView memory v = g.gameState();
            bool owner = v.defenderToMove == v.defenderOwnsHi;
            _claimAs(g, v.defenderToMove ? operator : challenger, owner ? ownerState : otherState);
        }
        child = g.transitionGame();
    }

    /// @notice The local datum `ident` of `game` in the preimage oracle: (set, digest).
    function _local(address game, uint64 ident) internal view returns (bool set, bytes32 digest) {
        bytes32 key = preimages.localize(preimages.localKey(ident), game, bytes32(0));
        (set, digest) = preimages.localData(key);
    }
}
