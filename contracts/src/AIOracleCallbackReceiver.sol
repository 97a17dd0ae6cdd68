// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAIOracle} from "./interfaces/IAIOracle.sol";

/// @title AIOracleCallbackReceiver
/// @notice Base for contracts that receive oracle results (ORA OAO compatible: the same callbacks, error codes
///         and events, so an OAO receiver ports by changing the oracle address).
/// @dev A request the model rejects (a prompt longer than the context, bad parameters, a model that does not
///      load) has a deterministic result too: the empty output, which every honest validator reproduces and
///      the dispute game enforces like any other. For such a result the oracle calls `aiOracleCallbackError`
///      with `InvalidInput` (and the empty output as the message) instead of `aiOracleCallback`; every success
///      output is non-empty.
abstract contract AIOracleCallbackReceiver {
    /// @notice Why a request got no output (ORA's codes). This oracle sends `InvalidInput` for a rejected
    ///         request; `InvalidBatchSize` is ORA's and never sent here.
    enum AIOracleError {
        InvalidInput,
        InvalidBatchSize
    }

    /// @notice A request ended in an error outcome (the default `aiOracleCallbackError`).
    event AICallbackError(
        uint256 indexed requestId, AIOracleError indexed code, bytes message, bytes callbackData
    );

    /// @notice The oracle whose callbacks this contract accepts.
    IAIOracle public immutable aiOracle;

    /// @notice A callback came from somewhere other than `aiOracle`.
    error UnauthorizedCallbackSource(IAIOracle expected, IAIOracle found);

    /// @param _aiOracle The oracle whose callbacks are accepted.
    constructor(IAIOracle _aiOracle) {
        aiOracle = _aiOracle;
    }

    /// @notice Restricts a function to calls from `aiOracle`.
    modifier onlyAIOracleCallback() {
        IAIOracle found = IAIOracle(msg.sender);
        if (found != aiOracle) revert UnauthorizedCallbackSource(aiOracle, found);
        _;
    }

    /// @notice Receives the final `output` of `requestId`. Implementations must use `onlyAIOracleCallback`.
    /// @param requestId The request being answered.
    /// @param output The final output bytes (never empty).
    /// @param callbackData The bytes given at request time, passed back unchanged.
    function aiOracleCallback(uint256 requestId, bytes calldata output, bytes calldata callbackData)
        external
        virtual;

    /// @notice Receives the error outcome of `requestId` (a rejected request: `InvalidInput`, `message` the empty
    ///         output). The default emits `AICallbackError`; overrides must use `onlyAIOracleCallback`.
    function aiOracleCallbackError(
        uint256 requestId,
        AIOracleError code,
        bytes calldata message,
        bytes calldata callbackData
    ) external virtual onlyAIOracleCallback {
        emit AICallbackError(requestId, code, message, callbackData);
    }

    /// @notice Whether the result of `requestId` is final (asks the oracle).
    function isFinalized(uint256 requestId) external view returns (bool) {
        return aiOracle.isFinalized(requestId);
    }
}
