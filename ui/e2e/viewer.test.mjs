// The viewer in a real headless Chromium against the real collector filled by the demo (run by
// e2e/run.mjs, which sets CHOREOSCOPE_URL). Screenshots of every view go to the artifacts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, shot } from "./browser.mjs";

const BASE = process.env.CHOREOSCOPE_URL;
if (!BASE) throw new Error("CHOREOSCOPE_URL is not set: run the e2e tests with `npm run e2e`");

let browser;
let page;
const pageErrors = [];
/** What Chromium refused under the collector's Content-Security-Policy, over every test. */
const cspViolations = [];

before(async () => {
  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  // Chromium reports each refusal of the policy as a console error.
  page.on("console", (m) => {
    if (m.type() === "error" && m.text().includes("Content Security Policy")) cspViolations.push(m.text());
  });
  page.on("dialog", (d) => {
    pageErrors.push(`dialog opened: ${d.message()}`);
    return d.dismiss();
  });
});

after(async () => {
  await browser?.close();
});

async function api(path) {
  const r = await fetch(BASE + path);
  assert.equal(r.status, 200, `${path} answered ${r.status}`);
  return r.json();
}

/** Waits for the flow canvas and returns its node and edge counts (model and DOM). */
async function canvasCounts() {
  const canvas = page.getByTestId("flow-canvas");
  await canvas.waitFor();
  await page.waitForSelector('[data-testid="flow-canvas"][data-ready="true"]');
  await page.waitForSelector(".react-flow__node");
  return {
    nodes: Number(await canvas.getAttribute("data-node-count")),
    edges: Number(await canvas.getAttribute("data-edge-count")),
    // Events and causal links only: the ghosts of missing reactions are counted apart.
    domNodes: await page.locator(".react-flow__node-event").count(),
    domEdges: await page.locator(".react-flow__edge:not(.ghost-edge)").count(),
  };
}

const selectedType = () => page.getByTestId("details-type").textContent();

/**
 * Waits (bounded) until the API says o-1007's flow is stalled — the demo's order whose bank never
 * answers: stalled 10 s after its PaymentCreated once the model has 20 samples of that step — and
 * returns its entry of `/api/v1/flows?status=stalled`.
 */
