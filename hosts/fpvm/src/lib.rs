//! The rv32im fault-proof VM.
//!
//! - [`vm`]: the fast interpreter (no hashing) and the execution semantics;
//! - [`memory`]: sparse merkleized memory (keccak256 over 32-byte leaves);
//! - [`state`] and [`layout`]: the state encoding the Solidity twin mirrors;
//! - [`witness`]: one-step witnesses and the reference step verifier;
//! - [`checkpoint`]: snapshots every K steps to reach any step quickly;
//! - [`preimage`]: the preimage oracle and request → local preimages;
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
pub use preimage::{InMemoryOracle, PreimageOracle, Request};
pub use vm::{Budget, DebugSink, Limit, RunOutcome, SharedOracle, Vm, VmError};
pub use witness::{
    prove_step, step_from_witness, step_from_witness_with_oracle, Witness, WitnessError,
};
