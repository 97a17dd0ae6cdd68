// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {StateLayout} from "../dispute/StateLayout.sol";
import {PreimageOracle} from "./PreimageOracle.sol";

/// @title RISCV
/// @notice The one-step verifier of the rv32im fault-proof VM: the Solidity twin of
///  `hosts/fpvm/src/witness.rs` (`step_from_witness_with_oracle`), copied line by line.
///  The state encoding (offsets, statuses, hash statuses) is `StateLayout`'s; the other
///  constants mirror `hosts/fpvm/src/layout.rs`; revert codes are `WitnessError::code`.
/// @dev Witness = (state, proof): `state` is the 245-byte state encoding (integers
///  big-endian); `proof` is the instruction memory proof (896 bytes), the data memory
///  proof (896 bytes) and, for a `PREIMAGE_READ` step only, the whole preimage of
///  PREIMAGE_KEY. A memory proof is leaf ‖ 27 siblings, bottom up.
///  Preimage data: the step reads it from the witness. A keccak key is checked by
///  hashing the witness copy here (a model chunk of a few KiB costs a few thousand gas);
///  a local key is compared with the digest the dispute game stored in the
///  `PreimageOracle` under `localize(key, msg.sender, localContext)`.
///  The state lives in memory as its encoding; fields are read and written in place
///  and the post-state hash is keccak256 of that buffer with byte 0 = VM status.
// Truncating casts are the semantics here: registers, pc and addresses are 32-bit
// wrapping values, sign extension goes through int8/int16/int32.
// forge-lint: disable-start(unsafe-typecast)
contract RISCV {
    // ---- layout::panic ----
    uint32 internal constant INVALID_INSTRUCTION = 1;
    uint32 internal constant MISALIGNED_FETCH = 2;
    uint32 internal constant MISALIGNED_LOAD = 3;
    uint32 internal constant MISALIGNED_STORE = 4;
    uint32 internal constant OUT_OF_RANGE = 5;
    uint32 internal constant UNKNOWN_SYSCALL = 6;
    uint32 internal constant EBREAK = 7;
    uint32 internal constant MISALIGNED_SYSCALL_BUFFER = 8;

    // ---- layout::syscall ----
    uint32 internal constant SYS_EXIT = 93;
    uint32 internal constant SYS_WRITE = 64;
    uint32 internal constant SYS_PREIMAGE_SET_KEY = 0x100;
    uint32 internal constant SYS_PREIMAGE_READ = 0x101;
    uint32 internal constant SYS_COMMIT_OUTPUT = 0x102;

    // ---- layout::memory ----
    uint256 internal constant LEAF_BITS = 5;
    // forge-lint: disable-next-line(incorrect-shift)
    uint256 internal constant LEAF_SIZE = 1 << LEAF_BITS;
    uint256 internal constant TREE_DEPTH = 27;
    uint256 internal constant PROOF_SIZE = LEAF_SIZE * (1 + TREE_DEPTH);
    uint32 internal constant NULL_GUARD = 0x1000;

    // ---- layout::proof ----
    uint256 internal constant INSN_PROOF = 0;
    uint256 internal constant DATA_PROOF = INSN_PROOF + PROOF_SIZE;
    uint256 internal constant PREIMAGE = DATA_PROOF + PROOF_SIZE;

    // ---- layout::key_type ----
    uint8 internal constant KEY_TYPE_LOCAL = 1;
    uint8 internal constant KEY_TYPE_KECCAK = 2;

    // ---- WitnessError::code ----
    uint8 internal constant E_BAD_STATE_LENGTH = 1;
    uint8 internal constant E_PRE_STATE_MISMATCH = 2;
    uint8 internal constant E_PROOF_TOO_SHORT = 3;
    uint8 internal constant E_INVALID_INSTRUCTION_PROOF = 4;
    uint8 internal constant E_INVALID_DATA_PROOF = 5;
    uint8 internal constant E_PREIMAGE_MISMATCH = 6;
    uint8 internal constant E_UNVERIFIABLE_LOCAL_PREIMAGE = 7;
    uint8 internal constant E_UNSUPPORTED_KEY_TYPE = 8;
    uint8 internal constant E_PREIMAGE_TOO_LARGE = 9;

    /// @notice A rejected witness, with the `WitnessError::code` of `witness.rs`.
    error WitnessError(uint8 code);

    /// @notice The oracle holding the per-dispute (local) preimages.
    PreimageOracle public immutable ORACLE;

    /// @dev One step in flight: the state encoding in memory (`s` points at its first
    ///  byte), the proof in calldata, and how local keys are checked.
    struct Ctx {
        uint256 s;
        uint256 proofOffset;
        uint256 proofLength;
        bool hasOracle;
        bytes32 localContext;
    }

    /// @param oracle The PreimageOracle the oracle-aware `step` reads local data from.
    constructor(PreimageOracle oracle) {
        ORACLE = oracle;
    }

    /// @notice Re-executes one step from its witness alone and returns the post-state
    ///  hash (`step_from_witness`). A read of a local key reverts with code 7.
    function step(bytes calldata state, bytes calldata proof) external view returns (bytes32 postStateHash) {
        return _step(state, proof, false, bytes32(0));
    }

    /// @notice `step` with the PreimageOracle for local keys
    ///  (`step_from_witness_with_oracle`): a local key is looked up as
    ///  `ORACLE.localize(key, msg.sender, localContext)`, i.e. the data the caller (the
    ///  dispute game) wrote for its dispute `localContext`.
    function step(bytes calldata state, bytes calldata proof, bytes32 localContext)
        external
        view
        returns (bytes32 postStateHash)
    {
        return _step(state, proof, true, localContext);
    }

    /// @notice `verify_step`: checks that `state` hashes to the agreed pre-state claim,
    ///  then runs the oracle-aware `step`.
    function verifyStep(bytes32 claimedPre, bytes calldata state, bytes calldata proof, bytes32 localContext)
        external
        view
        returns (bytes32 postStateHash)
    {
        if (state.length != StateLayout.STATE_SIZE) revert WitnessError(E_BAD_STATE_LENGTH);
        bytes memory enc = state;
        uint256 s;
        assembly ("memory-safe") {
            s := add(enc, 32)
        }
        if (state_hash(s) != claimedPre) revert WitnessError(E_PRE_STATE_MISMATCH);
        return _step(state, proof, true, localContext);
    }

    /// @notice The state hash of an encoding: keccak256(state) with byte 0 = VM status.
    function stateHash(bytes calldata state) external pure returns (bytes32) {
        if (state.length != StateLayout.STATE_SIZE) revert WitnessError(E_BAD_STATE_LENGTH);
        bytes memory enc = state;
        uint256 s;
        assembly ("memory-safe") {
            s := add(enc, 32)
        }
        return state_hash(s);
    }

    /// @dev `step_from_witness_with_oracle`.
    function _step(bytes calldata state, bytes calldata proof, bool hasOracle, bytes32 localContext)
        internal
        view
        returns (bytes32)
    {
        if (state.length != StateLayout.STATE_SIZE) revert WitnessError(E_BAD_STATE_LENGTH);
        bytes memory enc = state;
        Ctx memory c;
        assembly ("memory-safe") {
            mstore(c, add(enc, 32))
            mstore(add(c, 0x20), proof.offset)
            mstore(add(c, 0x40), proof.length)
        }
        c.hasOracle = hasOracle;
        c.localContext = localContext;
        if (_get(c.s, StateLayout.STATUS, 1) != StateLayout.RUNNING) {
            // A halted state is a fixed point.
            return state_hash(c.s);
        }
        if (proof.length < PREIMAGE) revert WitnessError(E_PROOF_TOO_SHORT);
        execute(c);
        return state_hash(c.s);
    }

    // ------------------------------------------------------------------
    // State fields (big-endian, in place in the memory encoding)
    // ------------------------------------------------------------------

    /// @dev Reads the `size`-byte big-endian field at `off`.
    function _get(uint256 s, uint256 off, uint256 size) internal pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shr(sub(256, mul(size, 8)), mload(add(s, off)))
        }
    }

    /// @dev Writes the `size`-byte big-endian field at `off`, keeping the bytes after it.
    function _set(uint256 s, uint256 off, uint256 size, uint256 v) internal pure {
        assembly ("memory-safe") {
            let p := add(s, off)
            let sh := sub(256, mul(size, 8))
            let mask := shl(sh, sub(shl(mul(size, 8), 1), 1))
            mstore(p, or(and(mload(p), not(mask)), and(shl(sh, v), mask)))
        }
    }

    /// @dev Register `i` (x0..x31).
    function _reg(uint256 s, uint256 i) internal pure returns (uint32) {
        return uint32(_get(s, StateLayout.REGS + 4 * i, 4));
    }

    function set_rd(uint256 s, uint256 rd, uint32 v) internal pure {
        if (rd != 0) _set(s, StateLayout.REGS + 4 * rd, 4, v);
    }

    function halt(uint256 s, uint32 code) internal pure {
        _set(s, StateLayout.STATUS, 1, StateLayout.PANICKED);
        _set(s, StateLayout.EXIT_CODE, 4, code);
    }

    /// @dev `state_hash`: keccak256(encoding) with byte 0 = `vm_status`.
    function state_hash(uint256 s) internal pure returns (bytes32 h) {
        uint256 st = _get(s, StateLayout.STATUS, 1);
        uint256 exitCode = _get(s, StateLayout.EXIT_CODE, 4);
        uint256 vmStatus;
        if (st == StateLayout.RUNNING) vmStatus = StateLayout.HASH_UNFINISHED;
        else if (st == StateLayout.EXITED && exitCode == 0) vmStatus = StateLayout.HASH_VALID;
        else if (st == StateLayout.EXITED) vmStatus = StateLayout.HASH_INVALID;
        else vmStatus = StateLayout.HASH_PANIC;
        uint256 size = StateLayout.STATE_SIZE;
        assembly ("memory-safe") {
            h := keccak256(s, size)
            h := or(and(h, not(shl(248, 0xff))), shl(248, vmStatus))
        }
    }

    // ------------------------------------------------------------------
    // Memory proofs
    // ------------------------------------------------------------------

    /// @dev `memory::root_from_proof`: the root from a leaf and its 27 siblings (in
    ///  calldata at `sibOffset`), bottom up; bit i of `addr >> 5` says right (1) or left.
    function root_from_proof(uint32 addr, bytes32 leaf, uint256 sibOffset)
        internal
        pure
        returns (bytes32 node)
    {
        assembly ("memory-safe") {
            let index := shr(5, addr)
            node := leaf
            for {
                let i := 0
            } lt(i, TREE_DEPTH) {
                i := add(i, 1)
            } {
                let sib := calldataload(add(sibOffset, shl(5, i)))
                switch and(index, 1)
                case 0 {
                    mstore(0, node)
                    mstore(32, sib)
                }
                default {
                    mstore(0, sib)
                    mstore(32, node)
                }
                node := keccak256(0, 64)
                index := shr(1, index)
            }
        }
    }

    /// @dev The leaf of the memory proof at `at` in the proof.
    function _proofLeaf(Ctx memory c, uint256 at) internal pure returns (bytes32 leaf) {
        uint256 p = c.proofOffset + at;
        assembly ("memory-safe") {
            leaf := calldataload(p)
        }
    }

    /// @dev Reads the instruction at pc through the instruction proof.
    function fetch(Ctx memory c, uint32 pc) internal pure returns (uint32) {
        bytes32 leaf = _proofLeaf(c, INSN_PROOF);
        if (
            root_from_proof(pc, leaf, c.proofOffset + INSN_PROOF + 32)
                != bytes32(_get(c.s, StateLayout.MEM_ROOT, 32))
        ) {
            revert WitnessError(E_INVALID_INSTRUCTION_PROOF);
        }
        return uint32(_leLoad(leaf, pc & 31, 4));
    }

    /// @dev Reads the data leaf holding `addr` through the data proof.
    function read_leaf(Ctx memory c, uint32 addr) internal pure returns (bytes32 leaf) {
        leaf = _proofLeaf(c, DATA_PROOF);
        if (
            root_from_proof(addr, leaf, c.proofOffset + DATA_PROOF + 32)
                != bytes32(_get(c.s, StateLayout.MEM_ROOT, 32))
        ) {
            revert WitnessError(E_INVALID_DATA_PROOF);
        }
    }

    /// @dev Replaces the data leaf holding `addr` (already verified by `read_leaf`).
    function write_leaf(Ctx memory c, uint32 addr, bytes32 leaf) internal pure {
        _set(
            c.s,
            StateLayout.MEM_ROOT,
            32,
            uint256(root_from_proof(addr, leaf, c.proofOffset + DATA_PROOF + 32))
        );
    }

    /// @dev Little-endian `size`-byte value at byte `o` of a leaf.
    function _leLoad(bytes32 leaf, uint256 o, uint256 size) internal pure returns (uint256 v) {
        for (uint256 i = 0; i < size; i++) {
            v |= uint256(uint8(leaf[o + i])) << (8 * i);
        }
    }

    /// @dev The leaf with byte `o` replaced by `b`.
    function _setByte(bytes32 leaf, uint256 o, uint256 b) internal pure returns (bytes32) {
        uint256 sh = 8 * (31 - o);
        return (leaf & ~bytes32(uint256(0xff) << sh)) | bytes32((b & 0xff) << sh);
    }

    // ------------------------------------------------------------------
    // Decoding and the ALU (vm.rs)
    // ------------------------------------------------------------------

    function imm_i(uint32 insn) internal pure returns (uint32) {
        return uint32(int32(insn) >> 20);
    }

    function imm_s(uint32 insn) internal pure returns (uint32) {
        return uint32((int32(insn) >> 25) << 5) | ((insn >> 7) & 0x1f);
    }

    function imm_b(uint32 insn) internal pure returns (uint32) {
        return uint32((int32(insn) >> 31) << 12) | ((insn << 4) & 0x800) | ((insn >> 20) & 0x7e0)
            | ((insn >> 7) & 0x1e);
    }

    function imm_j(uint32 insn) internal pure returns (uint32) {
        return
            uint32((int32(insn) >> 31) << 20) | (insn & 0xff000) | ((insn >> 9) & 0x800)
                | ((insn >> 20) & 0x7fe);
    }

    /// @dev `vm::alu_op`: the base ALU and the M extension; `ok` false for an invalid
    ///  funct7/funct3 combination.
    function alu_op(uint32 funct7, uint32 funct3, uint32 a, uint32 b)
        internal
        pure
        returns (bool ok, uint32 v)
    {
        unchecked {
            ok = true;
            if (funct7 == 0x00) {
                if (funct3 == 0) v = a + b;
                else if (funct3 == 1) v = a << (b & 31);
                else if (funct3 == 2) v = int32(a) < int32(b) ? 1 : 0;
                else if (funct3 == 3) v = a < b ? 1 : 0;
                else if (funct3 == 4) v = a ^ b;
                else if (funct3 == 5) v = a >> (b & 31);
                else if (funct3 == 6) v = a | b;
                else v = a & b;
            } else if (funct7 == 0x20) {
                if (funct3 == 0) v = a - b;
                else if (funct3 == 5) v = uint32(int32(a) >> (b & 31));
                else ok = false;
            } else if (funct7 == 0x01) {
                if (funct3 == 0) {
                    v = a * b;
                } else if (funct3 == 1) {
                    v = uint32(uint256((int256(int32(a)) * int256(int32(b))) >> 32));
                } else if (funct3 == 2) {
                    v = uint32(uint256((int256(int32(a)) * int256(uint256(b))) >> 32));
                } else if (funct3 == 3) {
                    v = uint32((uint256(a) * uint256(b)) >> 32);
                } else if (funct3 == 4) {
                    v = b == 0 ? type(uint32).max : uint32(uint256(int256(int32(a)) / int256(int32(b))));
                } else if (funct3 == 5) {
                    v = b == 0 ? type(uint32).max : a / b;
                } else if (funct3 == 6) {
                    v = b == 0 ? a : uint32(uint256(int256(int32(a)) % int256(int32(b))));
                } else {
                    v = b == 0 ? a : a % b;
                }
            } else {
                ok = false;
            }
        }
    }

    // ------------------------------------------------------------------
    // The step
    // ------------------------------------------------------------------

    /// @dev `WitnessStep::execute`: executes the step; pc and step are updated here.
    function execute(Ctx memory c) internal view {
        unchecked {
            uint256 s = c.s;
            _set(s, StateLayout.REGS, 4, 0);
            _set(s, StateLayout.STEP, 8, uint64(_get(s, StateLayout.STEP, 8)) + 1); // wrapping u64
            uint32 pc = uint32(_get(s, StateLayout.PC, 4));
            if (pc & 3 != 0) {
                halt(s, MISALIGNED_FETCH);
                return;
            }
            if (pc < NULL_GUARD) {
                halt(s, OUT_OF_RANGE);
                return;
            }
            uint32 insn = fetch(c, pc);
            uint32 opcode = insn & 0x7f;
            uint256 rd = (insn >> 7) & 31;
            uint32 funct3 = (insn >> 12) & 7;
            uint32 rs1v = _reg(s, (insn >> 15) & 31);
            uint32 rs2v = _reg(s, (insn >> 20) & 31);
            uint32 funct7 = insn >> 25;
            uint32 next = pc + 4;
            if (opcode == 0x37) {
                // 011_0111: LUI
                set_rd(s, rd, insn & 0xfffff000);
            } else if (opcode == 0x17) {
                // 001_0111: AUIPC
                set_rd(s, rd, pc + (insn & 0xfffff000));
            } else if (opcode == 0x6f) {
                // 110_1111: JAL
                uint32 target = pc + imm_j(insn);
                if (target & 3 != 0) {
                    halt(s, MISALIGNED_FETCH);
                    return;
                }
                set_rd(s, rd, next);
                next = target;
            } else if (opcode == 0x67) {
                // 110_0111: JALR
                if (funct3 != 0) {
                    halt(s, INVALID_INSTRUCTION);
                    return;
                }
                uint32 target = (rs1v + imm_i(insn)) & ~uint32(1);
                if (target & 3 != 0) {
                    halt(s, MISALIGNED_FETCH);
                    return;
                }
                set_rd(s, rd, next);
                next = target;
            } else if (opcode == 0x63) {
                // 110_0011: BRANCH
                bool taken;
                if (funct3 == 0) {
                    taken = rs1v == rs2v;
                } else if (funct3 == 1) {
                    taken = rs1v != rs2v;
                } else if (funct3 == 4) {
                    taken = int32(rs1v) < int32(rs2v);
                } else if (funct3 == 5) {
                    taken = int32(rs1v) >= int32(rs2v);
                } else if (funct3 == 6) {
                    taken = rs1v < rs2v;
                } else if (funct3 == 7) {
                    taken = rs1v >= rs2v;
                } else {
                    halt(s, INVALID_INSTRUCTION);
                    return;
                }
                if (taken) {
                    uint32 target = pc + imm_b(insn);
                    if (target & 3 != 0) {
                        halt(s, MISALIGNED_FETCH);
                        return;
                    }
                    next = target;
                }
            } else if (opcode == 0x03) {
                // 000_0011: LOAD
                uint32 addr = rs1v + imm_i(insn);
                uint32 size;
                if (funct3 == 0 || funct3 == 4) {
                    size = 1;
                } else if (funct3 == 1 || funct3 == 5) {
                    size = 2;
                } else if (funct3 == 2) {
                    size = 4;
                } else {
                    halt(s, INVALID_INSTRUCTION);
                    return;
                }
                if (addr & (size - 1) != 0) {
                    halt(s, MISALIGNED_LOAD);
                    return;
                }
                if (addr < NULL_GUARD) {
                    halt(s, OUT_OF_RANGE);
                    return;
                }
                bytes32 leaf = read_leaf(c, addr);
                uint32 raw = uint32(_leLoad(leaf, addr & 31, size));
                uint32 v;
                if (funct3 == 0) v = uint32(int32(int8(uint8(raw))));
                else if (funct3 == 1) v = uint32(int32(int16(uint16(raw))));
                else v = raw;
                set_rd(s, rd, v);
            } else if (opcode == 0x23) {
                // 010_0011: STORE
                uint32 addr = rs1v + imm_s(insn);
                uint32 size;
                if (funct3 == 0) {
                    size = 1;
                } else if (funct3 == 1) {
                    size = 2;
                } else if (funct3 == 2) {
                    size = 4;
                } else {
                    halt(s, INVALID_INSTRUCTION);
                    return;
                }
                if (addr & (size - 1) != 0) {
                    halt(s, MISALIGNED_STORE);
                    return;
                }
                if (addr < NULL_GUARD) {
                    halt(s, OUT_OF_RANGE);
                    return;
                }
                bytes32 leaf = read_leaf(c, addr);
                uint256 o = addr & 31;
                for (uint256 i = 0; i < size; i++) {
                    leaf = _setByte(leaf, o + i, rs2v >> (8 * i));
                }
                write_leaf(c, addr, leaf);
            } else if (opcode == 0x13) {
                // 001_0011: OP-IMM
                uint32 imm = imm_i(insn);
                uint32 v;
                if (funct3 == 0) {
                    v = rs1v + imm;
                } else if (funct3 == 2) {
                    v = int32(rs1v) < int32(imm) ? 1 : 0;
                } else if (funct3 == 3) {
                    v = rs1v < imm ? 1 : 0;
                } else if (funct3 == 4) {
                    v = rs1v ^ imm;
                } else if (funct3 == 6) {
                    v = rs1v | imm;
                } else if (funct3 == 7) {
                    v = rs1v & imm;
                } else if (funct3 == 1 && funct7 == 0) {
                    v = rs1v << (imm & 31);
                } else if (funct3 == 5 && funct7 == 0) {
                    v = rs1v >> (imm & 31);
                } else if (funct3 == 5 && funct7 == 0x20) {
                    v = uint32(int32(rs1v) >> (imm & 31));
                } else {
                    halt(s, INVALID_INSTRUCTION);
                    return;
                }
                set_rd(s, rd, v);
            } else if (opcode == 0x33) {
                // 011_0011: OP and M extension
                (bool ok, uint32 v) = alu_op(funct7, funct3, rs1v, rs2v);
                if (!ok) {
                    halt(s, INVALID_INSTRUCTION);
                    return;
                }
                set_rd(s, rd, v);
            } else if (opcode == 0x0f) {
                // 000_1111: FENCE is a no-op
                if (funct3 != 0) {
                    halt(s, INVALID_INSTRUCTION);
                    return;
                }
            } else if (opcode == 0x73) {
                // 111_0011: SYSTEM
                if (insn == 0x00100073) {
                    halt(s, EBREAK);
                    return;
                }
                if (insn != 0x00000073) {
                    halt(s, INVALID_INSTRUCTION);
                    return;
                }
                ecall(c);
                return;
            } else {
                halt(s, INVALID_INSTRUCTION);
                return;
            }
            _set(s, StateLayout.PC, 4, next);
        }
    }

    /// @dev `WitnessStep::ecall`: the syscalls (number in a7, arguments a0..a2).
    function ecall(Ctx memory c) internal view {
        unchecked {
            uint256 s = c.s;
            (uint32 a0, uint32 a1, uint32 a2, uint32 a7) =
                (_reg(s, 10), _reg(s, 11), _reg(s, 12), _reg(s, 17));
            if (a7 == SYS_EXIT) {
                _set(s, StateLayout.STATUS, 1, StateLayout.EXITED);
                _set(s, StateLayout.EXIT_CODE, 4, a0);
                return;
            } else if (a7 == SYS_WRITE) {
                set_rd(s, 10, a2);
            } else if (a7 == SYS_PREIMAGE_SET_KEY || a7 == SYS_COMMIT_OUTPUT) {
                if (a0 & 31 != 0) {
                    halt(s, MISALIGNED_SYSCALL_BUFFER);
                    return;
                }
                if (a0 < NULL_GUARD) {
                    halt(s, OUT_OF_RANGE);
                    return;
                }
                bytes32 leaf = read_leaf(c, a0);
                if (a7 == SYS_PREIMAGE_SET_KEY) {
                    _set(s, StateLayout.PREIMAGE_KEY, 32, uint256(leaf));
                    _set(s, StateLayout.PREIMAGE_OFFSET, 4, 0);
                } else {
                    _set(s, StateLayout.OUTPUT, 32, uint256(leaf));
                }
                set_rd(s, 10, 0);
            } else if (a7 == SYS_PREIMAGE_READ) {
                if (a0 < NULL_GUARD) {
                    halt(s, OUT_OF_RANGE);
                    return;
                }
                preimage_read(c, a0, a1);
            } else {
                halt(s, UNKNOWN_SYSCALL);
                return;
            }
            _set(s, StateLayout.PC, 4, uint32(_get(s, StateLayout.PC, 4)) + 4);
        }
    }

    /// @dev The `PREIMAGE_READ` arm of `ecall` after its range check: copies
    ///  n = min(max, 32 - dst % 32, stream_len - offset) bytes of the stream to dst.
    function preimage_read(Ctx memory c, uint32 a0, uint32 a1) internal view {
        unchecked {
            uint256 s = c.s;
            bytes32 leaf = read_leaf(c, a0);
            uint256 preimageOffset = c.proofOffset + PREIMAGE;
            uint256 preimageLength = c.proofLength - PREIMAGE;
            check_preimage(c, preimageOffset, preimageLength);
            if (preimageLength + 8 > type(uint32).max) revert WitnessError(E_PREIMAGE_TOO_LARGE);
            uint256 o = a0 & 31;
            uint256 want = a1 < 32 - o ? a1 : 32 - o;
            uint256 n;
            (leaf, n) = stream_read(
                preimageOffset, preimageLength, _get(s, StateLayout.PREIMAGE_OFFSET, 4), leaf, o, want
            );
            write_leaf(c, a0, leaf);
            _set(s, StateLayout.PREIMAGE_OFFSET, 4, _get(s, StateLayout.PREIMAGE_OFFSET, 4) + n);
            set_rd(s, 10, uint32(n));
        }
    }

    /// @dev `preimage::stream_read` into `leaf[o..o + want]`: the stream is the 8-byte
    ///  big-endian length of the preimage (in calldata) followed by the preimage.
    ///  Returns the leaf and how many bytes were available.
    function stream_read(
        uint256 dataOffset,
        uint256 dataLength,
        uint256 offset,
        bytes32 leaf,
        uint256 o,
        uint256 want
    ) internal pure returns (bytes32, uint256 n) {
        unchecked {
            uint256 len = dataLength + 8;
            if (offset >= len) return (leaf, 0);
            n = len - offset < want ? len - offset : want;
            for (uint256 i = 0; i < n; i++) {
                uint256 p = offset + i;
                uint256 b;
                if (p < 8) {
                    b = (dataLength >> (8 * (7 - p))) & 0xff;
                } else {
                    uint256 at = dataOffset + p - 8;
                    assembly ("memory-safe") {
                        b := byte(0, calldataload(at))
                    }
                }
                leaf = _setByte(leaf, o + i, b);
            }
            return (leaf, n);
        }
    }

    /// @dev `PreimageOracle.localize`: keccak256(abi.encode(key, caller, localContext))
    ///  with byte 0 = 1 (the storage key of a local key for one caller and dispute).
    function localize(bytes32 key, address caller, bytes32 localContext)
        internal
        pure
        returns (bytes32 localized)
    {
        localized = keccak256(abi.encode(key, caller, localContext));
        localized = (localized & ~bytes32(uint256(0xff) << 248)) | bytes32(uint256(KEY_TYPE_LOCAL) << 248);
    }

    /// @dev `WitnessStep::check_preimage`: the witness preimage against PREIMAGE_KEY.
    function check_preimage(Ctx memory c, uint256 dataOffset, uint256 dataLength) internal view {
        bytes32 key = bytes32(_get(c.s, StateLayout.PREIMAGE_KEY, 32));
        uint8 keyType = uint8(uint256(key) >> 248);
        bytes32 digest;
        uint256 ptr;
        assembly ("memory-safe") {
            ptr := mload(0x40)
            calldatacopy(ptr, dataOffset, dataLength)
            digest := keccak256(ptr, dataLength)
        }
        if (keyType == KEY_TYPE_KECCAK) {
            bytes32 want =
                (digest & ~bytes32(uint256(0xff) << 248)) | bytes32(uint256(KEY_TYPE_KECCAK) << 248);
            if (want != key) revert WitnessError(E_PREIMAGE_MISMATCH);
        } else if (keyType == KEY_TYPE_LOCAL) {
            if (!c.hasOracle) revert WitnessError(E_UNVERIFIABLE_LOCAL_PREIMAGE);
            (bool set, bytes32 stored) = ORACLE.localData(localize(key, msg.sender, c.localContext));
            if (!set || stored != digest) revert WitnessError(E_PREIMAGE_MISMATCH);
        } else {
            revert WitnessError(E_UNSUPPORTED_KEY_TYPE);
        }
    }
}
// forge-lint: disable-end(unsafe-typecast)
