// Times, in headless Chromium, how long a large flow takes to be laid out and interactive:
//   node e2e/bench.mjs BASE_URL RUNS PATH...
// (run by `cargo bench -p choreoscope --bench ui`, which fills a store and serves it). Per run, a
// fresh page: navigation → the API's answer → dagre layout → React Flow's first render → a click on
// a node shows its details. Prints each path's median and worst run.
import { launch } from "./browser.mjs";

const [base, runsText, ...paths] = process.argv.slice(2);
const runs = Number(runsText);
if (!base || !runs || paths.length === 0) {
  console.error("usage: node e2e/bench.mjs BASE_URL RUNS PATH...");
  process.exit(2);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const max = (xs) => Math.max(...xs);
const TARGET_MS = 2000;

const browser = await launch();
let failed = false;
try {
  console.log(`${"flow".padEnd(28)} ${"nodes".padStart(6)} ${"api ms".padStart(8)} ${"layout ms".padStart(10)} ${"drawn ms".padStart(9)} ${"interactive ms (median / worst)".padStart(32)}`);
  for (const path of paths) {
    const totals = [];
    const apis = [];
    const layouts = [];
    const renders = [];
    let nodes = 0;
    for (let i = 0; i < runs; i++) {
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await context.newPage();
      const started = Date.now();
      await page.goto(base + path);
      await page.waitForSelector('[data-testid="flow-canvas"][data-ready="true"] .react-flow__node', { timeout: 60_000 });
      renders.push(Date.now() - started);
      // Interactive: a click on a rendered node selects it and its details appear.
      await page.locator(".react-flow__node").first().click();
      await page.waitForSelector('[data-testid="event-details"]', { timeout: 60_000 });
      totals.push(Date.now() - started);
      const timing = await page.evaluate(() => ({
        api: performance
          .getEntriesByType("resource")
          .filter((e) => e.name.includes("/api/v1/keys/"))
          .map((e) => e.duration)[0],
        layout: performance.getEntriesByName("choreoscope:layout")[0]?.duration,
        nodes: Number(document.querySelector('[data-testid="flow-canvas"]').getAttribute("data-node-count")),
      }));
      apis.push(timing.api ?? NaN);
      layouts.push(timing.layout ?? NaN);
      nodes = timing.nodes;
      await context.close();
    }
    const m = median(totals);
    failed ||= m >= TARGET_MS;
    console.log(
      `${path.padEnd(28)} ${String(nodes).padStart(6)} ${median(apis).toFixed(0).padStart(8)} ${median(layouts).toFixed(0).padStart(10)} ${String(median(renders)).padStart(9)} ${`${m} / ${max(totals)}`.padStart(32)}`,
    );
  }
  console.log(`target: a 2,000-event flow interactive in under ${TARGET_MS} ms (median) — ${failed ? "NOT met" : "met"}`);
} finally {
  await browser.close();
}
