// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {AIOracle} from "../src/AIOracle.sol";
import {AIOracleCallbackReceiver} from "../src/AIOracleCallbackReceiver.sol";
import {IAIOracle} from "../src/interfaces/IAIOracle.sol";
import {GameParams, GameStatus, IDisputeGame, IDisputeGameFactory} from "../src/interfaces/IDisputeGame.sol";
import {BaseTest} from "./utils/BaseTest.sol";
import {FeeOnTransferToken, MockDisputeGame, MockDisputeGameFactory} from "./utils/Mocks.sol";
import {OraStylePrompt} from "./utils/OraStylePrompt.sol";
import {EthRefuser} from "./utils/Receivers.sol";

contract AIOracleConstructorTest is BaseTest {
    function test_constructor_succeeds() public view {
        assertEq(oracle.owner(), owner);
        assertEq(oracle.treasury(), treasury);
        assertEq(oracle.protocolFeeBps(), PROTOCOL_BPS);
        assertEq(oracle.minCallbackGasPrice(), GAS_PRICE_FLOOR);
        assertEq(oracle.submissionBond(), SUBMISSION_BOND);
        assertEq(oracle.challengeBond(), CHALLENGE_BOND);
        assertEq(oracle.challengerRewardBps(), REWARD_BPS);
        assertEq(oracle.unbondDelay(), UNBOND_DELAY);
        assertEq(oracle.requestTimeout(), REQUEST_TIMEOUT);
        assertEq(oracle.PARAMETER_DELAY(), PARAMETER_DELAY);
        assertEq(address(oracle.disputeGameFactory()), address(factory));
    }

    function _expectInvalid(AIOracle.OracleConfig memory c) internal {
        vm.expectRevert(AIOracle.InvalidParameters.selector);
        new AIOracle(owner, c);
    }

    function test_RevertIf_constructorBadTreasuryShareOrFloor() public {
        AIOracle.OracleConfig memory c = _oracleConfig();
        c.treasury = address(0);
        _expectInvalid(c);
        c = _oracleConfig();
        c.protocolFeeBps = 1001;
        _expectInvalid(c);
        c = _oracleConfig();
        c.minCallbackGasPrice = 1000 gwei + 1;
        _expectInvalid(c);
    }

    function test_RevertIf_constructorZeroBonds() public {
        AIOracle.OracleConfig memory c = _oracleConfig();
        c.submissionBond = 0;
        _expectInvalid(c);
        c = _oracleConfig();
        c.challengeBond = 0;
        _expectInvalid(c);
        c = _oracleConfig();
        c.submissionBond = uint256(type(uint96).max) + 1;
        _expectInvalid(c);
    }

    function test_RevertIf_constructorRewardAboveBps() public {
        AIOracle.OracleConfig memory c = _oracleConfig();
        c.challengerRewardBps = 10_001;
        _expectInvalid(c);
    }

    function test_RevertIf_constructorBadDelays() public {
        AIOracle.OracleConfig memory c = _oracleConfig();
        c.requestTimeout = 0;
        _expectInvalid(c);
        c.requestTimeout = 366 days;
        _expectInvalid(c);
        c = _oracleConfig();
        c.unbondDelay = 366 days;
        _expectInvalid(c);
        c = _oracleConfig();
        c.parameterDelay = 30 days + 1;
        _expectInvalid(c);
        c.parameterDelay = 30 days;
        assertEq(new AIOracle(owner, c).PARAMETER_DELAY(), 30 days);
    }
}

contract AIOracleParametersTest is BaseTest {
    address internal t2 = makeAddr("t2");

    function test_proposeAndApplyParameters_succeeds() public {
        vm.expectEmit(address(oracle));
        emit AIOracle.ParametersProposed(t2, 1000, 5 gwei, block.timestamp + PARAMETER_DELAY);
        vm.prank(owner);
        oracle.proposeParameters(t2, 1000, 5 gwei);
        (address pt, uint16 pb, uint40 at, uint128 pp) = oracle.parameterProposal();
        assertEq(pt, t2);
        assertEq(pb, 1000);
        assertEq(at, block.timestamp + PARAMETER_DELAY);
        assertEq(pp, 5 gwei);
        // nothing changes during the delay
        vm.warp(block.timestamp + PARAMETER_DELAY - 1);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.ProposalNotReady.selector, at));
        oracle.applyParameters();
        assertEq(oracle.treasury(), treasury);
        assertEq(oracle.protocolFeeBps(), PROTOCOL_BPS);
        assertEq(oracle.minCallbackGasPrice(), GAS_PRICE_FLOOR);
        vm.warp(block.timestamp + 1);
        vm.expectEmit(address(oracle));
        emit AIOracle.ParametersUpdated(t2, 1000, 5 gwei);
        vm.prank(owner);
        oracle.applyParameters();
        assertEq(oracle.treasury(), t2);
        assertEq(oracle.protocolFeeBps(), 1000);
        assertEq(oracle.minCallbackGasPrice(), 5 gwei);
        (,, at,) = oracle.parameterProposal();
        assertEq(at, 0, "consumed");
        vm.prank(owner);
        vm.expectRevert(AIOracle.NoProposal.selector);
        oracle.applyParameters();
    }

    function test_cancelParameters_succeeds() public {
        vm.startPrank(owner);
        oracle.proposeParameters(t2, 0, 0);
        vm.expectEmit(address(oracle));
        emit AIOracle.ParametersProposalCancelled();
        oracle.cancelParameters();
        vm.warp(block.timestamp + PARAMETER_DELAY);
        vm.expectRevert(AIOracle.NoProposal.selector);
        oracle.applyParameters();
        vm.expectRevert(AIOracle.NoProposal.selector);
        oracle.cancelParameters();
        vm.stopPrank();
        assertEq(oracle.treasury(), treasury);
    }

    function test_proposeParameters_replacesAndRestartsTheDelay_succeeds() public {
        vm.startPrank(owner);
        oracle.proposeParameters(t2, 0, 0);
        vm.warp(block.timestamp + PARAMETER_DELAY - 1);
        oracle.proposeParameters(t2, 7, 0);
        vm.warp(block.timestamp + 1);
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.ProposalNotReady.selector, block.timestamp + PARAMETER_DELAY - 1)
        );
        oracle.applyParameters();
        vm.warp(block.timestamp + PARAMETER_DELAY);
        oracle.applyParameters();
        vm.stopPrank();
        assertEq(oracle.protocolFeeBps(), 7);
    }

    function test_RevertIf_parametersNotOwner() public {
        vm.startPrank(user);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, user));
        oracle.proposeParameters(treasury, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, user));
        oracle.applyParameters();
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, user));
        oracle.cancelParameters();
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, user));
        oracle.setDisputeGameFactory(IDisputeGameFactory(address(0)));
        vm.stopPrank();
    }

    function test_RevertIf_proposeParametersInvalid() public {
        vm.startPrank(owner);
        vm.expectRevert(AIOracle.InvalidParameters.selector);
        oracle.proposeParameters(address(0), 0, 0);
        vm.expectRevert(AIOracle.InvalidParameters.selector);
        oracle.proposeParameters(treasury, 1001, 0);
        vm.expectRevert(AIOracle.InvalidParameters.selector);
        oracle.proposeParameters(treasury, 0, 1000 gwei + 1);
        vm.stopPrank();
    }

    function test_setDisputeGameFactory_succeeds() public {
        IDisputeGameFactory f2 = IDisputeGameFactory(makeAddr("factory2"));
        vm.expectEmit(address(oracle));
        emit AIOracle.DisputeGameFactoryUpdated(f2);
        vm.prank(owner);
        oracle.setDisputeGameFactory(f2);
        assertEq(address(oracle.disputeGameFactory()), address(f2));
        vm.prank(publisher);
        uint256 id = oracle.registerModel(_config(address(0)));
        assertEq(address(oracle.getModel(id).factory), address(f2), "new models get the new factory");
        assertEq(address(oracle.getModel(modelId).factory), address(factory), "registered ones keep theirs");
    }

    function test_transferOwnership_succeeds() public {
        vm.prank(owner);
        oracle.transferOwnership(user);
        assertEq(oracle.owner(), owner, "two-step: not yet");
        vm.prank(user);
        oracle.acceptOwnership();
        assertEq(oracle.owner(), user);
    }
}

