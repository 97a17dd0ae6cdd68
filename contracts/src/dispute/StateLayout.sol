// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title StateLayout
/// @notice The VM state encoding the dispute games read (`hosts/fpvm/src/layout.rs`, `RISCV.sol`): byte
///         offsets written as one chain of constants, the VM statuses, the status byte of a state hash, and
///         the local preimage identifiers a game writes.
library StateLayout {
    // ---- state layout: byte offsets, one chain ----
    uint256 internal constant MEM_ROOT = 0;
    uint256 internal constant PREIMAGE_KEY = MEM_ROOT + 32;
    uint256 internal constant OUTPUT = PREIMAGE_KEY + 32;
    uint256 internal constant PC = OUTPUT + 32;
    uint256 internal constant PREIMAGE_OFFSET = PC + 4;
    uint256 internal constant STEP = PREIMAGE_OFFSET + 4;
    uint256 internal constant EXIT_CODE = STEP + 8;
    uint256 internal constant STATUS = EXIT_CODE + 4;
    uint256 internal constant REGS = STATUS + 1;
    /// @notice Length of a state encoding (245 bytes).
    uint256 internal constant STATE_SIZE = REGS + 32 * 4;

    // ---- layout::status ----
    uint8 internal constant RUNNING = 0;
    uint8 internal constant EXITED = 1;
    uint8 internal constant PANICKED = 2;

    // ---- layout::hash_status: byte 0 of a state hash ----
    uint8 internal constant HASH_VALID = 0;
    uint8 internal constant HASH_INVALID = 1;
    uint8 internal constant HASH_PANIC = 2;
    uint8 internal constant HASH_UNFINISHED = 3;

    // ---- local preimage identifiers (`layout::local_ident`) ----
    uint64 internal constant LOCAL_MODEL_ROOT = 1;
    uint64 internal constant LOCAL_INPUT_HASH = 2;
    uint64 internal constant LOCAL_SAMPLING_PARAMS = 3;
    uint64 internal constant LOCAL_PRE_STATE = 4;

    /// @notice The state hash of a `STATE_SIZE`-byte encoding, as `RISCV.stateHash`: keccak256(state) with
    ///         byte 0 set to the VM status (0 exited with code 0, 1 exited otherwise, 2 panicked, 3 running).
    /// @dev The caller checks the length.
    function hash(bytes calldata state) internal pure returns (bytes32 h) {
        h = keccak256(state);
        uint8 s = uint8(state[STATUS]);
        uint8 vmStatus;
        if (s == RUNNING) {
            vmStatus = HASH_UNFINISHED;
        } else if (s == EXITED) {
            vmStatus = bytes4(state[EXIT_CODE:EXIT_CODE + 4]) == 0 ? HASH_VALID : HASH_INVALID;
        } else {
            vmStatus = HASH_PANIC;
        }
        h = (h & ~bytes32(uint256(0xff) << 248)) | bytes32(uint256(vmStatus) << 248);
    }

    /// @notice The output commitment field of an encoding.
    function output(bytes calldata state) internal pure returns (bytes32) {
        return bytes32(state[OUTPUT:OUTPUT + 32]);
    }

    /// @notice The step count field of an encoding.
    function step(bytes calldata state) internal pure returns (uint64) {
        return uint64(bytes8(state[STEP:STEP + 8]));
    }

    /// @notice Whether `h` is the hash of a halted state (exited with any code, or panicked).
    function halted(bytes32 h) internal pure returns (bool) {
        return uint8(h[0]) != HASH_UNFINISHED;
    }
}
