//! `oracle`: the node binary. Local inference (`run`); the daemons (`operator`,
//! `validator`) and a one-off check (`challenge`); a local chain with everything
//! (`devnet`); asking (`request`) and reading a database (`status`); and the roles
//! on any chain: `deploy`, `register`, `models`, `bond`, `unbond`, `withdraw`,
//! `balance` (`hosts/node/README.md` has the module map).

mod api;
mod chain;
mod cli;
mod console;
mod db;
mod faults;
mod http;
mod roles;
mod serve;
mod telemetry;

use anyhow::Result;
use clap::{Parser, Subcommand};
use cli::{daemon, devnet, network, request, run, status};

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
    /// statistics on stderr). A request the model rejects (e.g. a prompt longer
    /// than its context) exits with code 3: on chain its result is the error
    /// outcome (the empty output).
    Run(run::RunArgs),
    /// Start a local chain (anvil) with the contracts deployed, the model registered
    /// and an operator and a validator running; Ctrl-C stops everything.
    Devnet(devnet::DevnetArgs),
    /// Serve requests: follow AICallbackRequest, run the model, submit, finalize.
    Operator(daemon::OperatorArgs),
    /// Re-execute submitted results within their window and challenge wrong ones.
    Validator(daemon::ValidatorArgs),
    /// Check one request's result and, if it is wrong, challenge it and play the
    /// dispute game to the end (the challenge bond is paid from --key's account).
    Challenge(daemon::ChallengeArgs),
    /// Requests seen / served / pending / finalized / failed, from a node's database.
    Status(status::StatusArgs),
    /// Ask the Prompt contract for a completion and print it when the callback
    /// arrives (against a running `oracle devnet` no other flag is needed).
    Request(request::RequestArgs),
    /// Deploy the whole contract stack to an EVM chain from a parameters file and
    /// write the deployment file the other commands read (resumes when interrupted).
    Deploy(network::deploy::DeployArgs),
    /// Model publishers: check a model file, register it and configure its dispute
    /// game; prints the model id.
    Register(network::register::RegisterArgs),
    /// List the registered models (root, program hash, fee, window, game).
    Models(network::register::ModelsArgs),
    /// Operators: add to the bond.
    Bond(network::operator_cmds::BondArgs),
    /// Operators: stop submitting and start the unbond delay.
    Unbond(network::operator_cmds::AccountArgs),
    /// Withdraw the free bond (after the unbond delay) and every credit (fees,
    /// rewards, refunds).
    Withdraw(network::operator_cmds::AccountArgs),
    /// An account's bond, credits and wallet.
    Balance(network::operator_cmds::AccountArgs),
}

fn main() {
    let cli = Cli::parse();
    telemetry::init_logs();
    let result: Result<()> = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Devnet(args) => runtime().and_then(|rt| rt.block_on(devnet::run(&args))),
        Command::Operator(args) => runtime().and_then(|rt| rt.block_on(daemon::operator(&args))),
        Command::Validator(args) => runtime().and_then(|rt| rt.block_on(daemon::validator(&args))),
        Command::Challenge(args) => runtime().and_then(|rt| rt.block_on(daemon::challenge(&args))),
        Command::Status(args) => status::run(&args),
        Command::Request(args) => runtime().and_then(|rt| rt.block_on(request::run(&args))),
        Command::Deploy(args) => runtime().and_then(|rt| rt.block_on(network::deploy::run(&args))),
        Command::Register(args) => {
            runtime().and_then(|rt| rt.block_on(network::register::run(&args)))
        }
        Command::Models(args) => {
            runtime().and_then(|rt| rt.block_on(network::register::models(&args)))
        }
        Command::Bond(args) => {
            runtime().and_then(|rt| rt.block_on(network::operator_cmds::bond(&args)))
        }
        Command::Unbond(args) => {
            runtime().and_then(|rt| rt.block_on(network::operator_cmds::unbond(&args)))
        }
        Command::Withdraw(args) => {
            runtime().and_then(|rt| rt.block_on(network::operator_cmds::withdraw(&args)))
        }
        Command::Balance(args) => {
            runtime().and_then(|rt| rt.block_on(network::operator_cmds::balance(&args)))
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        let code = if e.downcast_ref::<run::Rejected>().is_some() {
            run::Rejected::EXIT_CODE
        } else {
            1
        };
        std::process::exit(code);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
