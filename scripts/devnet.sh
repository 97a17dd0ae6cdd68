#!/usr/bin/env bash
# Install and build what the devnet needs, then start it: anvil with AIOracle and
# Prompt deployed, the bundled stories260K (W8) registered with its model root and
# the guest's program hash, an operator and a validator (with --http ADDR, the
# operator's JSON API and web console on ADDR; add --liar for a dishonest operator
# whose wrong results are challenged and played out). Then, in another
# terminal: ./target/release/oracle request --wait --prompt "Once upon a time"
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/contracts-install.sh >/dev/null
rustup target add riscv32im-unknown-none-elf wasm32-unknown-unknown >/dev/null
cargo build --release -q -p oracle-node -p oracle-quant
# The core for the browser (the web console's "verify in this browser").
cargo build --release -q -p oracle-wasm --target wasm32-unknown-unknown
# The console's chain module ("Ask": viem, bundled from npm).
bash hosts/node/console/build.sh >/dev/null
hosts/guest/build.sh -q
mkdir -p target/models
./target/release/oracle-quant convert \
  --input fixtures/models/stories260K/stories260K.bin \
  --tokenizer fixtures/models/stories260K/tok512.bin \
  --quant q8 --output target/models/stories260K-q8.bin >/dev/null
exec ./target/release/oracle devnet "$@"
