//! The preimage oracle, host side: how a program gets data that is not in its image.
//!
//! A key is 32 bytes whose first byte is its type ([`crate::layout::key_type`], from
//! the guest ABI `oracle-guest-abi`):
//! - **keccak keys** (type 2): `key = keccak256(preimage)` with byte 0 set to 2. Anyone
//!   can check such a preimage (the on-chain oracle accepts it after hashing it), so
//!   content-addressed data (model chunks, input bytes) uses them.
//! - **local keys** (type 1): `key = 0x01 ‖ 0^23 ‖ ident (u64 big-endian)`: per-dispute
//!   data. On chain the dispute game itself writes these values into the oracle (the
//!   oracle localizes them per game, as cannon does), so no party chooses them. Which
//!   identifier means what is the program's business, not the VM's (for the oracle's
//!   guest: `oracle_guest_abi::local_ident`, served by `oracle-vm-host`).
//!
//! The program reads a key's *stream*: the preimage length as 8 bytes big-endian, then
//! the preimage; at most 32 bytes (and never across a 32-byte memory leaf) per step.

use crate::hash::keccak256;
use std::collections::HashMap;

pub use oracle_guest_abi::local_key;

/// Source of preimages for the VM.
pub trait PreimageOracle {
    /// The preimage of `key`, if known.
    fn get(&self, key: [u8; 32]) -> Option<Vec<u8>>;
}

/// The keccak key of `data` (its keccak256 with byte 0 set to 2).
pub fn keccak_key(data: &[u8]) -> [u8; 32] {
    oracle_guest_abi::keccak_key_from_digest(&keccak256(data))
}

/// An oracle held in memory.
#[derive(Clone, Debug, Default)]
pub struct InMemoryOracle {
    map: HashMap<[u8; 32], Vec<u8>>,
}

impl InMemoryOracle {
    /// Empty oracle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `data` under its keccak key and returns the key.
    pub fn insert_keccak(&mut self, data: Vec<u8>) -> [u8; 32] {
        let k = keccak_key(&data);
        self.map.insert(k, data);
        k
    }

    /// Adds local data under `local_key(ident)` and returns the key.
    pub fn insert_local(&mut self, ident: u64, data: Vec<u8>) -> [u8; 32] {
        let k = local_key(ident);
        self.map.insert(k, data);
        k
    }

    /// Adds raw (key, data); the caller vouches for the key.
    pub fn insert_raw(&mut self, key: [u8; 32], data: Vec<u8>) {
        self.map.insert(key, data);
    }

    /// Number of preimages held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the oracle is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl PreimageOracle for InMemoryOracle {
    fn get(&self, key: [u8; 32]) -> Option<Vec<u8>> {
        self.map.get(&key).cloned()
    }
}

/// Length of the preimage stream of `data` (8-byte big-endian length, then data).
pub fn stream_len(data: &[u8]) -> u64 {
    data.len() as u64 + 8
}

/// Copies the part of the stream of `data` that starts at `offset` into `out` and
/// returns how many bytes were available (at most `out.len()`).
pub fn stream_read(data: &[u8], offset: u64, out: &mut [u8]) -> usize {
    let len = stream_len(data);
    if offset >= len {
        return 0;
    }
    let n = ((len - offset) as usize).min(out.len());
    let prefix = (data.len() as u64).to_be_bytes();
    for (i, o) in out.iter_mut().take(n).enumerate() {
        let p = offset + i as u64;
        *o = if p < 8 {
            prefix[p as usize]
        } else {
            data[(p - 8) as usize]
        };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_has_length_prefix() {
        let data = b"hello".to_vec();
        let mut out = [0u8; 32];
        assert_eq!(stream_read(&data, 0, &mut out), 13);
        assert_eq!(
            &out[..13],
            &[0, 0, 0, 0, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']
        );
        assert_eq!(stream_read(&data, 10, &mut out[..2]), 2);
        assert_eq!(&out[..2], b"ll");
        assert_eq!(stream_read(&data, 13, &mut out), 0);
    }

    #[test]
    fn keys_have_type_bytes() {
        assert_eq!(keccak_key(b"x")[0], 2);
        assert_eq!(keccak_key(b"x")[1..], keccak256(b"x")[1..]);
        let l = local_key(3);
        assert_eq!(l[0], 1);
        assert_eq!(l[31], 3);
        let mut o = InMemoryOracle::new();
        assert_eq!(o.insert_keccak(b"hi".to_vec()), keccak_key(b"hi"));
        assert_eq!(o.insert_local(2, vec![7]), local_key(2));
        assert_eq!(o.get(keccak_key(b"hi")), Some(b"hi".to_vec()));
        assert_eq!(o.get(local_key(2)), Some(vec![7]));
        assert_eq!(o.get(local_key(3)), None);
    }
}
