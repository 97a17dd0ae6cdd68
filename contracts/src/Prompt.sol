// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {AIOracleCallbackReceiver} from "./AIOracleCallbackReceiver.sol";
import {IAIOracle} from "./interfaces/IAIOracle.sol";

/// @title Prompt
/// @notice The example user contract (the README demo): send a prompt to a model, read the answer once
///         the oracle's result is final. Shaped like ORA's Prompt so OAO tutorials apply unchanged.
/// @dev Only models whose fee is paid in ETH are supported (an ERC-20 model needs an approval flow).
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

    /// @notice A prompt was sent to the oracle.
    event promptRequest(uint256 requestId, address sender, uint256 modelId, string prompt);
    /// @notice An answer arrived.
    event promptsUpdated(uint256 requestId, uint256 modelId, string input, string output, bytes callbackData);
    /// @notice The owner changed a model's callback gas limit.
    event CallbackGasLimitUpdated(uint256 indexed modelId, uint64 gasLimit);

    /// @param _aiOracle The oracle to use.
    /// @param initialOwner Owner allowed to tune callback gas limits.
    constructor(IAIOracle _aiOracle, address initialOwner)
        AIOracleCallbackReceiver(_aiOracle)
        Ownable(initialOwner)
    {}

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
        AIOracleRequest storage req = requests[requestId];
        if (req.sender == address(0)) revert UnknownRequest(requestId);
        uint256 modelId = req.modelId;
        string memory input = string(req.input);
        prompts[modelId][input] = string(output);
        emit promptsUpdated(requestId, modelId, input, string(output), callbackData);
    }

    /// @notice The latest answer of `modelId` to `prompt` ("" until one is final).
    function getAIResult(uint256 modelId, string calldata prompt) external view returns (string memory) {
        return prompts[modelId][prompt];
    }

    /// @notice A callback named a request this contract did not make.
    error UnknownRequest(uint256 requestId);
    /// @notice Less ETH was sent than `estimateFee` asks.
    error InsufficientFee(uint256 paid, uint256 required);
}
