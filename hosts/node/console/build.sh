#!/usr/bin/env bash
# Builds the web console's chain module: installs viem, esbuild and playwright-core
# from npm into hosts/node/console/node_modules (pinned by package-lock.json; a
# no-op when up to date) and bundles ask.js with viem into target/console/ask.js,
# which the node serves at /console/ask.js (--console-ask). Needs node and npm.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="${1:-$ROOT/target/console/ask.js}"
cd "$HERE"

if ! command -v npm >/dev/null 2>&1; then
  echo "console build: npm not found (node + npm are required; bash .ci/install.sh installs them)" >&2
  exit 1
fi
stamp="node_modules/.oracle-install-stamp"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
mkdir -p "$(dirname "$OUT")"
node_modules/.bin/esbuild ask.js --bundle --format=esm --minify --target=es2022 \
  --legal-comments=eof --log-level=warning --outfile="$OUT"
echo "console build: $OUT ($(wc -c < "$OUT") bytes)"
