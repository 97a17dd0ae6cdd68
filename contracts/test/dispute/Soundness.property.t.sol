// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIOracle} from "../../src/AIOracle.sol";
import {GameView} from "../../src/dispute/Bisection.sol";
import {DisputeGame} from "../../src/dispute/DisputeGame.sol";
import {DisputeGameFactory} from "../../src/dispute/DisputeGameFactory.sol";
import {IStepVerifier} from "../../src/dispute/IStepVerifier.sol";
import {PositionGame} from "../../src/dispute/PositionGame.sol";
import {GameStatus} from "../../src/interfaces/IDisputeGame.sol";
import {ITrace, SyntheticTrace} from "./DisputeBase.sol";
import {PositionBase, PositionChain} from "./PositionBase.sol";

/// @notice A step verifier with one synthetic true trace per game (games over different transitions of a
///         two-phase dispute have different traces); otherwise `TraceVerifier`'s rules.
contract GameTraceVerifier is IStepVerifier {
    mapping(address game => SyntheticTrace) public truthOf;

    error NoTrace();
    error BadPreState();

    function setTruth(address game, SyntheticTrace t) external {
        truthOf[game] = t;
    }

    function verifyStep(bytes32 claimedPre, bytes calldata state, bytes calldata, bytes32)
        external
        view
        returns (bytes32)
    {
        SyntheticTrace t = truthOf[msg.sender];
        if (address(t) == address(0)) revert NoTrace();
        uint64 i = abi.decode(state, (uint64));
        if (t.at(i) != claimedPre) revert BadPreState();
        return t.at(i + 1);
    }
}

