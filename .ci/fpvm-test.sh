#!/usr/bin/env bash
# Tests of hosts/fpvm: installs the RISC-V binutils and qemu-user if missing, then
# runs the crate's tests (ISA conformance, qemu differential, witness/step, ELF).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/fpvm-install.sh
cargo test -p oracle-fpvm
