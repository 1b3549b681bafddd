import { describe, expect, it } from "vitest";
import type { FlowHealth, FlowHealthView, FlowsSummary, MissingView } from "./api";
import {
  attentionGroups,
  banner,
  dueText,
  failureText,
  flowHealthHref,
  keysText,
  missingText,
  reactionText,
  waitText,
} from "./health";

const NOW = Date.parse("2026-12-06T20:00:00Z");

function missing(overrides: Partial<MissingView> = {}): MissingView {
  return {
    after_event: "e-pay",
    after: { service: "payment", event_type: "PaymentCreated" },
    expected: { kind: "by_service", service: "bank" },
    diagnosis: null,
    support: 0.98,
    samples: 100,
    origin: "learned",
    deadline: "2026-12-06T19:59:02.700Z",
    overdue_ms: 57_300,
    ...overrides,
  };
}

function flow(id: string, overrides: Partial<FlowHealthView> = {}): FlowHealthView {
  return {
    flow: id,
    status: "stalled",
    root: { id: `root-${id}`, event_type: "CartCheckedOut", service: "shop", time: "2026-12-06T19:58:50Z" },
    last_activity: "2026-12-06T19:58:52Z",
    events: 3,
    keys: [
      { name: "kafka.key", value: "o-1007" },
      { name: "order.id", value: "o-1007" },
    ],
    missing: [missing()],
    failures: [],
    next_deadline: null,
    learning: [],
    ...overrides,
  };
}

describe("missing reactions in words", () => {
  it("name the reaction at its expected precision", () => {
    expect(reactionText({ kind: "by_service", service: "bank" })).toBe("bank");
    expect(reactionText({ kind: "specific", service: "bank", event_type: "PaymentConfirmed" })).toBe("bank/PaymentConfirmed");
    expect(reactionText({ kind: "any" })).toBe("any reaction");
  });

  it("say how overdue, or how long until due, in whole seconds under a minute", () => {
    expect(waitText(57_300)).toBe("57 s");
    expect(waitText(412)).toBe("412 ms");
    expect(waitText(250_000)).toBe("4 min 10 s");
    expect(dueText(missing(), NOW)).toBe("overdue 57 s");
    expect(dueText(missing({ overdue_ms: null, deadline: "2026-12-06T20:00:08Z" }), NOW)).toBe("due in 8 s");
    expect(dueText(missing({ overdue_ms: null, deadline: "2026-12-06T19:59:59Z" }), NOW)).toBe("due now");
  });

  it("read as a sentence with the evidence", () => {
    expect(missingText(missing(), NOW)).toBe(
      "waiting for a reaction from bank after PaymentCreated (payment) — 57 s overdue; 98 % of 100 occurrences, learned",
    );
    const declared = missing({
      overdue_ms: null,
      deadline: "2026-12-06T20:00:08Z",
      origin: "declared",
      expected: { kind: "specific", service: "bank", event_type: "PaymentConfirmed" },
    });
    expect(missingText(declared, NOW)).toBe(
      "expecting PaymentConfirmed from bank after PaymentCreated (payment) — due in 8 s; declared in the config file",
    );
  });
});

