//! Crafted rv32im programs (`elf/`) for `fpvm run`.

use super::Hostile;

/// Load address of the code.
const BASE: u32 = 0x1_0000;

/// An ELF32 RISC-V executable with the given program headers `(offset, vaddr,
/// filesz, memsz)` and `body` appended after the headers.
fn elf(entry: u32, phdrs: &[(u32, u32, u32, u32)], body: &[u8]) -> Vec<u8> {
    let mut b = vec![0x7f, b'E', b'L', b'F', 1, 1, 1];
    b.resize(16, 0);
    b.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    b.extend_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&entry.to_le_bytes());
    b.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
    b.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    b.extend_from_slice(&52u16.to_le_bytes());
    b.extend_from_slice(&32u16.to_le_bytes());
    b.extend_from_slice(&(phdrs.len() as u16).to_le_bytes());
    b.extend_from_slice(&[0u8; 6]);
    for &(offset, vaddr, filesz, memsz) in phdrs {
        for v in [1, offset, vaddr, vaddr, filesz, memsz, 7, 4096] {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    b.extend_from_slice(body);
    b
}

/// `lui a0, 0x10000; lui t0, 1; loop: sw a0, 0(a0); add a0, a0, t0; j loop`:
/// writes one new page every three steps, from 0x1000_0000 up through the whole
/// address space.
pub const TOUCH_EVERY_PAGE: [u32; 5] = [
    0x1000_0537, // 011_0111: lui a0, 0x10000
    0x0000_12b7, // 011_0111: lui t0, 1
    0x00a5_2023, // 010_0011: sw a0, 0(a0)
    0x0055_0533, // 011_0011: add a0, a0, t0
    0xff9f_f06f, // 110_1111: jal x0, -8
];

/// The ELF files.
pub fn files() -> Vec<Hostile> {
    let mut out = Vec::new();
    let code: Vec<u8> = TOUCH_EVERY_PAGE
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let at = 52 + 32;
    out.push(Hostile::new(
        "elf/touch-every-page.elf",
        "a five-instruction loop writing every page of the 4 GiB address space: the VM's host memory grew with it",
        elf(BASE, &[(at, BASE, code.len() as u32, code.len() as u32)], &code),
    ));
    // 2000 segments loading the same 64 KiB at different addresses.
    let n = 2000u32;
    let data_at = 52 + 32 * n;
    let phdrs: Vec<(u32, u32, u32, u32)> = (0..n)
        .map(|i| (data_at, BASE + i * 0x1_0000, 0x1_0000, 0x1_0000))
        .collect();
    out.push(Hostile::new(
        "elf/aliased-segments.elf",
        "2000 segments loading the same 64 KiB: 128 MiB of guest memory from a 128 KiB file",
        elf(BASE, &phdrs, &vec![0x13u8; 0x1_0000]),
    ));
    let mut b = elf(BASE, &[(at, BASE, 4, 4)], &0x13u32.to_le_bytes());
    b[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
    out.push(Hostile::new(
        "elf/program-headers-past-end.elf",
        "program headers at offset 2^32 - 1",
        b,
    ));
    out.push(Hostile::new(
        "elf/truncated.elf",
        "an ELF header cut at 40 bytes",
        elf(BASE, &[], &[])[..40].to_vec(),
    ));
    out
}
