//! The node's roles: what the operator and the validator share ([`node`]), the
//! operator ([`operator`]), the validator ([`validator`]) and the dispute games both
//! play ([`dispute`]).

pub mod dispute;
pub mod node;
pub mod operator;
pub mod validator;
