#!/usr/bin/env bash
# Formats-checks, builds and tests the contracts with the npm-installed foundry, and
# checks the committed gas snapshot. Run .ci/contracts-install.sh first.
set -euo pipefail

CONTRACTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../contracts" && pwd)"
# shellcheck source=../contracts/env.sh
. "$CONTRACTS_DIR/env.sh"
cd "$CONTRACTS_DIR"

for bin in "$FORGE" "$FOUNDRY_SOLC"; do
  if [ ! -x "$bin" ]; then
    echo "contracts-test: $bin missing; run .ci/contracts-install.sh" >&2
    exit 1
  fi
done

echo "== forge fmt --check"
"$FORGE" fmt --check
echo "== forge build"
"$FORGE" build --sizes
echo "== forge test"
"$FORGE" test
echo "== Rust bindings artifacts up to date"
bash "$CONTRACTS_DIR/../hosts/contracts-bindings/update-artifacts.sh" --check
echo "== forge snapshot --check"
# Fuzz means/medians are not reproducible run to run, and the invariant campaign would double
# CI time, so both stay out of the snapshot (they still run above). Regenerate with:
#   forge snapshot --no-match-path "test/invariant/**" --no-match-test "^testFuzz_"
"$FORGE" snapshot --check --no-match-path "test/invariant/**" --no-match-test "^testFuzz_"
echo "== end-to-end on anvil (deploy script, request, submit, finalize, callback)"
bash "$CONTRACTS_DIR/script/demo.sh"
