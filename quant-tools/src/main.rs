//! `oracle-quant`: the offline model tool.

fn main() {}
