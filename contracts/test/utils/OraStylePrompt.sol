// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIOracleCallbackReceiver} from "../../src/AIOracleCallbackReceiver.sol";
import {IAIOracle} from "../../src/interfaces/IAIOracle.sol";

/// @notice A receiver in the shape of ORA's public example `Prompt.sol` (written here, not copied): it
///         forwards `msg.value` to `requestCallback` whole, overrides both callbacks with
///         `onlyAIOracleCallback`, and inherits `isFinalized`. It has no `receive`, like ORA's: anything it
///         overpays must never be pushed back to it.
contract OraStylePrompt is AIOracleCallbackReceiver {
    struct AIOracleRequest {
        address sender;
        uint256 modelId;
        bytes input;
        bytes output;
    }

    uint64 public callbackGasLimit = 500_000;
    mapping(uint256 requestId => AIOracleRequest) public requests;
    mapping(uint256 modelId => mapping(string prompt => string output)) public prompts;
    mapping(uint256 requestId => bool) public failed;

    event promptRequest(uint256 requestId, address sender, uint256 modelId, string prompt);
    event promptsUpdated(uint256 requestId, uint256 modelId, string input, string output, bytes callbackData);

    constructor(IAIOracle _aiOracle) AIOracleCallbackReceiver(_aiOracle) {}

    function estimateFee(uint256 modelId) public view returns (uint256) {
        return aiOracle.estimateFee(modelId, callbackGasLimit);
    }

    function calculateAIResult(uint256 modelId, string calldata prompt) external payable returns (uint256) {
        bytes memory input = bytes(prompt);
        uint256 requestId =
            aiOracle.requestCallback{value: msg.value}(modelId, input, address(this), callbackGasLimit, "");
        AIOracleRequest storage req = requests[requestId];
        req.sender = msg.sender;
        req.modelId = modelId;
        req.input = input;
        emit promptRequest(requestId, msg.sender, modelId, prompt);
        return requestId;
    }

    function aiOracleCallback(uint256 requestId, bytes calldata output, bytes calldata callbackData)
        external
        override
        onlyAIOracleCallback
    {
        AIOracleRequest storage req = requests[requestId];
        req.output = output;
        prompts[req.modelId][string(req.input)] = string(output);
        emit promptsUpdated(requestId, req.modelId, string(req.input), string(output), callbackData);
    }

    function aiOracleCallbackError(
        uint256 requestId,
        AIOracleError code,
        bytes calldata message,
        bytes calldata callbackData
    ) external override onlyAIOracleCallback {
        failed[requestId] = true;
        emit AICallbackError(requestId, code, message, callbackData);
    }

    function getAIResult(uint256 modelId, string calldata prompt) external view returns (string memory) {
        return prompts[modelId][prompt];
    }
}