describe("the flow view's banner", () => {
  const health = (overrides: Partial<FlowHealth>): FlowHealth => ({
    status: "complete",
    tracked: true,
    missing: [],
    failures: [],
    next_deadline: null,
    learning: [],
    ...overrides,
  });

  it("says a complete flow ending at a step not learned yet is complete only as far as learned", () => {
    const b = banner(health({ learning: [{ service: "payment", event_type: "PaymentCreated" }] }), 0);
    expect(b.lines).toEqual([
      "complete as far as learned: too few occurrences of payment/PaymentCreated yet to know what follows",
    ]);
  });

  it("says what a stalled flow waits for, and why when the consumer groups tell", () => {
    const text = "bank's group `bank` consumed PaymentCreated (payments/2@1234) 40 s ago and produced nothing";
    const b = banner(
      // (`diagnosis` is not in the API document yet: the viewer reads it when the collector sends it.)
      health({ status: "stalled", missing: [{ ...missing(), diagnosis: { kind: "consumed_no_reaction", text, groups: [] } } as MissingView] }),
      NOW,
    );
    expect(b.title).toBe("Stalled");
    expect(b.lines).toEqual([
      "waiting for a reaction from bank after PaymentCreated (payment) — 57 s overdue; 98 % of 100 occurrences, learned",
    ]);
    expect(b.diagnoses).toEqual([text]);
  });

  it("gives a failed flow's reason and dead-letter topic", () => {
    const b = banner(
      health({
        status: "failed",
        failures: [{ event: "e", reason: "bank-group: card expired", dead_letter_topic: "payments-dlt", group: "bank-group", service: null, exception: null }],
      }),
      NOW,
    );
    expect(b.title).toBe("Failed");
    expect(b.lines).toEqual(["bank-group: card expired — dead-lettered to payments-dlt"]);
  });

  it("says a reaction missing after the dead-lettered event will not come by itself", () => {
    const b = banner(
      health({
        status: "failed",
        failures: [{ event: "01a2", reason: "demo-inventory: out of stock", dead_letter_topic: "bank-dlt", group: "demo-inventory", service: null, exception: null }],
        missing: [
          missing({
            after_event: "01a2",
            after: { service: "bank", event_type: "PaymentConfirmed" },
            expected: { kind: "specific", service: "inventory", event_type: "InventoryReserved" },
          }),
          missing({ after_event: "other" }),
        ],
      }),
      NOW,
    );
    expect(b.lines).toEqual([
      "demo-inventory: out of stock — dead-lettered to bank-dlt",
      "no InventoryReserved from inventory after the dead-lettered PaymentConfirmed (bank) — 57 s overdue; 98 % of 100 occurrences, learned",
      "waiting for a reaction from bank after PaymentCreated (payment) — 57 s overdue; 98 % of 100 occurrences, learned",
    ]);
  });

  it("gives the exception of a handler that raised, and says the reaction after it is missing because it failed", () => {
    const b = banner(
      health({
        status: "failed",
        failures: [
          {
            event: "01a2", reason: "inventory's handler failed", dead_letter_topic: null, group: "demo-inventory", service: "inventory",
            exception: { type: "ValueError", message: "SKU-42 is out of stock" },
          },
        ],
        missing: [
          missing({
            after_event: "01a2",
            after: { service: "bank", event_type: "PaymentConfirmed" },
            expected: { kind: "specific", service: "inventory", event_type: "InventoryReserved" },
          }),
        ],
      }),
      NOW,
    );
    expect(b.lines).toEqual([
      "inventory's handler failed — ValueError: SKU-42 is out of stock",
      "no InventoryReserved from inventory after the failed PaymentConfirmed (bank) — 57 s overdue; 98 % of 100 occurrences, learned",
    ]);
  });

  it("does not repeat an exception the failure's reason already gives", () => {
    const exception = { type: "java.lang.IllegalStateException", message: "SKU-42 is out of stock in every warehouse" };
    const reason = `demo-inventory: ${exception.type}: ${exception.message}`;
    const f = { event: "e", reason, dead_letter_topic: "bank-dlt", group: "demo-inventory", service: "inventory", exception };
    expect(failureText(f)).toBe(`${reason} — dead-lettered to bank-dlt`);
    expect(failureText({ ...f, reason: "", dead_letter_topic: null })).toBe(`${exception.type}: ${exception.message}`);
  });

  it("says when an in-progress flow turns stalled, and a complete flow quietly", () => {
    const b = banner(
      health({
        status: "in_progress",
        next_deadline: "2026-12-06T20:00:08Z",
        missing: [missing({ overdue_ms: null, deadline: "2026-12-06T20:00:08Z" })],
      }),
      NOW,
    );
    expect(b.lines[0]).toBe("turns stalled at 20:00:08.000 (in 8 s) if nothing arrives");
    expect(b.lines[1]).toMatch(/^expecting a reaction from bank after PaymentCreated \(payment\) — due in 8 s;/);
    expect(banner(health({}), NOW)).toEqual({ status: "complete", title: "Complete", lines: ["nothing expected is missing"], diagnoses: [] });
  });
});

