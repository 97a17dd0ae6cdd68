// Drives the web console in the system's headless Chromium through playwright-core
// (CDP), the way a visitor would: opens the console, waits for its chain module,
// types a prompt, clicks Send, then watches the request's page until the chain
// says its answer was delivered, sampling what the page shows on the way.
//
//   node drive.mjs <console URL> <prompt> [screenshot dir] [timeout s]
//
// With WALLET_RPC=<JSON-RPC URL> the page gets an injected EIP-1193 wallet backed
// by that node's unlocked accounts (for a node that is not a devnet).
//
// Prints one JSON object: the request id, the fee shown, the delivered text (or
// image), the
// chain states and move counts the page showed while watching, the final move
// table and games, and the screenshots taken. Exits non-zero with the reason when
// the page cannot ask or the answer is not delivered in time.
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";

const [url, prompt, shots, timeoutArg] = process.argv.slice(2);
if (!url || prompt === undefined) {
  console.error("usage: node drive.mjs <console URL> <prompt> [screenshot dir] [timeout s]");
  process.exit(2);
}
const timeout = 1000 * Number(timeoutArg || 300);

function systemChromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    try {
      return execFileSync("which", [name], { encoding: "utf8" }).trim();
    } catch {}
  }
  throw new Error("no Chromium: install Debian's chromium (bash .ci/install.sh does)");
}

const browser = await chromium.launch({ executablePath: systemChromium(), args: ["--no-sandbox", "--disable-gpu"] });
const failures = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  if (process.env.WALLET_RPC) {
    // An injected EIP-1193 wallet (window.ethereum) whose requests this script
    // forwards to a node's JSON-RPC with unlocked accounts (anvil's): the page
    // signs through it as through a browser extension.
    await context.exposeFunction("__walletRpc", async (method, params) => {
      const call = method === "eth_requestAccounts" ? "eth_accounts" : method;
      const r = await fetch(process.env.WALLET_RPC, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: call, params: params || [] }),
      });
      const body = await r.json();
      if (body.error) throw new Error(body.error.message);
      return body.result;
    });
    await context.addInitScript(() => {
      window.ethereum = {
        request: ({ method, params }) => window.__walletRpc(method, params),
        on() {},
        removeListener() {},
      };
    });
  }
  const page = await context.newPage();
  page.on("pageerror", (e) => failures.push("page error: " + e.message));
  await page.goto(url);
  await page.waitForSelector("body[data-chain]", { timeout: 30000 });
  const signer = await page.textContent("#ask-signer");
  if ((await page.getAttribute("body", "data-chain")) !== "ready") throw new Error("the page cannot ask: " + signer);
  await page.waitForFunction(() => document.querySelector("#ask-model").options.length > 0);
  await page.waitForFunction(() => / ETH$/.test(document.querySelector("#ask-fee").textContent), null, { timeout: 30000 });
  const fee = await page.textContent("#ask-fee");
  const askParams = await page.textContent("#ask-params");
  await page.fill("#ask-prompt", prompt);
  if (shots) await page.screenshot({ path: `${shots}/ask.png` });
  await page.click("#ask-send");
  await page.waitForURL(/#request\/\d+$/, { timeout: 60000 });
  const id = page.url().split("/").pop();

  // Watch: sample the page (it refreshes itself every 2 s) until delivered.
  const seen = { status: [], moves: [], window: [] };
  const start = Date.now();
  let shotDuringGame = false;
  for (;;) {
    const sample = await page.evaluate(() => ({
      status: document.querySelector("#chain-state").dataset.status || "",
      window: Array.from(document.querySelectorAll("#chain-state tr"))
        .map((tr) => tr.textContent)
        .find((t) => t.startsWith("challenge window")) || "",
      moves: Array.from(document.querySelectorAll("#request-moves tr")).filter((tr) => tr.children.length > 1).length,
      final: document.querySelector("#delivered").dataset.final === "yes",
    }));
    if (sample.status && seen.status.at(-1) !== sample.status) seen.status.push(sample.status);
    if (seen.moves.at(-1) !== sample.moves) seen.moves.push(sample.moves);
    if (/ends in/.test(sample.window) && seen.window.length < 3) seen.window.push(sample.window);
    if (shots && !shotDuringGame && sample.status === "disputed" && sample.moves >= 4) {
      await page.screenshot({ path: `${shots}/dispute.png`, fullPage: true });
      shotDuringGame = true;
    }
    if (sample.final) break;
    if (Date.now() - start > timeout) throw new Error(`request ${id} not delivered in ${timeout / 1000} s; the page showed ${JSON.stringify(seen)}`);
    await page.waitForTimeout(500);
  }
  // One more refresh so the tables hold the finished games.
  await page.waitForTimeout(2500);
  // Verify in this browser: the core's wasm re-runs the request.
  await page.click("#verify-button");
  await page.waitForSelector("#verify[data-done=yes]", { timeout: 120000 });
  const verify = await page.textContent("#verify");
  const table = (sel) => page.$$eval(sel + " tr", (rows) =>
    rows.filter((tr) => tr.children.length > 1).map((tr) => Array.from(tr.children, (td) => td.textContent)));
  const result = {
    id,
    fee,
    signer,
    ask_params: askParams,
    delivered: await page.textContent("#delivered"),
    verify,
    // An image answer: the data URL the page shows and what it says about it.
    image: await page.$eval("#delivered-image", (box) => ({
      src: box.querySelector("img")?.getAttribute("src") || null,
      note: box.querySelector("p")?.textContent || "",
    })),
    seen,
    chain: await table("#chain-state"),
    moves: await table("#request-moves"),
    games: await table("#request-disputes"),
    gas: await page.textContent("#gas-by-side"),
    output: await page.textContent("#request-output"),
    screenshots: [],
  };
  const dataUrl = /^data:image\/png;base64,(.*)$/.exec(result.image.src || "");
  result.image.png_hex = dataUrl ? Buffer.from(dataUrl[1], "base64").toString("hex") : null;
  if (shots) {
    await page.screenshot({ path: `${shots}/delivered.png`, fullPage: true });
    result.screenshots = ["ask.png", ...(shotDuringGame ? ["dispute.png"] : []), "delivered.png"];
  }
  // Back to the list: the models, operators and figures as the page shows them.
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector("#operators td")?.textContent !== "none yet" &&
    !Array.from(document.querySelectorAll("#operators td")).some((td) => td.textContent === "–"), null, { timeout: 30000 });
  result.models = await table("#models");
  result.operators = await table("#operators");
  result.figures = await table("#figures");
  if (shots) {
    await page.screenshot({ path: `${shots}/explore.png`, fullPage: true });
    result.screenshots.push("explore.png");
  }
  result.failures = failures;
  console.log(JSON.stringify(result));
} catch (e) {
  console.error(e.message + (failures.length ? "\n" + failures.join("\n") : ""));
  process.exitCode = 1;
} finally {
  await browser.close();
}