/// @notice The soundness property of DESIGN.md ("Adversary model") as a property test, through the real
///         AIOracle, factory and games (both kinds), a synthetic step verifier at the final step:
///
///         An adversary controls the operator and 1-4 more addresses (fuzzed) and plays a random strategy
///         drawn from the seed: a wrong or a true first result; sock-puppet challenges of whatever result is
///         current, with wrong claims, the true claim, or the current claim itself (refused); games between
///         its own addresses thrown either way (the side that should lose stays silent); in games against
///         the honest challenger, lies departing at random points, stalling from a random turn, executing the
///         losing step or not; resolving disputes in any order, or leaving them to others; random time.
///         ONE honest challenger challenges every wrong current result within its window, plays every one of
///         its games correctly and at once, and, once it has a stake, claims timeouts, resolves disputes and
///         finalizes as needed (paying the gas), then collects its rewards and withdraws.
///
///         Checked: the request finalizes with the true output; the honest challenger ends with at least what
///         it started with plus the gas of every transaction it sent at the devnet gas price (execution gas
///         measured around each call with the touched contracts cooled, plus 21,000 and its calldata, at the
///         EIP-7623 floor when higher); after every reward is claimed the oracle holds exactly what it owes.
///         Bonds are the devnet's (1 ETH submission, 0.5 ETH challenge, 50% reward share).
contract SoundnessPropertyTest is PositionBase {
    /// @dev The devnet gas price: anvil's genesis base fee (1 gwei, falling on a quiet chain) plus its 1 gwei
    ///      default tip (`eth_gasPrice` answers 2 gwei at genesis).
    uint256 internal constant DEVNET_GAS_PRICE = 2 gwei;
    /// @dev The adversary's wrong outputs; index `TRUE` is the true output.
    uint256 internal constant N_WRONG = 3;
    uint256 internal constant TRUE = N_WRONG;
    uint256 internal constant NEVER = type(uint256).max;
    uint256 internal constant MAX_ITERS = 3000;

    /// @dev One dispute and how it is played.
    struct Play {
        uint256 did;
        address challenger;
        address defender;
        /// The honest challenger is a party (the challenger, or the defender of its installed result).
        bool honest;
        bool honestDefends;
        /// Games between adversary addresses: the winner the adversary picked, and whether the challenger
        /// has opened (a challenger that should win opens, then the defender stays silent).
        bool challengerWins;
        bool opened;
        /// Games against the honest challenger: the adversary answers from `advTrace` (the VM trace, or the
        /// phase-1 chain) until its `stallAt`-th turn, then stays silent.
        uint256 stallAt;
        uint256 advTurns;
        ITrace advTrace;
        /// Two-phase: the phase-2 game, both traces of it, and whether the honest side owns its claim.
        DisputeGame child;
        SyntheticTrace childTruth;
        SyntheticTrace childLie;
        bool honestDefendsChild;
    }

    GameTraceVerifier internal gv;
    bool internal twoPhase;
    uint256 internal seed;
    uint256 internal nonce;
    uint256 internal id;
    address internal honest = makeAddr("honest");
    address[] internal adversaries;
    SyntheticTrace internal vmTruth;
    PositionChain internal chainTruth;
    bytes internal goodState;
    bytes[] internal wrongOut;
    bytes[] internal wrongState;
    Play[] internal plays;
    uint256 internal budget;
    bool internal acted;
    bool internal staked;
    uint256 internal honestGas;
    uint256 internal honestTxs;

    function _rand(uint256 mod) internal returns (uint256) {
        return uint256(keccak256(abi.encode(seed, nonce++))) % mod;
    }

    function _top() internal pure returns (uint64) {
        return uint64(1) << DEPTH;
    }

    // ------------------------------------------------------------------ set-up

    function _setUpRun(uint256 seed_, uint256 puppets, bool twoPhase_) internal {
        seed = seed_;
        twoPhase = twoPhase_;
        gv = new GameTraceVerifier();
        DisputeGameFactory f =
            new DisputeGameFactory(owner, address(oracle), gv, preimages, DEPTH, DEPTH, CLOCK);
        vm.prank(owner);
        f.setSamplingParams(ROOT, PROGRAM, SAMPLING, twoPhase_);
        gameFactory = f;
        _registerWith(f);
        vm.fee(1 gwei);
        adversaries.push(operator);
        for (uint256 i = 0; i < puppets; i++) {
            address p = makeAddr(string.concat("puppet", vm.toString(i)));
            vm.deal(p, 100 ether);
            adversaries.push(p);
        }
        vm.deal(honest, 100 ether);
        uint64 len = uint64(1 + _rand(_top()));
        goodState = _finalState(GOOD, len, 0, 1);
        vmTruth = new SyntheticTrace(
            PROGRAM, keccak256("honest"), len, _hash(goodState), SyntheticTrace(address(0)), 0
        );
        chainTruth = _honestChain(SAMPLING);
        for (uint256 k = 0; k < N_WRONG; k++) {
            bytes memory out = abi.encodePacked("wrong answer ", vm.toString(k), "\n");
            wrongOut.push(out);
            wrongState.push(_finalState(out, uint64(1 + _rand(_top())), 0, 1));
        }
    }

    function _output(uint256 k) internal view returns (bytes memory) {
        return k == TRUE ? GOOD : wrongOut[k];
    }

    function _proof(uint256 k) internal view returns (bytes memory) {
        if (twoPhase) return "";
        return k == TRUE ? goodState : wrongState[k];
    }

    function _claimOf(uint256 k) internal view returns (bytes32) {
        return gameFactory.resultClaim(ROOT, PROGRAM, _output(k), _proof(k));
    }

    /// @dev Which of our outputs a claim is.
    function _kOf(bytes32 claim) internal view returns (uint256) {
        for (uint256 k = 0; k <= N_WRONG; k++) {
            if (_claimOf(k) == claim) return k;
        }
        revert("unknown claim");
    }

    /// @dev The adversary's trace for its wrong claim `k` in a game against the honest side: the truth up to a
    ///      random point, its own after.
    function _adversaryTrace(uint256 k) internal returns (ITrace) {
        bytes32 s = keccak256(abi.encode(seed, "lie", nonce++));
        if (twoPhase) {
            uint64 n = chainTruth.N();
            return new PositionChain(
                chainTruth.START(), s, n, keccak256(wrongOut[k]), chainTruth, uint64(1 + _rand(n))
            );
        }
        return new SyntheticTrace(
            PROGRAM,
            s,
            StateLen.steps(wrongState[k]),
            _hash(wrongState[k]),
            vmTruth,
            uint64(1 + _rand(_top()))
        );
    }

    // ------------------------------------------------------------------ the honest side's transactions

    /// @dev Sends an honest transaction and adds its gas: execution measured around the call with the touched
    ///      contracts cold, plus 21,000 and calldata (`_txGas`).
    function _honestCall(address target, uint256 value, bytes memory data) internal {
        vm.cool(address(oracle));
        vm.cool(address(gameFactory));
        vm.cool(address(gameFactory.IMPLEMENTATION()));
        vm.cool(address(gameFactory.TRANSITION_IMPLEMENTATION()));
        vm.cool(address(gameFactory.POSITION_IMPLEMENTATION()));
        vm.cool(address(preimages));
        vm.cool(address(gv));
        vm.cool(address(receiver));
        vm.cool(target);
        vm.prank(honest);
        uint256 before = gasleft();
        (bool ok, bytes memory ret) = target.call{value: value}(data);
        uint256 used = before - gasleft();
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        honestGas += _txGas(data, used);
        honestTxs++;
        acted = true;
    }

    /// @dev Who cleans up (claims timeouts, resolves, finalizes): the honest side once it has a stake (and pays
    ///      for it), else a bystander.
    function _cleanup(address target, bytes memory data) internal {
        if (staked) {
            _honestCall(target, 0, data);
        } else {
            vm.prank(user);
            (bool ok, bytes memory ret) = target.call(data);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
            acted = true;
        }
    }

    // ------------------------------------------------------------------ game access

    function _gameAddr(Play storage p) internal view returns (address) {
        return address(oracle.getDispute(p.did).game);
    }

    /// @dev The game being played now: the dispute's game, or its phase-2 child.
    function _liveGame(Play storage p) internal view returns (address) {
        if (twoPhase) {
            address child = address(PositionGame(_gameAddr(p)).transitionGame());
            if (child != address(0)) return child;
        }
        return _gameAddr(p);
    }

    function _over(Play storage p) internal view returns (bool) {
        return DisputeGame(_gameAddr(p)).status() != GameStatus.IN_PROGRESS;
    }

    /// @dev The mover's side and whether its clock has run out, in the live game.
    function _turn(Play storage p) internal view returns (GameView memory v, bool expired) {
        v = DisputeGame(_liveGame(p)).gameState();
        expired = block.timestamp > v.deadline;
    }

    /// @dev Once both transition claims are in: the phase-2 game's traces (the honest run of the transition ends
    ///      in the true `s_{i+1}`, the adversary's in its own) and the honest side's role in it.
    function _setUpChild(Play storage p) internal {
        PositionGame g = PositionGame(_gameAddr(p));
        DisputeGame child = g.transitionGame();
        if (address(child) == address(0) || address(p.child) != address(0)) return;
        GameView memory v = g.gameState();
        bytes memory honestState = _transitionState(chainTruth.at(v.hi), 300, 0, 1);
        bytes memory lyingState = _transitionState(p.advTrace.at(v.hi), 300, 0, 1);
        SyntheticTrace t = new SyntheticTrace(
            PROGRAM,
            keccak256(abi.encode("vm", child)),
            300,
            _hash(honestState),
            SyntheticTrace(address(0)),
            0
        );
        gv.setTruth(address(child), t);
        p.child = child;
        p.childTruth = t;
        p.childLie = new SyntheticTrace(
            PROGRAM,
            keccak256(abi.encode("vm lie", child)),
            300,
            _hash(lyingState),
            t,
            uint64(1 + _rand(_top()))
        );
        p.honestDefendsChild = v.defenderOwnsHi == p.honestDefends;
    }

    // ------------------------------------------------------------------ moves

    /// @dev The move of the side holding `trace` (`honestSide`: sent and measured as the honest side's), in the
    ///      live game of `p`, it being that side's turn.
    function _playTurn(Play storage p, bool honestSide, address who) internal {
        address game = _liveGame(p);
        GameView memory v = DisputeGame(game).gameState();
        bool atOne = v.hi - v.lo == 1;
        bytes memory data;
        if (twoPhase && address(p.child) == address(0)) {
            ITrace chain = honestSide ? ITrace(chainTruth) : p.advTrace;
            if (atOne) {
                data = abi.encodeCall(
                    PositionGame.claimTransition, (_transitionState(chain.at(v.hi), 300, 0, 1))
                );
            } else {
                (bool agree, bytes32 mid) = _nextMove(PositionGame(game), chain);
                data = abi.encodeCall(PositionGame.move, (agree, mid));
            }
        } else {
            ITrace trace = twoPhase
                ? (honestSide ? ITrace(p.childTruth) : ITrace(p.childLie))
                : (honestSide ? ITrace(vmTruth) : p.advTrace);
            if (atOne) {
                data = abi.encodeCall(DisputeGame.step, (abi.encode(v.lo), bytes("")));
            } else {
                (bool agree, bytes32 mid) = _nextMove(DisputeGame(game), trace);
                data = abi.encodeCall(DisputeGame.move, (agree, mid));
            }
        }
        if (honestSide) {
            _honestCall(game, 0, data);
        } else {
            vm.prank(who);
            (bool ok, bytes memory ret) = game.call(data);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
            acted = true;
        }
        if (twoPhase) _setUpChild(p);
    }

    /// @dev Whether the honest side is to move in the live game of `p`.
    function _honestToMove(Play storage p, GameView memory v) internal view returns (bool) {
        bool honestDefender =
            (twoPhase && address(p.child) != address(0)) ? p.honestDefendsChild : p.honestDefends;
        return v.defenderToMove == honestDefender;
    }

    // ------------------------------------------------------------------ the adversary

    /// @dev When the adversary stops answering in a game against the honest side: never, at once (stalling
    ///      the honest game while its own games resolve), or after a random number of turns.
    function _stallAt() internal returns (uint256) {
        uint256 r = _rand(3);
        if (r == 0) return NEVER;
        if (r == 1) return 0;
        return _rand(14);
    }

    function _adversaryChallenge() internal {
        AIOracle.Request memory r = oracle.getRequest(id);
        if (
            (r.status != AIOracle.RequestStatus.SUBMITTED && r.status != AIOracle.RequestStatus.DISPUTED)
                || block.timestamp > r.challengeDeadline
        ) return;
        AIOracle.Result memory res = oracle.getResult(id);
        uint256 n = adversaries.length;
        uint256 start = _rand(n);
        address a;
        for (uint256 i = 0; i < n; i++) {
            address c = adversaries[(start + i) % n];
            if (c != res.submitter && !oracle.hasChallenged(id, res.version, c)) {
                a = c;
                break;
            }
        }
        if (a == address(0)) return;
        uint256 current = _kOf(res.claim);
        if (_rand(8) == 0) {
            // the current claim itself: refused
            vm.deal(a, a.balance + CHALLENGE_BOND);
            vm.prank(a);
            vm.expectRevert(AIOracle.InvalidClaim.selector);
            oracle.challenge{value: CHALLENGE_BOND}(
                id, keccak256(INPUT), address(receiver), keccak256(CB_DATA), _output(current), _proof(current)
            );
            return;
        }
        uint256 k = (current != TRUE && _rand(3) == 0) ? TRUE : _rand(N_WRONG);
        if (k == current) return;
        vm.deal(a, a.balance + CHALLENGE_BOND);
        vm.prank(a);
        uint256 did = oracle.challenge{value: CHALLENGE_BOND}(
            id, keccak256(INPUT), address(receiver), keccak256(CB_DATA), _output(k), _proof(k)
        );
        acted = true;
        Play storage p = plays.push();
        p.did = did;
        p.challenger = a;
        p.defender = res.submitter;
        if (res.submitter == honest) {
            // a wrong claim against the honest side's result: a real game
            p.honest = true;
            p.honestDefends = true;
            p.advTrace = _adversaryTrace(k);
            p.stallAt = _stallAt();
            if (!twoPhase) gv.setTruth(_gameAddr(p), vmTruth);
        } else {
            p.challengerWins = _rand(2) == 0;
        }
    }

    function _adversaryTurn() internal {
        uint256 r = _rand(10);
        if (r < 5 && budget > 0) {
            budget--;
            _adversaryChallenge();
        } else if (r < 8) {
            // resolve one finished dispute, chosen at random
            uint256 n = plays.length;
            if (n != 0) {
                uint256 start = _rand(n);
                for (uint256 i = 0; i < n; i++) {
                    Play storage p = plays[(start + i) % n];
                    if (_over(p) && oracle.getDispute(p.did).status == AIOracle.DisputeStatus.OPEN) {
                        vm.prank(adversaries[_rand(adversaries.length)]);
                        oracle.resolveDispute(p.did);
                        acted = true;
                        break;
                    }
                }
            }
        }
        for (uint256 i = 0; i < plays.length; i++) {
            Play storage p = plays[i];
            if (_over(p)) continue;
            (GameView memory v, bool expired) = _turn(p);
            if (!p.honest) {
                // its own games: the challenger that should win opens, then the defender never answers
                DisputeGame game = DisputeGame(_liveGame(p));
                if (p.challengerWins && !p.opened && !v.defenderToMove && !expired) {
                    vm.prank(p.challenger);
                    game.move(false, keccak256(abi.encode("open", p.did)));
                    p.opened = true;
                    acted = true;
                } else if (expired && _rand(2) == 0) {
                    vm.prank(p.challenger);
                    game.claimTimeout();
                    acted = true;
                }
                continue;
            }
            if (_honestToMove(p, v) || expired || p.advTurns >= p.stallAt) continue;
            bool atOneStep = v.hi - v.lo == 1 && (!twoPhase || address(p.child) != address(0));
            if (atOneStep && _rand(2) == 0) continue; // would lose by executing the step: stalls instead
            p.advTurns++;
            _playTurn(p, false, p.honestDefends ? p.challenger : p.defender);
        }
    }

    // ------------------------------------------------------------------ the honest side

    function _honestTurn() internal {
        for (uint256 i = 0; i < plays.length; i++) {
            Play storage p = plays[i];
            // its own games at once; anyone's expired clock once it has a stake (else a bystander's)
            while (!_over(p)) {
                (GameView memory v, bool expired) = _turn(p);
                if (p.honest && _honestToMove(p, v)) {
                    _playTurn(p, true, honest);
                } else if (expired && (p.honest || staked || _rand(2) == 0)) {
                    _cleanup(_liveGame(p), abi.encodeCall(DisputeGame.claimTimeout, ()));
                } else {
                    break;
                }
            }
        }
        for (uint256 i = 0; i < plays.length; i++) {
            Play storage p = plays[i];
            if (_over(p) && oracle.getDispute(p.did).status == AIOracle.DisputeStatus.OPEN) {
                _cleanup(address(oracle), abi.encodeCall(AIOracle.resolveDispute, (p.did)));
            }
        }
        AIOracle.Request memory r = oracle.getRequest(id);
        AIOracle.Result memory res = oracle.getResult(id);
        if (
            res.claim != _claimOf(TRUE)
                && (r.status == AIOracle.RequestStatus.SUBMITTED
                    || r.status == AIOracle.RequestStatus.DISPUTED) && block.timestamp <= r.challengeDeadline
                && !oracle.hasChallenged(id, res.version, honest)
        ) {
            uint256 k = _kOf(res.claim);
            staked = true;
            _honestCall(
                address(oracle),
                CHALLENGE_BOND,
                abi.encodeCall(
                    AIOracle.challenge,
                    (id, keccak256(INPUT), address(receiver), keccak256(CB_DATA), GOOD, _proof(TRUE))
                )
            );
            Play storage p = plays.push();
            p.did = oracle.disputeCount();
            p.challenger = honest;
            p.defender = res.submitter;
            p.honest = true;
            p.advTrace = _adversaryTrace(k);
            p.stallAt = _stallAt();
            if (!twoPhase) gv.setTruth(_gameAddr(p), vmTruth);
        }
    }

    function _maybeFinalize() internal {
        AIOracle.Request memory r = oracle.getRequest(id);
        if (r.status != AIOracle.RequestStatus.SUBMITTED || block.timestamp <= r.challengeDeadline) return;
        bytes32 outHash = oracle.getResult(id).outputHash;
        uint256 k = outHash == keccak256(GOOD) ? TRUE : _kOf(oracle.getResult(id).claim);
        _cleanup(
            address(oracle),
            abi.encodeCall(AIOracle.finalize, (id, keccak256(INPUT), address(receiver), CB_DATA, _output(k)))
        );
    }

    /// @dev A random step of time after a busy round; after an idle one, straight to the next deadline.
    function _passTime() internal {
        if (acted) {
            vm.warp(block.timestamp + 1 + _rand(300));
            return;
        }
        uint256 next = type(uint256).max;
        AIOracle.Request memory r = oracle.getRequest(id);
        if (r.challengeDeadline >= block.timestamp) next = uint256(r.challengeDeadline) + 1;
        for (uint256 i = 0; i < plays.length; i++) {
            Play storage p = plays[i];
            if (_over(p)) continue;
            (GameView memory v,) = _turn(p);
            if (v.deadline + 1 < next) next = v.deadline + 1;
        }
        vm.warp(
            next == type(uint256).max || next <= block.timestamp ? block.timestamp + 1 + _rand(300) : next
        );
    }

    // ------------------------------------------------------------------ the run

    function _run(uint256 seed_, uint8 puppets, bool twoPhase_) internal {
        _setUpRun(seed_, bound(puppets, 1, 4), twoPhase_);
        id = _request();
        uint256 first = _rand(4) == 0 ? TRUE : _rand(N_WRONG);
        vm.prank(operator);
        oracle.submit(id, _output(first), _proof(first));
        budget = 2 + _rand(14);
        uint256 start = honest.balance;
        for (uint256 iter = 0; iter < MAX_ITERS && !oracle.isFinalized(id); iter++) {
            acted = false;
            _adversaryTurn();
            _honestTurn();
            _maybeFinalize();
            if (!oracle.isFinalized(id)) _passTime();
        }
        assertTrue(oracle.isFinalized(id), "the request finalizes");
        assertEq(oracle.getResult(id).claim, _claimOf(TRUE), "the true claim is final");
        assertEq(receiver.lastOutput(), GOOD, "the true output is delivered");

        // the honest side collects
        for (uint256 i = 0; i < plays.length; i++) {
            Play storage p = plays[i];
            if (p.challenger == honest) {
                assertTrue(oracle.getDispute(p.did).status == AIOracle.DisputeStatus.CHALLENGER_WON, "it won");
                _honestCall(address(oracle), 0, abi.encodeCall(AIOracle.claimReward, (p.did)));
            } else if (p.defender == honest) {
                assertTrue(oracle.getDispute(p.did).status == AIOracle.DisputeStatus.DEFENDER_WON, "it won");
            }
        }
        if (oracle.balanceOf(honest, address(0)) != 0) {
            _honestCall(address(oracle), 0, abi.encodeCall(AIOracle.withdraw, (address(0))));
        }
        uint256 gasCost = honestGas * DEVNET_GAS_PRICE;
        assertGe(honest.balance, start + gasCost, "the honest side never ends with less than it started");

        // everyone else's rewards, then: the oracle holds exactly what it owes
        for (uint256 i = 0; i < plays.length; i++) {
            if (oracle.getDispute(plays[i].did).status == AIOracle.DisputeStatus.CHALLENGER_WON) {
                oracle.claimReward(plays[i].did);
            }
        }
        uint256 owed = _owed() + oracle.balanceOf(honest, address(0));
        for (uint256 i = 1; i < adversaries.length; i++) {
            owed += oracle.balanceOf(adversaries[i], address(0));
        }
        assertEq(address(oracle).balance, owed, "every wei accounted for");
    }

    function testFuzz_adversaryNeverBeatsOneHonestChallenger_onePhase(uint256 seed_, uint8 puppets) public {
        _run(seed_, puppets, false);
    }

    function testFuzz_adversaryNeverBeatsOneHonestChallenger_twoPhase(uint256 seed_, uint8 puppets) public {
        _run(seed_, puppets, true);
    }
}

/// @dev The step count field of a state encoding (memory copy of `StateLayout.step`).
library StateLen {
    function steps(bytes memory state) internal pure returns (uint64 n) {
        for (uint256 i = 0; i < 8; i++) {
            n = (n << 8) | uint64(uint8(state[104 + i]));
        }
    }
}
