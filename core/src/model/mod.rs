//! A request's result as posted ([`outcome`]).

pub mod outcome;
