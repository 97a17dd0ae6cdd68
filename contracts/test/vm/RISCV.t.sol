// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {PreimageOracle} from "src/vm/PreimageOracle.sol";
import {RISCV} from "src/vm/RISCV.sol";

/// @notice `RISCV.step` on the committed witness vectors (test/vm/vectors/*.json, one
///  per instruction class, generated and checked against the Rust VM by
///  hosts/fpvm/tests/evm_diff.rs): each returns the Rust post-state hash. The gas of
///  each test in .gas-snapshot is the `step` call alone (reading the vector is not
///  metered).
contract RISCVStepTest is Test {
    PreimageOracle internal oracle;
    RISCV internal riscv;
    bytes32 internal ctx;

    function setUp() public {
        oracle = new PreimageOracle();
        riscv = new RISCV(oracle);
        string memory local = vm.readFile("test/vm/vectors/local.json");
        ctx = vm.parseJsonBytes32(local, ".context");
        // This test contract plays the dispute game: it writes its dispute's local data.
        oracle.loadLocalData(1, ctx, vm.parseJsonBytes(local, ".ident1"));
        oracle.loadLocalData(2, ctx, vm.parseJsonBytes(local, ".ident2"));
        oracle.loadLocalData(3, ctx, vm.parseJsonBytes(local, ".ident3"));
    }

    function _vector(string memory name)
        internal
        view
        returns (bytes memory state, bytes memory proof, bytes32 post)
    {
        string memory json = vm.readFile(string.concat("test/vm/vectors/", name, ".json"));
        state = vm.parseJsonBytes(json, ".state");
        proof = vm.parseJsonBytes(json, ".proof");
        post = vm.parseJsonBytes32(json, ".post");
    }

    function _run(string memory name) internal {
        vm.pauseGasMetering();
        (bytes memory state, bytes memory proof, bytes32 post) = _vector(name);
        vm.resumeGasMetering();
        bytes32 got = riscv.step(state, proof, ctx);
        vm.pauseGasMetering();
        assertEq(got, post, name);
        vm.resumeGasMetering();
    }

    function test_step_lui() public {
        _run("lui");
    }

    function test_step_auipc() public {
        _run("auipc");
    }

    function test_step_jal() public {
        _run("jal");
    }

    function test_step_jalr() public {
        _run("jalr");
    }

    function test_step_branch() public {
        _run("branch");
    }

    function test_step_loadWord() public {
        _run("load_word");
    }

    function test_step_loadByte() public {
        _run("load_byte");
    }

    function test_step_storeWord() public {
        _run("store_word");
    }

    function test_step_storeByte() public {
        _run("store_byte");
    }

    function test_step_aluImm() public {
        _run("alu_imm");
    }

    function test_step_alu() public {
        _run("alu");
    }

    function test_step_mul() public {
        _run("mul");
    }

    function test_step_div() public {
        _run("div");
    }

    function test_step_fence() public {
        _run("fence");
    }

    function test_step_ecallWrite() public {
        _run("ecall_write");
    }

    function test_step_ecallExit() public {
        _run("ecall_exit");
    }

    function test_step_preimageSetKey() public {
        _run("preimage_set_key");
    }

    function test_step_preimageReadLocal() public {
        _run("preimage_read_local");
    }

    function test_step_preimageReadKeccak() public {
        _run("preimage_read_keccak");
    }

    function test_step_preimageRead4KiB() public {
        _run("preimage_read_4k");
    }

    function test_step_commitOutput() public {
        _run("commit_output");
    }

    function test_step_ecallUnknown() public {
        _run("ecall_unknown");
    }

    function test_step_ebreak() public {
        _run("ebreak");
    }

    function test_step_invalid() public {
        _run("invalid");
    }

    function test_step_misalignedLoad() public {
        _run("misaligned_load");
    }

    function test_step_halted() public {
        _run("halted");
    }

    function test_RevertIf_tamperedProofs() public {
        (bytes memory state, bytes memory proof,) = _vector("store_word");
        proof[40] ^= 0x01; // an instruction proof sibling
        vm.expectRevert(abi.encodeWithSelector(RISCV.WitnessError.selector, uint8(4)));
        riscv.step(state, proof, ctx);
        proof[40] ^= 0x01;
        proof[896 + 100] ^= 0x01; // a data proof sibling
        vm.expectRevert(abi.encodeWithSelector(RISCV.WitnessError.selector, uint8(5)));
        riscv.step(state, proof, ctx);
    }

    function test_RevertIf_badLengths() public {
        (bytes memory state, bytes memory proof,) = _vector("alu");
        vm.expectRevert(abi.encodeWithSelector(RISCV.WitnessError.selector, uint8(1)));
        riscv.step(bytes.concat(state, hex"00"), proof);
        bytes memory short = new bytes(1791);
        vm.expectRevert(abi.encodeWithSelector(RISCV.WitnessError.selector, uint8(3)));
        riscv.step(state, short);
    }

    function test_RevertIf_preStateMismatch() public {
        (bytes memory state, bytes memory proof, bytes32 post) = _vector("alu");
        bytes32 pre = riscv.stateHash(state);
        assertEq(riscv.verifyStep(pre, state, proof, ctx), post);
        vm.expectRevert(abi.encodeWithSelector(RISCV.WitnessError.selector, uint8(2)));
        riscv.verifyStep(post, state, proof, ctx);
    }

    function test_RevertIf_preimageChecks() public {
        (bytes memory state, bytes memory proof,) = _vector("preimage_read_keccak");
        proof[proof.length - 1] ^= 0x01;
        vm.expectRevert(abi.encodeWithSelector(RISCV.WitnessError.selector, uint8(6)));
        riscv.step(state, proof);
        (state, proof,) = _vector("preimage_read_local");
        // Without the oracle a local key cannot be checked.
        vm.expectRevert(abi.encodeWithSelector(RISCV.WitnessError.selector, uint8(7)));
        riscv.step(state, proof);
        // Another dispute's context holds nothing.
        vm.expectRevert(abi.encodeWithSelector(RISCV.WitnessError.selector, uint8(6)));
        riscv.step(state, proof, bytes32(uint256(ctx) ^ 1));
        // Another caller (game) sees nothing of this game's data.
        vm.prank(address(0xbeef));
        vm.expectRevert(abi.encodeWithSelector(RISCV.WitnessError.selector, uint8(6)));
        riscv.step(state, proof, ctx);
        state[32] = 0x03; // PREIMAGE_KEY byte 0: key type 3
        vm.expectRevert(abi.encodeWithSelector(RISCV.WitnessError.selector, uint8(8)));
        riscv.step(state, proof, ctx);
    }
}

