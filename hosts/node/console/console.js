// The node's console: reads the node's JSON API (/api/) and renders it; every view
// refreshes every two seconds, so a request can be watched live. Everything shown
// is set through textContent: outputs and errors come from the chain and are never
// parsed as HTML.
"use strict";

const REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);

/** A U256 as serde writes it ("0x…" hex) in decimal. */
function dec(v) {
  if (typeof v === "string" && v.startsWith("0x")) {
    try { return BigInt(v).toString(); } catch { return v; }
  }
  return v === null || v === undefined ? "–" : String(v);
}

/** "0x…" hex bytes as text when they are UTF-8, else the hex itself. */
function bytesText(hex) {
  if (!hex || hex === "0x") return "";
  const bytes = new Uint8Array((hex.length - 2) / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.substr(2 + 2 * i, 2), 16);
  try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch { return hex; }
}

const short = (h) => (typeof h === "string" && h.length > 18 ? h.slice(0, 10) + "…" + h.slice(-6) : dec(h));

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fill(tbody, rows, render) {
  tbody.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    render(tr, row);
    tbody.appendChild(tr);
  }
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(tr, "none yet");
    td.colSpan = 8;
    tbody.appendChild(tr);
  }
}

async function api(path) {
  const r = await fetch("/api/" + path, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw Object.assign(new Error(body.error || ("HTTP " + r.status)), { status: r.status });
  return body;
}

/** The chain module's handle (ask.js, bundled with viem), once connected. */
let chain = null;

/**
 * Load the chain module and connect it to the node's chain (/api/chain): on a
 * devnet it signs with the devnet's user account, elsewhere with an injected
 * wallet. Without it the page still shows everything but cannot ask.
 */
async function connectChain() {
  let why;
  try {
    const info = await api("chain");
    let module;
    try {
      module = await import("/console/ask.js");
    } catch {
      throw new Error("this node has no chain module (bash hosts/node/console/build.sh builds it)");
    }
    const handle = await module.connect(info);
    if (handle.signer) chain = handle; else why = handle.why;
  } catch (e) {
    why = "cannot ask from here: " + e.message;
  }
  $("ask-signer").textContent = chain
    ? "signed by " + chain.signer + (chain.viaPrompt ? ", through the Prompt contract (its callback stores the answer)" : ", to AIOracle directly (no callback)")
    : why;
  $("ask-send").disabled = !chain;
  document.body.dataset.chain = chain ? "ready" : "none";
  showFee();
}

/** The fee of the selected model, from the chain. */
async function showFee() {
  const model = $("ask-model").value;
  const kind = $("ask-model").selectedOptions[0]?.dataset.kind;
  $("ask-prompt").placeholder = kind === "image" ? "empty for an unconditional image model" : "a prompt (may be empty)";
  const image = $("ask-model").selectedOptions[0]?.dataset.image;
  $("ask-params").textContent = image ? `served with the model's registered ${image}` : "";
  if (!chain || !model) return;
  try {
    $("ask-fee").textContent = "fee " + chain.formatEther(await chain.fee(model)) + " ETH";
  } catch (e) {
    $("ask-fee").textContent = "fee unknown: " + (e.shortMessage || e.message);
  }
}

/** Send the prompt to the selected model and watch the request. */
async function ask(event) {
  event.preventDefault();
  const status = $("ask-status");
  const model = $("ask-model").value;
  const prompt = $("ask-prompt").value;
  if (!chain || !model) return;
  $("ask-send").disabled = true;
  status.className = "";
  status.textContent = "sending…";
  try {
    const sent = await chain.send(model, prompt);
    status.textContent = `request ${sent.id} sent (tx ${short(sent.tx)}, fee ${chain.formatEther(sent.fee)} ETH)`;
    location.hash = "#request/" + sent.id;
  } catch (e) {
    status.className = "bad";
    status.textContent = "not sent: " + (e.shortMessage || e.message);
  } finally {
    $("ask-send").disabled = false;
  }
}

function problem(text) {
  $("problem").hidden = !text;
  $("problem").textContent = text || "";
}

async function showNode() {
  const status = await api("status");
  $("node").textContent = `${status.role} ${status.account} · oracle ${status.oracle} · last block ${dec(status.last_block)}`;
  return status;
}

async function showList() {
  const [status, requests, disputes, models, operators] = await Promise.all([
    showNode(), api("requests?limit=200"), api("disputes"), api("models"), api("operators"),
  ]);
  const totals = Object.entries(status.requests).filter(([, n]) => n > 0);
  totals.push(["checks", status.checks], ["mismatches", status.mismatches], ["disputes", status.disputes]);
  fill($("totals"), totals, (tr, [name, n]) => { cell(tr, name); cell(tr, String(n)); });
  fill($("requests"), requests, (tr, r) => {
    const id = cell(tr, "");
    const a = document.createElement("a");
    a.href = "#request/" + dec(r.id);
    a.textContent = dec(r.id);
    id.appendChild(a);
    cell(tr, dec(r.model_id));
    cell(tr, dec(r.block));
    cell(tr, r.state, "state-" + r.state);
    cell(tr, r.input_bytes + " B");
    cell(tr, r.output_bytes === null ? "–" : r.output_bytes + " B");
    cell(tr, r.error || "");
  });
  fill($("disputes"), disputes, (tr, d) => {
    cell(tr, dec(d.dispute));
    cell(tr, dec(d.request));
    cell(tr, short(d.game), "mono");
    cell(tr, player(d));
    cell(tr, d.defending ? "defending" : "challenging");
    cell(tr, d.state);
    cell(tr, String(d.moves));
  });
  const select = $("ask-model");
  const keep = select.value;
  const options = models.map((m) => {
    const o = document.createElement("option");
    o.value = dec(m.id);
    o.textContent = `${dec(m.id)}: ${m.file} (${m.kind})`;
    o.dataset.kind = m.kind;
    if (m.image) o.dataset.image = `steps ${m.image.steps}, seed ${m.image.seed}, guidance ${m.image.guidance}`;
    return o;
  });
  if (select.options.length !== options.length) {
    select.replaceChildren(...options);
    if (keep) select.value = keep;
    showFee();
  }
  const onChain = async (read) => (chain ? read().catch((e) => ({ error: e.shortMessage || e.message })) : null);
  const modelRows = await Promise.all(models.map(async (m) => [m, await onChain(() => chain.model(dec(m.id)))]));
  fill($("models"), modelRows, (tr, [m, c]) => {
    cell(tr, dec(m.id));
    cell(tr, m.file);
    cell(tr, m.kind + (m.chat ? " (chat)" : ""));
    cell(tr, m.game);
    cell(tr, short(m.root) + (c && c.root && c.root !== m.root ? " (NOT the registered root " + short(c.root) + ")" : ""), "mono");
    cell(tr, (m.bytes / 1e6).toFixed(2) + " MB");
    cell(tr, c ? c.error || short(c.programHash) : "–", "mono");
    cell(tr, c ? c.fee || "" : "–");
    cell(tr, c && c.challengeWindow !== undefined ? c.challengeWindow + " s" : "–");
  });
  const operatorRows = await Promise.all(operators.map(async (o) => [o, await onChain(() => chain.operator(o))]));
  fill($("operators"), operatorRows, (tr, [o, c]) => {
    cell(tr, o, "mono");
    cell(tr, c ? c.error || c.bond : "–");
    cell(tr, c ? c.locked || "" : "–");
    cell(tr, c && c.served !== undefined ? String(c.served) : "–");
    cell(tr, c && c.slashed !== undefined ? String(c.slashed) : "–");
  });
  fill($("figures"), await figures(), (tr, [name, value]) => {
    cell(tr, name, "mono");
    cell(tr, value);
  });
}

/** The node's own series from its Prometheus text (/metrics): [name{labels}, value]. */
async function figures() {
  const r = await fetch("/metrics", { cache: "no-store" });
  if (!r.ok) return [];
  return (await r.text())
    .split("\n")
    .filter((line) => line.startsWith("oracle_") && !line.includes("_bucket{"))
    .map((line) => {
      const at = line.lastIndexOf(" ");
      const value = Number(line.slice(at + 1));
      return [line.slice(0, at), Number.isInteger(value) ? value.toLocaleString("en-US") : value.toPrecision(4)];
    });
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const isPng = (bytes) => PNG_SIGNATURE.every((b, i) => bytes[i] === b);
const dataUrl = (bytes) => "data:image/png;base64," + btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));

