import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render } from "@testing-library/react";
import { EventDetails } from "./EventDetails";
import type { EventDetail } from "../lib/api";

afterEach(cleanup);

const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

function event(overrides: Partial<EventDetail> = {}): EventDetail {
  return {
    id: "kafka:inventory/2/3", id_source: "derived", trace_id: null, span_id: null, causation_id: "c-0",
    correlation_id: null, topic: "inventory", partition: 2, offset: 3, key: { encoding: "utf8", data: "SKU-42" },
    time: "2026-11-29T07:36:13.765000Z", event_time: null, broker_time: null, ingested_at: "2026-11-29T07:36:14Z",
    type: "StockAdjusted", source: "legacy-erp", subject: null, keys: [],
    headers: [
      { name: "x-note", value: { encoding: "utf8", data: hostile } },
      { name: "x-erp-batch", value: { encoding: "base64", data: "//4AQQ==" } },
    ],
    payload: { body: { encoding: "utf8", data: hostile }, size: hostile.length, truncated: false, content_type: null },
    problems: [{ kind: "invalid_traceparent", detail: "too short" }],
    deliveries: [], reactions: [], cause_stored: false, flags: [], dead_letters: [], consumer_groups: [], handlings: [],
    redactions: null, withheld: null,
    ...overrides,
  };
}

describe("event details", () => {
  it("say what redaction removed at ingest, and nothing when it removed nothing", () => {
    const none = render(<EventDetails event={event()} />);
    expect(none.queryByTestId("redactions")).toBeNull();
    none.unmount();
    const redacted = render(
      <EventDetails
        event={event({
          redactions: {
            masked: ["/card/number"], hashed: ["/customer/email"], dropped: [], headers: ["authorization"],
            keys: [], payload: null, record_key: "hashed",
          },
        })}
      />,
    );
    const items = [...redacted.getByTestId("redactions").querySelectorAll("li")].map((li) => li.textContent);
    const text = items.join("\n");
    expect(text).toContain("masked: /card/number");
    expect(text).toContain("hashed: /customer/email");
    expect(text).toContain("header values dropped: authorization");
    expect(text).toContain("record key: hashed");
    expect(items.length).toBe(4);
  });

  it("render untrusted payloads and headers as text, creating no elements from them", () => {
    const { container, getByTestId } = render(<EventDetails event={event()} />);
    expect(getByTestId("payload").textContent).toBe(hostile);
    expect(container.querySelectorAll("img, script").length).toBe(0);
    expect(getByTestId("headers").textContent).toContain(hostile);
    expect(getByTestId("headers").textContent).toContain("base64://4AQQ==");
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
  });

  it("say that a cause was never seen, and link a stored one", () => {
    const missing = render(<EventDetails event={event()} />);
    expect(missing.getByTestId("cause-missing").textContent).toContain("never seen");
    missing.unmount();
    const stored = render(<EventDetails event={event({ cause_stored: true })} hrefFor={(id) => `/x/${id}`} />);
    expect(stored.getByTestId("cause-link").getAttribute("href")).toBe("/x/c-0");
  });

  it("show the dead-letter copies and where each consumer group stands, when there are any", () => {
    const plain = render(<EventDetails event={event()} />);
    expect(plain.queryByTestId("dead-letters")).toBeNull();
    expect(plain.queryByTestId("consumer-groups")).toBeNull();
    plain.unmount();
    const failed = render(
      <EventDetails
        event={event({
          dead_letters: [
            { topic: "payments-dlt", partition: 0, offset: 7, reason: "bank-group: card expired", group: "bank-group", recognised_by: "spring", time: "2026-12-06T20:00:00Z" },
          ],
          consumer_groups: [
            {
              group: "bank-group", service: "bank", state: "consumed", topic: "payments", partition: 2, offset: 1234,
              committed_offset: 1240, lag_records: null, lag_seconds: null, consumed_at: "2026-12-06T20:00:01Z",
            },
            {
              group: "audit", service: null, state: "pending", topic: "payments", partition: 2, offset: 1234,
              committed_offset: 1000, lag_records: 234, lag_seconds: 40, consumed_at: null,
            },
          ],
        })}
      />,
    );
    expect(failed.getByTestId("dead-letters").textContent).toContain("payments-dlt[0]@7");
    expect(failed.getByTestId("dead-letters").textContent).toContain("bank-group: card expired");
    const rows = [...failed.getByTestId("consumer-groups").querySelectorAll("tbody tr")].map((r) =>
      [...r.querySelectorAll("td")].map((td) => td.textContent),
    );
    expect(rows).toEqual([
      ["bank-group", "bank", "consumed", "consumed 2026-12-06T20:00:01Z"],
      ["audit", "unknown", "pending", "234 records, ~40.0 s"],
    ]);
  });
});

