//! Host memory per guest byte of the VM's merkleized memory (the figure in
//! `hosts/fpvm/README.md`): the resident set grows by at most 2 bytes per guest
//! byte written, Merkle root included. Measured in the test process (`VmRSS`
//! before and after), with every byte of every page written.

use oracle_fpvm::memory::{Memory, PAGE_SIZE};

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("status");
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn host_bytes_per_guest_byte_stay_under_two() {
    let pages = 16_384u32; // 64 MiB of guest memory
    let before = rss_kib();
    let mut m = Memory::new();
    let fill = [0xa5u8; PAGE_SIZE];
    for i in 0..pages {
        m.write_bytes(0x1000_0000 + i * PAGE_SIZE as u32, &fill);
    }
    let written = rss_kib();
    let _ = m.root();
    let rooted = rss_kib();
    let guest_kib = u64::from(pages) * PAGE_SIZE as u64 / 1024;
    let ratio = |kib: u64| (kib - before) as f64 / guest_kib as f64;
    eprintln!(
        "{guest_kib} KiB of guest pages: {:.3} host bytes per guest byte written, {:.3} with the Merkle root",
        ratio(written),
        ratio(rooted)
    );
    assert_eq!(m.resident_bytes(), guest_kib * 1024);
    assert!(ratio(rooted) <= 2.0, "{:.3}", ratio(rooted));
    assert!(ratio(rooted) >= 1.0, "the pages themselves are resident");
}
