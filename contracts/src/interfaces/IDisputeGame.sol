// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Outcome of a dispute game over one request's result.
enum GameStatus {
    /// The game is still being played.
    IN_PROGRESS,
    /// The submitter's claim was shown wrong: the challenger's result replaces it.
    CHALLENGER_WINS,
    /// The challenger failed to show the submitter's claim wrong.
    DEFENDER_WINS
}

/// @notice Everything a game needs to start, derived by AIOracle from on-chain state. No party chooses the
///         starting state: the game derives it from the program hash (absolute prestate) and the local
///         data (model root, input hash) alone.
struct GameParams {
    uint256 requestId;
    bytes32 modelRoot;
    bytes32 programHash;
    bytes32 inputHash;
    address submitter;
    bytes32 submitterClaim;
    bytes32 submitterOutputHash;
    address challenger;
    bytes32 challengerClaim;
    bytes32 challengerOutputHash;
}

/// @title IDisputeGame
/// @notice A game that decides whether a submitted claim (final VM state hash, or output hash for a
///         two-phase model) is wrong. AIOracle only reads
///         `status()`; it never trusts a game it did not create through its factory.
interface IDisputeGame {
    /// @notice The current outcome. Once not `IN_PROGRESS`, it must never change again.
    function status() external view returns (GameStatus);
}

/// @title IDisputeGameFactory
/// @notice Binds the claims of a model's results and creates the game for a challenged request. Set on
///         AIOracle by its owner; each model keeps the factory it was registered with.
interface IDisputeGameFactory {
    /// @notice Create a game for `params`; called by AIOracle only, inside `challenge`.
    function create(GameParams calldata params) external returns (IDisputeGame game);

    /// @notice The claim of a result of model (`modelRoot`, `programHash`) with `output`: what its games
    ///         check. Reverts unless `proof` binds the claim to `output` (AIOracle calls it in `submit` and
    ///         `challenge`, so an output never rides on a claim that commits to another one).
    function resultClaim(bytes32 modelRoot, bytes32 programHash, bytes calldata output, bytes calldata proof)
        external
        view
        returns (bytes32 claim);
}
