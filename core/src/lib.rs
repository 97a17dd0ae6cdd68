//! Bit-exact, integer-only inference core.
//!
//! No floating point at run time (`clippy::float_arithmetic` is denied outside
//! tests), no value arithmetic on `usize` beyond indexing, every rounding through
//! [`fixed::round_shift`], every accumulator with a stated bound. The same model,
//! input and seed give the same bytes on x86_64, aarch64 and the rv32im guest.
//!
//! Layers, lowest first: [`fixed`], [`math`] and [`rng`] (numerics) → [`quant`]
//! and [`kernels`] (quantized matrix-vector products) → [`nn`] (layers shared by
//! the families) → [`format`](mod@format) and [`commit`] (the model file and what
//! the chain checks of it) → the families [`llama`] and [`diffusion`] → [`model`]
//! (what a request posts).
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(clippy::float_arithmetic)]

extern crate alloc;

pub mod commit;
pub mod diffusion;
pub mod divide;
pub mod error;
pub mod fixed;
pub mod footprint;
pub mod format;
pub mod kernels;
pub mod llama;
pub mod math;
pub mod model;
pub mod nn;
pub mod quant;
pub mod rng;

pub use error::{FormatError, RequestError};
pub use kernels::Exec;
pub use llama::SamplingParams;
pub use model::{AnyModel, ImageParams, Outcome, Request, RequestParams, TextParams};
