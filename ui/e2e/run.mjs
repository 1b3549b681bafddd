// Runs the viewer's end-to-end tests against the real collector filled by the demo choreography:
// starts `choreoscope demo` (embedded broker, sample services, collector, API and viewer) on a free
// port, waits until the demo's trouble cases are stored, runs e2e/*.test.mjs in headless Chromium,
// stops the demo. CHOREOSCOPE_BIN names the binary (default: ../target/debug/choreoscope).
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, rmSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const bin = resolve(process.env.CHOREOSCOPE_BIN ?? join(process.cwd(), "..", "target", "debug", "choreoscope"));
if (!existsSync(bin)) {
  console.error(`no choreoscope binary at ${bin}: cargo build -p choreoscope (or set CHOREOSCOPE_BIN)`);
  process.exit(2);
}

const port = await new Promise((ok) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => ok(p));
  });
});
const dir = mkdtempSync(join(tmpdir(), "choreoscope-e2e-"));
const base = `http://127.0.0.1:${port}`;
const demo = spawn(bin, ["demo", "--listen", `127.0.0.1:${port}`, "--db", join(dir, "demo.db"), "--rate", "4"], {
  stdio: ["ignore", "inherit", "inherit"],
  env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn,choreoscope_sdk=error,rdkafka=off,librdkafka=off" },
});
let demoExited = false;
demo.on("exit", () => (demoExited = true));

async function json(path) {
  const r = await fetch(base + path);
  return r.ok ? r.json() : null;
}

/** Waits until the demo has stored what the tests look at. */
async function waitForDemo() {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (demoExited) throw new Error("the demo exited early");
    try {
      const o9 = await json("/api/v1/keys/order.id/o-1009");
      const o11 = await json("/api/v1/keys/order.id/o-1011");
      const legacy = await json("/api/v1/search?source=legacy-erp&limit=1");
      const twice = o9?.graph.nodes.some((n) => n.flags.includes("duplicate_reaction"));
      const emailed = o11?.graph.nodes.some((n) => n.type === "EmailSent");
      if (twice && emailed && legacy?.events.length > 0) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("the demo did not store its examples within 120 s");
}

const testFiles = readdirSync("e2e")
  .filter((f) => f.endsWith(".test.mjs"))
  .map((f) => join("e2e", f));

let code = 1;
try {
  await waitForDemo();
  const tests = spawn(process.execPath, ["--test", "--test-concurrency=1", ...testFiles], {
    stdio: "inherit",
    env: { ...process.env, CHOREOSCOPE_URL: base, CHOREOSCOPE_BIN: bin, CHOREOSCOPE_DEMO_DB: join(dir, "demo.db") },
  });
  code = await new Promise((ok) => tests.on("exit", (c) => ok(c ?? 1)));
} catch (e) {
  console.error(e.message);
} finally {
  demo.kill("SIGTERM");
  await new Promise((ok) => (demoExited ? ok() : demo.on("exit", ok)));
  rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
