//! Test helpers: assembling our rv32im programs with Debian's binutils, running them,
//! and the conformance request oracle. `hosts/vm-host`'s tests of the `fpvm`
//! command use this module too (by `#[path]`), so paths are relative to `hosts/fpvm`
//! whichever crate compiles it.
#![allow(dead_code)]

use oracle_fpvm::preimage::InMemoryOracle;
use oracle_fpvm::{DebugSink, SharedOracle, Vm};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Once};

/// The assembler and linker (Debian package `binutils-riscv64-unknown-elf`).
pub const AS: &str = "riscv64-unknown-elf-as";
/// The linker.
pub const LD: &str = "riscv64-unknown-elf-ld";

/// The input of the conformance request (see tests/asm/preimage.S).
pub const REQUEST_INPUT: &[u8] =
    b"The quick brown fox jumps over the lazy dog, twice over: 0123456789";

/// The `hosts/fpvm` folder.
pub fn fpvm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fpvm")
}

/// Folder of the assembly sources.
pub fn asm_dir() -> PathBuf {
    fpvm_dir().join("tests/asm")
}

/// Scratch folder for assembled programs.
pub fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fpvm-asm");
    std::fs::create_dir_all(&d).expect("create output folder");
    d
}

fn check_tool(tool: &str, package: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool}` not found: install Debian's `{package}` (apt-get install {package}, or run .ci/fpvm-install.sh)"
    );
}

/// Fails clearly unless binutils for RISC-V is installed.
pub fn require_binutils() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        check_tool(AS, "binutils-riscv64-unknown-elf");
        check_tool(LD, "binutils-riscv64-unknown-elf");
    });
}

/// Assembles and links `src` (include path: tests/asm) into `<out>/<tag>.elf`.
pub fn assemble(src: &Path, tag: &str) -> PathBuf {
    require_binutils();
    let out = out_dir();
    let obj = out.join(format!("{tag}.o"));
    let elf = out.join(format!("{tag}.elf"));
    let st = Command::new(AS)
        .args(["-march=rv32im", "-mabi=ilp32", "-I"])
        .arg(asm_dir())
        .arg(src)
        .arg("-o")
        .arg(&obj)
        .output()
        .expect("run assembler");
    assert!(
        st.status.success(),
        "assembling {}: {}",
        src.display(),
        String::from_utf8_lossy(&st.stderr)
    );
    let st = Command::new(LD)
        .args(["-m", "elf32lriscv", "--no-relax", "-e", "_start"])
        .arg(&obj)
        .arg("-o")
        .arg(&elf)
        .output()
        .expect("run linker");
    assert!(
        st.status.success(),
        "linking {}: {}",
        src.display(),
        String::from_utf8_lossy(&st.stderr)
    );
    elf
}

/// Assembles source text (written to `<out>/<tag>.S`).
pub fn assemble_text(text: &str, tag: &str) -> PathBuf {
    let src = out_dir().join(format!("{tag}.S"));
    std::fs::write(&src, text).expect("write source");
    assemble(&src, tag)
}

/// What a program must do, from its header comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `exit(code)`.
    Exit(u32),
    /// A panic with this code.
    Panic(u32),
}

/// A conformance program.
pub struct Program {
    /// File stem.
    pub name: String,
    /// Source path.
    pub src: PathBuf,
    /// Expected outcome.
    pub expect: Expect,
    /// Not runnable under qemu (fpvm-only syscalls or addresses, or panics).
    pub fpvm_only: bool,
}

/// All conformance programs, sorted by name.
pub fn programs() -> Vec<Program> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(asm_dir()).expect("read tests/asm") {
        let p = e.expect("dir entry").path();
        if p.extension().and_then(|x| x.to_str()) != Some("S") {
            continue;
        }
        let text = std::fs::read_to_string(&p).expect("read source");
        let mut expect = Expect::Exit(0);
        let mut fpvm_only = false;
        for line in text.lines().take_while(|l| l.starts_with('#')) {
            if let Some(rest) = line.strip_prefix("# expect: ") {
                let mut it = rest.split_whitespace();
                let kind = it.next().unwrap_or("");
                let n: u32 = it.next().and_then(|n| n.parse().ok()).expect("expect code");
                expect = if kind == "panic" {
                    Expect::Panic(n)
                } else {
                    Expect::Exit(n)
                };
            }
            if line.trim() == "# fpvm-only" {
                fpvm_only = true;
            }
        }
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        v.push(Program {
            name,
            src: p,
            expect,
            fpvm_only,
        });
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The oracle of the conformance request: local keys 1 (a model root), 2 (the
/// input's keccak256) and 3 (parameters), and the input under its keccak key (the
/// guest ABI's local data, which `tests/asm/preimage.S` reads in part).
pub fn request_oracle() -> SharedOracle {
    let mut o = InMemoryOracle::new();
    o.insert_local(1, vec![0x11; 32]);
    o.insert_local(2, oracle_fpvm::hash::keccak256(REQUEST_INPUT).to_vec());
    o.insert_local(3, b"greedy".to_vec());
    o.insert_keccak(REQUEST_INPUT.to_vec());
    Arc::new(o)
}

/// Loads an ELF into a VM that buffers its debug output.
pub fn load(elf: &Path) -> Vm {
    let bytes = std::fs::read(elf).expect("read ELF");
    let mut vm = Vm::from_elf(&bytes, request_oracle()).expect("load ELF");
    vm.debug = DebugSink::Buffer(Vec::new());
    vm
}

/// Simple deterministic PRNG (xorshift64*), for seeded random programs.
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// One of the items.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A random rv32im program (ALU/M ops, aligned loads and stores into `testdata`,
/// forward branches and jumps, bounded loops), using the conformance harness so that it
/// dumps registers and `testdata` at the end. x31 holds the `testdata` base; x30 is
/// scratch for jalr.
pub fn random_program(seed: u64, len: usize) -> String {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let edge: [u32; 12] = [
        0,
        1,
        2,
        31,
        32,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0xffff_fffe,
        0x8000_0001,
        0xffff_8000,
        0x7fff,
    ];
    let mut s = String::from(".include \"macros.inc\"\nTEST_BEGIN\n");
    // x29 (loop counter) stays 0 from TEST_BEGIN, x30/x31 are set below.
    for reg in 1..29 {
        let v = if r.below(2) == 0 {
            *r.pick(&edge)
        } else {
            r.next_u64() as u32
        };
        s += &format!("    li x{reg}, {v:#x}\n");
    }
    s += "    la x31, testdata\n";
    // seed testdata with a few words
    for k in 0..8 {
        s += &format!("    sw x{}, {}(x31)\n", k + 5, 32 * k);
    }
    let rr = [
        "add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and", "mul", "mulh",
        "mulhsu", "mulhu", "div", "divu", "rem", "remu",
    ];
    let ri = ["addi", "slti", "sltiu", "xori", "ori", "andi"];
    let sh = ["slli", "srli", "srai"];
    let br = ["beq", "bne", "blt", "bge", "bltu", "bgeu"];
    let lds = [("lb", 1), ("lh", 2), ("lw", 4), ("lbu", 1), ("lhu", 2)];
    let sts = [("sb", 1), ("sh", 2), ("sw", 4)];
    let reg = |r: &mut Rng| r.below(29) as u32; // x0..x28 (x0 as a destination too)
                                                // Bounded loops: x29 is the counter, set only at a loop head and counted down at
                                                // its end with `bgtz`, so a jump into a body can never loop for long.
    let mut open_loop: Option<(usize, usize)> = None;
    for i in 0..len {
        s += &format!("L{i}:\n");
        if let Some((head, end)) = open_loop {
            if i == end {
                s += &format!("    addi x29, x29, -1\n    bgtz x29, B{head}\n");
                open_loop = None;
            }
        } else if r.below(25) == 0 && i + 10 < len {
            s += &format!("    li x29, {}\nB{i}:\n", 1 + r.below(8));
            open_loop = Some((i, i + 2 + r.below(7) as usize));
        }
        let rd = reg(&mut r);
        let (a, b) = (reg(&mut r), reg(&mut r));
        let line = match r.below(100) {
            0..=39 => format!("{} x{rd}, x{a}, x{b}", r.pick(&rr)),
            40..=54 => format!(
                "{} x{rd}, x{a}, {}",
                r.pick(&ri),
                r.below(4096) as i64 - 2048
            ),
            55..=62 => format!("{} x{rd}, x{a}, {}", r.pick(&sh), r.below(32)),
            63..=66 => format!("lui x{rd}, {:#x}", r.below(1 << 20)),
            67..=68 => format!("auipc x{rd}, {:#x}", r.below(1 << 20)),
            69..=78 => {
                let (op, size) = *r.pick(&lds);
                format!("{op} x{rd}, {}(x31)", r.below(256 / size) * size)
            }
            79..=88 => {
                let (op, size) = *r.pick(&sts);
                format!("{op} x{a}, {}(x31)", r.below(256 / size) * size)
            }
            89..=95 => format!(
                "{} x{a}, x{b}, L{}",
                r.pick(&br),
                i + 1 + r.below(6) as usize
            ),
            96..=97 => format!("jal x{rd}, L{}", i + 1 + r.below(6) as usize),
            _ => format!(
                "la x30, L{}\n    jalr x{rd}, 0(x30)",
                i + 1 + r.below(6) as usize
            ),
        };
        s += &format!("    {line}\n");
    }
    for i in len..len + 8 {
        s += &format!("L{i}:\n    nop\n");
    }
    s += "TEST_END\n";
    s
}