async function stalledO1007(timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await api("/api/v1/flows?status=stalled&limit=500");
    const flow = answer.flows.find((f) => f.keys.some((k) => k.name === "order.id" && k.value === "o-1007"));
    if (flow) return flow;
    if (Date.now() > deadline) throw new Error(`o-1007 was not stalled within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

test("the start page offers the key names seen as suggestions", async () => {
  await page.goto(BASE + "/");
  await page.getByTestId("home").waitFor();
  await page.getByTestId("search-input").fill("ord");
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#key-suggestions option")].some((o) => o.value === "order.id="),
  );
  await shot(page, "01-home");
  // A key name on the start page starts a search by that key.
  await page.getByRole("button", { name: "order.id" }).click();
  assert.equal(await page.getByTestId("search-input").inputValue(), "order.id=");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "search-input");
});

test("searching a stalled order shows its three events, two links, and where the flow stopped", async () => {
  await page.goto(BASE + "/");
  await page.getByTestId("search-input").fill("o-1007");
  await page.getByTestId("search-input").press("Enter");
  await page.waitForURL("**/flows/key/order.id/o-1007");
  const counts = await canvasCounts();
  assert.deepEqual(counts, { nodes: 3, edges: 2, domNodes: 3, domEdges: 2 });
  const ends = await page.getByTestId("flow-end").allTextContents();
  assert.equal(ends.length, 1);
  assert.match(ends[0], /ends at PaymentCreated \(payment\), idle/);
  const lanes = await page.getByTestId("timeline-lane").allTextContents();
  assert.deepEqual(lanes, ["shop", "order", "payment"]);
  const endNode = page.locator('[data-testid="event-node"][data-flags~="end"]');
  assert.equal(await endNode.count(), 1);
  assert.match(await endNode.textContent(), /PaymentCreated/);
  await shot(page, "02-flow-stalled-order");
});

test("a flow's graph has the nodes and edges the API reports, with the double processing flagged", async () => {
  const answer = await api("/api/v1/keys/order.id/o-1009");
  await page.goto(BASE + "/search?q=" + encodeURIComponent("order.id=o-1009"));
  await page.waitForURL("**/flows/key/order.id/o-1009");
  const counts = await canvasCounts();
  assert.equal(counts.nodes, answer.graph.nodes.length);
  assert.equal(counts.edges, answer.graph.edges.length);
  assert.ok(counts.nodes >= 6, `an order that got through has at least 6 events, saw ${counts.nodes}`);
  const twice = page.locator('[data-testid="event-node"][data-flags~="duplicate_reaction"]');
  assert.equal(await twice.count(), 1);
  assert.match(await twice.textContent(), /InventoryReserved/);
  await shot(page, "03-flow-processed-twice");
});

test("opening an event shows its details, and its cause link leads to the cause", async () => {
  await page.goto(BASE + "/flows/key/order.id/o-1007");
  await canvasCounts();
  await page.locator('[data-testid="event-node"][data-flags~="end"]').click();
  await page.getByTestId("event-details").waitFor();
  assert.equal(await selectedType(), "PaymentCreated");
  assert.match(page.url(), /\?event=/);
  const detailsText = await page.getByTestId("event-details").textContent();
  assert.match(detailsText, /payments\[\d+\]@\d+/, "topic[partition]@offset is shown");
  assert.ok((await page.getByTestId("headers").locator("tr").count()) >= 4, "headers are listed");
  assert.match(await page.getByTestId("payload").textContent(), /^\{\n  "amount": \d+,\n/, "payload is pretty JSON");
  await shot(page, "04-event-details");

  await page.getByTestId("cause-link").click();
  await page.waitForFunction(() => document.querySelector('[data-testid="details-type"]')?.textContent === "OrderCreated");
  const cause = await page.getByTestId("details-id").textContent();
  const answer = await api("/api/v1/keys/order.id/o-1007");
  const orderCreated = answer.graph.nodes.find((n) => n.type === "OrderCreated");
  assert.equal(cause, orderCreated.id);
  assert.match(page.url(), new RegExp(`event=${orderCreated.id}`));

  // The same event on its own page, with its lineage.
  await page.goto(BASE + "/events/" + orderCreated.id);
  await page.getByTestId("event-view").waitFor();
  await page.getByTestId("event-details").waitFor();
  assert.equal(await selectedType(), "OrderCreated");
  const counts = await canvasCounts();
  assert.equal(counts.nodes, 3);
  await page.getByTestId("cause-link").click();
  await page.waitForURL(`**/events/${answer.graph.nodes.find((n) => n.type === "CartCheckedOut").id}`);
  await page.waitForFunction(() => document.querySelector('[data-testid="details-type"]')?.textContent === "CartCheckedOut");
  // The cause's own page draws its lineage too: the same three events, seen from the root.
  assert.equal((await canvasCounts()).nodes, 3);
  await shot(page, "05-event-page");
});

test("arrow keys move between causes and reactions", async () => {
  await page.goto(BASE + "/flows/key/order.id/o-1007");
  await canvasCounts();
  await page.getByTestId("flow-canvas").focus();
  await page.keyboard.press("Home");
  await page.getByTestId("event-details").waitFor();
  const typeIs = (t) =>
    page.waitForFunction((t) => document.querySelector('[data-testid="details-type"]')?.textContent === t, t);
  await typeIs("CartCheckedOut");
  await page.keyboard.press("ArrowRight");
  await typeIs("OrderCreated");
  await page.keyboard.press("ArrowRight");
  await typeIs("PaymentCreated");
  await page.keyboard.press("ArrowLeft");
  await typeIs("OrderCreated");
  await page.keyboard.press("Escape");
  await page.getByTestId("event-details").waitFor({ state: "detached" });
});

test("the choreography map shows services and topics with the API's edges", async () => {
  await page.goto(BASE + "/");
  await page.getByRole("link", { name: "Map" }).click();
  await page.waitForURL("**/map");
  const canvas = page.getByTestId("map-canvas");
  await canvas.waitFor();
  await page.waitForSelector(".react-flow__node");
  // The demo keeps running: a service or topic may appear between the page's read and ours. The
  // page and the API must agree on one read; reload until they do (a few tries).
  let topology;
  for (let attempt = 0; ; attempt++) {
    topology = await api("/api/v1/topology");
    const shown = [Number(await canvas.getAttribute("data-node-count")), Number(await canvas.getAttribute("data-edge-count"))];
    if (shown[0] === topology.nodes.length && shown[1] === topology.edges.length) break;
    assert.ok(attempt < 4, `the map shows ${shown} nodes and edges, the API ${topology.nodes.length} and ${topology.edges.length}`);
    await page.reload();
    await page.waitForSelector(".react-flow__node");
  }
  const labels = await page.locator(".react-flow__node").allTextContents();
  for (const name of ["shop", "payment", "bank", "payments", "orders"]) {
    assert.ok(labels.includes(name), `${name} is on the map (${labels.join(", ")})`);
  }
  const produced = topology.edges.find((e) => e.kind === "produce");
  const edgeLabel = await page.locator(`[data-id="produce:${produced.from}->${produced.to}"]`).getAttribute("aria-label");
  const literal = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  assert.match(edgeLabel, new RegExp(`^${literal(produced.from)} produces to ${literal(produced.to)}: \\d+`));
  await page.getByRole("button", { name: "15 min" }).click();
  await page.waitForURL(/\/map\?from=/);
  await shot(page, "06-map");
});

test("an HTML payload is shown as text and runs nothing", async () => {
  const page1 = await api("/api/v1/search?source=legacy-erp&limit=1");
  const legacy = page1.events[0];
  await page.goto(BASE + "/events/" + encodeURIComponent(legacy.id));
  await page.getByTestId("payload").waitFor();
  const payload = await page.getByTestId("payload").textContent();
  assert.match(payload, /note=<img src=x onerror="document.title='pwned'">/);
  assert.equal(await page.locator('[data-testid="event-details"] img').count(), 0, "no <img> element was created");
  assert.equal(await page.title(), "Choreoscope");
  const problems = await page.getByTestId("problems").textContent();
  assert.match(problems, /traceparent/);
  assert.match(await page.getByTestId("headers").textContent(), /base64:\/\/4AQQ==/);
  await shot(page, "07-untrusted-payload");
  assert.deepEqual(pageErrors, []);
});

test("deep links load directly, unknown ids say so, and the theme switches", async () => {
  await page.goto(BASE + "/events/no-such-event");
  assert.match(await page.getByTestId("error").first().textContent(), /Not found/);
  await page.goto(BASE + "/flows/key/order.id/o-1007?event=nonsense");
  await canvasCounts();
  const before = await page.evaluate(() => document.documentElement.dataset.theme);
  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const bgBefore = await bg();
  await page.getByTestId("theme-toggle").click();
  const afterTheme = await page.evaluate(() => document.documentElement.dataset.theme);
  assert.notEqual(afterTheme, before);
  assert.notEqual(await bg(), bgBefore);
  await shot(page, `08-theme-${afterTheme}`);
  await page.getByTestId("theme-toggle").click();
});

test("a flow view grows live as the order's events arrive", async () => {
  // The next orders are not placed yet: watch one a few numbers ahead of the newest.
  const latest = await api("/api/v1/search?type=CartCheckedOut&limit=1");
  const newest = Number(/o-(\d+)/.exec(latest.events[0].subject)[1]);
  const order = `o-${newest + 6}`;
  await page.goto(BASE + `/flows/key/order.id/${order}`);
  await page.waitForSelector('[data-testid="live-state"].live-live');
  await page.waitForSelector('[data-testid="flow-canvas"]', { timeout: 30_000 });
  await page.waitForFunction(
    () => Number(document.querySelector('[data-testid="flow-canvas"]')?.getAttribute("data-node-count")) >= 3,
    null,
    { timeout: 30_000 },
  );
  const updates = await page.getByTestId("live-state").textContent();
  assert.match(updates, /\d+ updates?/);
  await shot(page, "09-live-flow");
});

test("the start page leads with what needs attention: o-1007's flow among the stalled, linked", async () => {
  const stalled = await stalledO1007();
  await page.goto(BASE + "/");
  const group = page.locator('[data-testid="attention-group"][data-status="stalled"]', {
    has: page.locator(`[data-testid="attention-flow"][data-flow="${stalled.flow}"]`),
  });
  await group.waitFor();
  assert.match(await group.locator("h3").textContent(), /^\s*\d+ flows? stalled after payment\/PaymentCreated, waiting for bank/);
  const row = group.locator(`[data-testid="attention-flow"][data-flow="${stalled.flow}"]`);
  const text = await row.textContent();
  assert.match(text, /order\.id=o-1007/);
  assert.match(text, /overdue \d/);
  const href = await row.locator("a").first().getAttribute("href");
  assert.equal(href, `/flows/correlation/${encodeURIComponent(stalled.flow)}`);
  assert.ok(Number(await page.getByTestId("count-stalled").locator("strong").textContent()) >= 1);
  await shot(page, "10-needs-attention");
  // The link leads to the flow.
  await row.locator("a").first().click();
  await page.waitForURL(`**/flows/correlation/${stalled.flow}`);
  await canvasCounts();
});

test("a stalled flow's banner says it waits for the bank, and its graph draws the missing reaction", async () => {
  const stalled = await stalledO1007();
  await page.goto(BASE + "/flows/key/order.id/o-1007");
  await canvasCounts();
  const banner = page.locator('[data-testid="flow-status"][data-status="stalled"]');
  await banner.waitFor();
  const text = await banner.textContent();
  assert.match(text, /Stalled/);
  assert.match(text, /waiting for (a reaction from bank|PaymentConfirmed from bank) after PaymentCreated \(payment\) — \d.* overdue; \d+ % of \d+ occurrences, learned/);
  // The ghost: after PaymentCreated, dashed, naming the bank, overdue.
  const after = stalled.missing[0].after_event;
  const ghost = page.locator(`[data-testid="ghost-node"][data-after="${after}"]`);
  await ghost.waitFor();
  assert.match(await ghost.textContent(), /bank/);
  assert.match(await ghost.textContent(), /overdue \d/);
  assert.equal(await ghost.evaluate((el) => getComputedStyle(el).borderTopStyle), "dashed");
  assert.equal(await page.locator(".react-flow__edge.ghost-edge").count(), await page.getByTestId("ghost-node").count());
  // Laid out like a reaction: right of the event it should follow.
  const box = async (l) => (await l.boundingBox()) ?? assert.fail("not drawn");
  const payment = await box(page.locator(`[data-testid="event-node"][data-event-id="${after}"]`));
  assert.ok((await box(ghost)).x > payment.x + payment.width, "the ghost is right of PaymentCreated");
  await shot(page, "11-flow-stalled-banner-ghost");
});

test("the map colours the edge the stalled flows wait on, legibly at its default fit", async () => {
  const stalled = await stalledO1007();
  const edgeId = "consume:topic:payments->service:bank";
  const deadline = Date.now() + 60_000;
  while (!(await api("/api/v1/topology")).edges.some((e) => `${e.kind}:${e.from}->${e.to}` === edgeId && e.stalled > 0)) {
    assert.ok(Date.now() < deadline, `the map never counted ${stalled.flow} as stalled on ${edgeId}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  await page.goto(BASE + "/map");
  const edge = page.locator(`.react-flow__edge[data-id="${edgeId}"]`);
  await edge.waitFor();
  assert.match(await edge.getAttribute("class"), /map-stalled/);
  assert.match(await edge.getAttribute("aria-label"), /\d+ stalled/);
  const colours = await page.evaluate((id) => {
    const path = document.querySelector(`.react-flow__edge[data-id="${id}"] .react-flow__edge-path`);
    const probe = document.createElement("div");
    probe.style.color = "var(--stalled)";
    document.body.append(probe);
    const stalledColour = getComputedStyle(probe).color;
    probe.remove();
    return { stroke: getComputedStyle(path).stroke, stalled: stalledColour };
  }, edgeId);
  assert.equal(colours.stroke, colours.stalled);
  await page.getByTestId("map-legend").waitFor();
  // Legible without zooming: every label at least 11 px on screen at the default fit.
  await page.waitForTimeout(300);
  const sizes = await page.evaluate(() => {
    const viewport = document.querySelector(".react-flow__viewport");
    const zoom = new DOMMatrix(getComputedStyle(viewport).transform).a;
    const px = (el) => parseFloat(getComputedStyle(el).fontSize) * zoom;
    return {
      zoom,
      edgeLabels: [...document.querySelectorAll('[data-testid="map-edge-label"]')].map(px),
      nodes: [...document.querySelectorAll(".react-flow__node")].map(px),
    };
  });
  assert.ok(sizes.edgeLabels.length > 0);
  assert.ok(Math.min(...sizes.edgeLabels) >= 11, `edge labels at ${Math.min(...sizes.edgeLabels).toFixed(1)} px (zoom ${sizes.zoom})`);
  assert.ok(Math.min(...sizes.nodes) >= 11, `node labels at ${Math.min(...sizes.nodes).toFixed(1)} px`);
  await shot(page, "12-map-health");
});

