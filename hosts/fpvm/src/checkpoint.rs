//! Checkpoints: a snapshot every K steps, so the state (and the witness) of any step
//! is reached by restoring the nearest snapshot at or below it and replaying fewer
//! than K steps in fast mode.
//!
//! Snapshots share pages: a page is copied into a new `Arc` only if it was written
//! since the previous snapshot; the others are shared with it. Memory cost of the
//! whole trace ≈ Σ over snapshots of (~300 B CPU state + 40 B per resident page for
//! the page map + 4 KiB per page written during the preceding interval), plus one
//! copy of every resident page, plus ~40 B per resident page for the page roots
//! kept with each snapshot. Restoring copies the snapshot's pages (4 KiB each) and
//! hashes only the page tree above them (≤ 20 keccaks per resident page, fewer
//! where pages share ancestors): each page's own root (255 keccaks) is recorded
//! once, when the page is snapshotted.

use crate::hash::Hash;
use crate::memory::{page_root, Memory, Page};
use crate::state::CpuState;
use crate::vm::{Budget, Limit, RunOutcome, SharedOracle, Vm, VmError};
use crate::witness::{prove_step, Witness};
use std::collections::HashMap;
use std::sync::Arc;

/// One snapshot: CPU state and all resident pages.
#[derive(Clone)]
pub struct Snapshot {
    /// CPU state at the snapshot.
    pub cpu: CpuState,
    /// Resident pages, shared with neighbouring snapshots.
    pub pages: Arc<HashMap<u32, Arc<Page>>>,
}

/// A recorded execution: snapshots every `interval` steps from the initial state.
pub struct Checkpoints {
    interval: u64,
    snaps: Vec<Snapshot>,
    /// The page roots of each snapshot's pages (same order as `snaps`).
    roots: Vec<Arc<HashMap<u32, Hash>>>,
    oracle: SharedOracle,
    /// Step at which the program halted, if it did within the recorded range.
    pub halted_at: Option<u64>,
    /// Total bytes of page copies held (each distinct page copy counted once).
    pub page_bytes: usize,
}

impl Checkpoints {
    /// Runs `vm` (fast mode) until it halts or reaches `max_step`, snapshotting every
    /// `interval` steps (interval 0 is taken as 1). `vm` ends at the final state.
    pub fn record(vm: &mut Vm, interval: u64, max_step: u64) -> Result<Self, VmError> {
        let budget = Budget {
            steps: max_step.saturating_sub(vm.cpu.step),
            memory: u64::MAX,
        };
        Self::record_with_budget(vm, interval, &budget).map(|(cp, _)| cp)
    }

    /// [`Checkpoints::record`] within `budget`: `budget.steps` more steps at most,
    /// and `budget.memory` bounding both the guest's memory (as
    /// [`Vm::run_with_budget`]) and the bytes the recording holds
    /// ([`Checkpoints::memory_bytes`], checked at each snapshot). Returns the
    /// recording up to where it stopped, and why: [`RunOutcome::Halted`],
    /// or [`RunOutcome::BudgetExceeded`].
    pub fn record_with_budget(
        vm: &mut Vm,
        interval: u64,
        budget: &Budget,
    ) -> Result<(Self, RunOutcome), VmError> {
        let interval = interval.max(1);
        let max_step = vm.cpu.step.saturating_add(budget.steps);
        let mut cp = Checkpoints {
            interval,
            snaps: Vec::new(),
            roots: Vec::new(),
            oracle: vm.oracle().clone(),
            halted_at: None,
            page_bytes: 0,
        };
        // The current page map, updated with the pages dirtied since the last snapshot.
        let mut current: HashMap<u32, Arc<Page>> = HashMap::new();
        let mut current_roots: HashMap<u32, Hash> = HashMap::new();
        // Snapshots at the start, at every multiple of `interval`, and at the end.
        loop {
            for pi in vm.mem.take_snap_dirty() {
                if let Some(p) = vm.mem.page(pi) {
                    current_roots.insert(pi, page_root(p));
                    current.insert(pi, Arc::new(*p));
                    cp.page_bytes += std::mem::size_of::<Page>();
                }
            }
            cp.snaps.push(Snapshot {
                cpu: vm.cpu.clone(),
                pages: Arc::new(current.clone()),
            });
            cp.roots.push(Arc::new(current_roots.clone()));
            if vm.halted() {
                cp.halted_at = Some(vm.cpu.step);
                return Ok((cp, RunOutcome::Halted));
            }
            if cp.memory_bytes() as u64 > budget.memory {
                return Ok((cp, RunOutcome::BudgetExceeded(Limit::Memory)));
            }
            if vm.cpu.step >= max_step {
                return Ok((cp, RunOutcome::BudgetExceeded(Limit::Steps)));
            }
            let next = (vm.cpu.step / interval + 1) * interval;
            let steps = next.min(max_step) - vm.cpu.step;
            let run = vm.run_with_budget(&Budget {
                steps,
                memory: budget.memory,
            })?;
            if run == RunOutcome::BudgetExceeded(Limit::Memory) {
                return Ok((cp, run));
            }
        }
    }

