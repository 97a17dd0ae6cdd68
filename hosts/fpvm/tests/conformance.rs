//! ISA conformance: every program in tests/asm (one or more per rv32im instruction,
//! plus syscalls, boundaries and every panic code) must end as its header says.

mod common;

use common::{assemble, load, programs, Expect};
use oracle_fpvm::layout::{panic, status};
use oracle_fpvm::preimage::keccak_key;

const MAX_STEPS: u64 = 5_000_000;

#[test]
fn conformance_programs_end_as_expected() {
    let progs = programs();
    assert!(
        progs.len() >= 60,
        "expected the full conformance suite, found {}",
        progs.len()
    );
    let mut failures = Vec::new();
    for p in &progs {
        let elf = assemble(&p.src, &p.name);
        let mut vm = load(&elf);
        vm.run(MAX_STEPS).expect("host error");
        let got = match vm.cpu.status {
            status::EXITED => Expect::Exit(vm.cpu.exit_code),
            status::PANICKED => Expect::Panic(vm.cpu.exit_code),
            _ => {
                failures.push(format!("{}: still running after {MAX_STEPS} steps", p.name));
                continue;
            }
        };
        if got != p.expect {
            failures.push(format!(
                "{}: expected {:?}, got {:?} (pc {:#x})",
                p.name, p.expect, got, vm.cpu.pc
            ));
            continue;
        }
        // A passing program dumps 128 bytes of registers and 256 of testdata.
        if p.expect == Expect::Exit(0) && vm.debug_output().len() < 384 {
            failures.push(format!("{}: register dump missing", p.name));
        }
        // A halted state is a fixed point, step counter included.
        let (h, steps) = (vm.state_hash(), vm.cpu.step);
        vm.step().expect("host error");
        vm.run(u64::MAX).expect("host error");
        if vm.state_hash() != h || vm.cpu.step != steps {
            failures.push(format!("{}: halted state changed when stepped", p.name));
        }
        println!("ok {:<40} {:?} after {} steps", p.name, got, steps);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_panic_code_is_covered() {
    let codes: Vec<u32> = programs()
        .iter()
        .filter_map(|p| match p.expect {
            Expect::Panic(c) => Some(c),
            _ => None,
        })
        .collect();
    for code in [
        panic::INVALID_INSTRUCTION,
        panic::MISALIGNED_FETCH,
        panic::MISALIGNED_LOAD,
        panic::MISALIGNED_STORE,
        panic::OUT_OF_RANGE,
        panic::UNKNOWN_SYSCALL,
        panic::EBREAK,
        panic::MISALIGNED_SYSCALL_BUFFER,
    ] {
        assert!(
            codes.contains(&code),
            "no conformance program panics with code {code}"
        );
    }
}

#[test]
fn every_instruction_has_a_program() {
    let names: Vec<String> = programs().into_iter().map(|p| p.name).collect();
    for insn in [
        "lui",
        "auipc",
        "jal",
        "jalr",
        "beq",
        "bne",
        "blt",
        "bge",
        "bltu",
        "bgeu",
        "lb",
        "lh",
        "lw",
        "lbu",
        "lhu",
        "sb",
        "sh",
        "sw",
        "addi",
        "slti",
        "sltiu",
        "xori",
        "ori",
        "andi",
        "slli",
        "srli",
        "srai",
        "add",
        "sub",
        "sll",
        "slt",
        "sltu",
        "xor",
        "srl",
        "sra",
        "or",
        "and",
        "fence",
        "ecall_write",
        "mul",
        "mulh",
        "mulhsu",
        "mulhu",
        "div",
        "divu",
        "rem",
        "remu",
    ] {
        assert!(
            names.iter().any(|n| n == insn),
            "no conformance program for {insn}"
        );
    }
}

/// The B-type encoding of `op x1, x2, .+offset` (funct3 from the op).
fn branch_word(funct3: u32, offset: i32) -> u32 {
    let i = offset as u32;
    ((i >> 12) & 1) << 31
        | ((i >> 5) & 0x3f) << 25
        | 2 << 20
        | 1 << 15
        | funct3 << 12
        | ((i >> 1) & 0xf) << 8
        | ((i >> 11) & 1) << 7
        | 0x63
}

#[test]
fn branch_programs_contain_both_range_ends() {
    // Guards against the assembler relaxing an extreme branch into branch + jal.
    for (name, funct3) in [
        ("beq", 0),
        ("bne", 1),
        ("blt", 4),
        ("bge", 5),
        ("bltu", 6),
        ("bgeu", 7),
    ] {
        let elf = std::fs::read(assemble(
            &common::asm_dir().join(format!("{name}.S")),
            &format!("range-{name}"),
        ))
        .expect("read ELF");
        for offset in [4092, -4096] {
            let w = branch_word(funct3, offset).to_le_bytes();
            assert!(
                elf.windows(4).any(|x| x == w),
                "{name}: no branch with offset {offset}"
            );
        }
    }
    let elf = std::fs::read(assemble(
        &common::asm_dir().join("jal_range.S"),
        "range-jal",
    ))
    .expect("read ELF");
    for w in [0x7fdf_f0efu32, 0x8000_006f] {
        // jal ra, .+1048572 and jal x0, .-1048576
        assert!(
            elf.windows(4).any(|x| x == w.to_le_bytes()),
            "jal_range: no {w:#x}"
        );
    }
}

#[test]
fn preimage_program_commits_the_input_key() {
    let p = programs()
        .into_iter()
        .find(|p| p.name == "preimage")
        .expect("preimage.S");
    let mut vm = load(&assemble(&p.src, "preimage-commit"));
    vm.run(MAX_STEPS).expect("host error");
    assert_eq!((vm.cpu.status, vm.cpu.exit_code), (status::EXITED, 0));
    assert_eq!(vm.cpu.output, keccak_key(common::REQUEST_INPUT));
}