describe("an event's dead letters", () => {
  it("say where the copy is, why, which group gave up, and how it was recognised", () => {
    const reason = "demo-inventory: java.lang.IllegalStateException: SKU-42 is out of stock in every warehouse";
    const { getByTestId } = render(
      <EventDetails
        event={event({
          flags: ["dead_lettered"],
          dead_letters: [
            { topic: "bank-dlt", partition: 0, offset: 7, reason, group: "demo-inventory", recognised_by: "spring", time: "2026-12-06T20:13:40.242Z" },
          ],
        })}
      />,
    );
    const text = getByTestId("dead-letters").textContent ?? "";
    expect(text).toContain("bank-dlt[0]@7");
    expect(text).toContain("group demo-inventory");
    expect(text).toContain("recognised by Spring Kafka's headers");
    expect(text).toContain(reason);
  });
});

describe("who handled an event", () => {
  const base = {
    consumer_group: null, trace_id: "4bf92f3577b34da6a3ce929d0e0e4736", span_name: "bank process",
    duration_ms: 42, exception: null, produced: [] as string[], rule: "span_link" as const,
  };

  it("says plainly when no consumer span was received", () => {
    const { getByTestId, queryAllByTestId } = render(<EventDetails event={event()} />);
    expect(getByTestId("handlings").querySelector("h3")!.textContent).toBe("Handled by");
    expect(getByTestId("handlings-none").textContent).toContain("No consumer spans received for this event");
    expect(queryAllByTestId("handling")).toHaveLength(0);
  });

  it("lists each handling in the order it started: who, when, how long, ok or failed and why, what it produced", () => {
    const { getByTestId, getAllByTestId, queryByTestId } = render(
      <EventDetails
        hrefFor={(id) => `/x/${id}`}
        event={event({
          handlings: [
            { ...base, service: "ledger", consumer_group: "demo-ledger", span_id: "02", started: "2026-12-06T20:00:01.900Z", outcome: "ok", produced: [] },
            {
              ...base, service: "inventory", consumer_group: "demo-inventory", span_id: "01", started: "2026-12-06T20:00:01.250Z",
              duration_ms: 1500, outcome: "failed", exception: { type: "ValueError", message: "SKU-42 is out of stock" },
            },
            { ...base, service: "notification", span_id: "03", started: "2026-12-06T20:00:02.000Z", outcome: "ok", produced: ["e-7", "e-8"] },
          ],
        })}
      />,
    );
    expect(getByTestId("handlings").querySelector("h3")!.textContent).toBe("Handled by (3)");
    expect(queryByTestId("handlings-none")).toBeNull();
    const rows = getAllByTestId("handling");
    expect(rows.map((r) => r.querySelector('[data-testid="handling-service"]')!.textContent)).toEqual([
      "inventory (group demo-inventory)",
      "ledger (group demo-ledger)",
      "notification",
    ]);
    expect(rows.map((r) => r.querySelector('[data-testid="handling-badge"]')!.textContent)).toEqual(["failed", "ok", "ok"]);
    expect(rows.map((r) => r.querySelector('[data-testid="handling-outcome"]')!.textContent)).toEqual([
      "failed: ValueError: SKU-42 is out of stock",
      "handled, produced nothing",
      "handled, produced 2 events",
    ]);
    // A failed handling and one that produced nothing read differently.
    expect(rows.map((r) => r.dataset.kind)).toEqual(["failed", "nothing", "produced"]);
    expect(rows[0].textContent).toContain("at 20:00:01.250 · took 1.5 s");
    const links = [...rows[2].querySelectorAll('[data-testid="produced-link"]')];
    expect(links.map((a) => [a.textContent, a.getAttribute("href")])).toEqual([
      ["e-7", "/x/e-7"],
      ["e-8", "/x/e-8"],
    ]);
    expect(rows[0].querySelectorAll('[data-testid="produced-link"]')).toHaveLength(0);
  });

  it("renders the exception a handler raised as text", () => {
    const { getByTestId, container } = render(
      <EventDetails
        event={event({
          handlings: [{ ...base, service: "inventory", span_id: "01", started: "2026-12-06T20:00:01Z", outcome: "failed", exception: { type: null, message: hostile } }],
        })}
      />,
    );
    expect(getByTestId("handling-outcome").textContent).toBe(`failed: ${hostile}`);
    expect(container.querySelectorAll("img, script").length).toBe(0);
  });
});
