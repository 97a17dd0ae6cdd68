// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";

import {AIOracle} from "../../src/AIOracle.sol";
import {GameStatus} from "../../src/interfaces/IDisputeGame.sol";
import {MockDisputeGame, MockDisputeGameFactory, TestToken} from "../utils/Mocks.sol";
import {RecordingReceiver, RevertingReceiver} from "../utils/Receivers.sol";

/// @notice Drives AIOracle through random sequences of every user-facing action, with a fixed set of
///         actors, and keeps the ghost state the invariants compare against.
contract Handler is CommonBase, StdCheats, StdUtils {
    AIOracle public immutable oracle;
    TestToken public immutable token;
    MockDisputeGameFactory public immutable factory;
    RecordingReceiver public immutable goodReceiver;
    RevertingReceiver public immutable badReceiver;
    uint256 public immutable ethModel;
    uint256 public immutable tokenModel;

    address[] public users;
    address[] public operators;
    address[] public challengers;
    /// Every address that can ever hold a balance in the oracle.
    address[] public accounts;

    struct Req {
        bytes input;
        address cb;
        bytes cbData;
        bytes output;
    }

    uint256[] public ids;
    mapping(uint256 => Req) internal _reqs;
    uint256[] public disputeIds;
    mapping(bytes32 claim => bytes output) internal _outputs;

    // ghosts
    mapping(uint256 => uint256) public finalizeCount;
    mapping(uint256 => uint256) public successfulCallbacks;
    uint256 public ghostBondDeposited;
    uint256 public ghostBondWithdrawn;
    uint256 public ghostBondSlashed;
    mapping(bytes32 => uint256) public calls;

    constructor(
        AIOracle oracle_,
        TestToken token_,
        MockDisputeGameFactory factory_,
        uint256 ethModel_,
        uint256 tokenModel_,
        address[] memory extraAccounts
    ) {
        oracle = oracle_;
        token = token_;
        factory = factory_;
        ethModel = ethModel_;
        tokenModel = tokenModel_;
        goodReceiver = new RecordingReceiver(oracle_);
        badReceiver = new RevertingReceiver(oracle_);
        for (uint256 i; i < 3; ++i) {
            address u = makeAddr(string.concat("user", vm.toString(i)));
            address o = makeAddr(string.concat("op", vm.toString(i)));
            address c = makeAddr(string.concat("ch", vm.toString(i)));
            users.push(u);
            operators.push(o);
            challengers.push(c);
            accounts.push(u);
            accounts.push(o);
            accounts.push(c);
            token_.mint(u, 1e30);
            vm.deal(o, 3 ether);
            vm.prank(o);
            oracle_.bond{value: 3 ether}();
            ghostBondDeposited += 3 ether;
            vm.prank(u);
            token_.approve(address(oracle_), type(uint256).max);
        }
        for (uint256 i; i < extraAccounts.length; ++i) {
            accounts.push(extraAccounts[i]);
        }
    }

    function accountsLength() external view returns (uint256) {
        return accounts.length;
    }

    function operatorsLength() external view returns (uint256) {
        return operators.length;
    }

    function idsLength() external view returns (uint256) {
        return ids.length;
    }

    function _pick(address[] storage list, uint256 seed) internal view returns (address) {
        return list[seed % list.length];
    }

    function _pickId(uint256 seed) internal view returns (uint256 id, bool ok) {
        if (ids.length == 0) return (0, false);
        return (ids[seed % ids.length], true);
    }

    /// First request at or after `seed` (cyclically) in `status`, so actions rarely become no-ops.
    function _find(uint256 seed, AIOracle.RequestStatus status) internal view returns (uint256, bool) {
        uint256 n = ids.length;
        for (uint256 i; i < n; ++i) {
            uint256 id = ids[(seed % n + i) % n];
            if (oracle.getRequest(id).status == status) return (id, true);
        }
        return (0, false);
    }

    // ------------------------------------------------------------------ actions

    function request(uint256 userSeed, uint256 gasLimit, bool useToken, uint8 cbKind, uint256 extra)
        external
    {
        address u = _pick(users, userSeed);
        uint256 model = useToken ? tokenModel : ethModel;
        gasLimit = _bound(gasLimit, 0, 300_000);
        uint256 value = oracle.estimateFee(model, gasLimit) + _bound(extra, 0, 1 ether);
        vm.deal(u, u.balance + value);
        Req memory q = Req({
            input: abi.encodePacked("in", ids.length),
            cb: cbKind % 3 == 0 ? address(goodReceiver) : cbKind % 3 == 1 ? address(badReceiver) : address(0),
            cbData: abi.encodePacked(cbKind),
            output: ""
        });
        vm.prank(u);
        uint256 id = oracle.requestCallback{value: value}(model, q.input, q.cb, uint64(gasLimit), q.cbData);
        ids.push(id);
        _reqs[id] = q;
        calls["request"]++;
    }

    function bond(uint256 opSeed, uint256 amount) external {
        address o = _pick(operators, opSeed);
        amount = _bound(amount, 1, 5 ether);
        vm.deal(o, o.balance + amount);
        vm.prank(o);
        oracle.bond{value: amount}();
        ghostBondDeposited += amount;
        calls["bond"]++;
    }

    function requestUnbond(uint256 opSeed) external {
        address o = _pick(operators, opSeed);
        if (oracle.getOperator(o).bond == 0) return;
        vm.prank(o);
        oracle.requestUnbond();
        calls["requestUnbond"]++;
    }

    function withdrawBond(uint256 opSeed) external {
        address o = _pick(operators, opSeed);
        AIOracle.Operator memory op = oracle.getOperator(o);
        if (op.unbondAt == 0 || block.timestamp < op.unbondAt || op.bond == op.locked) return;
        vm.prank(o);
        oracle.withdrawBond();
        ghostBondWithdrawn += op.bond - op.locked;
        calls["withdrawBond"]++;
    }

    function submit(uint256 opSeed, uint256 idSeed, bytes32 claimSeed) external {
        (uint256 id, bool ok) = _find(idSeed, AIOracle.RequestStatus.PENDING);
        if (!ok) return;
        AIOracle.Request memory r = oracle.getRequest(id);
        if (r.status != AIOracle.RequestStatus.PENDING || block.timestamp > r.deadline) return;
        address o = _pick(operators, opSeed);
        for (uint256 i = 1; !oracle.isBondedOperator(o); ++i) {
            if (i > operators.length) return;
            o = _pick(operators, (opSeed % operators.length) + i);
        }
        bytes memory output = abi.encodePacked("out", claimSeed);
        vm.prank(o);
        oracle.submit(id, output, "");
        _reqs[id].output = output;
        calls["submit"]++;
    }

    /// Challenges with one of three alternative outputs per request, so several challengers may hold the
    /// same claim (and share the pot) or different ones (and forfeit).
    function challenge(uint256 chSeed, uint256 idSeed, uint8 altSeed) external {
        (uint256 id, bool ok) = _find(idSeed, AIOracle.RequestStatus.SUBMITTED);
        if (!ok) (id, ok) = _find(idSeed, AIOracle.RequestStatus.DISPUTED);
        if (!ok) return;
        if (block.timestamp > oracle.getRequest(id).challengeDeadline) return;
        AIOracle.Result memory res = oracle.getResult(id);
        address c = _pick(challengers, chSeed);
        for (uint256 i = 1; c == res.submitter || oracle.hasChallenged(id, res.version, c); ++i) {
            if (i > challengers.length) return;
            c = _pick(challengers, (chSeed % challengers.length) + i);
        }
        bytes memory output = abi.encodePacked("alt", id, altSeed % 3);
        bytes32 claim = keccak256(output); // the mock factory's claim for an empty proof
        if (claim == res.claim) return;
        _outputs[claim] = output;
        Req storage q = _reqs[id];
        uint256 b = oracle.challengeBond();
        vm.deal(c, c.balance + b);
        vm.prank(c);
        uint256 did =
            oracle.challenge{value: b}(id, keccak256(q.input), q.cb, keccak256(q.cbData), output, "");
        disputeIds.push(did);
        calls["challenge"]++;
    }

    function resolve(uint256 dSeed, bool challengerWins) external {
        uint256 n = disputeIds.length;
        for (uint256 i; i < n; ++i) {
            uint256 did = disputeIds[(dSeed % n + i) % n];
            AIOracle.Dispute memory d = oracle.getDispute(did);
            if (d.status != AIOracle.DisputeStatus.OPEN) continue;
            AIOracle.Result memory res = oracle.getResult(d.requestId);
            bool replaces = challengerWins && d.version == res.version;
            MockDisputeGame(address(d.game))
                .setStatus(challengerWins ? GameStatus.CHALLENGER_WINS : GameStatus.DEFENDER_WINS);
            oracle.resolveDispute(did);
            if (replaces) {
                if (res.bondLocked) ghostBondSlashed += oracle.submissionBond();
                _reqs[d.requestId].output = _outputs[d.claim];
            }
            calls["resolve"]++;
            return;
        }
    }

    function claimReward(uint256 dSeed, uint256 callerSeed) external {
        uint256 n = disputeIds.length;
        for (uint256 i; i < n; ++i) {
            uint256 did = disputeIds[(dSeed % n + i) % n];
            AIOracle.Dispute memory d = oracle.getDispute(did);
            if (d.status != AIOracle.DisputeStatus.CHALLENGER_WON || !oracle.isFinalized(d.requestId)) {
                continue;
            }
            vm.prank(_pick(accounts, callerSeed));
            oracle.claimReward(did);
            calls["claimReward"]++;
            return;
        }
    }

    function finalize(uint256 idSeed, uint256 callerSeed) external {
        (uint256 id, bool ok) = _find(idSeed, AIOracle.RequestStatus.SUBMITTED);
        if (!ok) return;
        AIOracle.Request memory r = oracle.getRequest(id);
        // jump past the challenge window (time only moves forward)
        if (block.timestamp <= r.challengeDeadline) vm.warp(uint256(r.challengeDeadline) + 1);
        Req storage q = _reqs[id];
        address caller = _pick(accounts, callerSeed);
        uint256 before = goodReceiver.callsFor(id);
        vm.prank(caller);
        oracle.finalize(id, keccak256(q.input), q.cb, q.cbData, q.output);
        finalizeCount[id]++;
        successfulCallbacks[id] += goodReceiver.callsFor(id) - before;
        calls["finalize"]++;
    }

    function retry(uint256 idSeed, bool fix) external {
        (uint256 id, bool ok) = _find(idSeed, AIOracle.RequestStatus.FINALIZED);
        if (!ok) return;
        AIOracle.Request memory r = oracle.getRequest(id);
        if (
            r.callbackStatus != AIOracle.CallbackStatus.FAILED
                || r.callbackAttempts > oracle.MAX_CALLBACK_RETRIES()
        ) {
            return;
        }
        badReceiver.setShouldRevert(!fix);
        Req storage q = _reqs[id];
        uint256 before = badReceiver.calls();
        vm.prank(r.requester);
        oracle.retryCallback(id, keccak256(q.input), q.cb, q.cbData, q.output);
        successfulCallbacks[id] += badReceiver.calls() - before;
        badReceiver.setShouldRevert(true);
        calls["retry"]++;
    }

    function refund(uint256 idSeed) external {
        (uint256 id, bool ok) = _find(idSeed, AIOracle.RequestStatus.PENDING);
        if (!ok) return;
        AIOracle.Request memory r = oracle.getRequest(id);
        if (block.timestamp <= r.deadline) return;
        oracle.refund(id);
        calls["refund"]++;
    }

    function withdraw(uint256 accSeed, bool tokenSide) external {
        address a = _pick(accounts, accSeed);
        address t = tokenSide ? address(token) : address(0);
        if (oracle.balanceOf(a, t) == 0) return;
        vm.prank(a);
        oracle.withdraw(t);
        calls["withdraw"]++;
    }

    function warp(uint256 dt) external {
        dt = _bound(dt, 1, 12 hours);
        vm.warp(block.timestamp + dt);
        calls["warp"]++;
    }

    // ------------------------------------------------------------------ views for invariants

    /// ETH and token the oracle owes for requests not yet settled (pending, submitted, disputed).
    function unsettledFees() public view returns (uint256 eth, uint256 tok) {
        for (uint256 i; i < ids.length; ++i) {
            AIOracle.Request memory r = oracle.getRequest(ids[i]);
            if (
                r.status == AIOracle.RequestStatus.PENDING || r.status == AIOracle.RequestStatus.SUBMITTED
                    || r.status == AIOracle.RequestStatus.DISPUTED
            ) {
                eth += r.gasFee;
                if (r.modelId == tokenModel) tok += r.modelFee;
                else eth += r.modelFee;
            }
        }
    }

    /// What the disputes hold, derived from their statuses alone: the bond of every open dispute and of every
    /// winner of a request not yet final, the pot of every request not yet final, and for a final request
    /// the bond and share of every winner with the final claim that has not claimed them yet.
    function heldByDisputes() public view returns (uint256 total) {
        uint256 bond = oracle.challengeBond();
        for (uint256 i; i < disputeIds.length; ++i) {
            AIOracle.Dispute memory d = oracle.getDispute(disputeIds[i]);
            if (d.status == AIOracle.DisputeStatus.OPEN) {
                total += bond;
            } else if (d.status == AIOracle.DisputeStatus.CHALLENGER_WON) {
                if (!oracle.isFinalized(d.requestId)) {
                    total += bond;
                } else if (d.claim == oracle.getResult(d.requestId).claim) {
                    total += bond + oracle.getPot(d.requestId).share;
                }
            }
        }
        for (uint256 i; i < ids.length; ++i) {
            if (!oracle.isFinalized(ids[i])) total += oracle.getPot(ids[i]).amount;
        }
    }

    /// Locks an operator should hold: one submission bond per its result not yet final.
    function expectedLocked(address op) public view returns (uint256 total) {
        for (uint256 i; i < ids.length; ++i) {
            AIOracle.Result memory res = oracle.getResult(ids[i]);
            if (res.bondLocked && res.submitter == op) total += oracle.submissionBond();
        }
    }
}
