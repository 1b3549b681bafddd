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
    deliveries: [], reactions: [], cause_stored: false, flags: [], consumer_groups: [], dead_letters: [],
    ...overrides,
  };
}

describe("event details", () => {
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
});
