//! `fpvm`: run an rv32im program in the fault-proof VM, get the state at a step, or
//! the ABI-encoded witness of a step; by default the program is the oracle's guest,
//! served a request built from `--model`, `--prompt` and the sampling flags. The
//! logic lives in the libraries (`oracle-fpvm`, `oracle-vm-host`); this is I/O.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use oracle_core::commit::position::Decoder;
use oracle_core::footprint::GUEST_MEMORY_BUDGET;
use oracle_fpvm::checkpoint::Checkpoints;
use oracle_fpvm::preimage::InMemoryOracle;
use oracle_fpvm::state::state_hash;
use oracle_fpvm::step_from_witness_with_oracle;
use oracle_fpvm::witness::{insn_class, prove_step};
use oracle_fpvm::{Budget, DebugSink, Limit, RunOutcome, SharedOracle, Vm};
use oracle_vm_host::{
    guest_oracle, init_oracle, output_oracle, position_oracle, Request, BUNDLED_GUEST, GUEST_BUDGET,
};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "fpvm", version, about = "rv32im fault-proof VM")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the program to its end (or the step limit), fast mode.
    Run {
        #[command(flatten)]
        program: Program,
        /// Stop after this many steps.
        #[arg(long, default_value_t = u64::MAX)]
        steps_max: u64,
        /// Write the guest's stdout (fd 1, e.g. the PNG of an image model) to this
        /// file instead of the terminal, if the program exits with code 0.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print the encoded state (hex) and its hash at step N.
    StateAt {
        #[command(flatten)]
        program: Program,
        /// The step.
        #[arg(long)]
        step: u64,
        /// Snapshot interval used to reach the step (memory/time trade-off).
        #[arg(long, default_value_t = 1 << 20)]
        checkpoint_interval: u64,
    },
    /// Print the witness of step N -> N+1 as hex `abi.encode(bytes state, bytes proof)`.
    Prove {
        #[command(flatten)]
        program: Program,
        /// The step.
        #[arg(long)]
        step: u64,
        /// Prefix the `step(bytes,bytes)` selector (full calldata).
        #[arg(long)]
        calldata: bool,
    },
    /// Print test vectors for the Solidity twin: a JSON array with, for each step
    /// from `--from`, {step, class, state, proof, post} (hex), `post` being the
    /// post-state hash the on-chain `step` must return.
    Witnesses {
        #[command(flatten)]
        program: Program,
        /// First step.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Most steps to print (stops earlier at the halt; the halted state is printed once).
        #[arg(long, default_value_t = 1000)]
        count: u64,
    },
}

/// What to run: the ELF and the request it serves.
#[derive(Args)]
struct Program {
    /// The rv32im ELF to run (default: the bundled guest, built by
    /// hosts/guest/build.sh).
    #[arg(long)]
    elf: Option<PathBuf>,
    /// Raw input bytes of the request (served as a keccak preimage and a local input
    /// hash), for programs other than the guest.
    #[arg(long, conflicts_with = "prompt")]
    input: Option<String>,
    /// Model file (from `oracle-quant convert`) for the guest: its root and every
    /// tree preimage are served to the VM. An image model runs the seeded image
    /// request of `--seed` and `--steps`: unconditional (ddpm-mnist, UNet2D, no
    /// prompt) or text to image (tiny-sd, `--prompt`, `--guidance`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Prompt for the guest.
    #[arg(long)]
    prompt: Option<String>,
    /// Positions to run, prompt included.
    #[arg(long = "steps", default_value_t = 256)]
    gen_steps: u32,
    /// Sampling temperature as a decimal; 0 = greedy.
    #[arg(long, default_value = "0")]
    temperature: String,
    /// Nucleus cut as a decimal in [0, 1].
    #[arg(long, default_value = "0.9")]
    top_p: String,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// For a text-to-image model: classifier-free guidance as a decimal (its own
    /// field of the image parameters; `--temperature` and `--top-p` are then unused).
    #[arg(long, default_value = "7.5")]
    guidance: String,
    /// Two-phase game, phase 2: run only the init transition (request -> P_0).
    #[arg(long, requires = "model", conflicts_with_all = ["position", "output_step"])]
    init: bool,
    /// Two-phase game, phase 2: run only position T (P_T -> P_{T+1}); the host
    /// computes P_T natively and serves it as local data.
    #[arg(
        long,
        value_name = "T",
        requires = "model",
        conflicts_with = "output_step"
    )]
    position: Option<u32>,
    /// Two-phase game, phase 2: run only the output transition of the final state.
    #[arg(long, requires = "model")]
    output_step: bool,
    /// Most bytes of guest memory the VM may hold (written pages, 4 KiB each);
    /// the host holds about 1.05 bytes per guest byte. Default: the guest
    /// program's 2 GiB.
    #[arg(long, default_value_t = GUEST_BUDGET.memory)]
    max_memory: u64,
}

