//! What the tests of the guest in the VM share: the bundled guest ELF, and one run of
//! it to its exit.
#![allow(dead_code)] // each test crate uses a part

use std::sync::{Arc, OnceLock};

use oracle_core::Request;
use oracle_fpvm::{DebugSink, InMemoryOracle, Vm};
use oracle_vm_host::guest_oracle;

/// The guest ELF (`hosts/guest/build.sh`), read once.
pub fn guest_elf() -> &'static [u8] {
    static ELF: OnceLock<Vec<u8>> = OnceLock::new();
    ELF.get_or_init(oracle_tests::guest_elf)
}

/// How a run of the guest ended.
pub struct GuestRun {
    /// The VM status (1 exited, 2 panicked).
    pub status: u8,
    /// The exit code.
    pub exit_code: u32,
    /// What the guest wrote to fd 1.
    pub stdout: Vec<u8>,
    /// The output commitment of the final state.
    pub output: [u8; 32],
    /// Steps run.
    pub steps: u64,
    /// Resident VM memory pages at the end (4 KiB each).
    pub pages: usize,
}

/// Run the guest on `oracle` to its end.
pub fn run_guest(oracle: InMemoryOracle) -> GuestRun {
    let mut vm = Vm::from_elf(guest_elf(), Arc::new(oracle)).expect("guest ELF loads");
    vm.debug = DebugSink::Buffer(Vec::new());
    vm.run(u64::MAX).expect("no host error");
    GuestRun {
        status: vm.cpu.status,
        exit_code: vm.cpu.exit_code,
        stdout: vm.debug_output().to_vec(),
        output: vm.cpu.output,
        steps: vm.cpu.step,
        pages: vm.mem.page_count(),
    }
}

/// Run the guest on one whole request to `model`.
pub fn run_in_vm(model: &[u8], request: &Request<'_>) -> GuestRun {
    run_guest(guest_oracle(model, request))
}