contract AIOracleModelTest is BaseTest {
    function test_registerModel_succeeds() public {
        AIOracle.ModelConfig memory c = _config(address(0));
        vm.expectEmit(address(oracle));
        emit AIOracle.ModelRegistered(3, user, c);
        vm.prank(user);
        uint256 id = oracle.registerModel(c);
        assertEq(id, 3);
        assertEq(oracle.modelCount(), 3);
        AIOracle.Model memory m = oracle.getModel(id);
        assertEq(m.modelRoot, ROOT);
        assertEq(m.programHash, PROGRAM);
        assertEq(m.publisher, user);
        assertEq(m.fee, MODEL_FEE);
        assertEq(m.feeReceiver, feeReceiver);
        assertEq(m.receiverShareBps, RECEIVER_BPS);
        assertEq(m.challengeWindow, WINDOW);
        assertEq(m.maxInputSize, MAX_INPUT);
        assertEq(m.maxCallbackGas, MAX_GAS);
        assertEq(m.feeToken, address(0));
        assertEq(address(m.factory), address(factory));
    }

    function test_RevertIf_registerModelWithoutFactory() public {
        vm.prank(owner);
        oracle.setDisputeGameFactory(IDisputeGameFactory(address(0)));
        vm.expectRevert(AIOracle.DisputesDisabled.selector);
        vm.prank(publisher);
        oracle.registerModel(_config(address(0)));
    }

    function test_RevertIf_registerModelInvalid() public {
        AIOracle.ModelConfig memory c;
        c = _config(address(0));
        c.modelRoot = 0;
        _expectInvalid(c);
        c = _config(address(0));
        c.programHash = 0;
        _expectInvalid(c);
        c = _config(address(0));
        c.challengeWindow = 0;
        _expectInvalid(c);
        c = _config(address(0));
        c.challengeWindow = 30 days + 1;
        _expectInvalid(c);
        c = _config(address(0));
        c.maxInputSize = 0;
        _expectInvalid(c);
        c.maxInputSize = 64 * 1024 + 1; // above MAX_INPUT_SIZE: a step reading the input must fit a block
        _expectInvalid(c);
        c.maxInputSize = 64 * 1024;
        oracle.registerModel(c);
        c = _config(address(0));
        c.maxCallbackGas = 0;
        _expectInvalid(c);
        c = _config(address(0));
        c.maxCallbackGas = 15_000_001;
        _expectInvalid(c);
        c = _config(address(0));
        c.receiverShareBps = 9001;
        _expectInvalid(c);
        c = _config(address(0));
        c.feeReceiver = address(0);
        _expectInvalid(c);
    }

    function _expectInvalid(AIOracle.ModelConfig memory c) internal {
        vm.expectRevert(AIOracle.InvalidModelConfig.selector);
        oracle.registerModel(c);
    }

    function test_setModelFee_decrease_succeeds() public {
        vm.expectEmit(address(oracle));
        emit AIOracle.ModelFeeUpdated(modelId, 1 gwei);
        vm.prank(publisher);
        oracle.setModelFee(modelId, 1 gwei);
        assertEq(oracle.getModel(modelId).fee, 1 gwei, "a decrease is in force at once");
        assertEq(oracle.estimateFee(modelId, 0), 1 gwei);
    }

    function test_setModelFee_increase_succeeds() public {
        uint256 at = block.timestamp + oracle.FEE_INCREASE_DELAY();
        vm.expectEmit(address(oracle));
        emit AIOracle.ModelFeeIncreaseScheduled(modelId, 1 ether, at);
        vm.prank(publisher);
        oracle.setModelFee(modelId, 1 ether);
        AIOracle.Model memory m = oracle.getModel(modelId);
        assertEq(m.fee, MODEL_FEE, "not yet");
        assertEq(m.pendingFee, 1 ether);
        assertEq(m.pendingFeeAt, at);
        assertEq(oracle.estimateFee(modelId, 0), MODEL_FEE);
        vm.warp(at);
        m = oracle.getModel(modelId);
        assertEq(m.fee, 1 ether);
        assertEq(m.pendingFeeAt, 0);
        assertEq(oracle.estimateFee(modelId, 0), 1 ether);
        // a later decrease starts from the fee in force
        vm.prank(publisher);
        oracle.setModelFee(modelId, 0.5 ether);
        assertEq(oracle.getModel(modelId).fee, 0.5 ether);
    }

    /// The front-run: the publisher raises its fee in front of a request (or of an ORA-style caller that
    /// forwards whatever it has). The increase is not in force for a day, so the request pays the fee it saw;
    /// and with the `maxModelFee` overload a caller refuses any fee above its bound outright.
    function test_setModelFee_frontRunIncrease_requestPaysTheFeeItSaw() public {
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.prank(publisher);
        oracle.setModelFee(modelId, 5 ether); // in front of the request
        vm.prank(user);
        uint256 id =
            oracle.requestCallback{value: 5 ether}(modelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
        assertEq(oracle.getRequest(id).modelFee, MODEL_FEE);
        assertEq(oracle.balanceOf(user, address(0)), 5 ether - fee, "the excess is the payer's");
        // a cancelled increase never applies
        vm.prank(publisher);
        oracle.setModelFee(modelId, MODEL_FEE);
        vm.warp(block.timestamp + oracle.FEE_INCREASE_DELAY());
        assertEq(oracle.estimateFee(modelId, GAS_LIMIT), fee);
    }

    function test_requestCallback_maxModelFee_succeeds() public {
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.prank(user);
        uint256 id = oracle.requestCallback{value: fee}(
            modelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA, MODEL_FEE
        );
        assertEq(oracle.getRequest(id).modelFee, MODEL_FEE);
    }

    function test_RevertIf_requestCallbackModelFeeAboveMax() public {
        vm.prank(publisher);
        oracle.setModelFee(modelId, 2 * MODEL_FEE);
        vm.warp(block.timestamp + oracle.FEE_INCREASE_DELAY());
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.ModelFeeAboveMax.selector, 2 * MODEL_FEE, MODEL_FEE));
        vm.prank(user);
        oracle.requestCallback{value: fee}(modelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA, MODEL_FEE);
    }

    function test_setModelFee_keepsPaidFeeOfEarlierRequests() public {
        uint256 id = _request();
        vm.prank(publisher);
        oracle.setModelFee(modelId, 0);
        assertEq(oracle.getRequest(id).modelFee, MODEL_FEE);
    }

    function test_RevertIf_setModelFeeNotPublisher() public {
        vm.expectRevert(AIOracle.NotModelPublisher.selector);
        vm.prank(user);
        oracle.setModelFee(modelId, 1);
    }

    function test_RevertIf_setModelFeeUnknownModel() public {
        vm.expectRevert(abi.encodeWithSelector(AIOracle.UnknownModel.selector, 99));
        vm.prank(publisher);
        oracle.setModelFee(99, 1);
    }

    function test_setModelFeeReceiver_succeeds() public {
        vm.expectEmit(address(oracle));
        emit AIOracle.ModelFeeReceiverUpdated(modelId, user, 9000);
        vm.prank(publisher);
        oracle.setModelFeeReceiver(modelId, user, 9000);
        AIOracle.Model memory m = oracle.getModel(modelId);
        assertEq(m.feeReceiver, user);
        assertEq(m.receiverShareBps, 9000);
        assertEq(m.modelRoot, ROOT, "root immutable");
        assertEq(m.programHash, PROGRAM, "program immutable");
    }

    function test_RevertIf_setModelFeeReceiverNotPublisher() public {
        vm.expectRevert(AIOracle.NotModelPublisher.selector);
        vm.prank(user);
        oracle.setModelFeeReceiver(modelId, user, 0);
    }

    function test_RevertIf_setModelFeeReceiverInvalid() public {
        vm.startPrank(publisher);
        vm.expectRevert(AIOracle.InvalidModelConfig.selector);
        oracle.setModelFeeReceiver(modelId, user, 9001);
        vm.expectRevert(AIOracle.InvalidModelConfig.selector);
        oracle.setModelFeeReceiver(modelId, address(0), 1);
        vm.stopPrank();
    }

    function test_RevertIf_getModelUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(AIOracle.UnknownModel.selector, 0));
        oracle.getModel(0);
    }
}

