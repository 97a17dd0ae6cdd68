//! Writes a model file of a benchmark shape with random weights, for measurements
//! of whole commands (e.g. `oracle run`'s peak memory on a 1.1B model).
//!
//! `cargo run --release -p oracle-benches --example synthetic_model -- 1b q4 /tmp/1b-q4.bin`
//! (shapes: `110m`, `1b`; quantizations: `q8` (group 32), `q4` (group 16)).

use std::process::ExitCode;

use oracle_benches::{llama_1b_config, stories110m_config, synthetic_model};
use oracle_core::quant::QType;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [shape, quant, out] = args.as_slice() else {
        eprintln!("usage: synthetic_model 110m|1b q8|q4 OUTPUT");
        return ExitCode::FAILURE;
    };
    let config = match shape.as_str() {
        "110m" => stories110m_config(1024),
        "1b" => llama_1b_config(2048),
        other => {
            eprintln!("unknown shape {other:?} (110m or 1b)");
            return ExitCode::FAILURE;
        }
    };
    let (qtype, group) = match quant.as_str() {
        "q8" => (QType::Q8, 32),
        "q4" => (QType::Q4, 16),
        other => {
            eprintln!("unknown quantization {other:?} (q8 or q4)");
            return ExitCode::FAILURE;
        }
    };
    let bytes = synthetic_model(config, qtype, group, 7);
    if let Err(e) = std::fs::write(out, &bytes) {
        eprintln!("writing {out}: {e}");
        return ExitCode::FAILURE;
    }
    println!("wrote {out} ({} bytes)", bytes.len());
    ExitCode::SUCCESS
}
