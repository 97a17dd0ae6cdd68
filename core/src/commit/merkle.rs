//! The model commitment: a keccak256 Merkle root over fixed-size chunks of a file.
//!
//! - The file is cut into chunks of [`CHUNK_SIZE`] bytes; the last one is padded
//!   with zero bytes to the full size.
//! - `leaf_i = keccak256(chunk_i)` (always 4096 bytes, so a leaf preimage can never
//!   be mistaken for a 64-byte node preimage).
//! - The leaves are padded to a power of two with `bytes32(0)`;
//!   `node = keccak256(left || right)`.
//! - `model_root = keccak256(tree_root || uint64_be(file_len))` (40 bytes), binding
//!   the exact length.
//!
//! In Solidity a chunk is checked with its index, the sibling path from the leaf up
//! (`proof[0]` is the leaf's sibling) and the file length:
//! ```solidity
//! bytes32 h = keccak256(chunk);               // chunk.length == 4096
//! for (uint i = 0; i < proof.length; i++)
//!     h = (index >> i) & 1 == 0 ? keccak256(abi.encodePacked(h, proof[i]))
//!                               : keccak256(abi.encodePacked(proof[i], h));
//! require(keccak256(abi.encodePacked(h, uint64(fileLen))) == modelRoot);
//! ```

use alloc::vec;
use alloc::vec::Vec;
use sha3::{Digest, Keccak256};

/// Bytes per chunk (one leaf).
pub const CHUNK_SIZE: usize = 4096;

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// keccak256 of `data`.
pub fn keccak(data: &[u8]) -> Hash {
    Keccak256::digest(data).into()
}

