//! What a node computes for one request: the output bytes it posts (exactly what
//! `oracle run` prints for it, or the error outcome for a request the model
//! rejects) and what binds them on chain, by the model's kind ([`ModelKind`]):
//! - **one-phase** (text or image): the guest program's run of the same request in
//!   the fault-proof VM, whose final state (the *proof* posted with the result) must
//!   have exited 0 with `keccak256(output)` in its output field, within the dispute
//!   game's trace bound; the claim is that state's hash;
//! - **two-phase** (text): the claim is `keccak256(output)`, the end of the chain of
//!   decode-position commitments, and no proof is posted. Before submitting, the
//!   node checks that the transitions it may have to defend in the VM fit the game's
//!   transition bound (the init transition, which tokenizes the prompt; the last
//!   position, the longest; the output transition), so it never posts a result it
//!   could not defend.

pub mod image;
pub mod models;
pub mod outputs;
pub mod positions;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use oracle_core::commit::merkle::keccak;
use oracle_core::model::outcome::{self, Outcome};
use oracle_core::Exec;
use oracle_fpvm::{InMemoryOracle, Limit, RunOutcome, Vm};
use oracle_vm_host::guest_oracle;

use crate::faults::{wrong_output, Faults};
use crate::serve::models::{ModelKind, ServedModel};
use crate::serve::outputs::OutputStore;

/// The result of serving one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The posted output: the prompt and its continuation then a newline, an image's
    /// PNG (or its hash), or empty for the error outcome.
    pub output: Vec<u8>,
    /// The claim the contract derives from `output` and `proof`.
    pub claim: [u8; 32],
    /// What is posted with the output: the 245-byte final VM state (one-phase), or
    /// nothing (two-phase).
    pub proof: Vec<u8>,
    /// VM steps of the claim's run (0 for a two-phase model).
    pub steps: u64,
    /// Tokens generated (prompt excluded).
    pub tokens: u64,
    /// Why the request has the error outcome, if it has.
    pub rejected: Option<String>,
}

/// Positions between two progress lines of the native run (debug level).
const PROGRESS_POSITIONS: u32 = 16;

/// The most guest memory (resident pages) one VM run may use on this host: the
/// guest's heap ends at `0x7000_0000`, so an honest run stays below it, and a
/// crafted one cannot make the node allocate more (the page store costs about
/// 1.05 host bytes per guest byte, `hosts/fpvm/README.md`).
pub const VM_MEMORY_BUDGET: u64 = 2 << 30;

/// VM steps between two progress lines (and budget checks) of a VM run (about 1.5 s).
const PROGRESS_STEPS: u64 = 1 << 28;

/// Serve `input` with `model` (`steps` positions for a text model): natively, then
/// whatever binds the output on chain (see the module docs). The PNG of an image
/// output posted as its hash is in `store` when this returns. `faults` (tests only)
/// make the result wrong.
pub fn serve(
    model: &ServedModel,
    guest_elf: &[u8],
    input: &[u8],
    steps: u32,
    store: &OutputStore,
    faults: Faults,
    deadline: Instant,
) -> Result<Served> {
    let request = model.request(input, steps);
    let budget = Budget {
        steps: model.kind.trace_bound(),
        deadline,
    };
    if let ModelKind::TwoPhaseText { .. } = model.kind {
        return serve_two_phase(model, guest_elf, input, steps, budget, faults);
    }
    let mut positions = 0u32;
    let params = request.encode_params();
    let outcome = outcome::run(
        &model.bytes,
        Exec::default(),
        &params,
        request.prompt,
        |_| {
            positions += 1;
            if positions.is_multiple_of(PROGRESS_POSITIONS) {
                tracing::debug!("inference: {positions}/{steps} positions");
            }
        },
    );
    let (tokens, rejected) = match &outcome {
        Outcome::Text { generated, .. } => (*generated, None),
        Outcome::Image { png } => {
            let posted = outcome.posted();
            if posted != *png {
                store
                    .put(png)
                    .context("storing the PNG before submitting its hash")?;
            }
            (0, None)
        }
        Outcome::Rejected(why) => (0, Some(why.to_string())),
    };
    let honest = outcome.posted();
    let run = run_to_bound(guest_elf, guest_oracle(&model.bytes, &request), budget)?;
    if run.output != keccak(&honest) {
        bail!("the VM's output commitment differs from the native output (a bug in one of them; not submitting)");
    }
    let (output, proof) = if faults.serves_wrong() {
        let lie = wrong_output(&honest);
        let proof = if faults.honest_claim {
            run.final_state.clone()
        } else {
            claiming(&run.final_state, &keccak(&lie))?
        };
        (lie, proof)
    } else {
        (honest, run.final_state.clone())
    };
    let claim = state_hash(&proof)?;
    Ok(Served {
        output,
        claim,
        proof,
        steps: run.steps,
        tokens,
        rejected,
    })
}