impl Program {
    /// The request → preimages step.
    fn oracle(&self) -> Result<SharedOracle> {
        let mut oracle = InMemoryOracle::new();
        if let Some(model) = &self.model {
            let bytes =
                std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
            // The guest's own check, before anything is decoded or run natively:
            // a model it cannot load or hold is refused here, cleanly.
            oracle_core::footprint::check(&bytes, GUEST_MEMORY_BUDGET)
                .with_context(|| format!("checking {}", model.display()))?;
            let model = oracle_core::AnyModel::load(&bytes)
                .with_context(|| format!("loading {}", model.display()))?;
            let parse = |name: &str, text: &str| {
                oracle_core::fixed::parse_q16(text)
                    .ok_or_else(|| anyhow::anyhow!("--{name} {text:?} is not a decimal"))
            };
            let settings = oracle_core::model::Settings {
                steps: self.gen_steps,
                seed: self.seed,
                temperature_q16: parse("temperature", &self.temperature)?,
                top_p_q16: parse("top-p", &self.top_p)?,
                guidance_q16: oracle_core::diffusion::sd::parse_guidance_q16(&self.guidance)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--guidance {:?} is not a decimal in 0..=256",
                            self.guidance
                        )
                    })?,
                chat: false,
            };
            let prompt = self.prompt.clone().unwrap_or_default().into_bytes();
            let request = oracle_core::Request::new(&prompt, model.params(&settings));
            oracle = if self.init || self.position.is_some() || self.output_step {
                // The transition modes are the two-phase game's, a text model's.
                request.text_params().map_err(|e| {
                    anyhow::anyhow!(
                        "{e}: image models have no transition modes (--init, --position, --output-step)"
                    )
                })?;
                transition(&bytes, &request, self.position, self.output_step)?
            } else {
                guest_oracle(&bytes, &request)
            };
        } else if self.prompt.is_some() {
            bail!("--prompt needs --model");
        } else if let Some(input) = &self.input {
            let req = Request {
                input: input.as_bytes().to_vec(),
                ..Default::default()
            };
            req.install(&mut oracle);
        }
        Ok(Arc::new(oracle))
    }

    fn load(&self) -> Result<Vm> {
        let oracle = self.oracle()?;
        let elf = self
            .elf
            .clone()
            .unwrap_or_else(|| PathBuf::from(BUNDLED_GUEST));
        let bytes = std::fs::read(&elf).with_context(|| {
            format!(
                "reading {} (build the bundled guest with hosts/guest/build.sh, or pass --elf)",
                elf.display()
            )
        })?;
        let vm = Vm::from_elf(&bytes, oracle)?;
        self.check_memory(&vm)?;
        Ok(vm)
    }

    /// The run's budget up to step `max_step`.
    fn budget(&self, vm: &Vm, max_step: u64) -> Budget {
        Budget {
            steps: max_step.saturating_sub(vm.cpu.step),
            memory: self.max_memory,
        }
    }

    /// An error once the VM holds more guest memory than `--max-memory`.
    fn check_memory(&self, vm: &Vm) -> Result<()> {
        if vm.mem.resident_bytes() > self.max_memory {
            bail!(
                "the guest exceeded its memory budget of {} bytes (it holds {} bytes of pages) at step {}",
                self.max_memory,
                vm.mem.resident_bytes(),
                vm.cpu.step
            );
        }
        Ok(())
    }
}

