import { describe, expect, it } from "vitest";
import type { GraphEdge } from "../lib/api";
import { causalEdge } from "./FlowCanvas";

const edge = (overrides: Partial<GraphEdge> = {}): GraphEdge => ({
  from: "a", to: "b", latency_ms: 12, inferred: false, rule: "causation", cycle: false, ...overrides,
});

describe("a causal edge of the flow graph", () => {
  it("says on hover how it was found: declared, or the rule that inferred it", () => {
    const declared = causalEdge(edge());
    expect(declared.data!.title).toBe("declared (ce_causationid) · 12 ms");
    expect(declared.style!.strokeDasharray).toBeUndefined();
    const inferred = causalEdge(edge({ inferred: true, rule: "span_parent" }));
    expect(inferred.type).toBe("causal");
    expect(inferred.data!.title).toBe("inferred from the consumer span's parent · 12 ms");
    expect(inferred.ariaLabel).toBe("a → b: inferred from the consumer span's parent · 12 ms");
    expect(inferred.className).toBe("inferred rule-span_parent");
    expect(inferred.style!.strokeDasharray).toBe("5 4");
    expect(causalEdge(edge({ inferred: true, rule: "same_span" })).data!.title).toBe("inferred from the same trace span · 12 ms");
  });
});
