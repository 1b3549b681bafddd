import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, waitFor } from "@testing-library/react";
import { api, ApiError, type ServiceCoverage, type ServicesAnswer } from "../lib/api";
import { NavigationProvider } from "../navigation";
import { ServicesView } from "./ServicesView";

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

function coverage(service: string, overrides: Partial<ServiceCoverage> = {}): ServiceCoverage {
  return {
    service, events: 40, with_ce_id: 40, with_causation: 30, with_correlation: 40, with_traceparent: 40, baggage_keys: [],
    spans: null, lineage: "declared", lineage_note: `${service}'s events name their causes (ce_causationid).`, advice: [],
    ...overrides,
  };
}

function answer(services: ServiceCoverage[]): ServicesAnswer {
  return { from: "2026-12-05T20:00:00Z", to: "2026-12-06T20:00:00Z", sampled_events: services.reduce((n, s) => n + s.events, 0), services };
}

function renderAt(window: string | null, navigate = vi.fn()) {
  const view = render(
    <NavigationProvider value={{ route: { view: "services", window }, navigate }}>
      <ServicesView window={window} />
    </NavigationProvider>,
  );
  return { view, navigate };
}

const cells = (row: HTMLElement) => [...row.querySelectorAll("th, td")].map((c) => c.textContent?.trim());

describe("the Services page", () => {
  it("lists one row per service, by name: events, the four shares, baggage, spans, lineage and advice", async () => {
    const services = vi.spyOn(api, "services").mockResolvedValue(
      answer([
        coverage("shop", { with_causation: 0, baggage_keys: ["tenant"] }),
        coverage("inventory", {
          events: 3, with_ce_id: 0, with_causation: 0, with_correlation: 0, with_traceparent: 3, baggage_keys: [],
          spans: { received: 120, consumer: 60, producer: 60, failed: 3, last_seen: "2026-12-06T19:59:58Z" },
          lineage: "spans", lineage_note: "Its events are linked to their causes through its consumer spans.",
          advice: ["Add ce_id to every record (the CloudEvents Kafka binding does)."],
        }),
        coverage("bank", { events: 7, with_ce_id: 7, with_causation: 0, with_correlation: 0, with_traceparent: 7, lineage: "same_span", lineage_note: "Only the same-span rule." }),
      ]),
    );
    const { view } = renderAt(null);
    await waitFor(() => expect(view.getAllByTestId("service-row")).toHaveLength(3));
    expect(services).toHaveBeenCalledWith("24h", expect.anything());
    const rows = view.getAllByTestId("service-row");
    expect(rows.map((r) => r.dataset.service)).toEqual(["bank", "inventory", "shop"]);
    expect(cells(rows[1])).toEqual([
      "inventory", "3", "0 %", "0 %", "0 %", "100 %", "none", "120 received · 3 failed", "through spans",
      "Add ce_id to every record (the CloudEvents Kafka binding does).",
    ]);
    expect(cells(rows[2])).toEqual(["shop", "40", "100 %", "0 %", "100 %", "100 %", "tenant", "none", "declared", "nothing"]);
    const lineage = rows[1].querySelector('[data-testid="service-lineage"]')!;
    expect(lineage.getAttribute("title")).toBe("Its events are linked to their causes through its consumer spans.");
    expect(rows[0].querySelector('[data-testid="share-with_ce_id"]')!.getAttribute("title")).toBe("7 of 7 events");
    expect(view.getByTestId("services-range").textContent).toContain("3 services, 50 events");
    expect(view.queryByTestId("services-empty")).toBeNull();
  });

  it("says so when there are no events in the window", async () => {
    vi.spyOn(api, "services").mockResolvedValue(answer([]));
    const { view } = renderAt("1h");
    await waitFor(() => expect(view.getByTestId("services-empty")).toBeTruthy());
    expect(view.getByTestId("services-empty").textContent).toContain("No events in the last hour");
    expect(view.queryByTestId("services-table")).toBeNull();
  });

  it("puts the window chosen into the address", async () => {
    const services = vi.spyOn(api, "services").mockResolvedValue(answer([coverage("shop")]));
    const { view, navigate } = renderAt("1h");
    await waitFor(() => expect(view.getAllByTestId("service-row")).toHaveLength(1));
    expect(services).toHaveBeenCalledWith("1h", expect.anything());
    expect(view.getByTestId("window-1h").getAttribute("aria-pressed")).toBe("true");
    expect(view.getByTestId("window-7d").getAttribute("aria-pressed")).toBe("false");
    fireEvent.click(view.getByTestId("window-7d"));
    expect(navigate).toHaveBeenCalledWith("/services?window=7d", { replace: true });
  });

  it("shows the collector's error", async () => {
    vi.spyOn(api, "services").mockRejectedValue(new ApiError(400, "bad_parameter", "window: expected 1h, 24h or 7d"));
    const { view } = renderAt("2w");
    await waitFor(() => expect(view.getByTestId("error").textContent).toBe("bad_parameter: window: expected 1h, 24h or 7d"));
  });
});