/**
 * Waits (bounded) until the API says o-1023's flow failed — the demo's first dead-lettered order:
 * inventory gives up on the bank's PaymentConfirmed and copies it to `bank-dlt` with Spring
 * Kafka's headers — and returns its entry of `/api/v1/flows?status=failed`.
 */
async function failedO1023(timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await api("/api/v1/flows?status=failed&limit=500");
    const flow = answer.flows.find((f) => f.keys.some((k) => k.name === "order.id" && k.value === "o-1023"));
    if (flow) return flow;
    if (Date.now() > deadline) throw new Error(`o-1023 did not fail within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The colour a CSS variable (`--failed`, `--stalled`) resolves to in the page's theme. */
const cssColour = (name) =>
  page.evaluate((name) => {
    const probe = document.createElement("div");
    probe.style.color = `var(${name})`;
    document.body.append(probe);
    const colour = getComputedStyle(probe).color;
    probe.remove();
    return colour;
  }, name);

const EXCEPTION = /java\.lang\.IllegalStateException: SKU-42 is out of stock in every warehouse/;

test("the start page lists o-1023's failed flow first, in red, linked, with why it failed", async () => {
  const failed = await failedO1023();
  assert.equal(failed.failures[0].dead_letter_topic, "bank-dlt");
  await stalledO1007();
  await page.goto(BASE + "/");
  const group = page.locator('[data-testid="attention-group"][data-status="failed"]', {
    has: page.locator(`[data-testid="attention-flow"][data-flow="${failed.flow}"]`),
  });
  await group.waitFor();
  assert.match(await group.locator("h3").textContent(), /^\s*\d+ flows? failed at bank\/PaymentConfirmed\s*$/);
  const row = group.locator(`[data-testid="attention-flow"][data-flow="${failed.flow}"]`);
  assert.match(await row.textContent(), /order\.id=o-1023/);
  // Why it failed: on its row, or once under the title when every flow listed failed for it.
  const shared = group.getByTestId("attention-shared");
  const why = (await shared.count()) > 0 ? await shared.textContent() : await row.textContent();
  assert.match(why, /demo-inventory/);
  assert.match(why, EXCEPTION);
  assert.match(why, /dead-lettered to bank-dlt/);
  assert.equal(await row.locator("a").first().getAttribute("href"), `/flows/correlation/${encodeURIComponent(failed.flow)}`);
  assert.ok(Number(await page.getByTestId("count-failed").locator("strong").textContent()) >= 1);
  // Failed groups come first, red; the stalled ones after, amber.
  const statuses = await page.getByTestId("attention-group").evaluateAll((gs) => gs.map((g) => g.dataset.status));
  assert.equal(statuses[0], "failed", `groups in order: ${statuses.join(", ")}`);
  assert.ok(statuses.includes("stalled"));
  assert.deepEqual(statuses, [...statuses].sort((a, b) => Number(a === "stalled") - Number(b === "stalled")), "no failed group after a stalled one");
  const colourOf = (status, what) =>
    page
      .locator(`[data-testid="attention-group"][data-status="${status}"]`)
      .first()
      .evaluate((g, what) => {
        const el = what === "title" ? g.querySelector("h3") : g;
        return what === "title" ? getComputedStyle(el).color : getComputedStyle(el).borderLeftColor;
      }, what);
  const red = await cssColour("--failed");
  const amber = await cssColour("--stalled");
  assert.equal(await colourOf("failed", "border"), red);
  assert.equal(await colourOf("failed", "title"), red);
  assert.equal(await colourOf("stalled", "border"), amber);
  assert.equal(await colourOf("stalled", "title"), amber);
  await shot(page, "13-needs-attention-failed");
  await row.locator("a").first().click();
  await page.waitForURL(`**/flows/correlation/${failed.flow}`);
  await canvasCounts();
});

test("a failed flow's banner names the group, the exception and the dead-letter topic; the event is drawn dead-lettered", async () => {
  const failed = await failedO1023();
  await page.goto(BASE + "/flows/key/order.id/o-1023");
  await canvasCounts();
  const banner = page.locator('[data-testid="flow-status"][data-status="failed"]');
  await banner.waitFor();
  const text = await banner.textContent();
  assert.match(text, /Failed/);
  assert.match(text, /demo-inventory/);
  assert.match(text, EXCEPTION);
  assert.match(text, /bank-dlt/);
  assert.equal(await banner.evaluate((b) => getComputedStyle(b).borderLeftColor), await cssColour("--failed"));
  // The dead-lettered event: PaymentConfirmed, flagged, red.
  const dead = page.locator('[data-testid="event-node"][data-flags~="dead_lettered"]');
  assert.equal(await dead.count(), 1);
  assert.equal(await dead.getAttribute("data-event-id"), failed.failures[0].event);
  assert.match(await dead.textContent(), /PaymentConfirmed/);
  assert.match(await dead.textContent(), /dead letter/);
  assert.match(await dead.getAttribute("class"), /\bis-dead\b/);
  const red = await cssColour("--failed");
  assert.equal(await dead.evaluate((n) => getComputedStyle(n).borderTopColor), red);
  assert.equal(await dead.locator(".flag-dead_lettered").evaluate((f) => getComputedStyle(f).color), red);
  // What the model expected after it is missing because inventory gave up: said so, drawn red.
  const answer = await api("/api/v1/keys/order.id/o-1023");
  const after = answer.flows.flatMap((f) => f.health.missing).filter((m) => m.after_event === failed.failures[0].event);
  if (after.some((m) => m.expected.kind === "specific" && m.expected.event_type === "InventoryReserved")) {
    assert.match(text, /no InventoryReserved from inventory after the dead-lettered PaymentConfirmed \(bank\)/);
  }
  for (const ghost of await page.locator(`[data-testid="ghost-node"][data-after="${failed.failures[0].event}"]`).all()) {
    assert.equal(await ghost.getAttribute("data-failed"), "true");
    assert.equal(await ghost.evaluate((g) => getComputedStyle(g).borderTopColor), red);
  }
  await shot(page, "14-flow-failed-banner");
  // The other theme: still red, still legible.
  await page.getByTestId("theme-toggle").click();
  const theme = await page.evaluate(() => document.documentElement.dataset.theme);
  assert.equal(await dead.evaluate((n) => getComputedStyle(n).borderTopColor), await cssColour("--failed"));
  await shot(page, `14-flow-failed-banner-${theme}`);
  await page.getByTestId("theme-toggle").click();
});

test("the dead-lettered event's page lists its copy on the dead-letter topic", async () => {
  const failed = await failedO1023();
  const id = failed.failures[0].event;
  const event = await api("/api/v1/events/" + encodeURIComponent(id));
  assert.equal(event.dead_letters.length, 1);
  const copy = event.dead_letters[0];
  await page.goto(BASE + "/events/" + encodeURIComponent(id));
  await page.getByTestId("event-details").waitFor();
  assert.equal(await selectedType(), "PaymentConfirmed");
  const list = page.getByTestId("dead-letters");
  await list.waitFor();
  const items = list.locator("li");
  assert.equal(await items.count(), 1);
  const text = await items.first().textContent();
  assert.ok(text.includes(`bank-dlt[${copy.partition}]@${copy.offset}`), text);
  assert.match(text, /demo-inventory/);
  assert.match(text, EXCEPTION);
  assert.match(text, /spring/i);
  await shot(page, "15-event-dead-lettered");
});

/** The map's edges with failed flows, waited for (bounded) until there is one. */
async function failedEdges(timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const edges = (await api("/api/v1/topology")).edges.filter((e) => e.failed > 0);
    if (edges.length > 0) return edges;
    assert.ok(Date.now() < deadline, "the map never counted a failed flow on any edge");
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Asserts the map draws the edge `id` (`kind:from->to`) in the failed colour, its label too. */
async function assertDrawnFailed(id) {
  const edge = page.locator(`.react-flow__edge[data-id="${id}"]`);
  // Attached, not "visible": a straight vertical edge's box is zero wide, which Playwright calls hidden.
  await edge.waitFor({ state: "attached" });
  assert.match(await edge.getAttribute("class"), /map-failed/);
  assert.match(await edge.getAttribute("aria-label"), /\d+ failed/);
  const red = await cssColour("--failed");
  assert.equal(await edge.locator(".react-flow__edge-path").evaluate((p) => getComputedStyle(p).stroke), red);
  const label = page.locator(`.map-edge-label[data-edge="${id}"]`);
  assert.equal(await label.getAttribute("data-health"), "failed");
  assert.equal(await label.evaluate((l) => getComputedStyle(l).color), red);
  assert.match(await label.textContent(), /\d+ failed/);
}

test("the map draws the edges failed flows were dead-lettered from in the failed colour", async () => {
  await failedO1023();
  const edges = await failedEdges();
  await page.goto(BASE + "/map");
  await page.getByTestId("map-legend").waitFor();
  // Where the server puts o-1023's failure: the consume edge to the service whose group gave up
  // when it knows that group's service, else the dead-lettered event's produce edge (bank → bank).
  assert.ok(edges.some((e) => e.from === "topic:bank" || e.to === "topic:bank"), JSON.stringify(edges));
  for (const e of edges) await assertDrawnFailed(`${e.kind}:${e.from}->${e.to}`);
  await shot(page, "16-map-failed");
});

test(
  "the map puts o-1023's failure on the consume edge bank → inventory",
  async () => {
    await failedO1023();
    await failedEdges();
    const edgeId = "consume:topic:bank->service:inventory";
    const edge = (await api("/api/v1/topology")).edges.find((e) => `${e.kind}:${e.from}->${e.to}` === edgeId);
    assert.ok(edge?.failed > 0, `${edgeId}: ${JSON.stringify(edge)}`);
    await page.goto(BASE + "/map");
    await assertDrawnFailed(edgeId);
  },
);

/** Demo services that produce from the first orders on (collector/src/demo/services.rs). */
const DEMO_SERVICES = ["shop", "order", "payment", "bank"];

test("the Services page lists the demo's services by name, each with its events and how they arrive", async () => {
  await page.goto(BASE + "/");
  await page.getByTestId("nav-services").click();
  await page.waitForURL("**/services");
  await page.getByTestId("services-table").waitFor();
  const answer = await api("/api/v1/services?window=24h");
  const asked = answer.services.map((s) => s.service);
  for (const name of DEMO_SERVICES) {
    const s = answer.services.find((x) => x.service === name);
    assert.ok(s, `${name} is among the API's services (${asked.join(", ")})`);
    assert.ok(s.events > 0, `${name} produced events: ${JSON.stringify(s)}`);
  }
  const rows = page.getByTestId("service-row");
  const listed = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.service));
  assert.deepEqual(listed, [...listed].sort(), "sorted by name");
  for (const name of DEMO_SERVICES) assert.ok(listed.includes(name), `${name} is listed (${listed.join(", ")})`);
  assert.ok(listed.length >= DEMO_SERVICES.length);
  for (const name of DEMO_SERVICES) {
    const s = answer.services.find((x) => x.service === name);
    const row = page.locator(`[data-testid="service-row"][data-service="${name}"]`);
    assert.ok(Number(await row.getByTestId("service-events").textContent()) > 0, `${name}'s events on the page`);
    for (const share of ["with_ce_id", "with_causation", "with_correlation", "with_traceparent"]) {
      assert.match(await row.getByTestId(`share-${share}`).textContent(), /^(–|<1 %|\d{1,3} %)$/, `${name} ${share}`);
    }
    // The lineage level and its note, as the API says them (they do not change as events arrive).
    assert.equal(await row.getAttribute("data-lineage"), s.lineage);
    assert.equal(await row.getByTestId("service-lineage").getAttribute("title"), s.lineage_note);
    const spans = await row.getByTestId("service-spans").textContent();
    assert.match(spans, s.spans === null ? /^none$/ : /^\d+ received/);
  }
  // The demo's services are on the SDK: every event carries a CloudEvents id.
  const shop = page.locator('[data-testid="service-row"][data-service="shop"]');
  assert.equal(await shop.getByTestId("share-with_ce_id").textContent(), "100 %");
  assert.deepEqual(pageErrors, []);
  await shot(page, "17-services");
});