/// A two-phase model: the chain of commitments gives the output and its claim. The
/// transitions that bound every other (init, which tokenizes the prompt; the last
/// position; the output) are run in the VM first and must fit `transition_bound`:
/// this node never posts a result it could not defend.
fn serve_two_phase(
    model: &ServedModel,
    guest_elf: &[u8],
    prompt: &[u8],
    steps: u32,
    budget: Budget,
    faults: Faults,
) -> Result<Served> {
    let bytes = &model.bytes;
    let params = model.text_params(steps);
    if faults.serves_wrong() {
        // A liar (test faults) posts its lie without the honest chain or the VM
        // checks, so it is first to submit when it races an honest operator.
        let chain = crate::serve::positions::commitments(bytes, prompt, params, true)?;
        return Ok(Served {
            claim: keccak(&chain.output),
            output: chain.output,
            proof: Vec::new(),
            steps: 0,
            tokens: chain.generated,
            rejected: chain.rejected,
        });
    }
    let honest = crate::serve::positions::commitments(bytes, prompt, params, false)?;
    let indices = crate::serve::positions::longest_transitions(&honest, steps);
    for (what, index) in ["init", "the last position", "output"]
        .into_iter()
        .zip(indices)
    {
        let oracle =
            crate::serve::positions::transition_oracle(bytes, prompt, params, false, index)?;
        let run = run_to_bound(guest_elf, oracle, budget)
            .with_context(|| format!("the {what} transition (index {index})"))?;
        let want = usize::try_from(index + 1)
            .ok()
            .and_then(|i| honest.hashes.get(i))
            .context("a transition past the chain")?;
        if run.output != want.0 {
            bail!("the VM's run of the {what} transition commits another state than the native chain (a bug in one of them; not submitting)");
        }
        tracing::debug!(
            "two-phase check: the {what} transition in {} VM steps (bound {})",
            run.steps,
            budget.steps
        );
    }
    Ok(Served {
        claim: keccak(&honest.output),
        output: honest.output,
        proof: Vec::new(),
        steps: 0,
        tokens: honest.generated,
        rejected: honest.rejected,
    })
}

/// A finished run of the guest in the VM.
struct VmRun {
    /// Its final state encoding.
    final_state: Vec<u8>,
    /// Its output commitment.
    output: [u8; 32],
    /// Its steps.
    steps: u64,
}

/// What one request's VM runs may take.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// The dispute game's trace bound (`2^maxDepth`, or `2^transitionDepth` for a
    /// two-phase transition): a claim whose trace is longer could not be defended,
    /// so its bond would be lost to any challenger.
    steps: u64,
    /// The wall-clock time the request's computation must end by (the node's
    /// per-request budget, so one request cannot hold a worker forever).
    deadline: Instant,
}

/// Run the guest with `oracle` to its halt within `budget`; it must exit 0.
fn run_to_bound(guest_elf: &[u8], oracle: InMemoryOracle, budget: Budget) -> Result<VmRun> {
    let mut vm = Vm::from_elf(guest_elf, Arc::new(oracle)).context("loading the guest program")?;
    while !vm.halted() {
        if vm.cpu.step >= budget.steps {
            bail!(
                "the guest did not halt within the dispute game's trace bound of {} VM steps: \
                 a claim past it could not be defended on chain (serve fewer positions or steps, \
                 or deploy a factory with a larger bound)",
                budget.steps
            );
        }
        if Instant::now() > budget.deadline {
            bail!(
                "over the per-request time budget after {} VM steps",
                vm.cpu.step
            );
        }
        let chunk = PROGRESS_STEPS.min(budget.steps - vm.cpu.step);
        let run = vm
            .run_with_budget(&oracle_fpvm::Budget {
                steps: chunk,
                memory: VM_MEMORY_BUDGET,
            })
            .context("running the guest in the VM")?;
        if run == RunOutcome::BudgetExceeded(Limit::Memory) {
            bail!(
                "the guest used more than {VM_MEMORY_BUDGET} bytes of VM memory at step {}",
                vm.cpu.step
            );
        }
        if !vm.halted() {
            tracing::info!("VM run: {} M steps so far", vm.cpu.step / 1_000_000);
        }
    }
    if vm.cpu.status != 1 || vm.cpu.exit_code != 0 {
        bail!(
            "the guest halted with status {} code {} (a bug: every request has a result)",
            vm.cpu.status,
            vm.cpu.exit_code
        );
    }
    Ok(VmRun {
        final_state: vm.encode_state().to_vec(),
        output: vm.cpu.output,
        steps: vm.cpu.step,
    })
}

/// The state hash of a 245-byte state encoding.
pub fn state_hash(state: &[u8]) -> Result<[u8; 32]> {
    let encoded: &[u8; oracle_fpvm::layout::state::SIZE] = state
        .try_into()
        .context("a final state of the wrong size")?;
    Ok(oracle_fpvm::state::state_hash(encoded))
}

/// Test only: the final state `state` with its output field set to `output` (a
/// liar's fabricated end of an otherwise true trace).
pub fn claiming(state: &[u8], output: &[u8; 32]) -> Result<Vec<u8>> {
    use oracle_fpvm::layout::state::OUTPUT;
    let mut fabricated = state.to_vec();
    fabricated
        .get_mut(OUTPUT..OUTPUT + 32)
        .context("a final state of the wrong size")?
        .copy_from_slice(output);
    Ok(fabricated)
}

/// The program hash a model is registered with: the state hash of the guest's
/// absolute prestate (its image loaded, nothing else).
pub fn program_hash(guest_elf: &[u8]) -> Result<[u8; 32]> {
    let oracle = Arc::new(InMemoryOracle::new());
    let mut vm = Vm::from_elf(guest_elf, oracle).context("loading the guest program")?;
    Ok(vm.state_hash())
}
