// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Script} from "forge-std/Script.sol";
import {console2} from "forge-std/console2.sol";

import {AIOracle} from "../src/AIOracle.sol";
import {Prompt} from "../src/Prompt.sol";
import {DisputeGameFactory} from "../src/dispute/DisputeGameFactory.sol";
import {IStepVerifier} from "../src/dispute/IStepVerifier.sol";
import {IDisputeGameFactory} from "../src/interfaces/IDisputeGame.sol";
import {PreimageOracle} from "../src/vm/PreimageOracle.sol";
import {RISCV} from "../src/vm/RISCV.sol";

/// @notice Deploys AIOracle + Prompt, the dispute game factory (with RISCV and the PreimageOracle), and
///         registers one model with its sampling parameters on a local devnet (anvil).
/// @dev    . contracts/env.sh && cd contracts && "$ANVIL" &
///         "$FORGE" script script/DeployDevnet.s.sol --rpc-url http://127.0.0.1:8545 --broadcast \
///             --private-key 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
///         Optional env: MODEL_ROOT, PROGRAM_HASH (bytes32), MODEL_FEE (wei), CHALLENGE_WINDOW (s),
///         GAME_MAX_DEPTH (whole-request traces <= 2^depth steps, default 32), GAME_TRANSITION_DEPTH
///         (traces of one transition of a two-phase game <= 2^depth steps, default 28), GAME_CLOCK (s per
///         side, default 120), SAMPLING_PARAMS (bytes, default greedy with 64 positions), TWO_PHASE.
contract DeployDevnet is Script {
    /// @notice Devnet bond and timing parameters (small windows so a demo finalizes quickly). The bonds are
    ///         sized so an honest challenger never loses money at the devnet gas price (2 gwei): its worst
    ///         whole game costs ~3.1M gas (5.0M with a 64 KiB input), 0.006-0.01 ETH, against a reward of at
    ///         least 0.25 ETH / (k + 1) per wrong result it defeats, k the sock puppets sharing it with the true
    ///         claim (contracts/README.md, "Rewards" and "The honest side's gas").
    uint256 internal constant SUBMISSION_BOND = 1 ether;
    uint256 internal constant CHALLENGE_BOND = 0.5 ether;
    uint256 internal constant CHALLENGER_REWARD_BPS = 5000;
    uint256 internal constant UNBOND_DELAY = 1 days;
    uint256 internal constant REQUEST_TIMEOUT = 1 hours;
    /// @notice Delay of owner parameter changes (treasury, protocol share, price floor).
    uint256 internal constant PARAMETER_DELAY = 1 days;
    /// @notice Greedy decoding of 64 positions (steps 64, temperature 0, top-p 1.0 in Q16, seed 0:
    ///         `Request::encode_params` of `SamplingParams::GREEDY`), what `oracle devnet` serves.
    bytes internal constant DEFAULT_SAMPLING_PARAMS = hex"0000004000000000000100000000000000000000";

    function run() external returns (AIOracle oracle, Prompt prompt, uint256 modelId) {
        AIOracle.ModelConfig memory c = AIOracle.ModelConfig({
            modelRoot: vm.envOr("MODEL_ROOT", keccak256("devnet model root")),
            programHash: vm.envOr("PROGRAM_HASH", keccak256("devnet program")),
            fee: uint96(vm.envOr("MODEL_FEE", uint256(0.001 ether))),
            feeToken: address(0),
            feeReceiver: address(0),
            receiverShareBps: 0,
            challengeWindow: uint32(vm.envOr("CHALLENGE_WINDOW", uint256(60))),
            maxInputSize: 16 * 1024,
            maxCallbackGas: 5_000_000
        });

        vm.startBroadcast();
        (, address deployer,) = vm.readCallers();
        // treasury: the deployer; no protocol share; a 1 gwei floor for the callback gas price
        oracle = new AIOracle(
            deployer,
            AIOracle.OracleConfig({
                treasury: deployer,
                protocolFeeBps: 0,
                minCallbackGasPrice: 1 gwei,
                submissionBond: SUBMISSION_BOND,
                challengeBond: CHALLENGE_BOND,
                challengerRewardBps: CHALLENGER_REWARD_BPS,
                unbondDelay: UNBOND_DELAY,
                requestTimeout: REQUEST_TIMEOUT,
                parameterDelay: PARAMETER_DELAY
            })
        );
        PreimageOracle preimages = new PreimageOracle();
        RISCV riscv = new RISCV(preimages);
        DisputeGameFactory factory = new DisputeGameFactory(
            deployer,
            address(oracle),
            IStepVerifier(address(riscv)),
            preimages,
            uint8(vm.envOr("GAME_MAX_DEPTH", uint256(32))),
            uint8(vm.envOr("GAME_TRANSITION_DEPTH", uint256(28))),
            uint32(vm.envOr("GAME_CLOCK", uint256(120)))
        );
        oracle.setDisputeGameFactory(IDisputeGameFactory(address(factory)));
        prompt = new Prompt(oracle, deployer);
        modelId = oracle.registerModel(c);
        factory.setSamplingParams(
            c.modelRoot,
            c.programHash,
            vm.envOr("SAMPLING_PARAMS", DEFAULT_SAMPLING_PARAMS),
            vm.envOr("TWO_PHASE", false)
        );
        vm.stopBroadcast();

        console2.log("DisputeGameFactory", address(factory));
        console2.log("RISCV", address(riscv));
        console2.log("PreimageOracle", address(preimages));

        console2.log("AIOracle", address(oracle));
        console2.log("Prompt", address(prompt));
        console2.log("modelId", modelId);
    }
}
