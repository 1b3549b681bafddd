// What the collector learns from OpenTelemetry spans, in words: how an edge of a graph was found,
// the exception a handler raised, and how a handling of an event went. Plain strings; React
// renders them as text.

import type { EdgeRule, ExceptionInfo, GraphEdge, Handling } from "./api";
import { duration } from "./format";

/** How an edge was found, in words. */
const RULE_TEXT: Record<EdgeRule, string> = {
  causation: "declared (ce_causationid)",
  same_span: "same trace span",
  span_message: "consumer span's message position",
  span_link: "consumer span's link",
  span_parent: "consumer span's parent",
};

/** How an edge was found: `declared (ce_causationid)`, `consumer span's link`, … (a rule this
 *  viewer does not know yet is named as the API names it). */
export function ruleText(rule: EdgeRule | string | null | undefined): string {
  if (!rule) return "inferred";
  return (RULE_TEXT as Record<string, string>)[rule] ?? rule;
}

/** An edge's tooltip: how it was found and how long the hop took — `inferred from the
 *  consumer span's link · 12 ms`, `declared (ce_causationid) · 12 ms`. */
export function edgeTitle(e: Pick<GraphEdge, "inferred" | "rule" | "latency_ms" | "cycle">): string {
  const how = e.inferred ? `inferred from the ${ruleText(e.rule)}` : ruleText(e.rule ?? "causation");
  return `${how} · ${duration(e.latency_ms)}${e.cycle ? " · closes a causation cycle" : ""}`;
}

/** `ValueError: SKU-42 is out of stock`, `ValueError`, the message alone, or null when the
 *  exception says nothing. */
export function exceptionText(e: ExceptionInfo | null | undefined): string | null {
  if (!e) return null;
  const type = e.type?.trim() || null;
  const message = e.message?.trim() || null;
  if (type && message) return `${type}: ${message}`;
  return type ?? message;
}

/** Who handled an event: `inventory (group demo-inventory)`, `inventory`, `group demo-inventory`. */
export function handlerText(h: Pick<Handling, "service" | "consumer_group">): string {
  if (h.service && h.consumer_group) return `${h.service} (group ${h.consumer_group})`;
  if (h.service) return h.service;
  if (h.consumer_group) return `group ${h.consumer_group}`;
  return "(unknown service)";
}

/** What came of a handling, for a badge and a sentence. */
export interface HandlingOutcome {
  /** `failed`; `produced` (ok, with reactions); `nothing` (ok, produced nothing). */
  kind: "failed" | "produced" | "nothing";
  /** The badge: `failed` or `ok`. */
  badge: "failed" | "ok";
  /** `failed: ValueError: out of stock`, `handled, produced 2 events`, `handled, produced nothing`. */
  text: string;
}

/** What came of a handling: failed (and why), handled with reactions, or handled with none. */
export function handlingOutcome(h: Pick<Handling, "outcome" | "exception" | "produced">): HandlingOutcome {
  if (h.outcome === "failed") {
    const why = exceptionText(h.exception);
    return { kind: "failed", badge: "failed", text: why ? `failed: ${why}` : "failed (no exception recorded)" };
  }
  const n = h.produced.length;
  if (n === 0) return { kind: "nothing", badge: "ok", text: "handled, produced nothing" };
  return { kind: "produced", badge: "ok", text: `handled, produced ${n} event${n === 1 ? "" : "s"}` };
}

/** Handlings in the order they started (then by service). */
export function byStart(handlings: Handling[]): Handling[] {
  return [...handlings].sort(
    (a, b) => Date.parse(a.started) - Date.parse(b.started) || (a.service ?? "").localeCompare(b.service ?? ""),
  );
}
