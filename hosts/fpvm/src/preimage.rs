//! The preimage oracle, host side: how the guest gets data that is not in its image.
//!
//! A key is 32 bytes whose first byte is its type ([`crate::layout::key_type`]):
//! - **keccak keys** (type 2): `key = keccak256(preimage)` with byte 0 set to 2. Anyone
//!   can check such a preimage (the on-chain oracle accepts it after hashing it), so
//!   model chunks, input bytes and any other content-addressed data use them.
//! - **local keys** (type 1): `key = 0x01 ‖ 0^23 ‖ ident (u64 big-endian)`: per-dispute
//!   data (model root, input hash, sampling parameters; see
//!   [`crate::layout::local_ident`]). On chain the dispute game itself writes these
//!   values into the oracle from the request it judges (the oracle localizes them per
//!   game, as cannon does), so no party chooses them.
//!
//! The guest reads a key's *stream*: the preimage length as 8 bytes big-endian, then
//! the preimage; at most 32 bytes (and never across a 32-byte memory leaf) per step.

use crate::hash::{keccak256, Hash};
use crate::layout::{key_type, local_ident};
use std::collections::HashMap;

/// Source of preimages for the VM.
pub trait PreimageOracle {
    /// The preimage of `key`, if known.
    fn get(&self, key: [u8; 32]) -> Option<Vec<u8>>;
}

/// The keccak key of `data`.
pub fn keccak_key(data: &[u8]) -> [u8; 32] {
    let mut k = keccak256(data);
    k[0] = key_type::KECCAK;
    k
}

/// The local key for identifier `ident`.
pub fn local_key(ident: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[0] = key_type::LOCAL;
    k[24..].copy_from_slice(&ident.to_be_bytes());
    k
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

/// Byte `i` of the preimage stream of `data` (8-byte big-endian length, then data).
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

/// A request the guest will serve: what becomes its local preimages.
///
/// This is the "request → local preimages" builder; [`guest_oracle`] fills it in
/// from a model file and an inference request.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Merkle root of the model file.
    pub model_root: Hash,
    /// The request's input bytes (prompt), served as a keccak preimage.
    pub input: Vec<u8>,
    /// Encoded sampling parameters (layout owned by the guest).
    pub sampling_params: Vec<u8>,
}

impl Request {
    /// keccak256 of the input bytes (what the chain holds).
    pub fn input_hash(&self) -> Hash {
        keccak256(&self.input)
    }

    /// Adds the request's preimages to `oracle`: local keys MODEL_ROOT, INPUT_HASH,
    /// SAMPLING_PARAMS, and the input bytes under their keccak key.
    pub fn install(&self, oracle: &mut InMemoryOracle) {
        oracle.insert_local(local_ident::MODEL_ROOT, self.model_root.to_vec());
        oracle.insert_local(local_ident::INPUT_HASH, self.input_hash().to_vec());
        oracle.insert_local(local_ident::SAMPLING_PARAMS, self.sampling_params.clone());
        oracle.insert_keccak(self.input.clone());
    }
}

/// Everything the guest program reads for one inference request: the local data
/// (model root, input hash, encoded request parameters), the input bytes, and every
/// preimage of the model's Merkle tree (head, inner nodes, chunks).
pub fn guest_oracle(model: &[u8], request: &oracle_core::Request<'_>) -> InMemoryOracle {
    let mut oracle = InMemoryOracle::new();
    Request {
        model_root: oracle_core::commit::merkle::model_root(model),
        input: request.prompt.to_vec(),
        sampling_params: request.encode_params().to_vec(),
    }
    .install(&mut oracle);
    for preimage in oracle_core::commit::merkle::preimages(model) {
        oracle.insert_keccak(preimage);
    }
    oracle
}

/// The local data and preimages of one transition of the two-phase game: the
/// request's (as [`guest_oracle`]), the local parameters extended by the `mode`
/// byte ([`crate::layout::transition`]), and, for a position or output
/// transition, the pre-state hash (local [`local_ident::PRE_STATE`]) with every
/// preimage of the pre-state ([`oracle_core::commit::position::Decoder::preimages`]).
fn transition_oracle(
    model: &[u8],
    request: &oracle_core::Request<'_>,
    mode: u8,
    pre_state: Option<&oracle_core::commit::position::Decoder<'_, '_>>,
) -> InMemoryOracle {
    let mut oracle = guest_oracle(model, request);
    let mut params = request.encode_params().to_vec();
    params.push(mode);
    oracle.insert_local(local_ident::SAMPLING_PARAMS, params);
    if let Some(decoder) = pre_state {
        oracle.insert_local(local_ident::PRE_STATE, decoder.state().hash().to_vec());
        for preimage in decoder.preimages() {
            oracle.insert_keccak(preimage);
        }
    }
    oracle
}

/// Local data for a position (`mode` [`crate::layout::transition::POSITION`]) or
/// output transition of a **rejected** request: its pre-state is the error outcome's
/// commitment `E` (`oracle_core::model::outcome::rejected_commitment`), which the guest
/// keeps as a fixed point without reading any other preimage.
pub fn rejected_oracle(
    model: &[u8],
    request: &oracle_core::Request<'_>,
    mode: u8,
) -> InMemoryOracle {
    let mut oracle = transition_oracle(model, request, mode, None);
    oracle.insert_local(
        local_ident::PRE_STATE,
        oracle_core::model::outcome::rejected_commitment().to_vec(),
    );
    oracle
}

/// Local data for the init transition (request → `P_0`).
pub fn init_oracle(model: &[u8], request: &oracle_core::Request<'_>) -> InMemoryOracle {
    transition_oracle(model, request, crate::layout::transition::INIT, None)
}

/// Local data for one position: the guest restores `checkpoint` (the decoder at
/// `P_t`) from its preimages, runs position `t` and commits `P_{t+1}`.
pub fn position_oracle(
    model: &[u8],
    request: &oracle_core::Request<'_>,
    checkpoint: &oracle_core::commit::position::Decoder<'_, '_>,
) -> InMemoryOracle {
    transition_oracle(
        model,
        request,
        crate::layout::transition::POSITION,
        Some(checkpoint),
    )
}

/// Local data for the output transition: `checkpoint` is the final, done state
/// `P_T`; the guest commits `keccak256(text ‖ "\n")`.
pub fn output_oracle(
    model: &[u8],
    request: &oracle_core::Request<'_>,
    checkpoint: &oracle_core::commit::position::Decoder<'_, '_>,
) -> InMemoryOracle {
    transition_oracle(
        model,
        request,
        crate::layout::transition::OUTPUT,
        Some(checkpoint),
    )
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
        Request {
            input: b"hi".to_vec(),
            ..Default::default()
        }
        .install(&mut o);
        assert_eq!(o.get(keccak_key(b"hi")), Some(b"hi".to_vec()));
        assert_eq!(o.get(local_key(2)), Some(keccak256(b"hi").to_vec()));
    }
}