/// The local data of one phase-2 transition: init (neither `position` nor
/// `output`), position `t`, or the output of the final state. Prints the native
/// commitment the VM's output must equal.
fn transition(
    bytes: &[u8],
    request: &oracle_core::Request<'_>,
    position: Option<u32>,
    output: bool,
) -> Result<InMemoryOracle> {
    let model = oracle_core::llama::Model::load(bytes).context("loading the model")?;
    let root = oracle_core::commit::merkle::model_root(bytes);
    let mut decoder = Decoder::start(&model.weights, &model.tokenizer, root, request)
        .context("the request is rejected")?;
    if !output && position.is_none() {
        eprintln!("native P_0: 0x{}", hex::encode(decoder.state().hash()));
        return Ok(init_oracle(bytes, request));
    }
    let target = position.unwrap_or(u32::MAX);
    while decoder.pos() < target && !decoder.done() {
        decoder.step(oracle_core::Exec::default())?;
    }
    if output {
        let tokens = decoder.tokens();
        let digest = oracle_core::commit::position::output_hash(&model.tokenizer, tokens);
        eprintln!(
            "native P_T (T = {}): 0x{}",
            decoder.pos(),
            hex::encode(decoder.state().hash())
        );
        eprintln!("native output: 0x{}", hex::encode(digest));
        return Ok(output_oracle(bytes, request, &decoder));
    }
    if decoder.pos() != target {
        bail!(
            "generation stops after {} positions: position {target} is a fixed point",
            decoder.pos()
        );
    }
    let mut next = decoder.clone();
    next.step(oracle_core::Exec::default())?;
    eprintln!(
        "native P_{target}: 0x{}",
        hex::encode(decoder.state().hash())
    );
    eprintln!(
        "native P_{}: 0x{}",
        target + 1,
        hex::encode(next.state().hash())
    );
    Ok(position_oracle(bytes, request, &decoder))
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Run {
            program,
            steps_max,
            output,
        } => {
            let mut vm = program.load()?;
            vm.debug = match output {
                Some(_) => DebugSink::Buffer(Vec::new()),
                None => DebugSink::Stdout,
            };
            let t = Instant::now();
            let budget = program.budget(&vm, steps_max);
            vm.run_with_budget(&budget)?;
            program.check_memory(&vm)?;
            let secs = t.elapsed().as_secs_f64();
            let mips = vm.cpu.step as f64 / secs.max(1e-9) / 1e6;
            let status = match vm.cpu.status {
                0 => "running (step limit)".to_string(),
                1 => format!("exited code {}", vm.cpu.exit_code),
                _ => format!("panicked code {}", vm.cpu.exit_code),
            };
            let hash = vm.state_hash();
            eprintln!("status: {status}");
            eprintln!("steps: {}", vm.cpu.step);
            eprintln!("time: {secs:.3} s, {mips:.1} MIPS");
            eprintln!("state hash: 0x{}", hex::encode(hash));
            eprintln!("output commitment: 0x{}", hex::encode(vm.cpu.output));
            let halted = vm.cpu.status != 0;
            if halted && (vm.cpu.status != 1 || vm.cpu.exit_code != 0) {
                bail!(
                    "the program {status}; its output: {}",
                    String::from_utf8_lossy(vm.debug_output())
                );
            }
            if let Some(path) = output {
                let bytes = vm.debug_output();
                if !halted {
                    bail!("the program did not finish within the step limit");
                }
                std::fs::write(&path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!(
                    "wrote {} ({} bytes, keccak 0x{})",
                    path.display(),
                    bytes.len(),
                    hex::encode(oracle_core::commit::merkle::keccak(bytes))
                );
            }
        }
        Cmd::StateAt {
            program,
            step,
            checkpoint_interval,
        } => {
            let mut vm = program.load()?;
            let budget = program.budget(&vm, step);
            let (cp, outcome) =
                Checkpoints::record_with_budget(&mut vm, checkpoint_interval, &budget)?;
            if outcome == RunOutcome::BudgetExceeded(Limit::Memory) {
                bail!(
                    "the guest and its checkpoints exceeded the memory budget of {} bytes at step {}",
                    program.max_memory,
                    vm.cpu.step
                );
            }
            let mut at = cp.vm_at(step)?;
            if at.cpu.step != step && !at.halted() {
                bail!("could not reach step {step}");
            }
            let enc = at.encode_state();
            println!("0x{}", hex::encode(enc));
            eprintln!("step: {} (halted: {})", at.cpu.step, at.halted());
            eprintln!("state hash: 0x{}", hex::encode(state_hash(&enc)));
        }
        Cmd::Prove {
            program,
            step,
            calldata,
        } => {
            let mut vm = program.load()?;
            vm.run_with_budget(&program.budget(&vm, step))?;
            program.check_memory(&vm)?;
            let w = prove_step(&mut vm)?;
            let out = if calldata {
                w.calldata()
            } else {
                w.abi_encode()
            };
            println!("0x{}", hex::encode(out));
            let post =
                step_from_witness_with_oracle(&w.state, &w.proof, Some(vm.oracle().as_ref()))?;
            eprintln!("step: {} (halted: {})", vm.cpu.step, vm.halted());
            eprintln!("pre-state hash: 0x{}", hex::encode(vm.state_hash()));
            eprintln!("post-state hash: 0x{}", hex::encode(post));
        }
        Cmd::Witnesses {
            program,
            from,
            count,
        } => {
            let mut vm = program.load()?;
            vm.run_with_budget(&program.budget(&vm, from))?;
            program.check_memory(&vm)?;
            let oracle = vm.oracle().clone();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            writeln!(out, "[")?;
            for i in 0..count {
                let insn = vm.mem.load_u32(vm.cpu.pc);
                let class = insn_class(&vm.cpu, insn);
                let w = prove_step(&mut vm)?;
                let post =
                    step_from_witness_with_oracle(&w.state, &w.proof, Some(oracle.as_ref()))?;
                let step = vm.cpu.step;
                let halted = vm.halted();
                vm.step()?;
                if vm.state_hash() != post {
                    bail!("witness and fast VM disagree at step {step}");
                }
                let last = halted || i + 1 == count;
                writeln!(
                    out,
                    "  {{\"step\": {step}, \"class\": \"{class}\", \"state\": \"0x{}\", \"proof\": \"0x{}\", \"post\": \"0x{}\"}}{}",
                    hex::encode(&w.state),
                    hex::encode(&w.proof),
                    hex::encode(post),
                    if last { "" } else { "," }
                )?;
                if last {
                    break;
                }
            }
            writeln!(out, "]")?;
        }
    }
    Ok(())
}
