//! Seeded property tests over bytes for the ELF loader (`Elf::parse`,
//! `Vm::from_elf`): arbitrary bytes, arbitrary header fields and mutations of a
//! valid program never panic, and a loaded image never holds more guest memory
//! than the pages its file bytes can fill.

use std::sync::Arc;

use oracle_fpvm::elf::Elf;
use oracle_fpvm::memory::PAGE_SIZE;
use oracle_fpvm::{InMemoryOracle, Vm};
use oracle_tests::hostile::{committed, Class};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// The valid program of the corpus (a five-instruction loop).
fn valid_elf() -> Vec<u8> {
    let c = committed(Class::Elf)
        .into_iter()
        .find(|c| c.path.ends_with("touch-every-page.elf"))
        .expect("touch-every-page.elf");
    std::fs::read(c.path).expect("read")
}

/// Parse and load: no panic, and the pages loaded are at most what the
/// segments' file bytes can touch (each byte one page at worst, plus one page
/// per segment end) when the loader accepts it.
fn check(bytes: &[u8]) {
    let Ok(elf) = Elf::parse(bytes) else {
        return;
    };
    let file_bytes: u64 = elf.segments.iter().map(|s| s.1.len() as u64).sum();
    assert!(file_bytes <= bytes.len() as u64);
    let pages_bound = file_bytes / PAGE_SIZE as u64 + 2 * elf.segments.len() as u64 + 1;
    if let Ok(vm) = Vm::from_elf(bytes, Arc::new(InMemoryOracle::new())) {
        assert!(vm.mem.page_count() as u64 <= pages_bound);
    }
}

fn config() -> Config {
    Config {
        cases: 160,
        rng_seed: RngSeed::Fixed(0x0e1f_5eed),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn arbitrary_header_fields_never_panic(
        fields in proptest::collection::vec((0usize..84, any::<u32>()), 1..6),
    ) {
        let mut b = valid_elf();
        for (at, v) in fields {
            let at = at.min(b.len() - 4) & !3;
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        check(&b);
    }

    #[test]
    fn mutated_programs_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = valid_elf();
        for (at, v) in flips {
            let i = at.index(b.len());
            b[i] = v;
        }
        let keep = cut.index(b.len() + 1);
        check(&b[..keep]);
    }
}