/// @notice The PreimageOracle: keccak parts by anyone, local data per caller and
///  dispute, write-once.
contract PreimageOracleTest is Test {
    PreimageOracle internal oracle;

    function setUp() public {
        oracle = new PreimageOracle();
    }

    function test_keccakParts_stream() public {
        bytes memory data = "hello, preimage oracle: more than thirty-two bytes here";
        bytes32 key = oracle.loadKeccak256PreimagePart(0, data);
        assertEq(uint8(key[0]), 2);
        assertEq(key << 8, keccak256(data) << 8);
        (bytes32 dat, uint256 len) = oracle.readPreimage(key, 0);
        assertEq(len, 32);
        // forge-lint: disable-next-line(unsafe-typecast)
        assertEq(bytes8(dat), bytes8(uint64(data.length)));
        // forge-lint: disable-next-line(unsafe-typecast)
        assertEq(bytes24(dat << 64), bytes24(bytes.concat(data)));
        oracle.loadKeccak256PreimagePart(40, data);
        (dat, len) = oracle.readPreimage(key, 40);
        assertEq(len, data.length + 8 - 40);
        assertEq(dat[0], data[32]);
        vm.expectRevert(PreimageOracle.PreimagePartNotLoaded.selector);
        oracle.readPreimage(key, 8);
        vm.expectRevert(PreimageOracle.PartOffsetOutOfBounds.selector);
        oracle.loadKeccak256PreimagePart(data.length + 8, data);
    }

    function test_localData_scopedAndWriteOnce() public {
        bytes32 ctx = bytes32(uint256(7));
        bytes32 localized = oracle.loadLocalData(2, ctx, hex"aabb");
        assertEq(localized, oracle.localize(oracle.localKey(2), address(this), ctx));
        assertEq(uint8(localized[0]), 1);
        (bool set, bytes32 digest) = oracle.localData(localized);
        assertTrue(set);
        assertEq(digest, keccak256(hex"aabb"));
        assertEq(oracle.localDigest(localized), keccak256(hex"aabb"));
        // An empty value is set too (its digest is keccak256 of nothing, never zero).
        bytes32 empty = oracle.loadLocalData(3, ctx, "");
        (set, digest) = oracle.localData(empty);
        assertTrue(set);
        assertEq(digest, keccak256(""));
        (set,) = oracle.localData(oracle.localize(oracle.localKey(4), address(this), ctx));
        assertFalse(set, "never written");
        // The same data again is a no-op; other data reverts.
        oracle.loadLocalData(2, ctx, hex"aabb");
        vm.expectRevert(PreimageOracle.LocalDataAlreadySet.selector);
        oracle.loadLocalData(2, ctx, hex"aabc");
        // Another caller writes under its own key.
        vm.prank(address(0xbeef));
        bytes32 other = oracle.loadLocalData(2, ctx, hex"aabc");
        assertTrue(other != localized);
    }

    /// The step reads a local preimage from its witness and compares it with the stored digest: nothing
    /// else of the value is ever read, so nothing else is stored (the stream parts a game used to write
    /// cost about 150k gas per 32-byte value, 0.4-0.6M per game). One slot per value now.
    function test_loadLocalData_storesOnlyWhatTheStepReads_succeeds() public {
        bytes32 ctx = bytes32(uint256(9));
        bytes memory value = abi.encodePacked(keccak256("model root"));
        uint256 before = gasleft();
        bytes32 localized = oracle.loadLocalData(1, ctx, value);
        uint256 used = before - gasleft();
        assertLt(used, 40_000, "one slot and an event (the parts cost ~150k)");
        vm.expectRevert(PreimageOracle.PreimagePartNotLoaded.selector);
        oracle.readPreimage(localized, 0);
        (bool set, bytes32 digest) = oracle.localData(localized);
        assertTrue(set);
        assertEq(digest, keccak256(value));
    }
}