test("the Services page's window goes into the address", async () => {
  await page.goto(BASE + "/services?window=24h");
  await page.getByTestId("services-table").waitFor();
  assert.equal(await page.getByTestId("window-24h").getAttribute("aria-pressed"), "true");
  await page.getByTestId("window-1h").click();
  await page.waitForURL("**/services?window=1h");
  assert.equal(await page.getByTestId("window-1h").getAttribute("aria-pressed"), "true");
  // The demo has been running for less than an hour: its services are in the last hour too.
  await page.waitForSelector('[data-testid="service-row"][data-service="shop"]');
  const answer = await api("/api/v1/services?window=1h");
  assert.ok(answer.services.some((s) => s.service === "shop" && s.events > 0), JSON.stringify(answer.services.map((s) => s.service)));
  await page.goto(BASE + "/services?window=7d");
  await page.waitForSelector('[data-testid="service-row"][data-service="payment"]');
  assert.equal(await page.getByTestId("window-7d").getAttribute("aria-pressed"), "true");
  await shot(page, "18-services-7d");
});

test("an event's details say who handled it, or that no consumer span was received", async () => {
  const o9 = await api("/api/v1/keys/order.id/o-1009");
  const created = o9.graph.nodes.find((n) => n.type === "OrderCreated");
  const event = await api("/api/v1/events/" + encodeURIComponent(created.id));
  assert.ok(Array.isArray(event.handlings), "the event answer has handlings");
  await page.goto(BASE + "/events/" + encodeURIComponent(created.id));
  await page.getByTestId("handlings").waitFor();
  if (event.handlings.length === 0) {
    // The demo's services are on the SDK, not OpenTelemetry: the collector has no consumer span.
    assert.match(await page.getByTestId("handlings-none").textContent(), /No consumer spans received for this event/);
  } else {
    assert.equal(await page.getByTestId("handling").count(), event.handlings.length);
    const produced = event.handlings.flatMap((h) => h.produced);
    assert.equal(await page.getByTestId("produced-link").count(), produced.length);
  }
});

