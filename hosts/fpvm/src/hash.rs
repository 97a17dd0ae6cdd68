//! keccak256 helpers.

use sha3::{Digest, Keccak256};

/// A 32-byte keccak256 digest.
pub type Hash = [u8; 32];

/// keccak256 of `data`.
pub fn keccak256(data: &[u8]) -> Hash {
    Keccak256::digest(data).into()
}

/// keccak256(left ‖ right): an inner node of the memory tree.
#[inline]
pub fn hash_pair(left: &Hash, right: &Hash) -> Hash {
    let mut h = Keccak256::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}