contract AIOracleFeeTest is BaseTest {
    function test_estimateFee_succeeds() public view {
        assertEq(oracle.estimateFee(modelId, GAS_LIMIT), MODEL_FEE + GAS_LIMIT * GAS_PRICE_FLOOR);
        assertEq(oracle.estimateFee(tokenModelId, GAS_LIMIT), GAS_LIMIT * GAS_PRICE_FLOOR);
    }

    function test_estimateFee_usesBasefeeAboveFloor() public {
        vm.fee(7 gwei);
        assertEq(oracle.callbackGasPrice(), 7 gwei);
        assertEq(oracle.estimateFee(modelId, GAS_LIMIT), MODEL_FEE + GAS_LIMIT * 7 gwei);
        vm.fee(0.5 gwei);
        assertEq(oracle.callbackGasPrice(), GAS_PRICE_FLOOR);
    }

    function test_estimateFees_succeeds() public view {
        (uint256 eth, address tok, uint256 tokFee) = oracle.estimateFees(tokenModelId, GAS_LIMIT);
        assertEq(eth, GAS_LIMIT * GAS_PRICE_FLOOR);
        assertEq(tok, address(token));
        assertEq(tokFee, MODEL_FEE);
        (eth, tok, tokFee) = oracle.estimateFees(modelId, GAS_LIMIT);
        assertEq(eth, MODEL_FEE + GAS_LIMIT * GAS_PRICE_FLOOR);
        assertEq(tok, address(0));
        assertEq(tokFee, 0);
    }

    function test_RevertIf_estimateFeeUnknownModel() public {
        vm.expectRevert(abi.encodeWithSelector(AIOracle.UnknownModel.selector, 42));
        oracle.estimateFee(42, 1);
    }
}

contract AIOracleRequestTest is BaseTest {
    function test_requestCallback_succeeds() public {
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.expectEmit(address(oracle));
        emit IAIOracle.AICallbackRequest(user, 1, modelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
        vm.prank(user);
        uint256 id = oracle.requestCallback{value: fee}(modelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
        assertEq(id, 1);
        assertEq(oracle.lastRequestId(), 1);
        AIOracle.Request memory r = oracle.getRequest(id);
        assertEq(r.requester, user);
        assertEq(r.modelId, modelId);
        assertEq(r.gasLimit, GAS_LIMIT);
        assertEq(r.deadline, block.timestamp + REQUEST_TIMEOUT);
        assertEq(r.modelFee, MODEL_FEE);
        assertEq(r.gasFee, GAS_LIMIT * GAS_PRICE_FLOOR);
        assertEq(uint8(r.status), uint8(AIOracle.RequestStatus.PENDING));
        assertEq(r.payloadHash, oracle.payloadHash(keccak256(INPUT), address(receiver), keccak256(CB_DATA)));
        assertEq(address(oracle).balance, BONDS + fee);
        assertFalse(oracle.isFinalized(id));
    }

    function test_requestCallback_creditsExcess() public {
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        uint256 before = user.balance;
        vm.expectEmit(address(oracle));
        emit AIOracle.ExcessCredited(user, 3 ether);
        vm.prank(user);
        oracle.requestCallback{value: fee + 3 ether}(modelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
        assertEq(user.balance, before - fee - 3 ether);
        assertEq(oracle.balanceOf(user, address(0)), 3 ether);
        assertEq(address(oracle).balance, BONDS + fee + 3 ether);
        vm.prank(user);
        oracle.withdraw(address(0));
        assertEq(user.balance, before - fee);
    }

    /// A base fee risen since the estimate (by at most one block's 12.5%) does not make the request fail:
    /// it is taken at the price the payment covers; less than that reverts.
    function test_requestCallback_baseFeeRoseSinceEstimate_succeeds() public {
        vm.fee(8 gwei);
        uint256 estimate = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.roll(block.number + 1);
        vm.fee(9 gwei);
        assertEq(oracle.callbackGasPrice(), 9 gwei);
        assertEq(oracle.minAcceptedGasPrice(), 8 gwei);
        vm.prank(user);
        uint256 id =
            oracle.requestCallback{value: estimate}(modelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
        assertEq(oracle.getRequest(id).gasFee, GAS_LIMIT * 8 gwei, "what the payment covers");
        assertEq(oracle.balanceOf(user, address(0)), 0);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.InsufficientFee.selector, estimate - 1, estimate));
        vm.prank(user);
        oracle.requestCallback{value: estimate - 1}(modelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
    }

    function test_requestCallback_tokenModel_succeeds() public {
        uint256 fee = oracle.estimateFee(tokenModelId, GAS_LIMIT);
        uint256 tokBefore = token.balanceOf(user);
        vm.prank(user);
        oracle.requestCallback{value: fee}(tokenModelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
        assertEq(token.balanceOf(user), tokBefore - MODEL_FEE);
        assertEq(token.balanceOf(address(oracle)), MODEL_FEE);
        assertEq(address(oracle).balance, BONDS + fee);
    }

    function test_RevertIf_requestCallbackUnknownModel() public {
        vm.expectRevert(abi.encodeWithSelector(AIOracle.UnknownModel.selector, 7));
        vm.prank(user);
        oracle.requestCallback{value: 1 ether}(7, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
    }

    function test_RevertIf_requestCallbackInsufficientFee() public {
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.InsufficientFee.selector, fee - 1, fee));
        vm.prank(user);
        oracle.requestCallback{value: fee - 1}(modelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
    }

    function test_RevertIf_requestCallbackInputTooLarge() public {
        bytes memory big = new bytes(MAX_INPUT + 1);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.InputTooLarge.selector, MAX_INPUT + 1, MAX_INPUT));
        vm.prank(user);
        oracle.requestCallback{value: 1 ether}(modelId, big, address(receiver), GAS_LIMIT, CB_DATA);
    }

    function test_RevertIf_requestCallbackGasLimitTooHigh() public {
        vm.expectRevert(abi.encodeWithSelector(AIOracle.GasLimitTooHigh.selector, MAX_GAS + 1, MAX_GAS));
        vm.prank(user);
        oracle.requestCallback{value: 1 ether}(modelId, INPUT, address(receiver), MAX_GAS + 1, CB_DATA);
    }

    /// The finding: ORA-style callers forward their whole `msg.value`; 1 wei over the price used to be pushed
    /// back and reverted the request of any caller without `receive`. It is credited now.
    function test_requestCallback_overpaymentByOraStyleCaller_credited() public {
        OraStylePrompt ora = new OraStylePrompt(oracle);
        uint256 fee = ora.estimateFee(modelId);
        vm.prank(user);
        uint256 id = ora.calculateAIResult{value: fee + 1}(modelId, "What is 2+2?");
        assertEq(oracle.balanceOf(address(ora), address(0)), 1);
        assertEq(uint256(oracle.getRequest(id).modelFee) + oracle.getRequest(id).gasFee, fee);
        // the same for a bare contract without receive
        EthRefuser refuser = new EthRefuser();
        vm.deal(address(refuser), 1 ether);
        refuser.request(oracle, modelId, oracle.estimateFee(modelId, 0) + 7);
        assertEq(oracle.balanceOf(address(refuser), address(0)), 7);
    }

    function test_RevertIf_requestCallbackFeeOnTransferToken() public {
        FeeOnTransferToken fot = new FeeOnTransferToken();
        vm.prank(publisher);
        uint256 id = oracle.registerModel(_config(address(fot)));
        fot.mint(user, 10 ether);
        vm.startPrank(user);
        fot.approve(address(oracle), type(uint256).max);
        vm.expectRevert(AIOracle.FeeTokenTransferMismatch.selector);
        oracle.requestCallback{value: 1 ether}(id, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
        vm.stopPrank();
    }

    function test_RevertIf_requestCallbackTokenNotApproved() public {
        vm.prank(user);
        token.approve(address(oracle), 0);
        vm.expectRevert();
        vm.prank(user);
        oracle.requestCallback{value: 1 ether}(tokenModelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
    }

    function test_requestCallbackBatch_succeeds() public {
        bytes[] memory inputs = new bytes[](3);
        inputs[0] = "a";
        inputs[1] = "bb";
        inputs[2] = "ccc";
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.expectEmit(address(oracle));
        emit IAIOracle.AICallbackRequest(user, 2, modelId, "bb", address(receiver), GAS_LIMIT, CB_DATA);
        vm.prank(user);
        uint256 first = oracle.requestCallbackBatch{value: 3 * fee + 1}(
            modelId, inputs, address(receiver), GAS_LIMIT, CB_DATA
        );
        assertEq(first, 1);
        assertEq(oracle.lastRequestId(), 3);
        assertEq(address(oracle).balance, BONDS + 3 * fee + 1);
        assertEq(oracle.balanceOf(user, address(0)), 1, "the extra wei is credited");
        for (uint256 i; i < 3; ++i) {
            assertEq(
                oracle.getRequest(first + i).payloadHash,
                oracle.payloadHash(keccak256(inputs[i]), address(receiver), keccak256(CB_DATA))
            );
        }
    }

    function test_requestCallbackBatch_tokenModel_succeeds() public {
        bytes[] memory inputs = new bytes[](2);
        inputs[0] = "a";
        inputs[1] = "b";
        uint256 fee = oracle.estimateFee(tokenModelId, GAS_LIMIT);
        vm.prank(user);
        oracle.requestCallbackBatch{value: 2 * fee}(
            tokenModelId, inputs, address(receiver), GAS_LIMIT, CB_DATA
        );
        assertEq(token.balanceOf(address(oracle)), 2 * MODEL_FEE);
    }

    function test_RevertIf_requestCallbackBatchEmpty() public {
        vm.expectRevert(AIOracle.EmptyBatch.selector);
        vm.prank(user);
        oracle.requestCallbackBatch(modelId, new bytes[](0), address(receiver), GAS_LIMIT, CB_DATA);
    }

    function test_RevertIf_requestCallbackBatchUnderpaid() public {
        bytes[] memory inputs = new bytes[](2);
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.InsufficientFee.selector, 2 * fee - 1, 2 * fee));
        vm.prank(user);
        oracle.requestCallbackBatch{value: 2 * fee - 1}(
            modelId, inputs, address(receiver), GAS_LIMIT, CB_DATA
        );
    }

    function test_RevertIf_requestCallbackBatchInputTooLarge() public {
        bytes[] memory inputs = new bytes[](2);
        inputs[1] = new bytes(MAX_INPUT + 1);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.InputTooLarge.selector, MAX_INPUT + 1, MAX_INPUT));
        vm.prank(user);
        oracle.requestCallbackBatch{value: 1 ether}(modelId, inputs, address(receiver), GAS_LIMIT, CB_DATA);
    }

    function test_refund_succeeds() public {
        uint256 id = _request();
        AIOracle.Request memory r = oracle.getRequest(id);
        vm.warp(r.deadline + 1);
        vm.expectEmit(address(oracle));
        emit AIOracle.RequestRefunded(id, user);
        vm.prank(finalizer);
        oracle.refund(id);
        assertEq(uint8(_status(id)), uint8(AIOracle.RequestStatus.REFUNDED));
        assertEq(oracle.balanceOf(user, address(0)), uint256(r.modelFee) + r.gasFee);
        uint256 before = user.balance;
        vm.prank(user);
        oracle.withdraw(address(0));
        assertEq(user.balance, before + r.modelFee + r.gasFee);
        assertEq(address(oracle).balance, BONDS, "only the bonds remain");
    }

    function test_refund_tokenModel_succeeds() public {
        uint256 fee = oracle.estimateFee(tokenModelId, GAS_LIMIT);
        vm.prank(user);
        uint256 id =
            oracle.requestCallback{value: fee}(tokenModelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
        vm.warp(block.timestamp + REQUEST_TIMEOUT + 1);
        oracle.refund(id);
        assertEq(oracle.balanceOf(user, address(0)), fee);
        assertEq(oracle.balanceOf(user, address(token)), MODEL_FEE);
    }

    function test_RevertIf_refundBeforeDeadline() public {
        uint256 id = _request();
        vm.warp(block.timestamp + REQUEST_TIMEOUT);
        vm.expectRevert(AIOracle.RequestNotExpired.selector);
        oracle.refund(id);
    }

    function test_RevertIf_refundServed() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + REQUEST_TIMEOUT + 1);
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.SUBMITTED)
        );
        oracle.refund(id);
    }

    function test_RevertIf_refundTwice() public {
        uint256 id = _request();
        vm.warp(block.timestamp + REQUEST_TIMEOUT + 1);
        oracle.refund(id);
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.REFUNDED)
        );
        oracle.refund(id);
    }

    function test_RevertIf_refundUnknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.NONE));
        oracle.refund(123);
    }
}

