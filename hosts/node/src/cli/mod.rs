//! The commands that are not a role: local inference (`run`, `run_image`), asking
//! and reading (`request`, `status`), the local chain (`devnet`), starting the roles
//! (`daemon`) and the roles' setup on any chain (`network`: deploy, register, bond).

pub mod daemon;
pub mod devnet;
pub mod network;
pub mod request;
pub mod run;
pub mod run_image;
pub mod status;