describe("the start page's needs-attention groups", () => {
  it("link a flow to its correlation, or to its only event when it has none", () => {
    expect(flowHealthHref(flow("c-1"))).toBe("/flows/correlation/c-1");
    const root = { id: "e-9", event_type: "X", service: "s", time: "" };
    expect(flowHealthHref(flow("e-9", { root, events: 1 }))).toBe("/events/e-9");
    // A correlation named after its first event is still a correlation.
    expect(flowHealthHref(flow("e-9", { root, events: 3 }))).toBe("/flows/correlation/e-9");
  });

  it("show the business keys before the keys that repeat them", () => {
    expect(keysText(flow("c").keys)).toEqual(["order.id=o-1007", "kafka.key=o-1007"]);
    expect(keysText(flow("c").keys, 1)).toEqual(["order.id=o-1007"]);
  });

  it("group stalled flows by step and reaction waited for, oldest first, failed groups first", () => {
    const stalled = [
      flow("c-new", { missing: [missing({ overdue_ms: 2_000 })] }),
      flow("c-old", { missing: [missing({ overdue_ms: 90_000 })] }),
      flow("c-inv", {
        missing: [missing({ after: { service: "order", event_type: "OrderCreated" }, expected: { kind: "by_service", service: "inventory" } })],
      }),
    ];
    const failed = [
      flow("c-dead", {
        status: "failed",
        missing: [],
        failures: [{ event: "e", reason: "bank-group: card expired", dead_letter_topic: "payments-dlt", group: "bank-group", service: null, exception: null }],
      }),
    ];
    const summary: FlowsSummary = {
      counts: { complete: 170, in_progress: 5, stalled: 3, failed: 1 },
      stopped: [
        { status: "stalled", after: { service: "payment", event_type: "PaymentCreated" }, waiting_for: { kind: "by_service", service: "bank" }, flows: 2, oldest: ["c-old", "c-new"] },
        { status: "failed", after: { service: "payment", event_type: "PaymentCreated" }, waiting_for: null, flows: 1, oldest: ["c-dead"] },
      ],
      lagged_batches: 0,
    };
    const groups = attentionGroups(summary, [...stalled, ...failed], NOW);
    expect(groups.map((g) => g.title)).toEqual([
      "1 flow failed at payment/PaymentCreated",
      "2 flows stalled after payment/PaymentCreated, waiting for bank",
      "1 flow stalled after order/OrderCreated, waiting for inventory",
    ]);
    expect(groups[0].flows[0].detail).toBe("bank-group: card expired — dead-lettered to payments-dlt");
    const bank = groups[1];
    expect(bank.flows.map((f) => [f.flow, f.detail, f.href])).toEqual([
      ["c-old", "overdue 1 min 30 s", "/flows/correlation/c-old"],
      ["c-new", "overdue 2 s", "/flows/correlation/c-new"],
    ]);
    expect(bank.flows[0].keys[0]).toBe("order.id=o-1007");
    expect(groups.map((g) => g.sharedDetail)).toEqual([null, null, null]);
  });

  it("say a failed group's reason once when all its flows failed for it", () => {
    const dead = (id: string, reason: string) =>
      flow(id, {
        status: "failed",
        missing: [],
        failures: [{ event: `e-${id}`, reason, dead_letter_topic: "bank-dlt", group: "demo-inventory", service: null, exception: null }],
      });
    const summary: FlowsSummary = {
      counts: { complete: 0, in_progress: 0, stalled: 0, failed: 3 },
      stopped: [{ status: "failed", after: { service: "bank", event_type: "PaymentConfirmed" }, waiting_for: null, flows: 3, oldest: ["a", "b", "c"] }],
      lagged_batches: 0,
    };
    const same = attentionGroups(summary, [dead("a", "out of stock"), dead("b", "out of stock")], NOW);
    expect(same[0].sharedDetail).toBe("out of stock — dead-lettered to bank-dlt");
    const differ = attentionGroups(summary, [dead("a", "out of stock"), dead("b", "card expired")], NOW);
    expect(differ[0].sharedDetail).toBeNull();
    expect(attentionGroups(summary, [dead("a", "out of stock")], NOW)[0].sharedDetail).toBeNull();
  });

  it("count the flows the summary knows beyond the list, and keep its groups none of whose flows are listed", () => {
    const summary: FlowsSummary = {
      counts: { complete: 0, in_progress: 0, stalled: 12, failed: 0 },
      stopped: [
        { status: "stalled", after: { service: "payment", event_type: "PaymentCreated" }, waiting_for: { kind: "by_service", service: "bank" }, flows: 11, oldest: [] },
        { status: "stalled", after: { service: "shop", event_type: "CartCheckedOut" }, waiting_for: { kind: "any" }, flows: 1, oldest: [] },
      ],
      lagged_batches: 0,
    };
    const groups = attentionGroups(summary, [flow("c-1")], NOW);
    expect(groups.map((g) => [g.title, g.flows.length])).toEqual([
      ["11 flows stalled after payment/PaymentCreated, waiting for bank", 1],
      ["1 flow stalled after shop/CartCheckedOut, waiting for any reaction", 0],
    ]);
  });

  it("are empty when nothing needs attention", () => {
    expect(attentionGroups(null, [], NOW)).toEqual([]);
  });
});