    /// Snapshots taken.
    pub fn len(&self) -> usize {
        self.snaps.len()
    }

    /// Whether no snapshot was taken.
    pub fn is_empty(&self) -> bool {
        self.snaps.is_empty()
    }

    /// Approximate bytes held: page copies + page maps + CPU states.
    pub fn memory_bytes(&self) -> usize {
        self.page_bytes
            + self
                .snaps
                .iter()
                .map(|s| std::mem::size_of::<Snapshot>() + 80 * s.pages.len())
                .sum::<usize>()
    }

    /// A VM at step `n` (or at the halt, if it halted before `n`), restored from the
    /// nearest snapshot and replayed.
    pub fn vm_at(&self, n: u64) -> Result<Vm, VmError> {
        let idx = self
            .snaps
            .partition_point(|s| s.cpu.step <= n)
            .saturating_sub(1);
        let idx = idx.min(self.snaps.len().saturating_sub(1));
        let (snap, roots) = (&self.snaps[idx], &self.roots[idx]);
        let mem = Memory::from_pages_with_roots(snap.pages.iter().map(|(&pi, p)| {
            let root = roots.get(&pi).copied().unwrap_or_else(|| page_root(p));
            (pi, p.as_ref(), root)
        }));
        let mut vm = Vm::new(snap.cpu.clone(), mem, self.oracle.clone());
        vm.run(n)?;
        Ok(vm)
    }

    /// The witness of step `n` → `n + 1`.
    pub fn witness_at(&self, n: u64) -> Result<Witness, VmError> {
        prove_step(&mut self.vm_at(n)?)
    }

    /// The snapshot interval.
    pub fn interval(&self) -> u64 {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Memory;
    use crate::preimage::InMemoryOracle;

    /// A VM writing one new page every three steps (see `vm`'s tests).
    fn page_toucher() -> Vm {
        let mut mem = Memory::new();
        let code = [
            0x1000_0537u32,
            0x0000_12b7,
            0x00a5_2023,
            0x0055_0533,
            0xff9f_f06f,
        ];
        for (i, w) in code.iter().enumerate() {
            mem.store_u32(0x1_0000 + 4 * i as u32, *w);
        }
        let cpu = CpuState {
            pc: 0x1_0000,
            ..Default::default()
        };
        Vm::new(cpu, mem, Arc::new(InMemoryOracle::new()))
    }

    #[test]
    fn recording_stops_when_its_snapshots_outgrow_the_budget() {
        // Every snapshot copies the pages written in its interval: 16 pages per
        // 48 steps, 64 KiB; a 1 MiB budget is spent after about 16 snapshots.
        let mut vm = page_toucher();
        let budget = Budget {
            steps: 1 << 20,
            memory: 1 << 20,
        };
        let (cp, outcome) = Checkpoints::record_with_budget(&mut vm, 48, &budget).unwrap();
        assert_eq!(outcome, RunOutcome::BudgetExceeded(Limit::Memory));
        assert!(cp.memory_bytes() as u64 > budget.memory);
        assert!(cp.memory_bytes() < 2 << 20, "{}", cp.memory_bytes());
        // What was recorded is still usable: a restored step equals a plain run.
        let n = cp.len() as u64 * 48 / 2;
        let mut plain = page_toucher();
        plain.run(n).unwrap();
        assert_eq!(cp.vm_at(n).unwrap().state_hash(), plain.state_hash());
        // A step budget ends the recording where it says.
        let mut vm = page_toucher();
        let steps = Budget {
            steps: 100,
            memory: u64::MAX,
        };
        let (cp, outcome) = Checkpoints::record_with_budget(&mut vm, 48, &steps).unwrap();
        assert_eq!(outcome, RunOutcome::BudgetExceeded(Limit::Steps));
        assert_eq!(vm.cpu.step, 100);
        assert_eq!(cp.len(), 4); // steps 0, 48, 96, 100
    }
}
