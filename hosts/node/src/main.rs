//! `oracle`: the node binary.

fn main() {}
