//! The host side of the oracle's guest program: what serves one request's
//! preimages to the guest in the VM, shared by the node (`oracle`) and the `fpvm`
//! command.
//!
//! - [`request`]: a request's local data and preimages ([`Request`], [`guest_oracle`])
//!   and those of one transition of the two-phase game ([`init_oracle`],
//!   [`position_oracle`], [`output_oracle`], [`rejected_oracle`]);
//! - [`GUEST_BUDGET`]: the VM budget an honest guest fits in.
//!
//! The VM (`oracle-fpvm`) knows no guest; the numbers the guest and this crate
//! agree on are in `oracle-guest-abi`. See `hosts/vm-host/README.md`.

pub mod request;

pub use request::{
    guest_oracle, init_oracle, output_oracle, position_oracle, rejected_oracle, Request,
};

use oracle_fpvm::Budget;

/// The guest program's memory: its heap ends at `0x7000_0000` and its stack
/// starts below `0x7fff_f000` (`hosts/guest/src/heap.rs`), so an honest guest
/// never holds more than 2 GiB; with no step limit.
pub const GUEST_BUDGET: Budget = Budget {
    steps: u64::MAX,
    memory: 2 << 30,
};

/// The guest ELF that `hosts/guest/build.sh` builds, relative to the repository.
pub const BUNDLED_GUEST: &str =
    "hosts/guest/target/riscv32im-unknown-none-elf/release/oracle-guest";
