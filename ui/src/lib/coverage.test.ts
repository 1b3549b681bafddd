import { describe, expect, it } from "vitest";
import type { ServiceCoverage } from "./api";
import { byName, lineageLabel, shareFraction, shareText, spansText, windowText } from "./coverage";

describe("instrumentation coverage", () => {
  it("writes a share in whole percent, 0 % only when none and 100 % only when all", () => {
    expect(shareText(0, 10)).toBe("0 %");
    expect(shareText(10, 10)).toBe("100 %");
    expect(shareText(1, 3)).toBe("33 %");
    expect(shareText(999, 1000)).toBe("99 %");
    expect(shareText(1, 1000)).toBe("<1 %");
    expect(shareText(0, 0)).toBe("–");
    expect(shareFraction(1, 4)).toBe(0.25);
    expect(shareFraction(5, 0)).toBe(0);
    expect(shareFraction(7, 5)).toBe(1);
  });

  it("names the lineage levels and the spans received", () => {
    expect(lineageLabel("declared")).toBe("declared");
    expect(lineageLabel("spans")).toBe("through spans");
    expect(lineageLabel("same_span")).toBe("same span only");
    expect(lineageLabel("none")).toBe("none");
    expect(spansText(null)).toBe("none");
    expect(spansText({ received: 120, consumer: 60, producer: 60, failed: 3, last_seen: "2026-12-06T20:00:00Z" })).toBe("120 received · 3 failed");
    expect(spansText({ received: 8, consumer: 4, producer: 4, failed: 0, last_seen: "2026-12-06T20:00:00Z" })).toBe("8 received");
  });

  it("says the window in words and sorts services by name", () => {
    expect(windowText("1h")).toBe("the last hour");
    expect(windowText("24h")).toBe("the last 24 hours");
    expect(windowText("7d")).toBe("the last 7 days");
    const s = (service: string) => ({ service }) as ServiceCoverage;
    expect(byName([s("shop"), s("bank"), s("order")]).map((x) => x.service)).toEqual(["bank", "order", "shop"]);
  });
});
