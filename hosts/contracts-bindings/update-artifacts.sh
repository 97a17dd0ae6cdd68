#!/usr/bin/env bash
# Copies the ABI and bytecode of the contracts the bindings cover from the forge build
# (contracts/out) into artifacts/, trimmed to what `sol!` reads. Run after changing the
# contracts; `--check` (used by .ci/contracts-test.sh) fails if the copies are stale.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../contracts/env.sh
. "$HERE/../../contracts/env.sh"
mode="${1:-write}"
(cd "$CONTRACTS_DIR" && "$FORGE" build --quiet)
out_dir="$HERE/artifacts"
[ "$mode" = "--check" ] && out_dir="$(mktemp -d)"
# Each entry is <source file stem>:<contract>; the test receiver comes from test/utils/Receivers.sol.
for entry in AIOracle:AIOracle Prompt:Prompt DisputeGame:DisputeGame DisputeGameFactory:DisputeGameFactory \
  PositionGame:PositionGame RISCV:RISCV PreimageOracle:PreimageOracle Receivers:RevertingReceiver; do
  file="${entry%%:*}"
  c="${entry##*:}"
  node -e '
    const fs = require("fs");
    const a = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const trimmed = {
      abi: a.abi,
      bytecode: { object: a.bytecode.object },
      deployedBytecode: { object: a.deployedBytecode.object },
    };
    fs.writeFileSync(process.argv[2], JSON.stringify(trimmed, null, 1) + "\n");
  ' "$CONTRACTS_DIR/out/$file.sol/$c.json" "$out_dir/$c.json"
done
if [ "$mode" = "--check" ]; then
  if ! diff -q "$out_dir" "$HERE/artifacts" >/dev/null; then
    echo "hosts/contracts-bindings/artifacts are stale: run hosts/contracts-bindings/update-artifacts.sh" >&2
    diff -r "$out_dir" "$HERE/artifacts" | head -5 >&2 || true
    exit 1
  fi
  rm -rf "$out_dir"
  echo "bindings artifacts up to date"
fi
