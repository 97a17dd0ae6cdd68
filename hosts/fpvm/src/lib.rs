//! The rv32im fault-proof VM: a generic one, which knows no guest. It runs any
//! rv32im ELF and serves it preimages from a [`PreimageOracle`]; what the oracle's
//! guest program reads (and the `fpvm` command) is in `oracle-vm-host`, the ABI
//! they share in `oracle-guest-abi`.
//!
//! - [`vm`]: the fast interpreter (no hashing) and the execution semantics;
//! - [`memory`]: sparse merkleized memory (keccak256 over 32-byte leaves);
//! - [`state`] and [`layout`]: the state encoding the Solidity twin mirrors;
//! - [`witness`]: one-step witnesses and the reference step verifier;
//! - [`checkpoint`]: snapshots every K steps to reach any step quickly;
//! - [`preimage`]: the preimage oracle, its keys and streams;
//! - [`elf`]: the ELF32 loader.
//!
//! See `hosts/fpvm/README.md` for the tables (syscalls, state layout, witness).

pub mod abi;
pub mod checkpoint;
pub mod elf;
pub mod hash;
pub mod layout;
pub mod memory;
pub mod preimage;
pub mod state;
pub mod vm;
pub mod witness;

pub use checkpoint::Checkpoints;
pub use elf::ElfError;
pub use preimage::{InMemoryOracle, PreimageOracle};
pub use vm::{Budget, DebugSink, Limit, RunOutcome, SharedOracle, Vm, VmError};
pub use witness::{
    prove_step, step_from_witness, step_from_witness_with_oracle, Witness, WitnessError,
};
