//! A bounds-checked ELF32 (little-endian, RISC-V, executable) loader.
//!
//! Only program headers matter: each `PT_LOAD` segment's file bytes are copied to its
//! virtual address; the rest of its memory size is zero (memory starts zeroed, so
//! only bytes already written by an earlier overlapping segment are cleared).

use crate::layout::memory::NULL_GUARD;
use crate::memory::Memory;
use thiserror::Error;

/// Why an ELF file was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ElfError {
    /// The file is shorter than the structure being read.
    #[error("ELF truncated: {what} needs bytes {start}..{end}, file has {len}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// First byte needed.
        start: u64,
        /// One past the last byte needed.
        end: u64,
        /// File length.
        len: usize,
    },
    /// No `\x7fELF` magic.
    #[error("not an ELF file (bad magic)")]
    BadMagic,
    /// EI_CLASS is not ELFCLASS32.
    #[error("not a 32-bit ELF (class {0})")]
    NotElf32(u8),
    /// EI_DATA is not little-endian.
    #[error("not a little-endian ELF (data {0})")]
    NotLittleEndian(u8),
    /// e_type is not ET_EXEC.
    #[error("not an executable ELF (e_type {0})")]
    NotExecutable(u16),
    /// e_machine is not EM_RISCV (243).
    #[error("not a RISC-V ELF (e_machine {0})")]
    NotRiscv(u16),
    /// The ELF says it may contain compressed instructions (EF_RISCV_RVC).
    #[error("ELF uses the C extension (EF_RISCV_RVC); the VM runs rv32im only")]
    CompressedNotSupported,
    /// e_phentsize is not 32.
    #[error("bad program header entry size {0}")]
    BadPhentsize(u16),
    /// p_filesz > p_memsz.
    #[error("segment {index}: file size {filesz} exceeds memory size {memsz}")]
    FileSizeExceedsMemSize {
        /// Segment index.
        index: usize,
        /// p_filesz.
        filesz: u32,
        /// p_memsz.
        memsz: u32,
    },
    /// vaddr + memsz exceeds the 32-bit address space.
    #[error("segment {index}: {vaddr:#x} + {memsz:#x} exceeds 2^32")]
    SegmentOverflow {
        /// Segment index.
        index: usize,
        /// p_vaddr.
        vaddr: u32,
        /// p_memsz.
        memsz: u32,
    },
    /// A segment lies (partly) in the null guard page.
    #[error("segment {index} at {vaddr:#x} overlaps the null guard page")]
    SegmentInGuard {
        /// Segment index.
        index: usize,
        /// p_vaddr.
        vaddr: u32,
    },
    /// No PT_LOAD segment.
    #[error("ELF has no loadable segment")]
    NoLoadableSegment,
    /// The segments load more file bytes than the file holds (they alias the
    /// same bytes): a small file would fill much of the address space.
    #[error("ELF segments load {total} file bytes, more than the file's {len}")]
    AliasedSegments {
        /// Sum of the segments' file sizes.
        total: u64,
        /// File length.
        len: usize,
    },
    /// The entry point is misaligned or in the null guard page.
    #[error("bad entry point {0:#x}")]
    BadEntry(u32),
}

/// A parsed executable: entry point and loadable segments.
#[derive(Debug, Clone)]
pub struct Elf<'a> {
    /// Entry point.
    pub entry: u32,
    /// (vaddr, file bytes, memsz) per PT_LOAD segment.
    pub segments: Vec<(u32, &'a [u8], u32)>,
}

fn bytes<'a>(f: &'a [u8], what: &'static str, start: u64, n: u64) -> Result<&'a [u8], ElfError> {
    let end = start + n;
    if end > f.len() as u64 {
        return Err(ElfError::Truncated {
            what,
            start,
            end,
            len: f.len(),
        });
    }
    Ok(&f[start as usize..end as usize])
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

const PT_LOAD: u32 = 1;
const EF_RISCV_RVC: u32 = 1;

impl<'a> Elf<'a> {
    /// Parses and validates `file`.
    pub fn parse(file: &'a [u8]) -> Result<Self, ElfError> {
        let h = bytes(file, "ELF header", 0, 52)?;
        if h[..4] != [0x7f, b'E', b'L', b'F'] {
            return Err(ElfError::BadMagic);
        }
        if h[4] != 1 {
            return Err(ElfError::NotElf32(h[4]));
        }
        if h[5] != 1 {
            return Err(ElfError::NotLittleEndian(h[5]));
        }
        let e_type = u16_at(h, 16);
        if e_type != 2 {
            return Err(ElfError::NotExecutable(e_type));
        }
        let machine = u16_at(h, 18);
        if machine != 243 {
            return Err(ElfError::NotRiscv(machine));
        }
        let entry = u32_at(h, 24);
        let phoff = u32_at(h, 28) as u64;
        if u32_at(h, 36) & EF_RISCV_RVC != 0 {
            return Err(ElfError::CompressedNotSupported);
        }
        let phentsize = u16_at(h, 42);
        let phnum = u16_at(h, 44) as u64;
        if phnum > 0 && phentsize != 32 {
            return Err(ElfError::BadPhentsize(phentsize));
        }
        let table = bytes(file, "program headers", phoff, 32 * phnum)?;
        let mut segments = Vec::new();
        for (index, ph) in table.chunks_exact(32).enumerate() {
            if u32_at(ph, 0) != PT_LOAD {
                continue;
            }
            let (offset, vaddr) = (u32_at(ph, 4), u32_at(ph, 8));
            let (filesz, memsz) = (u32_at(ph, 16), u32_at(ph, 20));
            if filesz > memsz {
                return Err(ElfError::FileSizeExceedsMemSize {
                    index,
                    filesz,
                    memsz,
                });
            }
            if vaddr as u64 + memsz as u64 > 1 << 32 {
                return Err(ElfError::SegmentOverflow {
                    index,
                    vaddr,
                    memsz,
                });
            }
            if memsz > 0 && vaddr < NULL_GUARD {
                return Err(ElfError::SegmentInGuard { index, vaddr });
            }
            let data = bytes(file, "segment data", offset as u64, filesz as u64)?;
            segments.push((vaddr, data, memsz));
        }
        let total: u64 = segments.iter().map(|s| s.1.len() as u64).sum();
        if total > file.len() as u64 {
            return Err(ElfError::AliasedSegments {
                total,
                len: file.len(),
            });
        }
        if segments.is_empty() {
            return Err(ElfError::NoLoadableSegment);
        }
        if entry & 3 != 0 || entry < NULL_GUARD {
            return Err(ElfError::BadEntry(entry));
        }
        Ok(Elf { entry, segments })
    }

    /// Writes the segments into `mem`.
    pub fn load_into(&self, mem: &mut Memory) {
        for &(vaddr, data, memsz) in &self.segments {
            mem.write_bytes(vaddr, data);
            let rest = memsz as u64 - data.len() as u64;
            mem.zero_range(vaddr.wrapping_add(data.len() as u32), rest);
        }
    }
}
