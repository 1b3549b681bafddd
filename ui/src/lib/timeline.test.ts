import { describe, expect, it } from "vitest";
import type { EventSummary } from "./api";
import { buildTimeline, UNKNOWN_SERVICE } from "./timeline";

const ev = (id: string, t: number, source: string | null): EventSummary => ({
  id, type: null, source, topic: "t", partition: 0, offset: 0, time: "", time_us: t, subject: null,
  causation_id: null, correlation_id: null, trace_id: null, span_id: null, flags: [], problem_count: 0, delivery_count: 1, opaque: false,
});

describe("the timeline", () => {
  it("has one lane per service in order of first appearance, events placed by time", () => {
    const t = buildTimeline(
      [ev("c", 3000, "payment"), ev("a", 1000, "shop"), ev("b", 2000, "order"), ev("d", 5000, "shop"), ev("x", 4000, null)],
      [{ from: "a", to: "b", latency_ms: 1, inferred: false, rule: "causation" as const, cycle: false }, { from: "b", to: "gone", latency_ms: 1, inferred: false, rule: "causation" as const, cycle: false }],
    );
    expect(t.lanes.map((l) => l.service)).toEqual(["shop", "order", "payment", UNKNOWN_SERVICE]);
    expect(t.lanes[0].events.map((e) => [e.event.id, e.at])).toEqual([["a", 0], ["d", 1]]);
    expect(t.lanes[2].events[0].at).toBe(0.5);
    expect(t.hops).toEqual([{ from: [0, 0], to: [1, 0.25], cycle: false }]);
    expect([t.startUs, t.endUs]).toEqual([1000, 5000]);
    expect([t.first?.id, t.last?.id]).toEqual(["a", "d"]);
  });
  it("centres a single event and is empty without events", () => {
    expect(buildTimeline([ev("a", 7, "s")], []).lanes[0].events[0].at).toBe(0.5);
    expect(buildTimeline([], []).lanes).toEqual([]);
    expect(buildTimeline([], []).first).toBeNull();
  });
});
