// Instrumentation coverage in words (the Services page, `GET /api/v1/services`): how a service's
// events arrive, what lineage that allows. Plain strings; React renders them as text.

import type { LineageLevel, ServiceCoverage, SpanCoverage } from "./api";

/** The windows offered, as the API's `window` takes them. */
export const WINDOWS = ["1h", "24h", "7d"] as const;

/** The window shown when the address names none. */
export const DEFAULT_WINDOW = "24h";

/** `the last hour`, `the last 24 hours`, `the last 7 days`, or the window as given. */
export function windowText(window: string): string {
  const m = /^(\d+)([mhd])$/.exec(window);
  if (!m) return `the last ${window}`;
  const n = Number(m[1]);
  const unit = { m: "minute", h: "hour", d: "day" }[m[2] as "m" | "h" | "d"];
  return n === 1 ? `the last ${unit}` : `the last ${n} ${unit}s`;
}

/**
 * A share in whole percent: `0 %` only when none, `100 %` only when all (`<1 %`, `99 %` near
 * the ends), `–` of nothing.
 */
export function shareText(part: number, total: number): string {
  if (!(total > 0)) return "–";
  if (part <= 0) return "0 %";
  if (part >= total) return "100 %";
  const p = Math.round((part / total) * 100);
  if (p < 1) return "<1 %";
  return `${Math.min(p, 99)} %`;
}

/** A share as a fraction for a bar's width, between 0 and 1 (0 of nothing). */
export function shareFraction(part: number, total: number): number {
  if (!(total > 0)) return 0;
  return Math.min(Math.max(part / total, 0), 1);
}

/** The four shares a service's row shows: which of its events carry what. */
export const SHARES: { key: "with_ce_id" | "with_causation" | "with_correlation" | "with_traceparent"; label: string; title: string }[] = [
  { key: "with_ce_id", label: "ce_id", title: "Events with a CloudEvents id (ce_id)" },
  { key: "with_causation", label: "causation", title: "Events naming their cause (causation id)" },
  { key: "with_correlation", label: "correlation", title: "Events with a correlation id" },
  { key: "with_traceparent", label: "traceparent", title: "Events with a W3C traceparent header" },
];

/** The lineage level's badge. */
const LINEAGE_LABELS: Record<LineageLevel, string> = {
  declared: "declared",
  spans: "through spans",
  same_span: "same span only",
  none: "none",
};

/** The lineage level's badge text (a level this viewer does not know yet as the API names it). */
export function lineageLabel(level: LineageLevel | string): string {
  return (LINEAGE_LABELS as Record<string, string>)[level] ?? level;
}

/** `120 received · 3 failed`, `120 received`, or `none`. */
export function spansText(spans: SpanCoverage | null): string {
  if (!spans) return "none";
  return spans.failed > 0 ? `${spans.received} received · ${spans.failed} failed` : `${spans.received} received`;
}

/** The services by name. */
export function byName(services: ServiceCoverage[]): ServiceCoverage[] {
  return [...services].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
}
