//! ELF loader: malformed files are typed errors, never a panic.

mod common;

use common::{asm_dir, assemble, Rng};
use oracle_fpvm::elf::{Elf, ElfError};
use oracle_fpvm::{InMemoryOracle, Vm};
use std::sync::Arc;

/// A minimal valid ELF32 RISC-V executable: one PT_LOAD of `code` at 0x10000.
fn tiny_elf(code: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 52 + 32];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 1; // ELFCLASS32
    f[5] = 1; // little-endian
    f[6] = 1;
    f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f[18..20].copy_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..28].copy_from_slice(&0x10000u32.to_le_bytes()); // entry
    f[28..32].copy_from_slice(&52u32.to_le_bytes()); // phoff
    f[40..42].copy_from_slice(&52u16.to_le_bytes());
    f[42..44].copy_from_slice(&32u16.to_le_bytes());
    f[44..46].copy_from_slice(&1u16.to_le_bytes());
    let ph = 52;
    f[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    f[ph + 4..ph + 8].copy_from_slice(&84u32.to_le_bytes()); // offset
    f[ph + 8..ph + 12].copy_from_slice(&0x10000u32.to_le_bytes()); // vaddr
    f[ph + 16..ph + 20].copy_from_slice(&(code.len() as u32).to_le_bytes());
    f[ph + 20..ph + 24].copy_from_slice(&(code.len() as u32 + 64).to_le_bytes());
    f.extend_from_slice(code);
    f
}

const EXIT_7: [u32; 3] = [0x0070_0513, 0x05d0_0893, 0x0000_0073]; // li a0,7; li a7,93; ecall

fn code() -> Vec<u8> {
    EXIT_7.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn load(f: &[u8]) -> Result<Vm, ElfError> {
    Vm::from_elf(f, Arc::new(InMemoryOracle::new()))
}

fn set(f: &mut [u8], at: usize, v: &[u8]) {
    f[at..at + v.len()].copy_from_slice(v);
}

#[test]
fn tiny_elf_runs() {
    let mut vm = load(&tiny_elf(&code())).unwrap();
    vm.run(100).unwrap();
    assert_eq!((vm.cpu.status, vm.cpu.exit_code, vm.cpu.step), (1, 7, 3));
}

#[test]
fn malformed_headers_are_typed_errors() {
    let good = tiny_elf(&code());
    let case = |at: usize, v: &[u8]| {
        let mut f = good.clone();
        set(&mut f, at, v);
        load(&f).err()
    };
    assert_eq!(case(0, b"\x7fELG"), Some(ElfError::BadMagic));
    assert_eq!(case(4, &[2]), Some(ElfError::NotElf32(2)));
    assert_eq!(case(5, &[2]), Some(ElfError::NotLittleEndian(2)));
    assert_eq!(
        case(16, &3u16.to_le_bytes()),
        Some(ElfError::NotExecutable(3))
    );
    assert_eq!(case(18, &62u16.to_le_bytes()), Some(ElfError::NotRiscv(62)));
    assert_eq!(
        case(36, &1u32.to_le_bytes()),
        Some(ElfError::CompressedNotSupported)
    );
    assert_eq!(
        case(42, &56u16.to_le_bytes()),
        Some(ElfError::BadPhentsize(56))
    );
    assert!(matches!(
        case(28, &0xffff_fff0u32.to_le_bytes()),
        Some(ElfError::Truncated { .. })
    ));
    assert!(matches!(
        case(44, &0xffffu16.to_le_bytes()),
        Some(ElfError::Truncated { .. })
    ));
    assert!(matches!(
        case(52 + 4, &0xffff_0000u32.to_le_bytes()),
        Some(ElfError::Truncated { .. })
    ));
    assert!(matches!(
        case(52 + 16, &0x1000u32.to_le_bytes()),
        Some(ElfError::FileSizeExceedsMemSize { .. })
    ));
    assert!(matches!(
        case(52 + 8, &0xffff_fff0u32.to_le_bytes()),
        Some(ElfError::SegmentOverflow { .. })
    ));
    assert!(matches!(
        case(52 + 8, &0x0000_0800u32.to_le_bytes()),
        Some(ElfError::SegmentInGuard { .. })
    ));
    assert_eq!(
        case(52, &2u32.to_le_bytes()),
        Some(ElfError::NoLoadableSegment)
    );
    assert_eq!(
        case(24, &0x10002u32.to_le_bytes()),
        Some(ElfError::BadEntry(0x10002))
    );
    assert_eq!(
        case(24, &0x100u32.to_le_bytes()),
        Some(ElfError::BadEntry(0x100))
    );
    assert!(matches!(load(&good[..30]), Err(ElfError::Truncated { .. })));
    assert!(matches!(load(&[]), Err(ElfError::Truncated { .. })));
}

#[test]
fn every_truncation_and_random_corruption_is_handled() {
    let src = asm_dir().join("lui.S");
    let elf = std::fs::read(assemble(&src, "elf-fuzz")).unwrap();
    assert!(Elf::parse(&elf).is_ok());
    // Every truncation that cuts the headers or a segment is an error, never a panic.
    for len in 0..elf.len() {
        let _ = Elf::parse(&elf[..len]);
    }
    assert!(Elf::parse(&elf[..100]).is_err());
    // Random corruptions of the headers: an error or a loadable program, never a panic.
    let mut r = Rng(42);
    let tiny = tiny_elf(&code());
    for _ in 0..2_000 {
        let mut f = if r.below(2) == 0 {
            elf.clone()
        } else {
            tiny.clone()
        };
        for _ in 0..1 + r.below(4) {
            let at = r.below(f.len().min(120) as u64) as usize;
            f[at] = r.next_u64() as u8;
        }
        if let Ok(mut vm) = load(&f) {
            vm.run(1000).unwrap();
        }
    }
}
