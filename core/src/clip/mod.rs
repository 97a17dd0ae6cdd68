//! CLIP's text side as Stable Diffusion uses it, in integers: the byte-level BPE
//! [`tokenizer`] and the causal [`text_encoder`] whose `last_hidden_state`
//! conditions the UNet's cross-attention.

pub mod text_encoder;
pub mod tokenizer;

pub use text_encoder::{ClipLayer, ClipTextConfig, ClipTextModel};
pub use tokenizer::ClipTokenizer;
