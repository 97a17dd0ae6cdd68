//! Running a tool on a hostile file and judging the outcome: exit status, output,
//! peak resident memory (`wait4`'s `ru_maxrss`) and time.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Address space a tool may map (`RLIMIT_AS`): a regression that asks for
/// gigabytes fails its allocation (an abort the test reports) instead of taking
/// the machine's memory.
pub const ADDRESS_SPACE_LIMIT: u64 = 6 << 30;

/// Peak RSS a tool may reach on a hostile file, in MiB, unless a test says less.
pub const RSS_LIMIT_MIB: u64 = 512;

/// How long a tool may take on a hostile file.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// What one run of a tool did.
#[derive(Debug, Clone)]
pub struct ToolRun {
    /// The command line (for messages).
    pub command: String,
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Terminating signal, if one killed it.
    pub signal: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Peak resident set size, KiB.
    pub peak_rss_kib: u64,
    /// Whether it was killed at the timeout.
    pub timed_out: bool,
    /// Wall time, seconds.
    pub secs: f64,
}

fn scratch_file(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("oracle-hostile-{}-{n}-{tag}", std::process::id()))
}

/// Run `cmd` (its output captured in files, its address space limited to
/// [`ADDRESS_SPACE_LIMIT`]) until it exits or `timeout` passes.
pub fn run(cmd: &mut Command, timeout: Duration) -> ToolRun {
    let (out_path, err_path) = (scratch_file("stdout"), scratch_file("stderr"));
    let command = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .env("RUST_BACKTRACE", "1");
    // Safety: between fork and exec the closure only calls setrlimit, which is
    // async-signal-safe, on a value on its own stack.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: ADDRESS_SPACE_LIMIT as libc::rlim_t,
                rlim_max: ADDRESS_SPACE_LIMIT as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    // Reaped below by `wait4`, which also reports the peak RSS that
    // `Child::wait` would not.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {command}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // Safety: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        // Safety: `pid` is our child, not yet reaped (std's Child never waits
        // here); status and usage point to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4 failed: {}", std::io::Error::last_os_error());
        if started.elapsed() > timeout {
            timed_out = true;
            // Safety: killing our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // Safety: as above, blocking until it is reaped.
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = started.elapsed().as_secs_f64();
    let read = |p: &PathBuf| {
        let s = String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        let _ = std::fs::remove_file(p);
        s
    };
    ToolRun {
        command,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stdout: read(&out_path),
        stderr: read(&err_path),
        peak_rss_kib: usage.ru_maxrss.max(0) as u64,
        timed_out,
        secs,
    }
}

impl ToolRun {
    /// Peak RSS in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }

    /// What went wrong unless the run was a clean error: a non-zero exit (not a
    /// signal, not the timeout) with a message containing `error`, no panic or
    /// backtrace, and a peak RSS under `rss_limit_mib`.
    pub fn clean_error_problem(&self, rss_limit_mib: u64) -> Option<String> {
        let problem = if self.timed_out {
            format!("still running after {:.0} s (a stall)", self.secs)
        } else if let Some(sig) = self.signal {
            format!("killed by signal {sig} (an abort, stack overflow or OOM)")
        } else if self.code == Some(0) {
            "exited 0: the hostile file was accepted".to_string()
        } else if self.stderr.contains("panicked") || self.stderr.contains("stack backtrace") {
            "panicked".to_string()
        } else if !self.stderr.to_lowercase().contains("error") {
            "no error message on stderr".to_string()
        } else if self.peak_rss_kib > rss_limit_mib * 1024 {
            format!(
                "peak RSS {:.0} MiB over the {rss_limit_mib} MiB bound",
                self.peak_rss_mib()
            )
        } else {
            return None;
        };
        Some(format!(
            "{}: {problem}\n  exit {:?} signal {:?}, peak RSS {:.1} MiB, {:.2} s\n  stderr: {}",
            self.command,
            self.code,
            self.signal,
            self.peak_rss_mib(),
            self.secs,
            self.stderr.chars().take(2000).collect::<String>()
        ))
    }
}
