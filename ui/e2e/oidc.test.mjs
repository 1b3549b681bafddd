// The viewer's OpenID Connect login in a real headless Chromium: a real OpenID provider
// (oidc-provider, tests/oidc/provider.mjs) and a collector serving the demo's store under
// `--auth oidc`, both started here. The login page offers the identity provider; the user signs
// in on the provider's own login form, comes back through the authorization-code flow (PKCE) with
// a session, sees the flow with the role their group is granted, and logs out.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { launch, shot } from "./browser.mjs";

const BIN = process.env.CHOREOSCOPE_BIN;
const DB = process.env.CHOREOSCOPE_DEMO_DB;
if (!BIN || !DB) throw new Error("run the e2e tests with `npm run e2e` (it sets CHOREOSCOPE_BIN and CHOREOSCOPE_DEMO_DB)");

let browser;
let provider;
let server;
let base;
let dir;

const freePort = () =>
  new Promise((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => ok(p));
    });
  });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "choreoscope-oidc-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  provider = spawn(process.execPath, ["provider.mjs"], {
    cwd: resolve(process.cwd(), "..", "tests", "oidc"),
    stdio: ["ignore", "pipe", "ignore"],
    env: { ...process.env, REDIRECT_URIS: `${base}/auth/callback` },
  });
  const issuer = await new Promise((ok, fail) => {
    provider.on("exit", () => fail(new Error("the OpenID provider exited: (cd tests/oidc && npm ci)")));
    createInterface({ input: provider.stdout }).on("line", (line) => {
      if (line.startsWith("issuer ")) ok(line.slice("issuer ".length));
    });
  });
  const config = join(dir, "choreoscope.toml");
  writeFileSync(config, '[access]\ndefault_role = "viewer"\n\n[[access.grants]]\ngroup = "platform"\nrole = "admin"\n');
  server = spawn(
    BIN,
    [
      "serve",
      "--db",
      `sqlite://${DB}`,
      "--listen",
      `127.0.0.1:${port}`,
      "--config",
      config,
      "--auth",
      "oidc",
      "--oidc-issuer",
      issuer,
      "--oidc-client-id",
      "choreoscope",
      "--public-url",
      base,
    ],
    {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, RUST_LOG: "warn", CHOREOSCOPE_OIDC_CLIENT_SECRET: "choreoscope-secret" },
    },
  );
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
  provider?.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the login page offers the identity provider, and the API answers 401 without a session", async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/flows/key/order.id/o-1009`);
  await page.getByTestId("login-oidc").waitFor();
  assert.match(await page.getByTestId("login-oidc").textContent(), /Log in with your identity provider/);
  assert.equal(await page.getByTestId("login-token").count(), 0);
  assert.equal((await fetch(`${base}/api/v1/keys/order.id/o-1009`)).status, 401);
  await shot(page, "login-oidc");
  await page.close();
});

test("a user logs in on the provider's form, sees the flow with their group's role, and logs out", async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/flows/key/order.id/o-1009`);
  await page.getByTestId("login-oidc").click();
  await page.locator('input[name="login"]').fill("alice");
  await page.locator('input[name="password"]').fill("any password");
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(`${base}/`);
  await page.goto(`${base}/flows/key/order.id/o-1009`);
  await page.waitForSelector('[data-testid="flow-canvas"][data-ready="true"]');
  assert.match(await page.getByTestId("who").textContent(), /alice · admin/);
  await shot(page, "login-oidc-signed-in");
  await page.getByTestId("logout").click();
  await page.getByTestId("login-oidc").waitFor();
  await page.close();
});
