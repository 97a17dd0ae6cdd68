// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAIOracle} from "./interfaces/IAIOracle.sol";

/// @title AIOracleCallbackReceiver
/// @notice Base for contracts that receive oracle results (ORA OAO compatible).
abstract contract AIOracleCallbackReceiver {
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
    /// @param output The final output bytes.
    /// @param callbackData The bytes given at request time, passed back unchanged.
    function aiOracleCallback(uint256 requestId, bytes calldata output, bytes calldata callbackData)
        external
        virtual;
}
