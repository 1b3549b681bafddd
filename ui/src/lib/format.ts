// Text for the views: durations, times, byte values, payloads. Everything returns plain strings;
// React renders them as text, so nothing here can become markup.

import type { Bytes } from "./api";

/** `0.8 ms`, `412 ms`, `3.2 s`, `4 min 10 s`, `2 h 5 min`, `3 d 4 h`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  const sign = ms < 0 ? "-" : "";
  const a = Math.abs(ms);
  if (a < 10) return `${sign}${a.toFixed(1)} ms`;
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  if (a < 60_000) return `${sign}${(a / 1000).toFixed(1)} s`;
  const s = Math.round(a / 1000);
  if (s < 3600) return `${sign}${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${sign}${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${sign}${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** `HH:MM:SS.mmm` of an RFC 3339 time, in UTC (as the API gives it). */
export function clock(rfc3339: string): string {
  const m = /T(\d\d:\d\d:\d\d)(\.\d{1,3})?/.exec(rfc3339);
  if (!m) return rfc3339;
  return m[1] + (m[2] ?? ".000").padEnd(4, "0");
}

/** A header value or record key for display: the text, or `base64:…` for binary. */
export function bytesText(b: Bytes | null): string {
  if (b === null) return "(null)";
  return b.encoding === "utf8" ? b.data : `base64:${b.data}`;
}

/** A payload for display: pretty JSON when it parses, else the text as it is. */
export function payloadText(b: Bytes): { text: string; json: boolean } {
  if (b.encoding !== "utf8") return { text: `base64:${b.data}`, json: false };
  try {
    const value = JSON.parse(b.data);
    if (value !== null && typeof value === "object") {
      return { text: JSON.stringify(value, null, 2), json: true };
    }
  } catch {
    /* not JSON */
  }
  return { text: b.data, json: false };
}

/** What a flag means, for badges and tooltips. */
export const FLAG_LABELS: Record<string, { short: string; title: string }> = {
  root: { short: "root", title: "Starts a flow: no known cause" },
  end: { short: "end", title: "The flow's current end: nothing reacted to this (yet)" },
  cause_missing: { short: "cause?", title: "Names a cause the collector never saw" },
  duplicate_publish: { short: "dup publish", title: "The same event id was published more than once" },
  duplicate_reaction: { short: "twice", title: "A service reacted twice to one cause with the same type (processed twice)" },
  problems: { short: "problems", title: "Parts of the record could not be interpreted" },
  cycle: { short: "cycle", title: "Part of a causation cycle" },
  dead_lettered: { short: "dead letter", title: "Copied to a dead-letter topic: a consumer gave up on it, and its flow failed" },
  handler_failed: { short: "handler failed", title: "A service's handler raised while processing it (from its OpenTelemetry spans): its flow failed" },
};
