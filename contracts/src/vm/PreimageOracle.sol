// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title PreimageOracle
/// @notice The preimages the rv32im fault-proof VM (`RISCV.sol`) reads, as in cannon:
///  - **keccak keys** (type 2): `keccak256(data)` with byte 0 set to 2. Anyone may load
///    a preimage (it is content-addressed, so nobody can load a wrong one). Stored as
///    32-byte parts of the key's stream, loaded one part at a time
///    (`loadKeccak256PreimagePart`), so loading a part costs the same for any size.
///  - **local keys** (type 1): `0x01 ‖ 0^23 ‖ ident` (ident a big-endian u64), the
///    per-dispute data (model root, input hash, sampling parameters). Written only by
///    the caller they belong to: the stored key is `localize(key, msg.sender,
///    localContext)`, so a dispute game writes its own data and nobody else can write
///    or overwrite it. A local value is write-once. Only its keccak256 is stored: that
///    is all `RISCV.step` reads (it compares the witness copy of a local preimage with
///    `localDigest`), so writing a game's local data costs one storage slot per value.
/// @dev A key's *stream* is the preimage length (8 bytes, big-endian) followed by the
///  preimage, exactly as `PREIMAGE_READ` in `hosts/fpvm` sees it. `RISCV.step` checks a
///  keccak preimage by hashing the copy carried in the witness; for a local key it
///  compares the witness copy with `localDigest` of the localized key.
contract PreimageOracle {
    /// @notice Key type of per-dispute data (`layout::key_type::LOCAL`).
    uint8 internal constant KEY_TYPE_LOCAL = 1;
    /// @notice Key type of content-addressed data (`layout::key_type::KECCAK`).
    uint8 internal constant KEY_TYPE_KECCAK = 2;

    /// @notice A part offset at or past the end of the stream.
    error PartOffsetOutOfBounds();
    /// @notice A local value was written already with other data.
    error LocalDataAlreadySet();
    /// @notice `readPreimage` of a part that was never loaded.
    error PreimagePartNotLoaded();

    /// @notice Stream length (8 + preimage length) of each key with a loaded part.
    mapping(bytes32 key => uint256 len) public preimageLengths;
    /// @notice Stream part (up to 32 bytes, left-aligned) at an offset of a key.
    mapping(bytes32 key => mapping(uint256 offset => bytes32 part)) public preimageParts;
    /// @notice Whether the part at an offset of a key was loaded.
    mapping(bytes32 key => mapping(uint256 offset => bool ok)) public preimagePartOk;
    /// @notice keccak256 of the local data stored under a localized key (zero if none: a keccak256 is never
    ///  zero, an empty value included, so a non-zero digest means the key holds data).
    mapping(bytes32 localizedKey => bytes32 digest) public localDigest;

    /// @notice A keccak preimage part was loaded.
    event PreimagePartLoaded(bytes32 indexed key, uint256 partOffset);
    /// @notice Local data was written for a caller and context.
    event LocalDataLoaded(
        bytes32 indexed localizedKey, address indexed caller, bytes32 localContext, uint64 ident
    );

    /// @notice The keccak key of `data`: keccak256(data) with byte 0 set to 2.
    function keccakKey(bytes memory data) public pure returns (bytes32 key) {
        key = keccak256(data);
        key = (key & ~bytes32(uint256(0xff) << 248)) | bytes32(uint256(KEY_TYPE_KECCAK) << 248);
    }

    /// @notice The local key of `ident`: 0x01 ‖ 0^23 ‖ ident (big-endian u64).
    function localKey(uint64 ident) public pure returns (bytes32) {
        return bytes32((uint256(KEY_TYPE_LOCAL) << 248) | uint256(ident));
    }

    /// @notice The storage key of a local key for one caller and context (as cannon's
    ///  `localize`): keccak256(abi.encode(key, caller, localContext)) with byte 0 = 1.
    function localize(bytes32 key, address caller, bytes32 localContext)
        public
        pure
        returns (bytes32 localized)
    {
        localized = keccak256(abi.encode(key, caller, localContext));
        localized = (localized & ~bytes32(uint256(0xff) << 248)) | bytes32(uint256(KEY_TYPE_LOCAL) << 248);
    }

    /// @notice Loads the 32-byte part at `partOffset` of the stream of `preimage` under
    ///  its keccak key. Anyone may call it. Returns the key.
    function loadKeccak256PreimagePart(uint256 partOffset, bytes calldata preimage)
        external
        returns (bytes32 key)
    {
        uint256 len = preimage.length + 8;
        if (partOffset >= len) revert PartOffsetOutOfBounds();
        key = keccakKey(preimage);
        preimageParts[key][partOffset] = _streamPart(preimage, partOffset);
        preimagePartOk[key][partOffset] = true;
        preimageLengths[key] = len;
        emit PreimagePartLoaded(key, partOffset);
    }

    /// @notice Writes the local data `ident` of the caller's dispute `localContext`: its
    ///  keccak256, what `RISCV.step` checks a witness copy against (the step carries the
    ///  data itself). Write-once: writing the same data again is a no-op, other data
    ///  reverts.
    function loadLocalData(uint64 ident, bytes32 localContext, bytes calldata data)
        external
        returns (bytes32 localized)
    {
        localized = localize(localKey(ident), msg.sender, localContext);
        bytes32 digest = keccak256(data);
        bytes32 stored = localDigest[localized];
        if (stored != bytes32(0)) {
            if (stored != digest) revert LocalDataAlreadySet();
            return localized;
        }
        localDigest[localized] = digest;
        emit LocalDataLoaded(localized, msg.sender, localContext, ident);
    }

    /// @notice Whether `localized` holds data, and its keccak256 (what `RISCV.step`
    ///  compares the witness copy of a local preimage with).
    function localData(bytes32 localized) external view returns (bool set, bytes32 digest) {
        digest = localDigest[localized];
        set = digest != bytes32(0);
    }

    /// @notice The loaded stream part at `offset` of keccak key `key` and how many of its
    ///  bytes are in the stream (as cannon's `readPreimage`). Local data has no parts.
    function readPreimage(bytes32 key, uint256 offset) external view returns (bytes32 dat, uint256 datLen) {
        if (!preimagePartOk[key][offset]) revert PreimagePartNotLoaded();
        dat = preimageParts[key][offset];
        uint256 len = preimageLengths[key];
        datLen = len - offset < 32 ? len - offset : 32;
    }

    /// @dev 32 bytes of the stream (8-byte big-endian length ‖ data) starting at `off`,
    ///  zero-padded past the end.
    function _streamPart(bytes calldata data, uint256 off) internal pure returns (bytes32 part) {
        uint256 len = data.length + 8;
        for (uint256 i = 0; i < 32 && off + i < len; i++) {
            uint256 p = off + i;
            uint8 b = p < 8 ? uint8(uint64(data.length) >> (8 * (7 - p))) : uint8(data[p - 8]);
            part |= bytes32(uint256(b) << (8 * (31 - i)));
        }
    }
}
