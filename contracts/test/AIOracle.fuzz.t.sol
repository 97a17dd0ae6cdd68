// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIOracle} from "../src/AIOracle.sol";
import {GameStatus} from "../src/interfaces/IDisputeGame.sol";
import {BaseTest} from "./utils/BaseTest.sol";

/// @notice Fuzz tests on amounts, sizes and timings.
contract AIOracleFuzzTest is BaseTest {
    /// Fee split is exact for any fee and shares: nothing is lost or created by rounding.
    function testFuzz_finalize_feeSplitExact(
        uint96 fee,
        uint16 receiverBps,
        uint16 protocolBps,
        uint64 gasLimit
    ) public {
        receiverBps = uint16(bound(receiverBps, 0, 9000));
        protocolBps = uint16(bound(protocolBps, 0, 1000));
        gasLimit = uint64(bound(gasLimit, 0, MAX_GAS));
        fee = uint96(bound(fee, 0, 50 ether));
        vm.prank(owner);
        oracle.proposeParameters(treasury, protocolBps, GAS_PRICE_FLOOR);
        vm.startPrank(publisher);
        oracle.setModelFee(modelId, fee);
        oracle.setModelFeeReceiver(modelId, feeReceiver, receiverBps);
        vm.stopPrank();
        // both delays (parameters, and a fee increase) have passed
        vm.warp(block.timestamp + PARAMETER_DELAY);
        vm.prank(owner);
        oracle.applyParameters();
        assertEq(oracle.getModel(modelId).fee, fee);

        uint256 total = oracle.estimateFee(modelId, gasLimit);
        vm.deal(user, total);
        vm.prank(user);
        uint256 id =
            oracle.requestCallback{value: total}(modelId, INPUT, address(receiver), gasLimit, CB_DATA);
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        _finalize(id, address(receiver));

        uint256 sum = oracle.balanceOf(feeReceiver, address(0)) + oracle.balanceOf(treasury, address(0))
            + oracle.balanceOf(operator, address(0)) + oracle.balanceOf(finalizer, address(0));
        assertEq(sum, total, "every wei credited exactly once");
        assertEq(oracle.balanceOf(feeReceiver, address(0)), uint256(fee) * receiverBps / 10_000);
        assertEq(oracle.balanceOf(treasury, address(0)), uint256(fee) * protocolBps / 10_000);
        assertEq(address(oracle).balance, BONDS + total);
    }

    /// Any payment from the lowest accepted price up is taken: the gas fee is the gas limit at the current
    /// price or what the payment covers if less (a base fee risen since the estimate), the excess is credited
    /// to the payer; any payment below it reverts.
    function testFuzz_requestCallback_payment(uint256 value, uint64 gasLimit, uint256 basefee) public {
        gasLimit = uint64(bound(gasLimit, 0, MAX_GAS));
        basefee = bound(basefee, 0, 10_000 gwei);
        vm.fee(basefee);
        uint256 price = basefee > GAS_PRICE_FLOOR ? basefee : GAS_PRICE_FLOOR;
        uint256 fee = oracle.estimateFee(modelId, gasLimit);
        assertEq(fee, MODEL_FEE + gasLimit * price);
        uint256 low = basefee - basefee / 9; // ceil(8/9 of the base fee)
        uint256 least = MODEL_FEE + gasLimit * (low > GAS_PRICE_FLOOR ? low : GAS_PRICE_FLOOR);
        assertLe(least, fee);
        value = bound(value, 0, 100 ether);
        vm.deal(user, value);
        vm.prank(user);
        if (value < least) {
            vm.expectRevert(abi.encodeWithSelector(AIOracle.InsufficientFee.selector, value, least));
            oracle.requestCallback{value: value}(modelId, INPUT, address(receiver), gasLimit, CB_DATA);
        } else {
            uint256 id =
                oracle.requestCallback{value: value}(modelId, INPUT, address(receiver), gasLimit, CB_DATA);
            AIOracle.Request memory r = oracle.getRequest(id);
            uint256 charged = value < fee ? value : fee;
            assertEq(uint256(r.modelFee) + r.gasFee, charged, "what the price says, or what was paid");
            assertEq(oracle.balanceOf(user, address(0)), value - charged, "the excess is credited");
            assertEq(user.balance, 0, "nothing is pushed back");
        }
    }

    /// A fee estimated one block earlier is still enough after the largest base-fee rise EIP-1559 allows
    /// (1/8): the request goes through, at the price that payment covers, with nothing credited back.
    function testFuzz_requestCallback_estimateOneBlockEarlierAccepted(uint256 basefee, uint64 gasLimit)
        public
    {
        gasLimit = uint64(bound(gasLimit, 1, MAX_GAS));
        basefee = bound(basefee, 0, 10_000 gwei);
        vm.fee(basefee);
        uint256 estimate = oracle.estimateFee(modelId, gasLimit);
        vm.roll(block.number + 1);
        vm.fee(basefee + basefee / 8);
        vm.deal(user, estimate);
        vm.prank(user);
        uint256 id =
            oracle.requestCallback{value: estimate}(modelId, INPUT, address(receiver), gasLimit, CB_DATA);
        AIOracle.Request memory r = oracle.getRequest(id);
        assertEq(uint256(r.modelFee) + r.gasFee, estimate);
        assertEq(oracle.balanceOf(user, address(0)), 0);
    }

    /// Input size limit holds at every size; the payload hash binds the input.
    function testFuzz_requestCallback_inputSize(uint256 size, bytes32 seed) public {
        size = bound(size, 0, MAX_INPUT * 2);
        bytes memory input = new bytes(size);
        if (size > 0) input[0] = seed[0];
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.prank(user);
        if (size > MAX_INPUT) {
            vm.expectRevert(abi.encodeWithSelector(AIOracle.InputTooLarge.selector, size, MAX_INPUT));
            oracle.requestCallback{value: fee}(modelId, input, address(receiver), GAS_LIMIT, CB_DATA);
        } else {
            uint256 id =
                oracle.requestCallback{value: fee}(modelId, input, address(receiver), GAS_LIMIT, CB_DATA);
            assertEq(
                oracle.getRequest(id).payloadHash,
                oracle.payloadHash(keccak256(input), address(receiver), keccak256(CB_DATA))
            );
        }
    }

    /// Batch of any size charges n times the fee and numbers requests consecutively.
    function testFuzz_requestCallbackBatch(uint8 n) public {
        n = uint8(bound(n, 1, 20));
        bytes[] memory inputs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            inputs[i] = abi.encode(i);
        }
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.prank(user);
        uint256 first = oracle.requestCallbackBatch{value: fee * n}(
            modelId, inputs, address(receiver), GAS_LIMIT, CB_DATA
        );
        assertEq(oracle.lastRequestId(), first + n - 1);
        assertEq(address(oracle).balance, BONDS + fee * n);
    }

    /// Submission is allowed exactly up to the deadline; refund exactly after it.
    function testFuzz_deadline(uint256 dt) public {
        dt = bound(dt, 0, 3 * REQUEST_TIMEOUT);
        uint256 id = _request();
        vm.warp(block.timestamp + dt);
        if (dt <= REQUEST_TIMEOUT) {
            _submit(id);
            vm.expectRevert(
                abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.SUBMITTED)
            );
            oracle.refund(id);
        } else {
            vm.expectRevert(AIOracle.RequestExpired.selector);
            _submit(id);
            oracle.refund(id);
            assertEq(uint8(_status(id)), uint8(AIOracle.RequestStatus.REFUNDED));
        }
    }

    /// The challenge window is exact: challenge up to its end, finalize only after it.
    function testFuzz_challengeWindow(uint256 dt) public {
        dt = bound(dt, 0, 3 * WINDOW);
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + dt);
        if (dt <= WINDOW) {
            vm.expectRevert(AIOracle.ChallengeWindowOpen.selector);
            _finalize(id, address(receiver));
            _challenge(id, address(receiver), "5", "");
        } else {
            vm.expectRevert(AIOracle.ChallengeWindowClosed.selector);
            _challenge(id, address(receiver), "5", "");
            _finalize(id, address(receiver));
        }
    }

    /// Slashing fills the pot, which splits exactly for any bond and reward share at finality: the winner's
    /// bond and share through claimReward, the rest to the treasury, nothing lost or created.
    function testFuzz_slashSplit(uint96 submissionBond, uint256 rewardBps) public {
        submissionBond = uint96(bound(submissionBond, 1, 50 ether));
        rewardBps = bound(rewardBps, 0, 10_000);
        AIOracle.OracleConfig memory c = _oracleConfig();
        c.submissionBond = submissionBond;
        c.challengerRewardBps = rewardBps;
        c.protocolFeeBps = 0;
        c.minCallbackGasPrice = 0;
        AIOracle o = new AIOracle(owner, c);
        vm.prank(owner);
        o.setDisputeGameFactory(factory);
        vm.prank(publisher);
        uint256 m = o.registerModel(_config(address(0)));
        vm.prank(operator);
        o.bond{value: submissionBond}();
        vm.prank(user);
        uint256 id = o.requestCallback{value: MODEL_FEE}(m, INPUT, address(0), 0, "");
        vm.prank(operator);
        o.submit(id, OUTPUT, "");
        vm.prank(challenger);
        o.challenge{value: CHALLENGE_BOND}(id, keccak256(INPUT), address(0), keccak256(""), "5", "");
        factory.lastGame().setStatus(GameStatus.CHALLENGER_WINS);
        o.resolveDispute(1);
        assertEq(o.getPot(id).amount, submissionBond);
        assertEq(o.getOperator(operator).bond, 0);
        vm.warp(block.timestamp + WINDOW + 1);
        o.finalize(id, keccak256(INPUT), address(0), "", "5");
        uint256 reward = uint256(submissionBond) * rewardBps / 10_000;
        assertEq(o.balanceOf(treasury, address(0)), submissionBond - reward);
        o.claimReward(1);
        // the challenger: its bond, its reward and (as the final result's submitter) the operator share
        uint256 receiverShare = uint256(MODEL_FEE) * RECEIVER_BPS / 10_000;
        assertEq(o.balanceOf(challenger, address(0)), CHALLENGE_BOND + reward + MODEL_FEE - receiverShare);
        assertEq(address(o).balance, MODEL_FEE + CHALLENGE_BOND + submissionBond);
        assertEq(
            address(o).balance,
            o.balanceOf(challenger, address(0)) + o.balanceOf(treasury, address(0))
                + o.balanceOf(feeReceiver, address(0)),
            "every wei credited"
        );
    }

    /// Whatever gas the finalizer supplies, it either reverts or the receiver gets its full gas limit:
    /// the RecordingReceiver needs well under GAS_LIMIT, so a starved callback would show as FAILED.
    function testFuzz_finalize_callbackNeverStarved(uint256 gas) public {
        gas = bound(gas, 20_000, 600_000);
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(finalizer);
        (bool ok,) = address(oracle).call{gas: gas}(
            abi.encodeCall(AIOracle.finalize, (id, keccak256(INPUT), address(receiver), CB_DATA, OUTPUT))
        );
        if (ok) {
            assertTrue(oracle.isFinalized(id));
            assertEq(uint8(oracle.getRequest(id).callbackStatus), uint8(AIOracle.CallbackStatus.SUCCEEDED));
            assertGe(receiver.lastGas(), GAS_LIMIT - 5000);
        } else {
            assertFalse(oracle.isFinalized(id));
            assertEq(receiver.calls(), 0);
        }
    }
}
