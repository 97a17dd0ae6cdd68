# Source this file (bash/sh): it exports the paths of the foundry tools installed from
# npm by .ci/contracts-install.sh, and points forge at the npm solc wrapper.
#   . contracts/env.sh
#   "$FORGE" build --root "$CONTRACTS_DIR"
# The native binaries are used on purpose: the node_modules/.bin shims exit 0 even
# when the tool fails.
if [ -n "${BASH_SOURCE:-}" ]; then
  _oracle_env_src="${BASH_SOURCE[0]}"
else
  _oracle_env_src="$0"
fi
CONTRACTS_DIR="$(cd "$(dirname "$_oracle_env_src")" && pwd)"
unset _oracle_env_src
export CONTRACTS_DIR
export FOUNDRY_BIN_FORGE="$CONTRACTS_DIR/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
export FOUNDRY_BIN_ANVIL="$CONTRACTS_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
export FOUNDRY_BIN_CAST="$CONTRACTS_DIR/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
export FORGE="$FOUNDRY_BIN_FORGE"
export ANVIL="$FOUNDRY_BIN_ANVIL"
export CAST="$FOUNDRY_BIN_CAST"
# forge resolves a relative solc path against the current directory: keep it absolute.
export FOUNDRY_SOLC="$CONTRACTS_DIR/bin/solc"
# Foundry's opt-in telemetry/nag off in CI-like runs.
export FOUNDRY_DISABLE_NIGHTLY_WARNING=1
