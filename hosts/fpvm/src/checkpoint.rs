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
use crate::vm::{SharedOracle, Vm, VmError};
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
        let interval = interval.max(1);
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
                break;
            }
            if vm.cpu.step >= max_step {
                break;
            }
            let next = (vm.cpu.step / interval + 1) * interval;
            vm.run(next.min(max_step))?;
        }
        Ok(cp)
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
