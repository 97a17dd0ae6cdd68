// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIOracle} from "../../src/AIOracle.sol";
import {AIOracleCallbackReceiver} from "../../src/AIOracleCallbackReceiver.sol";
import {IAIOracle} from "../../src/interfaces/IAIOracle.sol";

/// @notice Well-behaved receiver that records every callback and error callback.
contract RecordingReceiver is AIOracleCallbackReceiver {
    uint256 public calls;
    uint256 public lastRequestId;
    bytes public lastOutput;
    bytes public lastCallbackData;
    uint256 public lastGas;
    mapping(uint256 => uint256) public callsFor;
    uint256 public errorCalls;
    AIOracleError public lastErrorCode;
    bytes public lastErrorMessage;

    constructor(IAIOracle oracle) AIOracleCallbackReceiver(oracle) {}

    function aiOracleCallback(uint256 requestId, bytes calldata output, bytes calldata callbackData)
        external
        override
        onlyAIOracleCallback
    {
        lastGas = gasleft();
        calls++;
        callsFor[requestId]++;
        lastRequestId = requestId;
        lastOutput = output;
        lastCallbackData = callbackData;
    }

    function aiOracleCallbackError(
        uint256 requestId,
        AIOracleError code,
        bytes calldata message,
        bytes calldata callbackData
    ) external override onlyAIOracleCallback {
        lastGas = gasleft();
        errorCalls++;
        callsFor[requestId]++;
        lastRequestId = requestId;
        lastErrorCode = code;
        lastErrorMessage = message;
        lastCallbackData = callbackData;
    }
}

/// @notice Reverts until told not to (to exercise retries).
contract RevertingReceiver is AIOracleCallbackReceiver {
    bool public shouldRevert = true;
    uint256 public calls;

    error Nope(uint256 requestId);

    constructor(IAIOracle oracle) AIOracleCallbackReceiver(oracle) {}

    function setShouldRevert(bool v) external {
        shouldRevert = v;
    }

    function aiOracleCallback(uint256 requestId, bytes calldata, bytes calldata)
        external
        override
        onlyAIOracleCallback
    {
        if (shouldRevert) revert Nope(requestId);
        calls++;
    }

    function aiOracleCallbackError(uint256 requestId, AIOracleError, bytes calldata, bytes calldata)
        external
        override
        onlyAIOracleCallback
    {
        if (shouldRevert) revert Nope(requestId);
        calls++;
    }
}

/// @notice Burns all the gas it is given.
contract GasEaterReceiver is AIOracleCallbackReceiver {
    uint256 public counter;

    constructor(IAIOracle oracle) AIOracleCallbackReceiver(oracle) {}

    function aiOracleCallback(uint256, bytes calldata, bytes calldata)
        external
        override
        onlyAIOracleCallback
    {
        while (true) {
            counter++;
        }
    }
}

/// @notice Reverts with (or returns) a huge blob of return data, to make the caller copy it.
contract ReturnBombReceiver is AIOracleCallbackReceiver {
    bool public revertBomb;

    constructor(IAIOracle oracle, bool revertBomb_) AIOracleCallbackReceiver(oracle) {
        revertBomb = revertBomb_;
    }

    function aiOracleCallback(uint256, bytes calldata, bytes calldata)
        external
        view
        override
        onlyAIOracleCallback
    {
        bool r = revertBomb;
        assembly {
            // 1 MiB of return data: cheap for this frame up to its gas limit, ruinous if copied by the caller.
            let size := 0x100000
            if r { revert(0, size) }
            return(0, size)
        }
    }
}

/// @notice Tries to re-enter AIOracle from its callback and records what happened.
contract ReentrantReceiver is AIOracleCallbackReceiver {
    bytes public finalizeData;
    bool public attempted;
    bool public reentered;
    bytes public failure;

    constructor(IAIOracle oracle) AIOracleCallbackReceiver(oracle) {}

    receive() external payable {}

    function setFinalizeData(bytes calldata data) external {
        finalizeData = data;
    }

    function aiOracleCallback(uint256, bytes calldata, bytes calldata)
        external
        override
        onlyAIOracleCallback
    {
        attempted = true;
        (bool ok, bytes memory ret) = address(aiOracle).call(finalizeData);
        reentered = ok;
        failure = ret;
    }
}

/// @notice Refuses ETH (a requester that cannot take an excess refund).
contract EthRefuser {
    function request(AIOracle oracle, uint256 modelId, uint256 value) external payable returns (uint256) {
        return oracle.requestCallback{value: value}(modelId, "x", address(0), 0, "");
    }
}
