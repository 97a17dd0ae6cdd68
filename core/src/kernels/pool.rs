//! A persistent worker pool for splitting a matrix product over threads (host
//! builds only). Spawning scoped threads for every product costs tens of
//! microseconds, more than a small product itself; these workers wait on a condition
//! variable instead. Waking a parked thread also costs tens of microseconds, as much
//! as one of a decode step's products, so a worker that just finished a part spins
//! for a while (about a millisecond) watching for the next job before it parks: the
//! products of one token follow each other closely enough to keep it awake. Parts
//! write disjoint rows, so a split never changes a result.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long a worker watches for the next job before parking.
const SPIN: Duration = Duration::from_millis(1);

/// A type-erased borrowed job. It is only dereferenced while [`run`] blocks its
/// caller, so the borrow it came from is alive.
#[derive(Clone, Copy)]
struct JobRef(*const (dyn Fn(usize) + Sync));

// Safety: the pointee is `Sync`, and `run` keeps it alive while workers use it.
unsafe impl Send for JobRef {}

struct State {
    job: Option<JobRef>,
    parts: usize,
    next: usize,
    remaining: usize,
    workers: usize,
    panicked: bool,
}

struct Pool {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
    callers: Mutex<()>,
    /// Bumped each time a job is posted (read without the lock by spinning workers).
    jobs: AtomicU64,
    /// The number of the last job whose parts have all finished (read without the
    /// lock by the spinning caller).
    finished: AtomicU64,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(State {
            job: None,
            parts: 0,
            next: 0,
            remaining: 0,
            workers: 0,
            panicked: false,
        }),
        work: Condvar::new(),
        done: Condvar::new(),
        callers: Mutex::new(()),
        jobs: AtomicU64::new(0),
        finished: AtomicU64::new(0),
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Take the next unclaimed part of the current job, if any.
fn claim(st: &mut State) -> Option<(JobRef, usize)> {
    let job = st.job?;
    (st.next < st.parts).then(|| {
        st.next += 1;
        (job, st.next - 1)
    })
}

/// Run one part and report it finished.
fn execute(p: &Pool, job: JobRef, part: usize) {
    // Safety: `run` does not return before `remaining` reaches zero, so the job
    // the pointer borrows from is alive here.
    let ok = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)(part) })).is_ok();
    let mut st = lock(&p.state);
    st.panicked |= !ok;
    st.remaining -= 1;
    if st.remaining == 0 {
        p.finished
            .store(p.jobs.load(Ordering::Acquire), Ordering::Release);
        p.done.notify_all();
    }
}

fn worker(p: &'static Pool) {
    loop {
        let (job, part) = {
            let mut st = lock(&p.state);
            loop {
                if let Some(claimed) = claim(&mut st) {
                    break claimed;
                }
                let seen = p.jobs.load(Ordering::Acquire);
                drop(st);
                spin_until_posted(p, seen);
                st = lock(&p.state);
                if let Some(claimed) = claim(&mut st) {
                    break claimed;
                }
                if p.jobs.load(Ordering::Acquire) == seen {
                    st = p.work.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
            }
        };
        execute(p, job, part);
    }
}

/// Spin until a job after `seen` is posted or [`SPIN`] has passed.
fn spin_until_posted(p: &Pool, seen: u64) {
    let started = Instant::now();
    while p.jobs.load(Ordering::Acquire) == seen {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
        if started.elapsed() > SPIN {
            return;
        }
    }
}

/// Spin until job `number` has finished or [`SPIN`] has passed.
fn spin_until_finished(p: &Pool, number: u64) {
    let started = Instant::now();
    while p.finished.load(Ordering::Acquire) != number {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
        if started.elapsed() > SPIN {
            return;
        }
    }
}

/// Call `f(0)`, ..., `f(parts - 1)` on the calling thread and up to `threads - 1`
/// pool workers, and return when all have finished. A panic in a part is re-raised
/// here.
pub fn run(threads: usize, parts: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts == 0 {
        return;
    }
    let p = pool();
    let _one_job_at_a_time = lock(&p.callers);
    let job_number = {
        let mut st = lock(&p.state);
        while st.workers + 1 < threads {
            st.workers += 1;
            std::thread::Builder::new()
                .name("oracle-kernel".into())
                .spawn(move || worker(p))
                .expect("spawning a kernel worker thread");
        }
        // Safety (of later dereferences): see `execute`; the lifetime is erased
        // only for the duration of this call.
        let erased: *const (dyn Fn(usize) + Sync + '_) = f;
        st.job = Some(JobRef(unsafe {
            core::mem::transmute::<
                *const (dyn Fn(usize) + Sync + '_),
                *const (dyn Fn(usize) + Sync + 'static),
            >(erased)
        }));
        st.parts = parts;
        st.next = 0;
        st.remaining = parts;
        st.panicked = false;
        let job_number = p.jobs.fetch_add(1, Ordering::AcqRel) + 1;
        p.work.notify_all();
        job_number
    };
    loop {
        let claimed = claim(&mut lock(&p.state));
        match claimed {
            Some((job, part)) => execute(p, job, part),
            None => break,
        }
    }
    // The workers' last parts usually end within microseconds: watch for them
    // before sleeping (a wake-up from the condition variable costs tens of
    // microseconds, as much as a small product).
    spin_until_finished(p, job_number);
    let mut st = lock(&p.state);
    while st.remaining > 0 {
        st = p.done.wait(st).unwrap_or_else(PoisonError::into_inner);
    }
    st.job = None;
    if st.panicked {
        drop(st);
        panic!("a kernel part panicked");
    }
}

/// Split `out` into parts of `part_len` elements (the last may be shorter) and call
/// `f(i, part_i)` for each through [`run`]: the parts are disjoint, so each is handed
/// to exactly one thread.
pub fn run_parts<T: Send>(
    threads: usize,
    out: &mut [T],
    part_len: usize,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    let parts: Vec<Mutex<&mut [T]>> = out.chunks_mut(part_len.max(1)).map(Mutex::new).collect();
    run(threads, parts.len(), &|i| f(i, &mut lock(&parts[i])));
}