/** The core's WebAssembly module's exports (fetched once). */
let wasmExports = null;
async function wasm() {
  if (wasmExports) return wasmExports;
  const response = await fetch("/console/oracle_wasm.wasm");
  if (!response.ok) throw new Error((await response.json()).error);
  const { instance } = await WebAssembly.instantiate(await response.arrayBuffer(), {});
  wasmExports = instance.exports;
  return wasmExports;
}

/** keccak256 of `bytes` as 0x hex, by the core's module. */
async function keccak(bytes) {
  const w = await wasm();
  const ptr = w.oracle_alloc(bytes.length);
  new Uint8Array(w.memory.buffer, ptr, bytes.length).set(bytes);
  const hash = toHex(new Uint8Array(w.memory.buffer, w.oracle_keccak(ptr, bytes.length), 32).slice());
  w.oracle_free(ptr, bytes.length);
  return hash;
}

/**
 * An image output: a PNG posted inline is shown as it is; one posted as its hash
 * (32 bytes, an image model's) is fetched from this node and shown only if its
 * keccak256 is the posted hash.
 */
async function imageOf(output, model) {
  const bytes = fromHex(output);
  if (isPng(bytes)) return [dataUrl(bytes), "the PNG posted on chain"];
  if (!model || model.kind !== "image" || bytes.length !== 32) return null;
  const r = await fetch("/outputs/" + output + ".png");
  if (!r.ok) return [null, "the PNG of hash " + short(output) + " is not on this node"];
  const png = new Uint8Array(await r.arrayBuffer());
  const hash = await keccak(png);
  if (hash !== output) return [null, "the node's PNG hashes to " + short(hash) + ", not the posted hash: not shown"];
  return [dataUrl(png), "checked in this browser: the PNG hashes to the posted hash"];
}