contract AIOracleOperatorTest is BaseTest {
    function test_bond_succeeds() public {
        address op = makeAddr("newOp");
        vm.deal(op, 2 ether);
        assertFalse(oracle.isBondedOperator(op));
        vm.expectEmit(address(oracle));
        emit AIOracle.OperatorBonded(op, 1 ether, 1 ether);
        vm.prank(op);
        oracle.bond{value: 1 ether}();
        assertTrue(oracle.isBondedOperator(op));
        assertEq(oracle.getOperator(op).bond, 1 ether);
    }

    function test_bond_cancelsUnbond() public {
        vm.startPrank(operator);
        oracle.requestUnbond();
        assertFalse(oracle.isBondedOperator(operator));
        oracle.bond{value: 1}();
        vm.stopPrank();
        assertTrue(oracle.isBondedOperator(operator));
        assertEq(oracle.getOperator(operator).unbondAt, 0);
    }

    function test_RevertIf_bondZero() public {
        vm.expectRevert(AIOracle.ZeroAmount.selector);
        vm.prank(operator);
        oracle.bond();
    }

    function test_requestUnbond_succeeds() public {
        vm.expectEmit(address(oracle));
        emit AIOracle.UnbondRequested(operator, block.timestamp + UNBOND_DELAY);
        vm.prank(operator);
        oracle.requestUnbond();
        assertEq(oracle.getOperator(operator).unbondAt, block.timestamp + UNBOND_DELAY);
        assertFalse(oracle.isBondedOperator(operator));
    }

    function test_RevertIf_requestUnbondNotOperator() public {
        vm.expectRevert(AIOracle.NotBondedOperator.selector);
        vm.prank(user);
        oracle.requestUnbond();
    }

    function test_withdrawBond_succeeds() public {
        vm.prank(operator);
        oracle.requestUnbond();
        vm.warp(block.timestamp + UNBOND_DELAY);
        uint256 before = operator.balance;
        vm.expectEmit(address(oracle));
        emit AIOracle.BondWithdrawn(operator, 10 ether);
        vm.prank(operator);
        oracle.withdrawBond();
        assertEq(operator.balance, before + 10 ether);
        assertEq(oracle.getOperator(operator).bond, 0);
    }

    function test_withdrawBond_keepsLockedPart() public {
        uint256 id = _request();
        _submit(id);
        vm.prank(operator);
        oracle.requestUnbond();
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.prank(operator);
        oracle.withdrawBond();
        AIOracle.Operator memory op = oracle.getOperator(operator);
        assertEq(op.bond, SUBMISSION_BOND);
        assertEq(op.locked, SUBMISSION_BOND);
        // once final, the lock is released and the rest can be withdrawn
        _finalize(id, address(receiver));
        vm.prank(operator);
        oracle.withdrawBond();
        assertEq(oracle.getOperator(operator).bond, 0);
    }

    function test_RevertIf_withdrawBondNotUnbonding() public {
        vm.expectRevert(AIOracle.NotUnbonding.selector);
        vm.prank(operator);
        oracle.withdrawBond();
    }

    function test_RevertIf_withdrawBondTooEarly() public {
        vm.prank(operator);
        oracle.requestUnbond();
        vm.warp(block.timestamp + UNBOND_DELAY - 1);
        vm.expectRevert(AIOracle.UnbondDelayNotElapsed.selector);
        vm.prank(operator);
        oracle.withdrawBond();
    }

    function test_RevertIf_withdrawBondAllLocked() public {
        address op = makeAddr("smallOp");
        vm.deal(op, SUBMISSION_BOND);
        vm.prank(op);
        oracle.bond{value: SUBMISSION_BOND}();
        uint256 id = _request();
        vm.prank(op);
        oracle.submit(id, OUTPUT, "");
        vm.prank(op);
        oracle.requestUnbond();
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.expectRevert(AIOracle.ZeroAmount.selector);
        vm.prank(op);
        oracle.withdrawBond();
    }
}

