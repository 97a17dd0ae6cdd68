// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IStepVerifier
/// @notice The one-step verifier a dispute game calls at a range of one step: `RISCV.verifyStep`. Tests plug
///         in a synthetic verifier with the same interface.
interface IStepVerifier {
    /// @notice Checks that `state` hashes to `claimedPre`, executes one VM step from it with `proof` (memory
    ///         proofs and preimage data), and returns the post-state hash. Local preimage keys are read from
    ///         the PreimageOracle under `localize(key, msg.sender, localContext)`. Reverts on a bad witness.
    function verifyStep(bytes32 claimedPre, bytes calldata state, bytes calldata proof, bytes32 localContext)
        external
        view
        returns (bytes32 postStateHash);
}
