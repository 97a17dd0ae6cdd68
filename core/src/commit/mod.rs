//! What the chain checks: the model's Merkle root ([`merkle`]) and the committed
//! decode positions of the two-phase dispute game ([`position`]).

pub mod merkle;
pub mod position;
