//! Layers of the diffusion family (issue 8), over Q16 `i32` row-major tensors:
//! token sequences are `[tokens × dim]`, images `[channels × height·width]`.
//!
//! Every function here is pure integer code with one rounding rule
//! ([`crate::fixed::round_shift`]) and a stated overflow bound.

pub mod attention;
pub mod conv2d;
pub mod gelu;
pub mod groupnorm;
pub mod layernorm;
pub mod linear;
pub mod resample;
pub mod timestep;
