import { describe, expect, it } from "vitest";
import { eventHref, flowHref, mapHref, parseRoute, servicesHref, type FlowTarget } from "./routes";

describe("addresses", () => {
  it("read every view's address", () => {
    expect(parseRoute("/")).toEqual({ view: "home" });
    expect(parseRoute("/flows/key/order.id/o-1001")).toEqual({
      view: "flow",
      target: { kind: "key", name: "order.id", value: "o-1001" },
      selected: null,
    });
    expect(parseRoute("/flows/trace/4bf92f3577b34da6a3ce929d0e0e4736", "?event=e-1")).toEqual({
      view: "flow",
      target: { kind: "trace", id: "4bf92f3577b34da6a3ce929d0e0e4736" },
      selected: "e-1",
    });
    expect(parseRoute("/events/e-1")).toEqual({ view: "event", id: "e-1" });
    expect(parseRoute("/search", "?q=o-1")).toEqual({ view: "search", q: "o-1" });
    expect(parseRoute("/map", "?from=2026-01-01T00:00:00Z")).toEqual({ view: "map", from: "2026-01-01T00:00:00Z", to: null });
    expect(parseRoute("/services")).toEqual({ view: "services", window: null });
    expect(parseRoute("/services", "?window=7d")).toEqual({ view: "services", window: "7d" });
  });

  it("round-trip ids holding slashes, colons, spaces and non-ASCII", () => {
    const targets: FlowTarget[] = [
      { kind: "key", name: "sku", value: "a/b c?d#e" },
      { kind: "correlation", id: "kafka:orders/2/41" },
      { kind: "key", name: "kunde", value: "Jürgen & Søn" },
    ];
    for (const target of targets) {
      const href = flowHref(target, "kafka:inventory/2/3");
      const url = new URL(href, "http://x");
      expect(parseRoute(url.pathname, url.search)).toEqual({ view: "flow", target, selected: "kafka:inventory/2/3" });
    }
    const url = new URL(eventHref("kafka:inventory/2/3"), "http://x");
    expect(parseRoute(url.pathname)).toEqual({ view: "event", id: "kafka:inventory/2/3" });
  });

  it("say when nothing answers an address", () => {
    expect(parseRoute("/flows/key/order.id")).toEqual({ view: "not_found", path: "/flows/key/order.id" });
    expect(parseRoute("/events/a/b")).toEqual({ view: "not_found", path: "/events/a/b" });
    expect(parseRoute("/events/%E0%A4%A")).toEqual({ view: "not_found", path: "/events/%E0%A4%A" });
  });

  it("write the map's range only when there is one", () => {
    expect(mapHref()).toBe("/map");
    expect(mapHref("2026-01-01T00:00:00.000Z", null)).toBe("/map?from=2026-01-01T00%3A00%3A00.000Z");
  });

  it("put the Services page's window in the query", () => {
    expect(servicesHref()).toBe("/services");
    expect(servicesHref("1h")).toBe("/services?window=1h");
    const url = new URL(servicesHref("24h"), "http://x");
    expect(parseRoute(url.pathname, url.search)).toEqual({ view: "services", window: "24h" });
  });
});
