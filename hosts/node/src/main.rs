//! `oracle`: the node binary. Today: `oracle run` for local inference; the
//! operator, validator and devnet roles come next.

mod run;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "oracle",
    version,
    about = "Onchain AI oracle node: bit-exact integer inference for optimistic ML fraud proofs",
    long_about = "Onchain AI oracle node. `oracle run` generates text with an integer model file \
                  (made by `oracle-quant convert`); its output bytes are the same on every CPU \
                  and inside the RISC-V fault-proof VM."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text locally from a model file (prompt + continuation on stdout,
    /// statistics on stderr).
    Run(run::RunArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Run(args) => run::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
