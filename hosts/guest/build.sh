#!/usr/bin/env bash
# Build the guest ELF: hosts/guest/target/riscv32im-unknown-none-elf/release/oracle-guest
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --target riscv32im-unknown-none-elf "$@"
