#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for the tests (idempotent, quick when
# everything is present): rustup targets and components, the aarch64 cross linker
# and qemu-user for the cross-target runs, the RISC-V binutils for the VM's
# conformance programs, Node.js (the wasm golden test, the contracts' npm
# toolchain) and that toolchain, Chromium (the web console's headless tests) and
# the console's npm packages (viem for its chain module, esbuild to bundle it,
# playwright-core to drive Chromium in the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
command -v riscv64-unknown-elf-as >/dev/null 2>&1 || need+=(binutils-riscv64-unknown-elf)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ "${#need[@]}" -gt 0 ]; then
  echo "install: apt packages ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

rustup component add rustfmt clippy >/dev/null
rustup target add aarch64-unknown-linux-gnu riscv32im-unknown-none-elf wasm32-unknown-unknown >/dev/null

bash .ci/fpvm-install.sh
bash .ci/contracts-install.sh
bash hosts/node/console/build.sh
