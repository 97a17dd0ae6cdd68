#!/usr/bin/env bash
# Tests of the VM and its guest side: installs the RISC-V binutils and qemu-user if
# missing, then runs the tests of hosts/fpvm (ISA conformance, qemu differential,
# witness/step, ELF), hosts/guest-abi (the contracts mirror it) and hosts/vm-host
# (the `fpvm` command, the guest in the VM).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/fpvm-install.sh
cargo test -p oracle-fpvm -p oracle-guest-abi -p oracle-vm-host
