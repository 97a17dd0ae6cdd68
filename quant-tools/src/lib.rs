//! Offline model tooling (floats allowed here): checkpoint importers, a float32
//! reference forward pass, the quantizer that writes the integer model file, and
//! quality evaluation.

pub mod checkpoint;
pub mod convert;
pub mod diffusion;
pub mod eval;
pub mod export;
pub mod float_model;
pub mod image;
pub mod image_clip;
pub mod quantize;
pub mod reference;