let imageShown = null;

async function showImage(id, output, modelId) {
  const key = id + ":" + output;
  if (imageShown === key) return;
  imageShown = key;
  const box = $("request-image");
  box.replaceChildren();
  if (!output) return;
  const model = (await api("models")).find((m) => m.id === modelId);
  const shown = await imageOf(output, model);
  if (!shown) return;
  const [url, note] = shown;
  if (url) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = "the request's image";
    box.appendChild(img);
  }
  const p = document.createElement("p");
  p.textContent = note;
  box.appendChild(p);
}

/** Who plays a game record: the node's role and account. */
const player = (d) => (d.node || "") + " " + short(d.node_account || "");

/**
 * Every move of `disputes` (both sides' when the node hosts both players), in the
 * order played: a game's position board before its VM steps, each board's range
 * only shrinks, and the clocks (seconds left before each move) only fall.
 */
function movesInOrder(disputes) {
  const moves = disputes.flatMap((d) => (d.history || []).map((m) => [d, m]));
  const board = (m) => (m.board === "positions" ? 0 : 1);
  return moves.sort(([da, a], [db, b]) =>
    Number(BigInt(da.dispute) - BigInt(db.dispute)) || board(a) - board(b) ||
    (b.hi - b.lo) - (a.hi - a.lo) ||
    (b.defender_clock + b.challenger_clock) - (a.defender_clock + a.challenger_clock));
}

/** Seconds from now to unix time `t`, said plainly. */
function countdown(t) {
  const s = Math.round(t - Date.now() / 1000);
  return s > 0 ? `ends in ${s} s` : `ended ${-s} s ago`;
}

/** The request as the chain holds it, read by the page itself. */
async function showChain(id) {
  $("chain-view").hidden = !chain;
  if (!chain) return;
  const c = await chain.watch(id);
  const rows = [
    ["status", c.status],
    ["challenge window", c.challengeDeadline ? countdown(c.challengeDeadline) + " (at " + new Date(c.challengeDeadline * 1000).toLocaleTimeString() + ")" : "opens when a result is posted"],
    ["result", c.submitter ? `version ${c.version} by ${c.submitter}, claim ${short(c.claim)}` : "none posted yet"],
    ["open disputes", String(c.openDisputes)],
    ["callback", c.callback],
  ];
  fill($("chain-state"), rows, (tr, [k, v]) => { cell(tr, k); cell(tr, v); });
  $("chain-state").dataset.status = c.status;
  $("delivered-box").hidden = c.delivered === null && !c.rejected;
  const bytes = c.delivered ? fromHex(c.delivered) : null;
  const model = bytes ? (await api("models")).find((m) => dec(m.id) === c.modelId) : null;
  const image = bytes && (isPng(bytes) || (bytes.length === 32 && model?.kind === "image"));
  $("delivered").textContent = c.rejected ? "(rejected: the error outcome)" : bytes && !image ? bytesText(c.delivered) : "";
  await showDeliveredImage(id, image ? c.delivered : null, model);
  // Asked without the Prompt contract there is no delivered answer to read: the
  // request is done when final.
  const done = c.delivered !== null || c.rejected || (!chain.viaPrompt && c.status === "finalized");
  $("delivered").dataset.final = done ? "yes" : "";
}

