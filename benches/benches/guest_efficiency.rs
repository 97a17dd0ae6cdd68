//! How many VM steps the guest spends per unit of work, the figures that set every
//! honest player's trace-generation time (issue: guest efficiency). Step counts are
//! exact and machine-independent, so this prints figures instead of timing.
//!
//! For a model (stories260K W8, and a random stories15M-shaped W8 file):
//! - **steps per fetched weight byte**: the steps of the guest's `fetch_model` (from
//!   its entry until it returns: every Merkle node and chunk read and placed) over
//!   the file's bytes;
//! - **kernel steps per MAC**: the steps whose program counter lies in the
//!   matrix-vector kernels (`kernels::matvec`, `kernels::scalar::row_total`) over
//!   the multiply-accumulates of the matrix products run;
//! - **position steps per MAC**: the steps that `n` more positions add to a whole
//!   request (norms, attention, sampling, everything) over their matrix MACs.
//!
//! `cargo bench -p oracle-benches --bench guest_efficiency`

use std::ops::Range;
use std::sync::Arc;

use object::{Object, ObjectSymbol};
use oracle_benches::{matrix_macs_per_position, stories15m_config, synthetic_model};
use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_core::{Request, SamplingParams};
use oracle_fpvm::{SharedOracle, Vm};
use oracle_tests::LLAMA_FIXTURES;
use oracle_vm_host::guest_oracle;

/// Address ranges of the guest's functions whose (mangled) names contain `part`.
fn symbol_ranges(elf: &[u8], part: &str) -> Vec<Range<u32>> {
    let file = object::File::parse(elf).expect("the guest ELF parses");
    file.symbols()
        .filter(|s| s.name().is_ok_and(|n| n.contains(part)) && s.size() > 0)
        .map(|s| s.address() as u32..(s.address() + s.size()) as u32)
        .collect()
}

/// The guest functions the figures attribute steps to, found once.
struct GuestSymbols {
    /// `oracle_guest::fetch_model`.
    fetch: Range<u32>,
    /// `kernels::matvec` and `kernels::scalar::row_total`.
    kernels: Vec<Range<u32>>,
}

impl GuestSymbols {
    fn find(elf: &[u8]) -> GuestSymbols {
        let fetch = symbol_ranges(elf, "12oracle_guest11fetch_model");
        let kernels: Vec<Range<u32>> = ["7kernels6matvec", "6scalar9row_total"]
            .iter()
            .flat_map(|p| symbol_ranges(elf, p))
            .collect();
        assert!(
            fetch.len() == 1 && kernels.len() >= 2,
            "guest symbols found"
        );
        GuestSymbols {
            fetch: fetch[0].clone(),
            kernels,
        }
    }
}

/// One whole request in the VM: total steps, the steps of fetching the model, and
/// the steps inside the kernels.
struct Run {
    steps: u64,
    fetch_steps: u64,
    kernel_steps: u64,
}

fn run(elf: &[u8], symbols: &GuestSymbols, model: &[u8], positions: u32) -> Run {
    let request = Request::text(b"", positions, SamplingParams::GREEDY);
    let oracle: SharedOracle = Arc::new(guest_oracle(model, &request));
    let mut vm = Vm::from_elf(elf, oracle).expect("guest loads");
    let mut kernel_steps = 0u64;
    // (entry step, return address) of the call to fetch_model, then its steps.
    let (mut call, mut fetch_steps) = (None, None);
    while !vm.halted() {
        let pc = vm.cpu.pc;
        match call {
            None if pc == symbols.fetch.start => call = Some((vm.cpu.step, vm.cpu.regs[1])),
            Some((at, ret)) if fetch_steps.is_none() && pc == ret => {
                fetch_steps = Some(vm.cpu.step - at)
            }
            _ => {}
        }
        if symbols.kernels.iter().any(|r| r.contains(&pc)) {
            kernel_steps += 1;
        }
        vm.step().expect("steps");
    }
    assert_eq!(vm.cpu.exit_code, 0, "the request runs");
    Run {
        steps: vm.cpu.step,
        fetch_steps: fetch_steps.expect("the model was fetched"),
        kernel_steps,
    }
}

fn report(name: &str, elf: &[u8], symbols: &GuestSymbols, model: &[u8], extra: u32) {
    let config = Model::load(model).expect("model loads").config;
    let macs = matrix_macs_per_position(&config);
    let short = run(elf, symbols, model, 1);
    let long = run(elf, symbols, model, 1 + extra);
    let per_position = (long.steps - short.steps) as f64 / f64::from(extra);
    println!(
        "{name} ({} bytes, {macs} matrix MACs per position): fetch {} steps = {:.2} per \
         weight byte; kernels {:.2} steps per MAC; a position {:.0} steps = {:.2} per MAC \
         (whole request of {} positions: {} steps)",
        model.len(),
        short.fetch_steps,
        short.fetch_steps as f64 / model.len() as f64,
        long.kernel_steps as f64 / (f64::from(1 + extra) * macs as f64),
        per_position,
        per_position / macs as f64,
        1 + extra,
        long.steps,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we ignore.
    let elf = oracle_tests::guest_elf();
    let tiny = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let symbols = GuestSymbols::find(&elf);
    report("stories260K W8", &elf, &symbols, &tiny, 16);
    let mid = synthetic_model(stories15m_config(256), QType::Q8, 32, 7);
    report("stories15M-shaped W8 (random)", &elf, &symbols, &mid, 2);
}
