//! Bit-exact, integer-only inference core.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(clippy::float_arithmetic)]

extern crate alloc;

pub mod fixed;
pub mod kernels;
pub mod math;
pub mod quant;