let deliveredShown = null;

/** The PNG the callback delivered (inline, or fetched from the node by its hash and checked). */
async function showDeliveredImage(id, delivered, model) {
  const key = id + ":" + delivered;
  if (deliveredShown === key) return;
  const box = $("delivered-image");
  box.replaceChildren();
  if (!delivered) {
    deliveredShown = key;
    return;
  }
  const [url, note] = (await imageOf(delivered, model)) || [null, "not an image"];
  if (url) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = "the delivered image";
    box.appendChild(img);
  }
  const p = document.createElement("p");
  p.textContent = note;
  box.appendChild(p);
  deliveredShown = key;
}

async function showRequest(id) {
  let v;
  try {
    v = await api("requests/" + id);
  } catch (e) {
    if (e.status !== 404) throw e;
    v = { timeline: [{ stage: "not seen by this node yet" }], checks: [], disputes: [], request: null };
  }
  await showChain(id);
  $("request-id").textContent = id;
  $("timeline").replaceChildren(...v.timeline.map((s) => {
    const li = document.createElement("li");
    const b = document.createElement("b");
    b.textContent = s.stage;
    li.appendChild(b);
    const detail = s.block !== undefined ? "block " + s.block : s.tx ? "tx " + short(s.tx) : s.claim ? "claim " + short(s.claim) : s.reason || "";
    li.appendChild(document.createTextNode(detail));
    return li;
  }));
  const r = v.request || {};
  $("request-input").textContent = bytesText(r.input);
  $("request-output").textContent = r.output
    ? bytesText(r.output)
    : r.state === "skipped" || r.state === "failed"
      ? `(this node did not serve it: ${r.state}; what the chain delivered is above)`
      : "(not served yet)";
  await showImage(id, r.output, r.model_id);
  fill($("request-checks"), v.checks, (tr, c) => {
    cell(tr, String(c.version));
    cell(tr, short(c.submitter), "mono");
    cell(tr, short(c.claim), "mono");
    cell(tr, String(c.block));
    cell(tr, c.state + (c.error ? ": " + c.error : ""));
  });
  fill($("request-disputes"), v.disputes, (tr, d) => {
    cell(tr, dec(d.dispute));
    cell(tr, short(d.game), "mono");
    cell(tr, player(d));
    cell(tr, d.defending ? "defending" : "challenging");
    cell(tr, d.state);
    cell(tr, String(d.moves));
  });
  const moves = movesInOrder(v.disputes);
  fill($("request-moves"), moves, (tr, [d, m]) => {
    cell(tr, dec(d.dispute));
    cell(tr, `${d.node || ""} (${d.defending ? "defender" : "challenger"})`);
    cell(tr, m.board);
    cell(tr, `${m.lo}..${m.hi} (${m.hi - m.lo} wide)`);
    cell(tr, m.action);
    cell(tr, `${m.defender_clock} s / ${m.challenger_clock} s`);
    cell(tr, m.gas_used.toLocaleString("en-US"));
  });
  const gas = {};
  for (const [d, m] of moves) {
    const side = d.defending ? "defender" : "challenger";
    gas[side] = (gas[side] || 0) + m.gas_used;
  }
  $("gas-by-side").textContent = Object.keys(gas).length
    ? "gas spent on moves: " + Object.entries(gas).map(([k, g]) => `${k} ${g.toLocaleString("en-US")}`).join(", ")
    : "";
  $("request-json").textContent = JSON.stringify(v, null, 2);
}

const fromHex = (hex) => {
  const bytes = new Uint8Array(Math.max(0, (hex.length - 2) / 2));
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.substr(2 + 2 * i, 2), 16);
  return bytes;
};
const toHex = (bytes) => "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * Re-run request `id` with the core's WebAssembly module: fetch the model's file
 * from the node, check it against the model root the node serves it under (the
 * registered root), run the request's parameters and input, and compare the bytes
 * it would post with the posted output. Returns [ok, message].
 */
