// The collector's backfill progress (`GET /api/v1/ingest/progress`) as the viewer shows it.

import type { IngestProgress } from "./api";

/** `950`, `30 k`, `1.2 M`, `3.4 G` records (as the collector's log writes them). */
export function count(n: number): string {
  const a = Math.abs(n);
  const sign = n < 0 ? "-" : "";
  const [value, unit] = a >= 1e9 ? [a / 1e9, " G"] : a >= 1e6 ? [a / 1e6, " M"] : a >= 1e3 ? [a / 1e3, " k"] : [a, ""];
  if (unit === "") return `${sign}${Math.round(a)}`;
  return `${sign}${value < 10 ? value.toFixed(1) : Math.round(value)}${unit}`;
}

/** `45 s`, `4 min`, `2.5 h`, `3 d`: an estimate, so rounded. */
export function eta(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) return `${(seconds / 3600).toFixed(1)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

/** Topics named in the banner, at most; the rest are counted. */
const TOPICS_SHOWN = 3;

/** Why the store refuses writes, by the collector's reason. */
const HELD_BACK: Record<string, string> = {
  disk_full: "the store's disk is full",
  read_only: "the store is read-only",
  unavailable: "the store is out of reach",
};

/**
 * What the banner says, or null when there is nothing to say (not catching up, or not consuming).
 * Consumption held back by a failing store comes first: nothing new arrives until it is fixed.
 */
export function catchUpText(p: IngestProgress): { headline: string; topics: string; pace: string } | null {
  const held = p.held_back;
  if (held) {
    return {
      headline: `Ingest held back: ${HELD_BACK[held.reason] ?? "the store refuses writes"}`,
      topics: `since ${held.since}, ${held.failed_writes} failed write${held.failed_writes === 1 ? "" : "s"}: ${held.error}`,
      pace: "it resumes where it stopped, losing nothing, once the store takes writes again",
    };
  }
  if (!p.consuming || !p.catching_up) return null;
  const shown = p.topics.slice(0, TOPICS_SHOWN).map((t) => `${t.topic} ${count(t.records_behind)}`);
  const more = p.topics.length - TOPICS_SHOWN;
  if (more > 0) shown.push(`${more} more topic${more === 1 ? "" : "s"}`);
  const pace =
    p.eta_seconds != null && p.catch_up_rate != null
      ? `caught up in ≈ ${eta(p.eta_seconds)} at ${count(Math.round(p.catch_up_rate))} records/s`
      : p.catch_up_rate != null
        ? "not gaining: producers write as fast as it reads"
        : "pace not known yet";
  return {
    headline: `Catching up: ${count(p.records_behind)} records behind`,
    topics: shown.join(", "),
    pace,
  };
}
