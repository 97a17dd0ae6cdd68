// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StdInvariant} from "forge-std/StdInvariant.sol";
import {Test} from "forge-std/Test.sol";
import {console2} from "forge-std/console2.sol";

import {AIOracle} from "../../src/AIOracle.sol";
import {IDisputeGameFactory} from "../../src/interfaces/IDisputeGame.sol";
import {MockDisputeGameFactory, TestToken} from "../utils/Mocks.sol";
import {Handler} from "./Handler.sol";

/// @notice Conservation and at-most-once properties over random action sequences.
contract AIOracleInvariantTest is StdInvariant, Test {
    AIOracle internal oracle;
    TestToken internal token;
    Handler internal handler;
    address internal treasury = makeAddr("treasury");
    address internal feeReceiver = makeAddr("feeReceiver");

    function setUp() public {
        oracle = new AIOracle(
            address(this),
            AIOracle.OracleConfig({
                treasury: treasury,
                protocolFeeBps: 700,
                minCallbackGasPrice: 1 gwei,
                submissionBond: 1 ether,
                challengeBond: 0.5 ether,
                challengerRewardBps: 5000,
                unbondDelay: 3 days,
                requestTimeout: 1 days,
                parameterDelay: 1 days
            })
        );
        MockDisputeGameFactory factory = new MockDisputeGameFactory();
        oracle.setDisputeGameFactory(IDisputeGameFactory(address(factory)));
        token = new TestToken();
        AIOracle.ModelConfig memory c = AIOracle.ModelConfig({
            modelRoot: keccak256("root"),
            programHash: keccak256("prog"),
            fee: 0.013 ether,
            feeToken: address(0),
            feeReceiver: feeReceiver,
            receiverShareBps: 3333,
            challengeWindow: 6 hours,
            maxInputSize: 1024,
            maxCallbackGas: 1_000_000
        });
        uint256 ethModel = oracle.registerModel(c);
        c.feeToken = address(token);
        c.fee = 7777;
        uint256 tokenModel = oracle.registerModel(c);
        address[] memory extra = new address[](2);
        extra[0] = treasury;
        extra[1] = feeReceiver;
        handler = new Handler(oracle, token, factory, ethModel, tokenModel, extra);
        targetContract(address(handler));
    }

    function _sumBalances(address t) internal view returns (uint256 total) {
        uint256 n = handler.accountsLength();
        for (uint256 i; i < n; ++i) {
            total += oracle.balanceOf(handler.accounts(i), t);
        }
    }

    function _sumBonds() internal view returns (uint256 total) {
        uint256 n = handler.operatorsLength();
        for (uint256 i; i < n; ++i) {
            total += oracle.getOperator(handler.operators(i)).bond;
        }
    }

    /// The oracle holds exactly what it owes: balances + bonds + what disputes hold (open and winning bonds,
    /// pots, unclaimed rewards) + unsettled fees.
    function invariant_ethConservation() public view {
        (uint256 eth,) = handler.unsettledFees();
        assertEq(
            address(oracle).balance, _sumBalances(address(0)) + _sumBonds() + handler.heldByDisputes() + eth
        );
    }

    /// Same for the fee token.
    function invariant_tokenConservation() public view {
        (, uint256 tok) = handler.unsettledFees();
        assertEq(token.balanceOf(address(oracle)), _sumBalances(address(token)) + tok);
    }

    /// Bonds only move by deposit, withdrawal and slashing; locks match unfinalized results.
    function invariant_bondsConserved() public view {
        assertEq(
            _sumBonds(),
            handler.ghostBondDeposited() - handler.ghostBondWithdrawn() - handler.ghostBondSlashed()
        );
        uint256 n = handler.operatorsLength();
        for (uint256 i; i < n; ++i) {
            address op = handler.operators(i);
            AIOracle.Operator memory o = oracle.getOperator(op);
            assertEq(o.locked, handler.expectedLocked(op));
            assertLe(o.locked, o.bond);
        }
    }

    /// A result finalizes at most once and its callback succeeds at most once.
    function invariant_atMostOnce() public view {
        uint256 n = handler.idsLength();
        for (uint256 i; i < n; ++i) {
            uint256 id = handler.ids(i);
            assertLe(handler.finalizeCount(id), 1);
            assertLe(handler.successfulCallbacks(id), 1);
            assertLe(handler.goodReceiver().callsFor(id), 1);
            AIOracle.Request memory r = oracle.getRequest(id);
            assertEq(oracle.isFinalized(id), handler.finalizeCount(id) == 1);
            assertLe(r.callbackAttempts, 1 + oracle.MAX_CALLBACK_RETRIES());
            if (r.status != AIOracle.RequestStatus.FINALIZED) assertEq(r.callbackAttempts, 0);
        }
    }

    /// The handler itself works: a fixed sequence reaches every action, and the invariants hold after it.
    function test_handler_reachesEveryAction_succeeds() public {
        handler.request(0, 100_000, false, 0, 0); // good receiver
        handler.request(1, 100_000, true, 1, 1); // reverting receiver, token model
        handler.request(2, 0, false, 2, 0); // no callback
        handler.request(0, 50_000, false, 0, 0); // will time out
        handler.submit(0, 0, "a");
        handler.submit(1, 1, "b");
        handler.submit(2, 2, "c");
        handler.challenge(0, 0, 0);
        handler.challenge(1, 0, 0); // same claim as the first: they share the pot
        handler.challenge(2, 0, 1); // another claim: forfeits
        handler.challenge(1, 1, 0);
        handler.resolve(0, true);
        handler.resolve(1, true);
        handler.resolve(2, true);
        handler.resolve(3, false);
        handler.finalize(0, 0);
        handler.finalize(1, 1);
        handler.finalize(2, 2);
        handler.claimReward(0, 0);
        handler.claimReward(1, 1);
        handler.claimReward(2, 2);
        handler.retry(1, false);
        handler.retry(1, true);
        handler.warp(12 hours);
        handler.warp(12 hours);
        handler.warp(12 hours);
        handler.refund(3);
        handler.withdraw(1, false);
        handler.withdraw(4, true);
        handler.bond(0, 1 ether);
        handler.requestUnbond(1);
        for (uint256 i; i < 6; ++i) {
            handler.warp(12 hours); // past the 3-day unbond delay
        }
        handler.withdrawBond(1);
        string[12] memory names = [
            "request",
            "bond",
            "requestUnbond",
            "withdrawBond",
            "submit",
            "challenge",
            "resolve",
            "finalize",
            "claimReward",
            "retry",
            "refund",
            "withdraw"
        ];
        for (uint256 i; i < names.length; ++i) {
            assertGt(handler.calls(bytes32(bytes(names[i]))), 0, names[i]);
        }
        assertEq(handler.finalizeCount(1), 1);
        assertEq(handler.finalizeCount(2), 1);
        invariant_ethConservation();
        invariant_tokenConservation();
        invariant_bondsConserved();
        invariant_atMostOnce();
    }

    /// Logs how far the campaign got (`forge test -vv`), to check that every action is reached.
    function afterInvariant() external view {
        string[12] memory names = [
            "request",
            "bond",
            "requestUnbond",
            "withdrawBond",
            "submit",
            "challenge",
            "resolve",
            "finalize",
            "claimReward",
            "retry",
            "refund",
            "withdraw"
        ];
        for (uint256 i; i < names.length; ++i) {
            console2.log(names[i], handler.calls(bytes32(bytes(names[i]))));
        }
    }
}
