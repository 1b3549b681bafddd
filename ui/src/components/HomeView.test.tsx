import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, render, waitFor } from "@testing-library/react";
import { api, type FlowHealthView, type FlowsPage, type FlowsSummary } from "../lib/api";
import { HomeView } from "./HomeView";

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

const counts = (stalled: number) => ({ complete: 40, in_progress: 2, stalled, failed: 0 });

function answer(summary: FlowsSummary, stalled: FlowHealthView[]) {
  vi.spyOn(api, "flowsSummary").mockResolvedValue(summary);
  vi.spyOn(api, "flows").mockImplementation(async ({ status }) => ({
    flows: status === "stalled" ? stalled : [],
    limit: 200,
    counts: summary.counts,
  }) as FlowsPage);
  vi.spyOn(api, "keyNames").mockResolvedValue({ names: [] } as never);
  vi.spyOn(api, "search").mockResolvedValue({ events: [], next_cursor: null } as never);
}

describe("the start page", () => {
  it("says so when nothing needs attention", async () => {
    answer({ counts: counts(0), stopped: [], lagged_batches: 0 }, []);
    const view = render(<HomeView />);
    await waitFor(() => expect(view.getByTestId("attention-empty")).toBeTruthy());
    expect(view.getByTestId("count-complete").textContent).toBe("40 complete");
    expect(view.queryAllByTestId("attention-group")).toHaveLength(0);
  });

  it("leads with the stalled flows, grouped, each linked with its keys and how overdue", async () => {
    const after = { service: "payment", event_type: "PaymentCreated" };
    const expected = { kind: "by_service" as const, service: "bank" };
    answer(
      { counts: counts(1), stopped: [{ status: "stalled", after, waiting_for: expected, flows: 1, oldest: ["c-7"] }], lagged_batches: 0 },
      [
        {
          flow: "c-7", status: "stalled", root: { id: "c-7", event_type: "CartCheckedOut", service: "shop", time: "2026-12-06T20:00:00Z" },
          last_activity: "2026-12-06T20:00:02Z", events: 3, keys: [{ name: "order.id", value: "o-1007" }],
          missing: [{ after_event: "e-3", after, expected, support: 0.98, samples: 100, origin: "learned", deadline: "2026-12-06T20:00:12Z", overdue_ms: 57_000, diagnosis: null }],
          failures: [], next_deadline: null, learning: [],
        },
      ],
    );
    const view = render(<HomeView />);
    await waitFor(() => expect(view.getAllByTestId("attention-group")).toHaveLength(1));
    expect(view.getByTestId("attention-group").querySelector("h3")!.textContent).toContain(
      "1 flow stalled after payment/PaymentCreated, waiting for bank",
    );
    const row = view.getByTestId("attention-flow");
    expect(row.querySelector("a")!.getAttribute("href")).toBe("/flows/correlation/c-7");
    expect(row.textContent).toContain("order.id=o-1007");
    expect(row.textContent).toContain("overdue 57 s");
    expect(view.queryByTestId("attention-empty")).toBeNull();
  });
});
