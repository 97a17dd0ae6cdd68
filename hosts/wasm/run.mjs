// Runs requests through the core's WebAssembly module under Node.js, for the
// cross-target golden test (tests/tests/golden_wasm.rs):
//   node hosts/wasm/run.mjs <oracle_wasm.wasm> <cases.json>
// cases.json is a list of {"model": path, "params": hex, "input": hex}; prints one
// JSON line per case: {"kind", "posted", "commitment", "logits_hash"} (hex).
import { readFileSync } from "node:fs";

const [wasmPath, casesPath] = process.argv.slice(2);
if (!wasmPath || !casesPath) {
  console.error("usage: node run.mjs <oracle_wasm.wasm> <cases.json>");
  process.exit(2);
}
const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), {});
const w = instance.exports;

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const fromHex = (text) => Uint8Array.from(Buffer.from(text, "hex"));

// Copy bytes into module memory; returns [ptr, len].
function put(bytes) {
  const ptr = w.oracle_alloc(bytes.length);
  new Uint8Array(w.memory.buffer, ptr, bytes.length).set(bytes);
  return [ptr, bytes.length];
}
const view = (ptr, len) => new Uint8Array(w.memory.buffer, ptr, len).slice();

const models = new Map();
for (const c of JSON.parse(readFileSync(casesPath, "utf8"))) {
  if (!models.has(c.model)) models.set(c.model, put(readFileSync(c.model)));
  const [mp, ml] = models.get(c.model);
  const [pp, pl] = put(fromHex(c.params));
  const [ip, il] = put(fromHex(c.input));
  const kind = w.oracle_run(mp, ml, pp, pl, ip, il);
  console.log(
    JSON.stringify({
      kind,
      posted: hex(view(w.oracle_posted(), w.oracle_posted_len())),
      commitment: hex(view(w.oracle_commitment(), 32)),
      logits_hash: hex(view(w.oracle_logits_hash(), 32)),
    }),
  );
  w.oracle_free(pp, pl);
  w.oracle_free(ip, il);
}
