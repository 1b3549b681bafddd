import { describe, expect, it } from "vitest";
import type { Handling } from "./api";
import { byStart, edgeTitle, exceptionText, handlerText, handlingOutcome, ruleText } from "./spans";

const handling = (overrides: Partial<Handling> = {}): Handling => ({
  service: "inventory", consumer_group: "demo-inventory", span_name: "bank process", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
  span_id: "00f067aa0ba902b7", started: "2026-12-06T20:00:01.250Z", duration_ms: 42, outcome: "ok", exception: null, produced: [], rule: "span_link",
  ...overrides,
});

describe("how an edge was found", () => {
  it("is said in words for every rule", () => {
    expect(ruleText("causation")).toBe("declared (ce_causationid)");
    expect(ruleText("same_span")).toBe("same trace span");
    expect(ruleText("span_message")).toBe("consumer span's message position");
    expect(ruleText("span_link")).toBe("consumer span's link");
    expect(ruleText("span_parent")).toBe("consumer span's parent");
    // A rule added to the API later is named as the API names it.
    expect(ruleText("span_batch")).toBe("span_batch");
  });

  it("is an edge's tooltip, with the hop's latency", () => {
    expect(edgeTitle({ inferred: true, rule: "span_link", latency_ms: 12, cycle: false })).toBe("inferred from the consumer span's link · 12 ms");
    expect(edgeTitle({ inferred: false, rule: "causation", latency_ms: 1500, cycle: true })).toBe(
      "declared (ce_causationid) · 1.5 s · closes a causation cycle",
    );
  });
});

describe("a handling", () => {
  it("says who handled the event", () => {
    expect(handlerText(handling())).toBe("inventory (group demo-inventory)");
    expect(handlerText(handling({ consumer_group: null }))).toBe("inventory");
    expect(handlerText(handling({ service: null }))).toBe("group demo-inventory");
    expect(handlerText(handling({ service: null, consumer_group: null }))).toBe("(unknown service)");
  });

  it("tells a failed handling from one that produced events and one that produced nothing", () => {
    expect(handlingOutcome(handling({ outcome: "failed", exception: { type: "ValueError", message: "SKU-42 is out of stock" } }))).toEqual({
      kind: "failed", badge: "failed", text: "failed: ValueError: SKU-42 is out of stock",
    });
    expect(handlingOutcome(handling({ outcome: "failed" })).text).toBe("failed (no exception recorded)");
    expect(handlingOutcome(handling({ produced: ["e-2", "e-3"] }))).toEqual({ kind: "produced", badge: "ok", text: "handled, produced 2 events" });
    expect(handlingOutcome(handling({ produced: ["e-2"] })).text).toBe("handled, produced 1 event");
    expect(handlingOutcome(handling())).toEqual({ kind: "nothing", badge: "ok", text: "handled, produced nothing" });
  });

  it("lists handlings in the order they started", () => {
    const later = handling({ service: "ledger", started: "2026-12-06T20:00:02.000000Z" });
    const first = handling({ service: "notification", started: "2026-12-06T20:00:00.500Z" });
    expect(byStart([later, handling(), first]).map((h) => h.service)).toEqual(["notification", "inventory", "ledger"]);
  });
});

describe("an exception", () => {
  it("is its type and message, whichever it has", () => {
    expect(exceptionText({ type: "ValueError", message: "boom" })).toBe("ValueError: boom");
    expect(exceptionText({ type: "ValueError", message: null })).toBe("ValueError");
    expect(exceptionText({ type: null, message: "boom" })).toBe("boom");
    expect(exceptionText({ type: " ", message: "" })).toBeNull();
    expect(exceptionText(null)).toBeNull();
  });
});
