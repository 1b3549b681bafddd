import { describe, expect, it } from "vitest";
import { catchUpText, count, eta } from "./progress";
import type { IngestProgress } from "./api";

const p = (over: Partial<IngestProgress>): IngestProgress => ({
  consuming: true,
  as_of: null,
  catching_up: true,
  records_behind: 5000,
  topics: [{ topic: "orders", records_behind: 5000 }],
  consume_rate: null,
  catch_up_rate: null,
  eta_seconds: null,
  held_back: null,
  ...over,
});

describe("backfill progress in words", () => {
  it("counts records as the log does", () => {
    expect([count(950), count(30_000), count(1_234_567), count(3.4e9)]).toEqual(["950", "30 k", "1.2 M", "3.4 G"]);
  });

  it("rounds the estimate", () => {
    expect([eta(45), eta(240), eta(9000), eta(3 * 86_400)]).toEqual(["45 s", "4 min", "2.5 h", "3 d"]);
  });

  it("names three topics at most and counts the rest", () => {
    const topics = ["a", "b", "c", "d", "e"].map((topic) => ({ topic, records_behind: 1000 }));
    expect(catchUpText(p({ topics }))!.topics).toBe("a 1.0 k, b 1.0 k, c 1.0 k, 2 more topics");
  });

  it("says when the pace is not known yet or not gaining", () => {
    expect(catchUpText(p({}))!.pace).toBe("pace not known yet");
    expect(catchUpText(p({ catch_up_rate: -200 }))!.pace).toBe("not gaining: producers write as fast as it reads");
  });

  it("says first that ingest is held back, and why", () => {
    const held_back = { reason: "disk_full", error: "database or disk is full", since: "2026-12-07T10:00:00.000000Z", failed_writes: 3 };
    const text = catchUpText(p({ catching_up: false, held_back }))!;
    expect(text.headline).toBe("Ingest held back: the store's disk is full");
    expect(text.topics).toBe("since 2026-12-07T10:00:00.000000Z, 3 failed writes: database or disk is full");
  });

  it("has nothing to say when caught up or not consuming", () => {
    expect(catchUpText(p({ catching_up: false }))).toBeNull();
    expect(catchUpText(p({ consuming: false }))).toBeNull();
  });
});