/// keccak256 of two hashes concatenated.
pub fn hash_pair(left: &Hash, right: &Hash) -> Hash {
    let mut h = Keccak256::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The leaf hash of one chunk (zero-padded to [`CHUNK_SIZE`]).
pub fn leaf_hash(chunk: &[u8]) -> Hash {
    debug_assert!(chunk.len() <= CHUNK_SIZE);
    if chunk.len() == CHUNK_SIZE {
        return keccak(chunk);
    }
    let mut padded = vec![0u8; CHUNK_SIZE];
    padded[..chunk.len()].copy_from_slice(chunk);
    keccak(&padded)
}

/// Number of chunks of a file of `len` bytes (at least one: an empty file is one
/// zero chunk).
pub fn chunk_count(len: usize) -> usize {
    len.div_ceil(CHUNK_SIZE).max(1)
}

/// All levels of the tree, leaves first; the last level has one hash.
fn levels(data: &[u8]) -> Vec<Vec<Hash>> {
    let n = chunk_count(data.len());
    let mut level: Vec<Hash> = (0..n)
        .map(|i| {
            leaf_hash(
                &data[(i * CHUNK_SIZE).min(data.len())..((i + 1) * CHUNK_SIZE).min(data.len())],
            )
        })
        .collect();
    level.resize(n.next_power_of_two(), [0u8; 32]);
    let mut out = vec![level];
    while out.last().is_some_and(|l| l.len() > 1) {
        let prev = out.last().map(Vec::as_slice).unwrap_or_default();
        let next = prev.chunks(2).map(|p| hash_pair(&p[0], &p[1])).collect();
        out.push(next);
    }
    out
}

/// Bind a tree root to the file length.
pub fn root_with_length(tree_root: &Hash, len: u64) -> Hash {
    let mut h = Keccak256::new();
    h.update(tree_root);
    h.update(len.to_be_bytes());
    h.finalize().into()
}

/// The model root of a file's bytes.
pub fn model_root(data: &[u8]) -> Hash {
    let levels = levels(data);
    let top = levels
        .last()
        .and_then(|l| l.first())
        .copied()
        .unwrap_or_default();
    root_with_length(&top, data.len() as u64)
}

/// The sibling path of chunk `index`, leaf level first; `None` past the end.
pub fn chunk_proof(data: &[u8], index: usize) -> Option<Vec<Hash>> {
    if index >= chunk_count(data.len()) {
        return None;
    }
    let levels = levels(data);
    let mut proof = Vec::with_capacity(levels.len());
    let mut i = index;
    for level in &levels[..levels.len() - 1] {
        proof.push(level[i ^ 1]);
        i >>= 1;
    }
    Some(proof)
}

/// Every preimage a verifier needs to walk from the model root down to the chunks,
/// each keyed by its keccak256: the 40-byte `treeRoot || uint64_be(len)`, the 64-byte
/// inner nodes (those above at least one real chunk), and the chunks zero-padded to
/// [`CHUNK_SIZE`]. The guest program fetches exactly these through the preimage
/// oracle.
pub fn preimages(data: &[u8]) -> Vec<Vec<u8>> {
    let levels = levels(data);
    let n = chunk_count(data.len());
    let mut out = Vec::new();
    let top = levels
        .last()
        .and_then(|l| l.first())
        .copied()
        .unwrap_or_default();
    let mut head = top.to_vec();
    head.extend_from_slice(&(data.len() as u64).to_be_bytes());
    out.push(head);
    for (height, level) in levels.iter().enumerate().skip(1) {
        let covered = n.div_ceil(1 << height);
        for i in 0..covered {
            let below = &levels[height - 1];
            let mut node = below[2 * i].to_vec();
            node.extend_from_slice(&below[2 * i + 1]);
            debug_assert_eq!(keccak(&node), level[i]);
            out.push(node);
        }
    }
    for i in 0..n {
        let mut chunk = vec![0u8; CHUNK_SIZE];
        let part = &data[(i * CHUNK_SIZE).min(data.len())..((i + 1) * CHUNK_SIZE).min(data.len())];
        chunk[..part.len()].copy_from_slice(part);
        out.push(chunk);
    }
    out
}

/// Check one chunk against a model root: `chunk` is the raw chunk (the last one may
/// be short; it is zero-padded here), `proof` its sibling path.
pub fn verify_chunk(root: &Hash, file_len: u64, index: u64, chunk: &[u8], proof: &[Hash]) -> bool {
    if chunk.len() > CHUNK_SIZE || proof.len() >= 64 || index >> proof.len() != 0 {
        return false;
    }
    let mut h = leaf_hash(chunk);
    for (level, sibling) in proof.iter().enumerate() {
        h = if (index >> level) & 1 == 0 {
            hash_pair(&h, sibling)
        } else {
            hash_pair(sibling, &h)
        };
    }
    root_with_length(&h, file_len) == *root
}

/// Lowercase hex with a `0x` prefix.
pub fn to_hex(hash: &Hash) -> alloc::string::String {
    use core::fmt::Write;
    let mut s = alloc::string::String::with_capacity(66);
    s.push_str("0x");
    for b in hash {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_verifies_and_tampering_fails() {
        for len in [0usize, 1, 4095, 4096, 4097, 3 * 4096 + 5, 9 * 4096] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let root = model_root(&data);
            for i in 0..chunk_count(len) {
                let chunk = &data[(i * CHUNK_SIZE).min(len)..((i + 1) * CHUNK_SIZE).min(len)];
                let proof = chunk_proof(&data, i).unwrap();
                assert!(
                    verify_chunk(&root, len as u64, i as u64, chunk, &proof),
                    "len {len} chunk {i}"
                );
                assert!(!verify_chunk(
                    &root,
                    len as u64 + 1,
                    i as u64,
                    chunk,
                    &proof
                ));
                if !chunk.is_empty() {
                    let mut bad = chunk.to_vec();
                    bad[0] ^= 1;
                    assert!(!verify_chunk(&root, len as u64, i as u64, &bad, &proof));
                }
                if !proof.is_empty() {
                    assert!(
                        !verify_chunk(&root, len as u64, (i ^ 1) as u64, chunk, &proof)
                            || chunk_proof(&data, i ^ 1).is_some_and(|p| p == proof)
                    );
                }
            }
            assert!(chunk_proof(&data, chunk_count(len)).is_none());
        }
    }

    #[test]
    fn preimages_walk_from_root_to_every_chunk() {
        for len in [0usize, 100, 4096, 3 * 4096 + 1, 5 * 4096] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let pre = preimages(&data);
            let by_hash: alloc::collections::BTreeMap<Hash, &Vec<u8>> =
                pre.iter().map(|p| (keccak(p), p)).collect();
            let head = by_hash[&model_root(&data)];
            assert_eq!(
                u64::from_be_bytes(head[32..40].try_into().unwrap()),
                len as u64
            );
            // Walk down, collecting chunks in order.
            let mut frontier = vec![<[u8; 32]>::try_from(&head[..32]).unwrap()];
            while frontier
                .iter()
                .any(|h| by_hash.get(h).is_some_and(|p| p.len() == 64))
            {
                frontier = frontier
                    .iter()
                    .flat_map(|h| match by_hash.get(h) {
                        Some(p) if p.len() == 64 => {
                            vec![p[..32].try_into().unwrap(), p[32..].try_into().unwrap()]
                        }
                        _ => vec![*h],
                    })
                    .collect();
            }
            let chunks: Vec<u8> = frontier
                .iter()
                .filter_map(|h| by_hash.get(h))
                .filter(|p| p.len() == CHUNK_SIZE)
                .flat_map(|p| p.iter().copied())
                .collect();
            assert_eq!(&chunks[..len], &data[..]);
        }
    }

    #[test]
    fn root_changes_with_one_byte() {
        let mut data = vec![7u8; 10_000];
        let a = model_root(&data);
        data[9_999] ^= 0x80;
        assert_ne!(a, model_root(&data));
    }

    #[test]
    fn known_root_of_empty_file() {
        // keccak256(keccak256(4096 zero bytes) || uint64_be(0)), pinned.
        let leaf = keccak(&[0u8; CHUNK_SIZE]);
        assert_eq!(model_root(&[]), root_with_length(&leaf, 0));
    }
}
