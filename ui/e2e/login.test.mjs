// The viewer's login in a real headless Chromium: a collector serving the demo's store under
// `--auth tokens` (started here, over the store e2e/run.mjs's demo fills) answers the viewer's
// API calls with 401 until the user logs in with an API token; a viewer-role token then sees the
// flow without payloads, and a token limited to one topic sees other topics' events as opaque
// nodes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, shot } from "./browser.mjs";

const BIN = process.env.CHOREOSCOPE_BIN;
const DB = process.env.CHOREOSCOPE_DEMO_DB;
if (!BIN || !DB) throw new Error("run the e2e tests with `npm run e2e` (it sets CHOREOSCOPE_BIN and CHOREOSCOPE_DEMO_DB)");

let browser;
let server;
let base;
let dir;
const tokens = {};

const freePort = () =>
  new Promise((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => ok(p));
    });
  });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "choreoscope-login-"));
  const entries = [];
  for (const [name, role, topic] of [
    ["vera", "viewer", undefined],
    ["otto", "reader", "orders"],
  ]) {
    const args = ["token", "new", "--name", name, "--role", role, ...(topic ? ["--topic", topic] : [])];
    const { stdout, stderr } = await run(args);
    tokens[name] = stdout.trim();
    entries.push(stderr.split("\n").filter((l) => !l.startsWith("#")).join("\n"));
  }
  const file = join(dir, "tokens.toml");
  writeFileSync(file, entries.join("\n"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(BIN, ["serve", "--db", `sqlite://${DB}`, "--listen", `127.0.0.1:${port}`, "--auth", "tokens", "--auth-tokens", file], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(args) {
  return new Promise((ok, fail) => {
    const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => (code === 0 ? ok({ stdout, stderr }) : fail(new Error(stderr))));
  });
}

async function logIn(page, token) {
  await page.goto(`${base}/flows/key/order.id/o-1009`);
  await page.getByTestId("login").waitFor();
  await page.getByTestId("login-token").fill(token);
  await page.getByTestId("login-submit").click();
  await page.waitForSelector('[data-testid="flow-canvas"][data-ready="true"]');
}

test("without a token the viewer shows its login page, and the API answers 401", async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/flows/key/order.id/o-1009`);
  await page.getByTestId("login").waitFor();
  assert.match(await page.getByTestId("login-reason").textContent(), /Authorization: Bearer/);
  assert.equal((await fetch(`${base}/api/v1/keys/order.id/o-1009`)).status, 401);
  await shot(page, "login");
  await page.close();
});

test("a wrong token is refused on the login page", async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/`);
  await page.getByTestId("login").waitFor();
  await page.getByTestId("login-token").fill("chs_not-a-token");
  await page.getByTestId("login-submit").click();
  assert.match(await page.getByTestId("login-error").textContent(), /not one of this collector's API tokens/);
  await page.close();
});

test("a viewer logs in, sees the flow and who they are, but no payload", async () => {
  const page = await (await browser.newContext()).newPage();
  await logIn(page, tokens.vera);
  assert.match(await page.getByTestId("who").textContent(), /vera · viewer/);
  await page.locator(".react-flow__node-event").first().click();
  await page.getByTestId("withheld").waitFor();
  assert.match(await page.getByTestId("withheld").textContent(), /payload/);
  await shot(page, "login-viewer");
  await page.getByTestId("logout").click();
  await page.getByTestId("login").waitFor();
  await page.close();
});

test("a token limited to one topic sees other topics' events as opaque nodes", async () => {
  const page = await (await browser.newContext()).newPage();
  await logIn(page, tokens.otto);
  const opaque = page.locator('[data-testid="event-node"][data-opaque="true"]');
  await opaque.first().waitFor();
  assert.ok((await opaque.count()) > 0);
  assert.match(await opaque.first().textContent(), /not shown to your role/);
  const shown = page.locator('[data-testid="event-node"]:not([data-opaque])');
  assert.ok((await shown.count()) > 0, "the orders topic's events are shown");
  await shot(page, "login-one-topic");
  await page.close();
});
