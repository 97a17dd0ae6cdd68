#!/usr/bin/env bash
# Build the tools, convert the bundled stories260K checkpoint to an int8 model file
# and generate a story with the integer core. Extra arguments go to `oracle run`
# (e.g. --prompt "Once upon a time" --temperature 0.8 --seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p oracle-node -p oracle-quant
mkdir -p target/models
./target/release/oracle-quant convert \
  --input fixtures/models/stories260K/stories260K.bin \
  --tokenizer fixtures/models/stories260K/tok512.bin \
  --quant q8 --output target/models/stories260K-q8.bin
./target/release/oracle run --model target/models/stories260K-q8.bin "$@"
