// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {AIOracle} from "../../src/AIOracle.sol";
import {IDisputeGameFactory} from "../../src/interfaces/IDisputeGame.sol";
import {MockDisputeGame, MockDisputeGameFactory, TestToken} from "./Mocks.sol";
import {RecordingReceiver} from "./Receivers.sol";

/// @notice Shared deployment: an oracle, an ETH model, a token model, a bonded operator, a receiver.
abstract contract BaseTest is Test {
    uint96 internal constant SUBMISSION_BOND = 1 ether;
    uint96 internal constant CHALLENGE_BOND = 0.5 ether;
    uint256 internal constant REWARD_BPS = 5000;
    uint256 internal constant UNBOND_DELAY = 7 days;
    uint256 internal constant REQUEST_TIMEOUT = 1 days;
    uint96 internal constant MODEL_FEE = 0.01 ether;
    uint16 internal constant RECEIVER_BPS = 2000;
    uint32 internal constant WINDOW = 1 hours;
    uint32 internal constant MAX_INPUT = 4096;
    uint32 internal constant MAX_GAS = 2_000_000;
    uint64 internal constant GAS_LIMIT = 200_000;
    uint128 internal constant GAS_PRICE_FLOOR = 1 gwei;
    uint16 internal constant PROTOCOL_BPS = 500;
    uint256 internal constant PARAMETER_DELAY = 2 days;
    uint256 internal constant BONDS = 20 ether; // operator + operator2 bonds held from setUp

    address internal owner = makeAddr("owner");
    address internal treasury = makeAddr("treasury");
    address internal publisher = makeAddr("publisher");
    address internal feeReceiver = makeAddr("feeReceiver");
    address internal operator = makeAddr("operator");
    address internal operator2 = makeAddr("operator2");
    address internal challenger = makeAddr("challenger");
    address internal user = makeAddr("user");
    address internal finalizer = makeAddr("finalizer");

    AIOracle internal oracle;
    MockDisputeGameFactory internal factory;
    TestToken internal token;
    RecordingReceiver internal receiver;
    uint256 internal modelId;
    uint256 internal tokenModelId;

    bytes internal constant INPUT = "What is 2+2?";
    bytes internal constant OUTPUT = "4";
    bytes internal constant CB_DATA = "ctx";
    /// @dev The claim the mock factory binds to OUTPUT with an empty proof.
    bytes32 internal constant CLAIM = keccak256(OUTPUT);
    bytes32 internal constant ROOT = keccak256("model root");
    bytes32 internal constant PROGRAM = keccak256("program");

    function setUp() public virtual {
        vm.fee(0);
        oracle = new AIOracle(owner, _oracleConfig());
        factory = new MockDisputeGameFactory();
        vm.prank(owner);
        oracle.setDisputeGameFactory(IDisputeGameFactory(address(factory)));
        token = new TestToken();
        receiver = new RecordingReceiver(oracle);

        vm.startPrank(publisher);
        modelId = oracle.registerModel(_config(address(0)));
        tokenModelId = oracle.registerModel(_config(address(token)));
        vm.stopPrank();

        vm.deal(operator, 100 ether);
        vm.deal(operator2, 100 ether);
        vm.deal(challenger, 100 ether);
        vm.deal(user, 100 ether);
        vm.deal(finalizer, 1 ether);
        vm.prank(operator);
        oracle.bond{value: 10 ether}();
        vm.prank(operator2);
        oracle.bond{value: 10 ether}();
        token.mint(user, 1000 ether);
        vm.prank(user);
        token.approve(address(oracle), type(uint256).max);
    }

    /// @notice The oracle of these tests: treasury, 5% protocol share, the price floor, the bonds above.
    function _oracleConfig() internal view returns (AIOracle.OracleConfig memory) {
        return AIOracle.OracleConfig({
            treasury: treasury,
            protocolFeeBps: PROTOCOL_BPS,
            minCallbackGasPrice: GAS_PRICE_FLOOR,
            submissionBond: SUBMISSION_BOND,
            challengeBond: CHALLENGE_BOND,
            challengerRewardBps: REWARD_BPS,
            unbondDelay: UNBOND_DELAY,
            requestTimeout: REQUEST_TIMEOUT,
            parameterDelay: PARAMETER_DELAY
        });
    }

    /// @notice The gas a transaction with calldata `data` and `execution` gas costs: 21,000 plus the larger of
    ///         the standard calldata cost (4 per zero byte, 16 per other byte) plus execution and the EIP-7623
    ///         floor (10 per token: a token per zero byte, 4 per other byte).
    function _txGas(bytes memory data, uint256 execution) internal pure returns (uint256) {
        uint256 tokens;
        for (uint256 i = 0; i < data.length; i++) {
            tokens += data[i] == 0 ? 1 : 4;
        }
        uint256 standard = 4 * tokens + execution;
        uint256 floor = 10 * tokens;
        return 21_000 + (standard > floor ? standard : floor);
    }

    function _config(address feeToken) internal view returns (AIOracle.ModelConfig memory) {
        return AIOracle.ModelConfig({
            modelRoot: ROOT,
            programHash: PROGRAM,
            fee: MODEL_FEE,
            feeToken: feeToken,
            feeReceiver: feeReceiver,
            receiverShareBps: RECEIVER_BPS,
            challengeWindow: WINDOW,
            maxInputSize: MAX_INPUT,
            maxCallbackGas: MAX_GAS
        });
    }

    function _request() internal returns (uint256) {
        return _requestTo(address(receiver));
    }

    function _requestTo(address cb) internal returns (uint256) {
        uint256 fee = oracle.estimateFee(modelId, GAS_LIMIT);
        vm.prank(user);
        return oracle.requestCallback{value: fee}(modelId, INPUT, cb, GAS_LIMIT, CB_DATA);
    }

    function _submit(uint256 id) internal {
        vm.prank(operator);
        oracle.submit(id, OUTPUT, "");
    }

    function _finalize(uint256 id, address cb) internal {
        vm.prank(finalizer);
        oracle.finalize(id, keccak256(INPUT), cb, CB_DATA, OUTPUT);
    }

    /// @notice `challenger` challenges `id` with `output` and `proof` (the claim's binding, see the factory).
    function _challenge(uint256 id, address cb, bytes memory output, bytes memory proof)
        internal
        returns (uint256)
    {
        return _challengeAs(challenger, id, cb, output, proof);
    }

    function _challengeAs(address who, uint256 id, address cb, bytes memory output, bytes memory proof)
        internal
        returns (uint256)
    {
        vm.deal(who, who.balance + CHALLENGE_BOND);
        vm.prank(who);
        return
            oracle.challenge{value: CHALLENGE_BOND}(
                id, keccak256(INPUT), cb, keccak256(CB_DATA), output, proof
            );
    }

    function _game(uint256 disputeId) internal view returns (MockDisputeGame) {
        return MockDisputeGame(address(oracle.getDispute(disputeId).game));
    }

    function _status(uint256 id) internal view returns (AIOracle.RequestStatus) {
        return oracle.getRequest(id).status;
    }
}
