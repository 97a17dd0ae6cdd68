#!/usr/bin/env bash
# Installs the contracts toolchain from npm into contracts/node_modules: forge, anvil,
# cast (native binaries shipped inside @foundry-rs/*-linux-amd64), solc-js,
# OpenZeppelin and forge-std (from @layerzerolabs/toolbox-foundry). Assumes node and
# npm exist. Idempotent: a no-op when node_modules matches package-lock.json.
set -euo pipefail

CONTRACTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../contracts" && pwd)"
cd "$CONTRACTS_DIR"

if ! command -v npm >/dev/null 2>&1; then
  echo "contracts-install: npm not found (node + npm are required)" >&2
  exit 1
fi

stamp="node_modules/.oracle-install-stamp"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
bins_present() {
  for t in forge anvil cast; do
    [ -x "node_modules/@foundry-rs/$t-linux-amd64/bin/$t" ] || return 1
  done
  [ -f node_modules/solc/soljson.js ]
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && bins_present; then
  echo "contracts-install: up to date"
else
  # --ignore-scripts: the binaries come as optional per-platform packages; the
  # postinstall scripts would only try to download them again.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# shellcheck source=../contracts/env.sh
. "$CONTRACTS_DIR/env.sh"
for bin in "$FORGE" "$ANVIL" "$CAST"; do
  if [ ! -x "$bin" ]; then
    echo "contracts-install: missing $bin (is this linux-x86_64?)" >&2
    exit 1
  fi
done
"$FORGE" --version | head -1
"$FOUNDRY_SOLC" --version | tail -1
test -f node_modules/@layerzerolabs/toolbox-foundry/lib/forge-std/StdInvariant.sol
test -f node_modules/@openzeppelin/contracts/utils/ReentrancyGuard.sol