contract AIOracleSubmitTest is BaseTest {
    function test_submit_succeeds() public {
        uint256 id = _request();
        vm.expectEmit(address(oracle));
        emit AIOracle.ResultSubmitted(id, operator, OUTPUT, CLAIM);
        _submit(id);
        AIOracle.Request memory r = oracle.getRequest(id);
        assertEq(uint8(r.status), uint8(AIOracle.RequestStatus.SUBMITTED));
        assertEq(r.challengeDeadline, block.timestamp + WINDOW);
        AIOracle.Result memory res = oracle.getResult(id);
        assertEq(res.submitter, operator);
        assertTrue(res.bondLocked);
        assertEq(res.outputHash, keccak256(OUTPUT));
        assertEq(res.claim, CLAIM);
        assertEq(oracle.getOperator(operator).locked, SUBMISSION_BOND);
    }

    function test_submit_atDeadline_succeeds() public {
        uint256 id = _request();
        vm.warp(oracle.getRequest(id).deadline);
        _submit(id);
        assertEq(uint8(_status(id)), uint8(AIOracle.RequestStatus.SUBMITTED));
    }

    function test_RevertIf_submitSecond() public {
        uint256 id = _request();
        _submit(id);
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.SUBMITTED)
        );
        vm.prank(operator2);
        oracle.submit(id, "5", "");
        assertEq(oracle.getResult(id).submitter, operator, "first submission wins");
    }

    function test_RevertIf_submitNotBonded() public {
        uint256 id = _request();
        vm.expectRevert(AIOracle.NotBondedOperator.selector);
        vm.prank(user);
        oracle.submit(id, OUTPUT, "");
    }

    function test_RevertIf_submitUnbonding() public {
        uint256 id = _request();
        vm.prank(operator);
        oracle.requestUnbond();
        vm.expectRevert(AIOracle.NotBondedOperator.selector);
        _submit(id);
    }

    function test_RevertIf_submitBondFullyLocked() public {
        address op = makeAddr("smallOp");
        vm.deal(op, SUBMISSION_BOND);
        vm.prank(op);
        oracle.bond{value: SUBMISSION_BOND}();
        uint256 a = _request();
        uint256 b = _request();
        vm.startPrank(op);
        oracle.submit(a, OUTPUT, "");
        vm.expectRevert(AIOracle.NotBondedOperator.selector);
        oracle.submit(b, OUTPUT, "");
        vm.stopPrank();
    }

    function test_RevertIf_submitExpired() public {
        uint256 id = _request();
        vm.warp(oracle.getRequest(id).deadline + 1);
        vm.expectRevert(AIOracle.RequestExpired.selector);
        _submit(id);
    }

    /// The claim is the model's factory's binding of the output and proof, never a value the operator picks.
    function test_submit_claimFromTheModelsFactory_succeeds() public {
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, OUTPUT, "proof");
        bytes32 want = factory.resultClaim(ROOT, PROGRAM, OUTPUT, "proof");
        assertEq(want, keccak256(abi.encodePacked(keccak256(OUTPUT), "proof")));
        assertEq(oracle.getResult(id).claim, want);
    }

    function test_RevertIf_submitOutputTooLarge() public {
        uint256 id = _request();
        bytes memory big = new bytes(64 * 1024 + 1);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.OutputTooLarge.selector, big.length, 64 * 1024));
        vm.prank(operator);
        oracle.submit(id, big, "");
    }

    function test_RevertIf_submitUnknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.NONE));
        vm.prank(operator);
        oracle.submit(77, OUTPUT, "");
    }
}

contract AIOracleFinalizeTest is BaseTest {
    function test_finalize_succeeds() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectEmit(address(oracle));
        emit IAIOracle.AICallbackResult(user, id, finalizer, OUTPUT);
        vm.expectEmit(address(oracle));
        emit AIOracle.CallbackDispatched(id, 1, true, "");
        _finalize(id, address(receiver));

        assertTrue(oracle.isFinalized(id));
        AIOracle.Request memory r = oracle.getRequest(id);
        assertEq(uint8(r.callbackStatus), uint8(AIOracle.CallbackStatus.SUCCEEDED));
        assertEq(r.callbackAttempts, 1);
        assertEq(receiver.calls(), 1);
        assertEq(receiver.lastRequestId(), id);
        assertEq(receiver.lastOutput(), OUTPUT);
        assertEq(receiver.lastCallbackData(), CB_DATA);
        // the receiver got (almost all of) the requested gas, not less
        assertGt(receiver.lastGas(), GAS_LIMIT - 5000);
        assertLe(receiver.lastGas(), GAS_LIMIT);

        // fee split: 20% receiver, 5% protocol, rest operator; gas fee to the finalizer
        uint256 rAmt = uint256(MODEL_FEE) * RECEIVER_BPS / 10_000;
        uint256 pAmt = uint256(MODEL_FEE) * PROTOCOL_BPS / 10_000;
        assertEq(oracle.balanceOf(feeReceiver, address(0)), rAmt);
        assertEq(oracle.balanceOf(treasury, address(0)), pAmt);
        assertEq(oracle.balanceOf(operator, address(0)), MODEL_FEE - rAmt - pAmt);
        assertEq(oracle.balanceOf(finalizer, address(0)), GAS_LIMIT * GAS_PRICE_FLOOR);
        assertEq(oracle.getOperator(operator).locked, 0);
    }

    function test_finalize_bySubmitter_creditsOnce() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(operator);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, OUTPUT);
        uint256 rAmt = uint256(MODEL_FEE) * RECEIVER_BPS / 10_000;
        uint256 pAmt = uint256(MODEL_FEE) * PROTOCOL_BPS / 10_000;
        assertEq(
            oracle.balanceOf(operator, address(0)), MODEL_FEE - rAmt - pAmt + GAS_LIMIT * GAS_PRICE_FLOOR
        );
    }

    function test_finalize_tokenModel_succeeds() public {
        uint256 fee = oracle.estimateFee(tokenModelId, GAS_LIMIT);
        vm.prank(user);
        uint256 id =
            oracle.requestCallback{value: fee}(tokenModelId, INPUT, address(receiver), GAS_LIMIT, CB_DATA);
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        _finalize(id, address(receiver));
        uint256 rAmt = uint256(MODEL_FEE) * RECEIVER_BPS / 10_000;
        uint256 pAmt = uint256(MODEL_FEE) * PROTOCOL_BPS / 10_000;
        assertEq(oracle.balanceOf(feeReceiver, address(token)), rAmt);
        assertEq(oracle.balanceOf(treasury, address(token)), pAmt);
        assertEq(oracle.balanceOf(operator, address(token)), MODEL_FEE - rAmt - pAmt);
        assertEq(oracle.balanceOf(finalizer, address(0)), fee);
        vm.prank(operator);
        oracle.withdraw(address(token));
        assertEq(token.balanceOf(operator), MODEL_FEE - rAmt - pAmt);
    }

    /// A request the model rejects: the guest's error outcome is the empty output. Finalizing it calls the
    /// receiver's `aiOracleCallbackError` (InvalidInput, the output as message) with the requested gas,
    /// not `aiOracleCallback`.
    function test_finalize_rejectedRequest_deliversErrorCallback() public {
        uint256 id = _request();
        vm.prank(operator);
        oracle.submit(id, "", "");
        assertEq(oracle.getResult(id).outputHash, keccak256(""));
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectEmit(address(oracle));
        emit IAIOracle.AICallbackResult(user, id, finalizer, "");
        vm.expectEmit(address(oracle));
        emit AIOracle.CallbackDispatched(id, 1, true, "");
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, "");
        assertEq(receiver.calls(), 0, "no success callback");
        assertEq(receiver.errorCalls(), 1);
        assertEq(receiver.lastRequestId(), id);
        assertEq(uint8(receiver.lastErrorCode()), uint8(AIOracleCallbackReceiver.AIOracleError.InvalidInput));
        assertEq(receiver.lastErrorMessage(), "");
        assertEq(receiver.lastCallbackData(), CB_DATA);
        assertGt(receiver.lastGas(), GAS_LIMIT - 5000, "the same gas rules");
        assertEq(uint8(oracle.getRequest(id).callbackStatus), uint8(AIOracle.CallbackStatus.SUCCEEDED));
        assertTrue(oracle.isFinalized(id));
        assertEq(
            oracle.balanceOf(finalizer, address(0)),
            GAS_LIMIT * GAS_PRICE_FLOOR,
            "the operator is paid as usual"
        );
    }

    function test_finalize_noCallbackContract_skips() public {
        uint256 id = _requestTo(address(0));
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        _finalize(id, address(0));
        assertEq(uint8(oracle.getRequest(id).callbackStatus), uint8(AIOracle.CallbackStatus.SKIPPED));
        assertTrue(oracle.isFinalized(id));
    }

    function test_RevertIf_finalizeInWindow() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(AIOracle.ChallengeWindowOpen.selector);
        _finalize(id, address(receiver));
    }

    function test_RevertIf_finalizePending() public {
        uint256 id = _request();
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.PENDING)
        );
        _finalize(id, address(receiver));
    }

    function test_RevertIf_finalizeTwice() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        _finalize(id, address(receiver));
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.FINALIZED)
        );
        _finalize(id, address(receiver));
        assertEq(receiver.calls(), 1);
    }

    function test_RevertIf_finalizeWrongPayload() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectRevert(AIOracle.PayloadMismatch.selector);
        oracle.finalize(id, keccak256(INPUT), address(receiver), "other", OUTPUT);
        vm.expectRevert(AIOracle.PayloadMismatch.selector);
        oracle.finalize(id, keccak256("x"), address(receiver), CB_DATA, OUTPUT);
        vm.expectRevert(AIOracle.PayloadMismatch.selector);
        oracle.finalize(id, keccak256(INPUT), address(this), CB_DATA, OUTPUT);
    }

    function test_RevertIf_finalizeWrongOutput() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectRevert(AIOracle.OutputMismatch.selector);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, "5");
    }

    function test_RevertIf_finalizeDisputed() public {
        uint256 id = _request();
        _submit(id);
        _challenge(id, address(receiver), "5", "");
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.DISPUTED)
        );
        _finalize(id, address(receiver));
    }

    function test_RevertIf_finalizeWithTooLittleGas() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(finalizer);
        vm.expectRevert(AIOracle.InsufficientGasForCallback.selector);
        oracle.finalize{gas: GAS_LIMIT}(id, keccak256(INPUT), address(receiver), CB_DATA, OUTPUT);
        assertFalse(oracle.isFinalized(id));
    }

    function test_withdraw_succeeds() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        _finalize(id, address(receiver));
        uint256 amt = oracle.balanceOf(operator, address(0));
        uint256 before = operator.balance;
        vm.expectEmit(address(oracle));
        emit AIOracle.Withdrawn(operator, address(0), amt);
        vm.prank(operator);
        assertEq(oracle.withdraw(address(0)), amt);
        assertEq(operator.balance, before + amt);
        assertEq(oracle.balanceOf(operator, address(0)), 0);
    }

    function test_RevertIf_withdrawNothing() public {
        vm.expectRevert(AIOracle.ZeroAmount.selector);
        vm.prank(user);
        oracle.withdraw(address(0));
    }

    function test_RevertIf_withdrawEthRejected() public {
        EthRefuser refuser = new EthRefuser();
        vm.deal(address(refuser), 1 ether);
        uint256 fee = oracle.estimateFee(modelId, 0);
        uint256 id = refuser.request(oracle, modelId, fee);
        vm.warp(block.timestamp + REQUEST_TIMEOUT + 1);
        oracle.refund(id);
        vm.expectRevert(AIOracle.EthTransferFailed.selector);
        vm.prank(address(refuser));
        oracle.withdraw(address(0));
        assertEq(oracle.balanceOf(address(refuser), address(0)), fee, "balance kept on failure");
    }
}

