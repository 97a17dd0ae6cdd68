// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {AIOracle} from "./AIOracle.sol";
import {AIOracleCallbackReceiver} from "./AIOracleCallbackReceiver.sol";
import {IAIOracle} from "./interfaces/IAIOracle.sol";

/// @title Prompt
/// @notice The example user contract (the README demo): send a prompt to a model, read the answer once
///         the oracle's result is final. Shaped like ORA's Prompt so OAO tutorials apply unchanged.
/// @dev Only models whose fee is paid in ETH are supported (an ERC-20 model needs an approval flow). Prompt is
///      the oracle's requester for every prompt it sends, so it also gives each prompt's sender what the
///      oracle gives a requester: the refund of a request never served (`claimRefund`) and the retry of a
///      failed callback (`retryCallback`).
contract Prompt is AIOracleCallbackReceiver, Ownable, ReentrancyGuard {
    /// @notice Callback gas used for models without an explicit setting.
    uint64 public constant DEFAULT_CALLBACK_GAS_LIMIT = 1_000_000;

    /// @notice A prompt request made through this contract.
    struct AIOracleRequest {
        address sender;
        uint256 modelId;
        bytes input;
    }

    /// @notice requestId => request (the answer is kept in `prompts`, once).
    mapping(uint256 requestId => AIOracleRequest) public requests;
    /// @notice modelId => prompt => latest answer.
    mapping(uint256 modelId => mapping(string prompt => string output)) public prompts;
    /// @notice Per-model callback gas limit override (0: DEFAULT_CALLBACK_GAS_LIMIT).
    mapping(uint256 modelId => uint64) public callbackGasLimit;
    /// @notice Requests the model rejected (their result is the error outcome, delivered by
    ///         `aiOracleCallbackError`).
    mapping(uint256 requestId => bool) public rejected;
    /// @notice Requests whose refund was paid to their sender.
    mapping(uint256 requestId => bool) public refunded;

    /// @notice A prompt was sent to the oracle.
    event promptRequest(uint256 requestId, address sender, uint256 modelId, string prompt);
    /// @notice An answer arrived.
    event promptsUpdated(uint256 requestId, uint256 modelId, string input, string output, bytes callbackData);
    /// @notice The model rejected a prompt (its final result is the error outcome).
    event promptRejected(uint256 requestId, uint256 modelId, string input, AIOracleError code);
    /// @notice The owner changed a model's callback gas limit.
    event CallbackGasLimitUpdated(uint256 indexed modelId, uint64 gasLimit);
    /// @notice The fees of a request the oracle never served went back to its sender.
    event RefundPaid(uint256 indexed requestId, address indexed sender, uint256 amount);

    /// @param _aiOracle The oracle to use (an `AIOracle`: refunds and retries use its interface).
    /// @param initialOwner Owner allowed to tune callback gas limits.
    constructor(IAIOracle _aiOracle, address initialOwner)
        AIOracleCallbackReceiver(_aiOracle)
        Ownable(initialOwner)
    {}

    /// @notice Only the oracle pays this contract (withdrawals of refunds credited to it).
    receive() external payable {
        if (msg.sender != address(aiOracle)) revert UnexpectedEth();
    }

    /// @notice Set the callback gas limit used for `modelId` (0 restores the default).
    function setCallbackGasLimit(uint256 modelId, uint64 gasLimit) external onlyOwner {
        callbackGasLimit[modelId] = gasLimit;
        emit CallbackGasLimitUpdated(modelId, gasLimit);
    }

    /// @notice The callback gas limit used for `modelId`.
    function gasLimitOf(uint256 modelId) public view returns (uint64) {
        uint64 g = callbackGasLimit[modelId];
        return g == 0 ? DEFAULT_CALLBACK_GAS_LIMIT : g;
    }

    /// @notice The ETH `calculateAIResult` needs for `modelId` now.
    function estimateFee(uint256 modelId) public view returns (uint256) {
        return aiOracle.estimateFee(modelId, gasLimitOf(modelId));
    }

    /// @notice Ask `modelId` for `prompt`; excess ETH is returned to the caller.
    /// @return requestId The oracle request id.
    function calculateAIResult(uint256 modelId, string calldata prompt)
        external
        payable
        nonReentrant
        returns (uint256 requestId)
    {
        uint256 fee = estimateFee(modelId);
        if (msg.value < fee) revert InsufficientFee(msg.value, fee);
        bytes memory input = bytes(prompt);
        requestId =
            aiOracle.requestCallback{value: fee}(modelId, input, address(this), gasLimitOf(modelId), "");
        AIOracleRequest storage req = requests[requestId];
        req.sender = msg.sender;
        req.modelId = modelId;
        req.input = input;
        emit promptRequest(requestId, msg.sender, modelId, prompt);
        if (msg.value > fee) Address.sendValue(payable(msg.sender), msg.value - fee);
    }

    /// @inheritdoc AIOracleCallbackReceiver
    function aiOracleCallback(uint256 requestId, bytes calldata output, bytes calldata callbackData)
        external
        override
        onlyAIOracleCallback
    {
        AIOracleRequest storage req = _known(requestId);
        uint256 modelId = req.modelId;
        string memory input = string(req.input);
        prompts[modelId][input] = string(output);
        emit promptsUpdated(requestId, modelId, input, string(output), callbackData);
    }

    /// @inheritdoc AIOracleCallbackReceiver
    /// @dev Records the rejection (`rejected`), emits `promptRejected` and ORA's `AICallbackError`; the
    ///      prompt's stored answer is left as it was.
    function aiOracleCallbackError(
        uint256 requestId,
        AIOracleError code,
        bytes calldata message,
        bytes calldata callbackData
    ) external override onlyAIOracleCallback {
        AIOracleRequest storage req = _known(requestId);
        rejected[requestId] = true;
        emit promptRejected(requestId, req.modelId, string(req.input), code);
        emit AICallbackError(requestId, code, message, callbackData);
    }

    /// @notice The latest answer of `modelId` to `prompt` ("" until one is final).
    function getAIResult(uint256 modelId, string calldata prompt) external view returns (string memory) {
        return prompts[modelId][prompt];
    }

    /// @notice Pay the sender of `requestId` back the fees of a request the oracle never served (after its
    ///         deadline; refunds it on the oracle first if nobody did). Only the sender may call.
    function claimRefund(uint256 requestId) external nonReentrant {
        AIOracleRequest storage req = requests[requestId];
        if (req.sender != msg.sender) revert NotSender(requestId);
        if (refunded[requestId]) revert AlreadyRefunded(requestId);
        AIOracle oracle = AIOracle(address(aiOracle));
        AIOracle.Request memory r = oracle.getRequest(requestId);
        // reverts while the request can still be served
        if (r.status == AIOracle.RequestStatus.PENDING) oracle.refund(requestId);
        else if (r.status != AIOracle.RequestStatus.REFUNDED) revert NotRefundable(requestId);
        refunded[requestId] = true;
        uint256 amount = uint256(r.modelFee) + r.gasFee;
        // the refund was credited to this contract (the requester) on the oracle
        if (address(this).balance < amount) oracle.withdraw(address(0));
        emit RefundPaid(requestId, msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    /// @notice Run the failed callback of `requestId` again (the oracle lets only its requester, this
    ///         contract, do that). Only the prompt's sender may call; it pays the gas. `output` is the final
    ///         output (from the oracle's logs; checked by the oracle).
    function retryCallback(uint256 requestId, bytes calldata output) external nonReentrant {
        AIOracleRequest storage req = requests[requestId];
        if (req.sender != msg.sender) revert NotSender(requestId);
        AIOracle(address(aiOracle)).retryCallback(requestId, keccak256(req.input), address(this), "", output);
    }

    function _known(uint256 requestId) internal view returns (AIOracleRequest storage req) {
        req = requests[requestId];
        if (req.sender == address(0)) revert UnknownRequest(requestId);
    }

    /// @notice A callback named a request this contract did not make.
    error UnknownRequest(uint256 requestId);
    /// @notice Less ETH was sent than `estimateFee` asks.
    error InsufficientFee(uint256 paid, uint256 required);
    /// @notice ETH from other than the oracle.
    error UnexpectedEth();
    /// @notice The caller did not send this prompt.
    error NotSender(uint256 requestId);
    /// @notice The request was served (or never existed): nothing to refund.
    error NotRefundable(uint256 requestId);
    /// @notice The refund was paid already.
    error AlreadyRefunded(uint256 requestId);
}
