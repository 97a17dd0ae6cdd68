#!/usr/bin/env bash
# Build the guest ELF: hosts/guest/target/riscv32im-unknown-none-elf/release/oracle-guest
# (always there, whatever CARGO_TARGET_DIR says: the tests and the node read it there).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --target riscv32im-unknown-none-elf --target-dir target "$@"
