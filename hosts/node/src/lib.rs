//! The library part of the oracle node: what its tests play against the contracts
//! besides the `oracle` binary. Only [`strategy`], the honest strategy of the
//! dispute games, lives here; everything else is the binary's (`src/main.rs`).

pub mod strategy;
