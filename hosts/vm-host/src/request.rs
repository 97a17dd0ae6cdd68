//! A request's preimages: what the guest program reads through the VM's preimage
//! oracle to serve one inference request (or one transition of the two-phase game).
//!
//! The guest reads the local data of the guest ABI (`oracle_guest_abi::local_ident`:
//! model root, input hash, request parameters, pre-state) and then fetches
//! everything else as keccak preimages: the input bytes, the model's Merkle tree
//! (head, inner nodes, chunks) and, for a position or output transition, the decode
//! state and what it commits to. On chain the dispute game writes the same local
//! data from the request it judges.

use oracle_fpvm::hash::{keccak256, Hash};
use oracle_fpvm::InMemoryOracle;
use oracle_guest_abi::{local_ident, transition};

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
/// byte ([`oracle_guest_abi::transition`]), and, for a position or output
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

/// Local data for a position (`mode` [`transition::POSITION`]) or output
/// transition of a **rejected** request: its pre-state is the error outcome's
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
    transition_oracle(model, request, transition::INIT, None)
}

/// Local data for one position: the guest restores `checkpoint` (the decoder at
/// `P_t`) from its preimages, runs position `t` and commits `P_{t+1}`.
pub fn position_oracle(
    model: &[u8],
    request: &oracle_core::Request<'_>,
    checkpoint: &oracle_core::commit::position::Decoder<'_, '_>,
) -> InMemoryOracle {
    transition_oracle(model, request, transition::POSITION, Some(checkpoint))
}

/// Local data for the output transition: `checkpoint` is the final, done state
/// `P_T`; the guest commits `keccak256(text ‖ "\n")`.
pub fn output_oracle(
    model: &[u8],
    request: &oracle_core::Request<'_>,
    checkpoint: &oracle_core::commit::position::Decoder<'_, '_>,
) -> InMemoryOracle {
    transition_oracle(model, request, transition::OUTPUT, Some(checkpoint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oracle_fpvm::preimage::{keccak_key, local_key};
    use oracle_fpvm::PreimageOracle;

    #[test]
    fn request_installs_its_local_data_and_input() {
        let mut o = InMemoryOracle::new();
        Request {
            model_root: [7; 32],
            input: b"hi".to_vec(),
            sampling_params: vec![1, 2, 3],
        }
        .install(&mut o);
        assert_eq!(o.len(), 4);
        assert_eq!(o.get(keccak_key(b"hi")), Some(b"hi".to_vec()));
        assert_eq!(o.get(local_key(1)), Some(vec![7; 32]));
        assert_eq!(o.get(local_key(2)), Some(keccak256(b"hi").to_vec()));
        assert_eq!(o.get(local_key(3)), Some(vec![1, 2, 3]));
    }
}
