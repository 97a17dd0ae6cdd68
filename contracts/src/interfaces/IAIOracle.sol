// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IAIOracle
/// @notice The request/callback surface of ORA's OAO (onchain AI oracle). A dapp written against
///         OAO ports to this oracle by changing the oracle address: signatures and events are identical.
interface IAIOracle {
    /// @notice Emitted for every accepted request; operators serve requests from this event.
    event AICallbackRequest(
        address indexed account,
        uint256 indexed requestId,
        uint256 modelId,
        bytes input,
        address callbackContract,
        uint64 gasLimit,
        bytes callbackData
    );

    /// @notice Emitted once, when a request's result becomes final and its callback is dispatched.
    /// @param account The requester.
    /// @param invoker The account that finalized the request (and paid the callback's gas).
    event AICallbackResult(address indexed account, uint256 indexed requestId, address invoker, bytes output);

    /// @notice Request an inference of `modelId` on `input`; `callbackContract.aiOracleCallback` receives the
    ///         output with `gasLimit` gas once the result is final.
    /// @return requestId The id of the new request.
    function requestCallback(
        uint256 modelId,
        bytes calldata input,
        address callbackContract,
        uint64 gasLimit,
        bytes calldata callbackData
    ) external payable returns (uint256 requestId);

    /// @notice The ETH (`msg.value`) a request for `modelId` with a callback of `gasLimit` gas costs now.
    function estimateFee(uint256 modelId, uint256 gasLimit) external view returns (uint256);

    /// @notice Whether the result of `requestId` is final (it can never change again).
    function isFinalized(uint256 requestId) external view returns (bool);
}
