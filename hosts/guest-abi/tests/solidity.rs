//! The Solidity side mirrors the guest ABI: the syscall numbers and key types of
//! `RISCV.sol`, the local identifiers of `StateLayout.sol` and the transition modes
//! of `PositionGame.sol` equal this crate's constants.

use oracle_guest_abi::{key_type, local_ident, syscall, transition};
use std::path::Path;

/// The value of `constant NAME = VALUE;` in the contract source `file`
/// (under `contracts/src`), decimal or hex.
fn constant(file: &str, name: &str) -> u64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contracts/src")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let needle = format!(" {name} = ");
    let line = text
        .lines()
        .find(|l| l.contains(" constant ") && l.contains(&needle))
        .unwrap_or_else(|| panic!("{name} not in {file}"));
    let value = line
        .split(&needle)
        .nth(1)
        .unwrap()
        .trim_end_matches(';')
        .trim();
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    }
    .unwrap_or_else(|e| panic!("{name} = {value:?} in {file}: {e}"))
}

#[test]
fn syscalls_and_key_types_match_riscv_sol() {
    let f = "vm/RISCV.sol";
    assert_eq!(constant(f, "SYS_EXIT"), u64::from(syscall::EXIT));
    assert_eq!(constant(f, "SYS_WRITE"), u64::from(syscall::WRITE));
    assert_eq!(
        constant(f, "SYS_PREIMAGE_SET_KEY"),
        u64::from(syscall::PREIMAGE_SET_KEY)
    );
    assert_eq!(
        constant(f, "SYS_PREIMAGE_READ"),
        u64::from(syscall::PREIMAGE_READ)
    );
    assert_eq!(
        constant(f, "SYS_COMMIT_OUTPUT"),
        u64::from(syscall::COMMIT_OUTPUT)
    );
    assert_eq!(constant(f, "KEY_TYPE_LOCAL"), u64::from(key_type::LOCAL));
    assert_eq!(constant(f, "KEY_TYPE_KECCAK"), u64::from(key_type::KECCAK));
}

#[test]
fn local_identifiers_match_state_layout_sol() {
    let f = "dispute/StateLayout.sol";
    assert_eq!(constant(f, "LOCAL_MODEL_ROOT"), local_ident::MODEL_ROOT);
    assert_eq!(constant(f, "LOCAL_INPUT_HASH"), local_ident::INPUT_HASH);
    assert_eq!(
        constant(f, "LOCAL_SAMPLING_PARAMS"),
        local_ident::SAMPLING_PARAMS
    );
    assert_eq!(constant(f, "LOCAL_PRE_STATE"), local_ident::PRE_STATE);
}

#[test]
fn transition_modes_match_position_game_sol() {
    let f = "dispute/PositionGame.sol";
    assert_eq!(constant(f, "MODE_INIT"), u64::from(transition::INIT));
    assert_eq!(
        constant(f, "MODE_POSITION"),
        u64::from(transition::POSITION)
    );
    assert_eq!(constant(f, "MODE_OUTPUT"), u64::from(transition::OUTPUT));
}
