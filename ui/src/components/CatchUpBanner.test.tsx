import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, render, waitFor } from "@testing-library/react";
import { api, type IngestProgress } from "../lib/api";
import { CatchUpBanner } from "./CatchUpBanner";

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

const behind: IngestProgress = {
  consuming: true,
  as_of: "2026-12-07T00:00:00Z",
  catching_up: true,
  records_behind: 1_230_000,
  topics: [
    { topic: "orders", records_behind: 1_200_000 },
    { topic: "payments", records_behind: 30_000 },
  ],
  consume_rate: 30_000,
  catch_up_rate: 25_000,
  eta_seconds: 240,
  held_back: null,
};

describe("the catch-up banner", () => {
  it("shows records behind, the topics most behind and the estimate while catching up", async () => {
    vi.spyOn(api, "ingestProgress").mockResolvedValue(behind);
    const view = render(<CatchUpBanner />);
    await waitFor(() => expect(view.getByTestId("catch-up")).toBeTruthy());
    expect(view.getByTestId("catch-up").textContent).toContain(
      "Catching up: 1.2 M records behind (orders 1.2 M, payments 30 k) · caught up in ≈ 4 min at 25 k records/s.",
    );
  });

  it("shows nothing once caught up", async () => {
    const spy = vi.spyOn(api, "ingestProgress").mockResolvedValue({ ...behind, catching_up: false, records_behind: 12, topics: [] });
    const view = render(<CatchUpBanner />);
    await waitFor(() => expect(spy).toHaveBeenCalled());
    expect(view.queryByTestId("catch-up")).toBeNull();
  });

  it("shows nothing when the collector consumes no cluster or does not answer", async () => {
    const spy = vi.spyOn(api, "ingestProgress").mockRejectedValue(new Error("404"));
    const view = render(<CatchUpBanner />);
    await waitFor(() => expect(spy).toHaveBeenCalled());
    expect(view.queryByTestId("catch-up")).toBeNull();
  });
});