async function verify(id) {
  const v = await api("requests/" + id);
  const r = v.request;
  // With chain access the reference is the result on chain (its output hash);
  // without, the output this node recorded.
  const onChain = chain ? await chain.watch(id) : null;
  if (onChain && !onChain.submitter) return [false, "nothing to verify: no result is posted on chain yet"];
  if (!r || (!onChain && !r.output)) return [false, "nothing to verify: this node holds no output for it"];
  if (!v.params) return [false, "this node does not serve the request's model"];
  const model = (await api("models")).find((m) => m.id === r.model_id);
  if (!model) return [false, "this node does not serve the request's model"];
  const w = await wasm();
  const put = (bytes) => {
    const ptr = w.oracle_alloc(bytes.length);
    new Uint8Array(w.memory.buffer, ptr, bytes.length).set(bytes);
    return [ptr, bytes.length];
  };
  const read = (ptr, len) => new Uint8Array(w.memory.buffer, ptr, len).slice();
  const file = await fetch("/api/models/" + dec(model.id) + "/file");
  if (!file.ok) return [false, "the node did not send the model file"];
  const [mp, ml] = put(new Uint8Array(await file.arrayBuffer()));
  const root = toHex(read(w.oracle_model_root(mp, ml), 32));
  if (root !== model.root) {
    w.oracle_free(mp, ml);
    return [false, `the model file's root ${short(root)} is not the registered ${short(model.root)}: not run`];
  }
  // With chain access, the root registered on chain is the reference, not the node's word.
  const registered = chain ? (await chain.model(dec(model.id))).root : null;
  if (registered && root !== registered) {
    w.oracle_free(mp, ml);
    return [false, `the model file's root ${short(root)} is not the root registered on chain ${short(registered)}: not run`];
  }
  const rootNote = registered ? "model root checked against the chain" : "model root checked";
  const [pp, pl] = put(fromHex(v.params));
  const [ip, il] = put(fromHex(r.input));
  const kind = w.oracle_run(mp, ml, pp, pl, ip, il);
  const posted = read(w.oracle_posted(), w.oracle_posted_len());
  const commitment = toHex(read(w.oracle_commitment(), 32));
  for (const [ptr, len] of [[mp, ml], [pp, pl], [ip, il]]) w.oracle_free(ptr, len);
  const what = ["the error outcome", "text", "image"][kind] || "?";
  if (onChain) {
    const hash = await keccak(posted);
    if (hash === onChain.outputHash) {
      return [true, `verified against the chain: this browser's run (${what}, ${rootNote}) posts ${posted.length} bytes whose keccak256 ${short(hash)} is result version ${onChain.version}'s output hash`];
    }
    return [false, `MISMATCH: this browser's run posts ${posted.length} bytes hashing to ${short(hash)}, the chain's result version ${onChain.version} has output hash ${short(onChain.outputHash)}: "${bytesText(toHex(posted)).slice(0, 80)}"`];
  }
  const want = fromHex(r.output);
  const same = posted.length === want.length && posted.every((b, i) => b === want[i]);
  if (same) {
    return [true, `verified: this browser's run (${what}, ${rootNote}) posts the same ${posted.length} bytes, commitment ${short(commitment)}`];
  }
  return [false, `MISMATCH: this browser's run posts other bytes than the recorded output (${posted.length} bytes, commitment ${short(commitment)}): "${bytesText(toHex(posted)).slice(0, 80)}"`];
}

async function runVerify(id) {
  const out = $("verify");
  out.className = "";
  out.textContent = "running the model in this browser…";
  try {
    const [ok, message] = await verify(id);
    out.className = ok ? "ok" : "bad";
    out.textContent = message;
  } catch (e) {
    out.className = "bad";
    out.textContent = "verification failed: " + e.message;
  }
  out.dataset.done = "yes";
}

let verifying = null;

async function refresh() {
  const m = location.hash.match(/^#request\/(\w+)(\/verify)?$/);
  if (m && m[2] && verifying !== m[1]) {
    verifying = m[1];
    runVerify(m[1]);
  }
  if (!m) verifying = null;
  $("request-view").hidden = !m;
  $("list-view").hidden = !!m;
  try {
    if (m) await Promise.all([showNode(), showRequest(m[1])]); else await showList();
    problem("");
  } catch (e) {
    problem("the node did not answer: " + e.message);
  }
  document.body.dataset.loaded = "yes";
}

window.addEventListener("hashchange", () => {
  $("verify").textContent = "";
  refresh();
});
$("ask-form").addEventListener("submit", ask);
$("ask-model").addEventListener("change", showFee);
$("verify-button").addEventListener("click", () => {
  const m = location.hash.match(/^#request\/(\w+)/);
  if (m) runVerify(m[1]);
});
refresh();
connectChain();
setInterval(refresh, REFRESH_MS);
