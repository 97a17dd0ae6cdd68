#!/usr/bin/env bash
# Installs the external tools the fpvm tests need (idempotent):
#   - binutils-riscv64-unknown-elf: assembles the ISA conformance programs
#   - qemu-user: qemu-riscv32, the independent implementation for differential tests
set -euo pipefail
need=()
command -v riscv64-unknown-elf-as >/dev/null 2>&1 || need+=(binutils-riscv64-unknown-elf)
command -v qemu-riscv32 >/dev/null 2>&1 || need+=(qemu-user)
if [ "${#need[@]}" -eq 0 ]; then
  echo "fpvm-install: tools already present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
command -v riscv64-unknown-elf-as >/dev/null
command -v qemu-riscv32 >/dev/null
echo "fpvm-install: installed ${need[*]}"
