//! What an operator computes for one request: the output bytes (exactly what
//! `oracle run` prints) and the claim, the final state hash of the guest program run
//! on the same request in the fault-proof VM.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use oracle_core::merkle::keccak;
use oracle_core::{Exec, Model, Request, SamplingParams};
use oracle_fpvm::preimage::guest_oracle;
use oracle_fpvm::Vm;

/// The result of serving one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Output bytes: the prompt and its continuation, then a newline.
    pub output: Vec<u8>,
    /// The guest's final VM state hash for the same request.
    pub claim: [u8; 32],
    /// VM steps of the guest run.
    pub steps: u64,
    /// Tokens generated (prompt excluded).
    pub tokens: u64,
}

/// Positions between two progress lines of the native run (debug level).
const PROGRESS_POSITIONS: u32 = 16;

/// VM steps between two progress lines of the claim's run (about 1.5 s).
const PROGRESS_STEPS: u64 = 1 << 28;

/// Run `prompt` natively and in the VM; fail if the VM disagrees with the native
/// output (that would be a bug in one of them, and submitting would lose the bond),
/// or if the guest runs past `trace_bound` steps (see [`vm_claim`]).
pub fn serve(
    model_bytes: &[u8],
    guest_elf: &[u8],
    prompt: &[u8],
    steps: u32,
    trace_bound: Option<u64>,
) -> Result<Served> {
    let model = Model::load(model_bytes).context("loading the model")?;
    let request = Request {
        prompt,
        steps,
        sampling: SamplingParams::GREEDY,
    };
    let mut positions = 0u32;
    let generation = model
        .generate(Exec::default(), &request, |_| {
            positions += 1;
            if positions.is_multiple_of(PROGRESS_POSITIONS) {
                tracing::debug!("inference: {positions}/{steps} positions");
            }
        })
        .context("running the request")?;
    let generated = generation
        .tokens
        .len()
        .saturating_sub(generation.prompt_tokens);
    let mut output = generation.text;
    output.push(b'\n');
    let (claim, steps) = vm_claim(model_bytes, guest_elf, &request, &output, trace_bound)?;
    Ok(Served {
        output,
        claim,
        steps,
        tokens: u64::try_from(generated).unwrap_or(u64::MAX),
    })
}

/// Run the guest on `request` in the VM; the claim (final state hash) and the VM
/// steps. Fails unless the guest exits 0 with keccak256(`output`) committed, and
/// stops with an error once the run passes `trace_bound` steps (the dispute game's
/// `2^maxDepth`): a claim whose trace is longer cannot be revealed in a game, so
/// its bond would be lost to any challenger.
pub fn vm_claim(
    model_bytes: &[u8],
    guest_elf: &[u8],
    request: &Request<'_>,
    output: &[u8],
    trace_bound: Option<u64>,
) -> Result<([u8; 32], u64)> {
    let oracle = Arc::new(guest_oracle(model_bytes, request));
    let mut vm = Vm::from_elf(guest_elf, oracle).context("loading the guest program")?;
    let bound = trace_bound.unwrap_or(u64::MAX);
    while !vm.halted() {
        if vm.cpu.step >= bound {
            bail!(
                "the guest did not halt within the dispute game's trace bound of {bound} VM steps: \
                 a claim past it could not be defended on chain (serve fewer positions or steps, \
                 or deploy a factory with a larger maxDepth)"
            );
        }
        let next = vm.cpu.step.saturating_add(PROGRESS_STEPS).min(bound);
        vm.run(next).context("running the guest in the VM")?;
        if !vm.halted() {
            tracing::info!("VM claim: {} M steps so far", vm.cpu.step / 1_000_000);
        }
    }
    if vm.cpu.status != 1 || vm.cpu.exit_code != 0 {
        bail!(
            "the guest halted with status {} code {}",
            vm.cpu.status,
            vm.cpu.exit_code
        );
    }
    if vm.cpu.output != keccak(output) {
        bail!("the VM's output commitment differs from the native output");
    }
    Ok((vm.state_hash(), vm.cpu.step))
}

/// Serve `prompt` for a model whose disputes are two-phase games: the output and,
/// as the claim, its commitment `s_N = keccak256(output)` (the game's claims are
/// the output commitments, so no VM run is needed before submitting). `lying`
/// (tests only) serves the one-token lie of [`crate::positions`].
pub fn serve_two_phase(
    model_bytes: &[u8],
    prompt: &[u8],
    steps: u32,
    lying: bool,
) -> Result<Served> {
    let chain = crate::positions::commitments(model_bytes, prompt, steps, lying)?;
    let claim = keccak(&chain.output);
    Ok(Served {
        output: chain.output,
        claim,
        steps: 0,
        tokens: chain.generated,
    })
}

/// The program hash a model is registered with: the state hash of the guest's
/// absolute prestate (its image loaded, nothing else).
pub fn program_hash(guest_elf: &[u8]) -> Result<[u8; 32]> {
    let oracle = Arc::new(oracle_fpvm::preimage::InMemoryOracle::new());
    let mut vm = Vm::from_elf(guest_elf, oracle).context("loading the guest program")?;
    Ok(vm.state_hash())
}
