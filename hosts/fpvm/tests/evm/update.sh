#!/usr/bin/env bash
# Copies the creation bytecode of RISCV and PreimageOracle from the forge build
# (contracts/out) into this folder, where the Rust differential tests (tests/evm_*.rs)
# embed them with include_str!. Run after changing contracts/src/vm/*.sol.
# The forge test contracts/test/vm/Artifacts.t.sol fails while the copies are stale.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../../../contracts/env.sh
. "$HERE/../../../../contracts/env.sh"
(cd "$CONTRACTS_DIR" && "$FORGE" build --quiet)
for c in RISCV PreimageOracle; do
  node -e '
    const fs = require("fs");
    const a = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    fs.writeFileSync(process.argv[2], a.bytecode.object);
  ' "$CONTRACTS_DIR/out/$c.sol/$c.json" "$HERE/$c.initcode.hex"
done
echo "updated $HERE/{RISCV,PreimageOracle}.initcode.hex"