test("each edge of a flow graph says on hover how it was found", async () => {
  const answer = await api("/api/v1/keys/order.id/o-1009");
  await page.goto(BASE + "/flows/key/order.id/o-1009");
  await canvasCounts();
  const words = {
    causation: "declared (ce_causationid)",
    same_span: "inferred from the same trace span",
    span_message: "inferred from the consumer span's message position",
    span_link: "inferred from the consumer span's link",
    span_parent: "inferred from the consumer span's parent",
  };
  for (const e of answer.graph.edges) {
    assert.ok(e.rule in words, `edge ${e.from} → ${e.to} has a known rule: ${JSON.stringify(e)}`);
    assert.equal(e.inferred, e.rule !== "causation", JSON.stringify(e));
    const edge = page.locator(`.react-flow__edge[data-id="${e.from}->${e.to}"]`);
    await edge.waitFor({ state: "attached" });
    assert.match(await edge.getAttribute("class"), new RegExp(`rule-${e.rule}`));
    const title = await edge.locator("title").textContent();
    assert.ok(title.startsWith(words[e.rule]), `${e.from} → ${e.to}: ${title}`);
  }
});

test("the viewer works under the collector's Content-Security-Policy, which refuses inline scripts", async () => {
  const answer = await fetch(BASE + "/");
  const csp = answer.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self';/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(answer.headers.get("x-content-type-options"), "nosniff");
  assert.equal(answer.headers.get("referrer-policy"), "no-referrer");
  // The policy is enforced: an inline script injected into the page does not run…
  await page.goto(BASE + "/");
  await page.getByTestId("home").waitFor();
  const ran = await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.__inlineRan = true";
    document.body.appendChild(s);
    return window.__inlineRan === true;
  });
  assert.equal(ran, false, "an inline script ran");
  await page.waitForTimeout(200);
  assert.equal(cspViolations.filter((v) => v.includes("inline")).length >= 1, true, "the refusal was reported");
  // …and everything the viewer did in the tests above ran without a refusal.
  const others = cspViolations.filter((v) => !v.includes("inline"));
  assert.deepEqual(others, []);
});