contract AIOracleDisputeTest is BaseTest {
    function _opShare() internal pure returns (uint256) {
        return MODEL_FEE - uint256(MODEL_FEE) * RECEIVER_BPS / 10_000 - _protocolShare();
    }

    function _protocolShare() internal pure returns (uint256) {
        return uint256(MODEL_FEE) * PROTOCOL_BPS / 10_000;
    }

    /// @dev What the oracle owes the accounts of these tests (credits and operator bonds).
    function _owed() internal view returns (uint256 sum) {
        address[8] memory who =
            [treasury, feeReceiver, operator, operator2, challenger, user, finalizer, honest];
        for (uint256 i = 0; i < who.length; i++) {
            sum += oracle.balanceOf(who[i], address(0));
        }
        sum += oracle.getOperator(operator).bond + oracle.getOperator(operator2).bond;
    }

    bytes internal constant GOOD = "5";
    bytes32 internal constant GOOD_CLAIM = keccak256(GOOD);
    address internal honest = makeAddr("honest");

    function test_challenge_succeeds() public {
        uint256 id = _request();
        _submit(id);
        vm.expectEmit(true, true, true, false, address(oracle));
        emit AIOracle.ResultChallenged(id, 1, challenger, IDisputeGame(address(0)), GOOD, GOOD_CLAIM);
        uint256 did = _challenge(id, address(receiver), GOOD, "");
        assertEq(did, 1);
        assertEq(oracle.disputeCount(), 1);
        assertEq(uint8(_status(id)), uint8(AIOracle.RequestStatus.DISPUTED));
        assertEq(oracle.getResult(id).openDisputes, 1);
        assertTrue(oracle.hasChallenged(id, 0, challenger));
        AIOracle.Dispute memory d = oracle.getDispute(did);
        assertEq(d.requestId, id);
        assertEq(d.challenger, challenger);
        assertEq(uint8(d.status), uint8(AIOracle.DisputeStatus.OPEN));
        assertEq(d.version, 0);
        assertEq(d.defender, operator);
        assertEq(d.defenderClaim, CLAIM);
        assertEq(address(d.game), address(factory.lastGame()));
        assertEq(d.outputHash, keccak256(GOOD));
        assertEq(d.claim, GOOD_CLAIM);
        GameParams memory p = MockDisputeGame(address(d.game)).params();
        assertEq(p.requestId, id);
        assertEq(p.modelRoot, ROOT);
        assertEq(p.programHash, PROGRAM);
        assertEq(p.inputHash, keccak256(INPUT));
        assertEq(p.submitter, operator);
        assertEq(p.submitterClaim, CLAIM);
        assertEq(p.submitterOutputHash, keccak256(OUTPUT));
        assertEq(p.challenger, challenger);
        assertEq(p.challengerClaim, GOOD_CLAIM);
        assertEq(p.challengerOutputHash, keccak256(GOOD));
    }

    function test_challenge_concurrent_succeeds() public {
        uint256 id = _request();
        _submit(id);
        uint256 a = _challenge(id, address(receiver), GOOD, "");
        uint256 b = _challengeAs(honest, id, address(receiver), GOOD, "");
        assertEq(oracle.getResult(id).openDisputes, 2);
        assertTrue(address(_game(a)) != address(_game(b)));
        assertEq(address(oracle).balance, BONDS + oracle.estimateFee(modelId, GAS_LIMIT) + 2 * CHALLENGE_BOND);
    }

    function test_RevertIf_challengeAfterWindow() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectRevert(AIOracle.ChallengeWindowClosed.selector);
        _challenge(id, address(receiver), GOOD, "");
    }

    function test_RevertIf_challengeTwiceBySameChallenger() public {
        uint256 id = _request();
        _submit(id);
        uint256 did = _challenge(id, address(receiver), GOOD, "");
        vm.expectRevert(AIOracle.AlreadyChallenged.selector);
        _challenge(id, address(receiver), GOOD, "another encoding");
        _game(did).setStatus(GameStatus.DEFENDER_WINS);
        oracle.resolveDispute(did);
        vm.expectRevert(AIOracle.AlreadyChallenged.selector);
        _challenge(id, address(receiver), GOOD, "");
    }

    function test_RevertIf_challengePending() public {
        uint256 id = _request();
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.PENDING)
        );
        _challenge(id, address(receiver), GOOD, "");
    }

    function test_RevertIf_challengeFinalized() public {
        uint256 id = _request();
        _submit(id);
        vm.warp(block.timestamp + WINDOW + 1);
        _finalize(id, address(receiver));
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.FINALIZED)
        );
        _challenge(id, address(receiver), GOOD, "");
    }

    function test_RevertIf_challengeWrongBond() public {
        uint256 id = _request();
        _submit(id);
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.WrongBond.selector, CHALLENGE_BOND - 1, CHALLENGE_BOND)
        );
        vm.prank(challenger);
        oracle.challenge{value: CHALLENGE_BOND - 1}(
            id, keccak256(INPUT), address(receiver), keccak256(CB_DATA), GOOD, ""
        );
    }

    function test_RevertIf_challengeWrongPayload() public {
        uint256 id = _request();
        _submit(id);
        vm.expectRevert(AIOracle.PayloadMismatch.selector);
        vm.prank(challenger);
        oracle.challenge{value: CHALLENGE_BOND}(
            id, keccak256("forged input"), address(receiver), keccak256(CB_DATA), GOOD, ""
        );
    }

    function test_RevertIf_challengeSameClaim() public {
        uint256 id = _request();
        _submit(id);
        vm.expectRevert(AIOracle.InvalidClaim.selector);
        _challenge(id, address(receiver), OUTPUT, "");
    }

    function test_RevertIf_challengeOwnResult() public {
        uint256 id = _request();
        _submit(id);
        vm.expectRevert(AIOracle.CannotChallengeOwnResult.selector);
        _challengeAs(operator, id, address(receiver), GOOD, "");
    }

    function test_RevertIf_challengeOutputTooLarge() public {
        uint256 id = _request();
        _submit(id);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.OutputTooLarge.selector, 64 * 1024 + 1, 64 * 1024));
        _challenge(id, address(receiver), new bytes(64 * 1024 + 1), "");
    }

    function test_resolveDispute_challengerWins_succeeds() public {
        uint256 id = _request();
        _submit(id);
        uint256 did = _challenge(id, address(receiver), GOOD, "");
        vm.warp(block.timestamp + 10 minutes);
        _game(did).setStatus(GameStatus.CHALLENGER_WINS);
        vm.expectEmit(address(oracle));
        emit AIOracle.BondSlashed(id, operator, SUBMISSION_BOND);
        vm.expectEmit(address(oracle));
        emit AIOracle.DisputeResolved(id, did, true, true);
        oracle.resolveDispute(did);

        // the slashed bond waits in the pot, the challenger's bond is held: nobody is paid before finality
        assertEq(oracle.balanceOf(challenger, address(0)), 0);
        assertEq(oracle.balanceOf(treasury, address(0)), 0);
        AIOracle.Pot memory pot = oracle.getPot(id);
        assertEq(pot.amount, SUBMISSION_BOND);
        assertEq(pot.heldWinners, 1);
        assertEq(pot.backing, did);
        assertEq(oracle.winnersWithClaim(id, GOOD_CLAIM), 1);
        AIOracle.Operator memory op = oracle.getOperator(operator);
        assertEq(op.bond, 10 ether - SUBMISSION_BOND, "slashed");
        assertEq(op.locked, 0);
        AIOracle.Result memory res = oracle.getResult(id);
        assertEq(res.submitter, challenger);
        assertEq(res.outputHash, keccak256(GOOD));
        assertEq(res.claim, GOOD_CLAIM);
        assertEq(res.version, 1);
        assertFalse(res.bondLocked);
        assertEq(res.openDisputes, 0);
        assertEq(uint8(oracle.getDispute(did).status), uint8(AIOracle.DisputeStatus.CHALLENGER_WON));
        assertEq(uint8(_status(id)), uint8(AIOracle.RequestStatus.SUBMITTED));
        assertEq(oracle.getRequest(id).challengeDeadline, block.timestamp + WINDOW, "fresh window");
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.SUBMITTED)
        );
        oracle.claimReward(did);
        assertEq(oracle.claimableReward(did), 0, "not before finality");

        // the replaced result finalizes with the challenger's output after its own window: the challenger
        // earns the operator share at once, and its bond and its share of the pot through claimReward
        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(AIOracle.ChallengeWindowOpen.selector);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, GOOD);
        vm.warp(block.timestamp + 1);
        uint256 reward = uint256(SUBMISSION_BOND) * REWARD_BPS / 10_000;
        vm.expectEmit(address(oracle));
        emit AIOracle.RewardsSettled(id, SUBMISSION_BOND, 1, reward);
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, GOOD);
        assertEq(receiver.lastOutput(), GOOD);
        uint256 rAmt = uint256(MODEL_FEE) * RECEIVER_BPS / 10_000;
        uint256 pAmt = uint256(MODEL_FEE) * PROTOCOL_BPS / 10_000;
        assertEq(oracle.balanceOf(challenger, address(0)), MODEL_FEE - rAmt - pAmt);
        assertEq(oracle.balanceOf(treasury, address(0)), pAmt + SUBMISSION_BOND - reward);
        assertEq(oracle.claimableReward(did), CHALLENGE_BOND + reward);
        vm.expectEmit(address(oracle));
        emit AIOracle.RewardClaimed(did, challenger, CHALLENGE_BOND + reward);
        vm.prank(user); // anyone may call; the challenger is credited
        assertEq(oracle.claimReward(did), CHALLENGE_BOND + reward);
        assertEq(oracle.balanceOf(challenger, address(0)), CHALLENGE_BOND + reward + MODEL_FEE - rAmt - pAmt);
        assertEq(oracle.balanceOf(operator, address(0)), 0);
        assertEq(uint8(oracle.getDispute(did).status), uint8(AIOracle.DisputeStatus.PAID));
        vm.expectRevert(abi.encodeWithSelector(AIOracle.NothingToClaim.selector, did));
        oracle.claimReward(did);
        assertEq(address(oracle).balance, _owed(), "every wei accounted for");
    }

    function test_resolveDispute_submitterWins_succeeds() public {
        uint256 id = _request();
        _submit(id);
        uint256 did = _challenge(id, address(receiver), GOOD, "");
        _game(did).setStatus(GameStatus.DEFENDER_WINS);
        vm.expectEmit(address(oracle));
        emit AIOracle.DisputeResolved(id, did, false, false);
        oracle.resolveDispute(did);
        assertEq(oracle.balanceOf(operator, address(0)), CHALLENGE_BOND);
        assertEq(oracle.balanceOf(challenger, address(0)), 0);
        assertEq(uint8(oracle.getDispute(did).status), uint8(AIOracle.DisputeStatus.DEFENDER_WON));
        assertEq(oracle.getResult(id).submitter, operator);
        assertEq(oracle.getResult(id).version, 0);
        assertEq(oracle.getOperator(operator).locked, SUBMISSION_BOND, "still locked until final");
        vm.warp(block.timestamp + WINDOW + 1);
        _finalize(id, address(receiver));
        assertEq(receiver.lastOutput(), OUTPUT);
        assertEq(oracle.getOperator(operator).locked, 0);
        assertEq(oracle.getOperator(operator).bond, 10 ether);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.NothingToClaim.selector, did));
        oracle.claimReward(did);
        assertEq(address(oracle).balance, _owed());
    }

    /// The attack a single-dispute design allows: the submitter's sock puppet challenges first and loses on
    /// purpose. Here the honest challenger's concurrent game still replaces the wrong result.
    function test_sockPuppetCannotShieldWrongResult() public {
        uint256 id = _request();
        _submit(id); // wrong result
        address sock = makeAddr("sock");
        uint256 sockDispute = _challengeAs(sock, id, address(receiver), "junk", "");
        uint256 honestDispute = _challengeAs(honest, id, address(receiver), GOOD, "");
        _game(sockDispute).setStatus(GameStatus.DEFENDER_WINS);
        oracle.resolveDispute(sockDispute);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.expectRevert(
            abi.encodeWithSelector(AIOracle.InvalidStatus.selector, AIOracle.RequestStatus.DISPUTED)
        );
        _finalize(id, address(receiver));
        _game(honestDispute).setStatus(GameStatus.CHALLENGER_WINS);
        oracle.resolveDispute(honestDispute);
        assertEq(oracle.getResult(id).claim, GOOD_CLAIM);
        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, GOOD);
        assertEq(receiver.lastOutput(), GOOD);
        oracle.claimReward(honestDispute);
        assertEq(
            oracle.balanceOf(honest, address(0)),
            CHALLENGE_BOND + uint256(SUBMISSION_BOND) * REWARD_BPS / 10_000 + _opShare()
        );
    }

    /// A challenger's result is itself challengeable: a wrong challenger's held bond is slashed into the pot
    /// when the next one wins, and the honest winner takes the pot's reward share.
    function test_replacedResult_canBeChallenged() public {
        uint256 id = _request();
        _submit(id);
        address wrong = makeAddr("wrongChallenger");
        uint256 d1 = _challengeAs(wrong, id, address(receiver), "junk", "");
        _game(d1).setStatus(GameStatus.CHALLENGER_WINS);
        oracle.resolveDispute(d1);
        assertEq(oracle.getResult(id).submitter, wrong);

        uint256 d2 = _challengeAs(honest, id, address(receiver), GOOD, "");
        AIOracle.Dispute memory d = oracle.getDispute(d2);
        assertEq(d.defender, wrong);
        assertEq(d.defenderClaim, keccak256("junk"));
        assertEq(d.version, 1);
        _game(d2).setStatus(GameStatus.CHALLENGER_WINS);
        vm.expectEmit(address(oracle));
        emit AIOracle.BondSlashed(id, wrong, CHALLENGE_BOND);
        oracle.resolveDispute(d2);
        assertEq(uint8(oracle.getDispute(d1).status), uint8(AIOracle.DisputeStatus.SLASHED));
        assertEq(oracle.getPot(id).amount, SUBMISSION_BOND + CHALLENGE_BOND);
        assertEq(oracle.getPot(id).heldWinners, 1);
        assertEq(oracle.getResult(id).submitter, honest);
        assertEq(oracle.getResult(id).version, 2);

        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, GOOD);
        vm.expectRevert(abi.encodeWithSelector(AIOracle.NothingToClaim.selector, d1));
        oracle.claimReward(d1);
        oracle.claimReward(d2);
        uint256 pot = uint256(SUBMISSION_BOND) + CHALLENGE_BOND;
        uint256 reward = pot * REWARD_BPS / 10_000;
        assertEq(oracle.balanceOf(wrong, address(0)), 0, "the wrong challenger lost its bond");
        assertEq(oracle.balanceOf(honest, address(0)), CHALLENGE_BOND + reward + _opShare());
        assertEq(oracle.balanceOf(treasury, address(0)), pot - reward + _protocolShare());
        assertEq(address(oracle).balance, _owed());
    }

    /// Winners against a version that was already replaced keep their bond held: at finality, those with
    /// the final claim share the pot equally with the one that replaced it, those with another claim forfeit.
    function test_resolveDispute_staleWinners_shareOrForfeit() public {
        uint256 id = _request();
        _submit(id);
        uint256 a = _challenge(id, address(receiver), GOOD, "");
        uint256 b = _challengeAs(honest, id, address(receiver), GOOD, "");
        address other = makeAddr("other");
        uint256 c = _challengeAs(other, id, address(receiver), GOOD, "another encoding");
        _game(a).setStatus(GameStatus.CHALLENGER_WINS);
        _game(b).setStatus(GameStatus.CHALLENGER_WINS);
        _game(c).setStatus(GameStatus.CHALLENGER_WINS);
        oracle.resolveDispute(a);
        vm.expectEmit(address(oracle));
        emit AIOracle.DisputeResolved(id, b, true, false);
        oracle.resolveDispute(b);
        oracle.resolveDispute(c);
        assertEq(oracle.getOperator(operator).bond, 10 ether - SUBMISSION_BOND, "slashed once");
        assertEq(oracle.getResult(id).submitter, challenger);
        assertEq(oracle.getPot(id).heldWinners, 3);
        assertEq(oracle.winnersWithClaim(id, GOOD_CLAIM), 2);

        vm.warp(block.timestamp + WINDOW + 1);
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), address(receiver), CB_DATA, GOOD);
        uint256 pot = uint256(SUBMISSION_BOND) + CHALLENGE_BOND; // c's bond forfeited into it
        uint256 share = pot * REWARD_BPS / 10_000 / 2;
        assertEq(oracle.getPot(id).share, share);
        assertEq(oracle.getPot(id).amount, pot);
        assertEq(oracle.claimReward(a), CHALLENGE_BOND + share);
        assertEq(oracle.claimReward(b), CHALLENGE_BOND + share);
        assertEq(oracle.claimableReward(c), 0);
        vm.expectEmit(address(oracle));
        emit AIOracle.RewardClaimed(c, other, 0);
        assertEq(oracle.claimReward(c), 0);
        assertEq(uint8(oracle.getDispute(c).status), uint8(AIOracle.DisputeStatus.FORFEITED));
        assertEq(oracle.balanceOf(honest, address(0)), CHALLENGE_BOND + share);
        assertEq(oracle.balanceOf(other, address(0)), 0);
        assertEq(oracle.balanceOf(treasury, address(0)), pot - 2 * share + _protocolShare());
        assertEq(address(oracle).balance, _owed());
    }

    /// The operator's output comes back through a second challenger: the first winner's installed result is
    /// defeated (its bond joins the pot), the second winner holds the final claim and takes the whole share.
    /// (A non-empty pot always has a winner with the final claim: the pot only fills when a version is
    /// replaced, and the winner that installed the final version is never slashed.)
    function test_finalize_originalOutputReinstalled_lastWinnerTakesTheShare() public {
        uint256 id = _request();
        _submit(id);
        uint256 a = _challenge(id, address(receiver), GOOD, "");
        _game(a).setStatus(GameStatus.CHALLENGER_WINS);
        oracle.resolveDispute(a);
        // the installed result is challenged with the operator's original output and loses
        uint256 b = _challengeAs(honest, id, address(receiver), OUTPUT, "");
        _game(b).setStatus(GameStatus.CHALLENGER_WINS);
        oracle.resolveDispute(b);
        assertEq(oracle.getResult(id).claim, CLAIM);
        vm.warp(block.timestamp + WINDOW + 1);
        _finalize(id, address(receiver));
        uint256 pot = uint256(SUBMISSION_BOND) + CHALLENGE_BOND;
        uint256 share = pot * REWARD_BPS / 10_000;
        assertEq(uint8(oracle.getDispute(a).status), uint8(AIOracle.DisputeStatus.SLASHED));
        assertEq(oracle.claimReward(b), CHALLENGE_BOND + share, "b holds the final claim");
        assertEq(oracle.balanceOf(treasury, address(0)), pot - share + _protocolShare());
        assertEq(address(oracle).balance, _owed());
    }

    function test_resolveDispute_afterWindow_finalizesImmediately() public {
        uint256 id = _request();
        _submit(id);
        uint256 did = _challenge(id, address(receiver), GOOD, "");
        vm.warp(block.timestamp + 10 days);
        _game(did).setStatus(GameStatus.DEFENDER_WINS);
        oracle.resolveDispute(did);
        _finalize(id, address(receiver));
        assertTrue(oracle.isFinalized(id));
    }

    function test_RevertIf_resolveDisputeInProgress() public {
        uint256 id = _request();
        _submit(id);
        uint256 did = _challenge(id, address(receiver), GOOD, "");
        vm.expectRevert(AIOracle.GameNotResolved.selector);
        oracle.resolveDispute(did);
    }

    function test_RevertIf_resolveDisputeUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(AIOracle.UnknownDispute.selector, 1));
        oracle.resolveDispute(1);
    }

    function test_RevertIf_resolveDisputeTwice() public {
        uint256 id = _request();
        _submit(id);
        uint256 did = _challenge(id, address(receiver), GOOD, "");
        _game(did).setStatus(GameStatus.CHALLENGER_WINS);
        oracle.resolveDispute(did);
        vm.expectRevert(AIOracle.DisputeAlreadyResolved.selector);
        oracle.resolveDispute(did);
    }

    /// The owner switches AIOracle's factory (immediate): a model registered before keeps its own factory,
    /// so its new challenges open games there and a pending game resolves as before. Only models registered
    /// afterwards use the new factory.
    function test_ownerFactorySwitch_doesNotAffectRegisteredModelsOrPendingGames() public {
        uint256 id = _request();
        _submit(id);
        uint256 did = _challenge(id, address(receiver), GOOD, "");
        MockDisputeGameFactory other = new MockDisputeGameFactory();
        vm.prank(owner);
        oracle.setDisputeGameFactory(IDisputeGameFactory(address(other)));
        // a new challenge of the registered model still goes to its factory
        _challengeAs(honest, id, address(receiver), GOOD, "");
        assertEq(factory.created(), 2);
        assertEq(other.created(), 0);
        _game(did).setStatus(GameStatus.DEFENDER_WINS);
        oracle.resolveDispute(did);
        assertEq(oracle.balanceOf(operator, address(0)), CHALLENGE_BOND);
        // a model registered now gets the new one
        vm.prank(publisher);
        uint256 m2 = oracle.registerModel(_config(address(0)));
        assertEq(address(oracle.getModel(m2).factory), address(other));
        assertEq(address(oracle.getModel(modelId).factory), address(factory));
    }
}
