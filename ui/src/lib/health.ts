// Flow health in words, for the views: what a stuck flow waits for, since when and on what
// evidence; the flow view's status banner; the start page's "needs attention" groups. Plain
// strings; React renders them as text.

import type { FailureView, FlowHealth, FlowHealthView, FlowsSummary, FlowStatus, KeyValue, MissingView, Reaction, Step } from "./api";
import { diagnosisOf } from "./api";
import { clock, duration } from "./format";
import { exceptionText } from "./spans";
import { eventHref, flowHref } from "./routes";

/** `payment/PaymentCreated`. */
export function stepText(step: Step): string {
  return `${step.service}/${step.event_type}`;
}

/** The reaction expected, short: `bank/PaymentConfirmed`, `bank`, or `any reaction`. */
export function reactionText(r: Reaction): string {
  switch (r.kind) {
    case "specific":
      return `${r.service}/${r.event_type}`;
    case "by_service":
      return r.service;
    case "any":
      return "any reaction";
  }
}

/** The reaction expected, in a sentence: `a reaction from bank`, `PaymentConfirmed from bank`, `any reaction`. */
export function reactionPhrase(r: Reaction): string {
  switch (r.kind) {
    case "specific":
      return `${r.event_type} from ${r.service}`;
    case "by_service":
      return `a reaction from ${r.service}`;
    case "any":
      return "any reaction";
  }
}

/** A wait at the precision a person needs: `412 ms`, `57 s`, `4 min 10 s`, `2 h 5 min`. */
export function waitText(ms: number): string {
  const a = Math.abs(ms);
  if (Number.isFinite(a) && a >= 1000 && a < 60_000) return `${ms < 0 ? "-" : ""}${Math.round(a / 1000)} s`;
  return duration(ms);
}

/** How far a missing reaction is from its deadline: `overdue 57 s`, `due in 8 s`, `due now`. */
export function dueText(m: MissingView, now: number): string {
  if (m.overdue_ms !== null) return `overdue ${waitText(m.overdue_ms)}`;
  const left = Date.parse(m.deadline) - now;
  if (!Number.isFinite(left)) return `due ${m.deadline}`;
  return left <= 0 ? "due now" : `due in ${waitText(left)}`;
}

/** Why a reaction is expected: `98 % of 100 occurrences, learned`, or `declared`. */
export function evidenceText(m: MissingView): string {
  if (m.origin === "declared") return "declared in the config file";
  return `${Math.round(m.support * 100)} % of ${m.samples} occurrences, learned`;
}

/**
 * One missing reaction, in a sentence: `waiting for a reaction from bank after PaymentCreated
 * (payment) — 57 s overdue; 98 % of 100 occurrences, learned` (or `expecting … — due in 8 s; …`
 * while not yet due).
 */
export function missingText(m: MissingView, now: number): string {
  const overdue = m.overdue_ms !== null;
  const when = overdue ? `${waitText(m.overdue_ms!)} overdue` : dueText(m, now);
  return (
    `${overdue ? "waiting for" : "expecting"} ${reactionPhrase(m.expected)} after ${m.after.event_type} ` +
    `(${m.after.service}) — ${when}; ${evidenceText(m)}`
  );
}

/**
 * A reaction missing after an event that failed — dead-lettered (the consumer gave up on it) or
 * whose handler raised: `no InventoryReserved from inventory after the dead-lettered
 * PaymentConfirmed (bank) — 26 s overdue; 97 % of 39 occurrences, learned` (`after the failed
 * …` when it was not dead-lettered). Not "waiting for": it will not come by itself.
 */
export function missingAfterFailureText(m: MissingView, now: number, deadLettered = true): string {
  const when = m.overdue_ms !== null ? `${waitText(m.overdue_ms)} overdue` : dueText(m, now);
  const what = m.expected.kind === "any" ? "reaction" : reactionPhrase(m.expected);
  const how = deadLettered ? "dead-lettered" : "failed";
  return `no ${what} after the ${how} ${m.after.event_type} (${m.after.service}) — ${when}; ${evidenceText(m)}`;
}

/**
 * A failure in a sentence: its reason, the exception its handler raised (unless the reason
 * already says it), and where it was dead-lettered — `inventory failed — ValueError: SKU-42 is out of
 * stock`, `demo-inventory: … — dead-lettered to bank-dlt`.
 */
export function failureText(f: FailureView): string {
  let text = f.reason;
  const exception = exceptionText(f.exception);
  const said = f.exception?.message?.trim() || exception;
  if (exception && said && !text.includes(said)) text = text ? `${text} — ${exception}` : exception;
  return f.dead_letter_topic ? `${text} — dead-lettered to ${f.dead_letter_topic}` : text;
}

/** What the flow view's banner says about a flow's health. */
export interface Banner {
  status: FlowStatus;
  /** `Stalled`, `Failed`, `In progress`, `Complete`. */
  title: string;
  /** One sentence each: what is missing or failed, or when it turns stalled. */
  lines: string[];
  /** Why reactions are missing (consumer-group diagnoses), when known. */
  diagnoses: string[];
}

const TITLES: Record<FlowStatus, string> = {
  failed: "Failed",
  stalled: "Stalled",
  in_progress: "In progress",
  complete: "Complete",
};

/**
 * What a flow ending at steps flow health has not learned yet is: complete only as far as
 * learned (nothing can be expected after a step seen too few times).
 */
export function learningText(steps: { service: string; event_type: string }[]): string {
  const names = steps.map((s) => `${s.service}/${s.event_type}`).join(", ");
  return `complete as far as learned: too few occurrences of ${names} yet to know what follows`;
}

/** The banner of one flow's health, at time `now` (ms since the epoch). */
export function banner(h: FlowHealth, now: number): Banner {
  const lines: string[] = [];
  if (h.status === "failed") lines.push(...h.failures.map(failureText));
  if (h.status === "in_progress" && h.next_deadline) {
    const left = Date.parse(h.next_deadline) - now;
    const inText = Number.isFinite(left) && left > 0 ? ` (in ${waitText(left)})` : "";
    lines.push(`turns stalled at ${clock(h.next_deadline)}${inText} if nothing arrives`);
  }
  const failed = new Map(h.failures.map((f) => [f.event, f]));
  lines.push(
    ...h.missing.map((m) => {
      const f = failed.get(m.after_event);
      // A failure without a dead-letter topic is a handler that raised (from its spans).
      return f ? missingAfterFailureText(m, now, f.dead_letter_topic !== null || f.exception === null) : missingText(m, now);
    }),
  );
  if (h.status === "complete" && lines.length === 0) {
    lines.push(h.learning.length > 0 ? learningText(h.learning) : "nothing expected is missing");
  }
  const diagnoses = h.missing.flatMap((m) => diagnosisOf(m)?.text ?? []);
  return { status: h.status, title: TITLES[h.status], lines, diagnoses };
}

/**
 * Where a flow of `/api/v1/flows` is shown: its correlation's flow view, or, for a flow without a
 * correlation (its id is its only event's), that event. A correlation may be named after its
 * first event (the demo's are), so the id alone does not tell: one event with its own id does.
 */
export function flowHealthHref(f: FlowHealthView): string {
  return f.root.id === f.flow && f.events <= 1 ? eventHref(f.flow) : flowHref({ kind: "correlation", id: f.flow });
}

/** Keys that repeat another key's value (the record key, the subject) come last. */
const ECHO_KEYS = new Set(["kafka.key", "subject"]);

/** A flow's keys for a list: `order.id=o-1007`, at most `max`, the echoing ones last. */
export function keysText(keys: KeyValue[], max = 3): string[] {
  const sorted = [...keys].sort((a, b) => Number(ECHO_KEYS.has(a.name)) - Number(ECHO_KEYS.has(b.name)));
  return sorted.slice(0, max).map((k) => `${k.name}=${k.value}`);
}

/** A flow in the start page's list. */
export interface AttentionFlow {
  flow: string;
  href: string;
  keys: string[];
  /** `overdue 57 s` (stalled), or the failure (failed). */
  detail: string;
  /** How overdue its first missing reaction is, ms (0 when none is). */
  overdueMs: number;
  lastActivity: string;
}

/** Stalled or failed flows that stopped at the same place. */
export interface AttentionGroup {
  key: string;
  status: "stalled" | "failed";
  after: Step | null;
  waitingFor: Reaction | null;
  /** How many flows stopped there (the summary's count when it knows more than the list). */
  count: number;
  /** `2 flows stalled after payment/PaymentCreated, waiting for bank`. */
  title: string;
  /** The flows listed, oldest first. */
  flows: AttentionFlow[];
  /** What every flow listed says (a failed group whose flows failed for the same reason): said
   *  once under the title instead of on every row. Null when they differ or there is one flow. */
  sharedDetail: string | null;
}

function groupKey(status: string, after: Step | null, waitingFor: Reaction | null): string {
  return [status, after ? stepText(after) : "", status === "stalled" && waitingFor ? reactionText(waitingFor) : ""].join("|");
}

function groupTitle(status: "stalled" | "failed", count: number, after: Step | null, waitingFor: Reaction | null): string {
  const flows = `${count} flow${count === 1 ? "" : "s"}`;
  if (status === "failed") return `${flows} failed${after ? ` at ${stepText(after)}` : ""}`;
  const where = after ? ` after ${stepText(after)}` : "";
  return `${flows} stalled${where}${waitingFor ? `, waiting for ${reactionText(waitingFor)}` : ""}`;
}

/** The missing reaction a stalled flow is grouped by: its first overdue one, else its first. */
function firstMissing(f: FlowHealthView): MissingView | undefined {
  return f.missing.find((m) => m.overdue_ms !== null) ?? f.missing[0];
}

/**
 * The start page's "needs attention": stalled and failed flows grouped by where they stopped
 * (the step, and for stalled flows the reaction waited for), failed groups first, then the
 * groups whose oldest flow has waited longest; in each group its flows oldest first. `summary`
 * (`/api/v1/flows/summary`) gives the counts beyond the flows listed, and the step a failed flow
 * stopped at; groups it knows of but none of whose flows are listed are kept, with their count.
 */
export function attentionGroups(summary: FlowsSummary | null, stuck: FlowHealthView[], now: number): AttentionGroup[] {
  const failedAt = new Map<string, Step | null>();
  for (const g of summary?.stopped ?? []) {
    if (g.status === "failed") for (const id of g.oldest) failedAt.set(id, g.after);
  }
  const groups = new Map<string, AttentionGroup>();
  const groupOf = (status: "stalled" | "failed", after: Step | null, waitingFor: Reaction | null) => {
    const key = groupKey(status, after, waitingFor);
    let g = groups.get(key);
    if (!g) {
      g = { key, status, after, waitingFor: status === "stalled" ? waitingFor : null, count: 0, title: "", flows: [], sharedDetail: null };
      groups.set(key, g);
    }
    return g;
  };
  for (const f of stuck) {
    if (f.status !== "stalled" && f.status !== "failed") continue;
    const m = firstMissing(f);
    const status = f.status;
    const g =
      status === "stalled"
        ? groupOf(status, m?.after ?? null, m?.expected ?? null)
        : groupOf(status, failedAt.get(f.flow) ?? null, null);
    if (g.flows.some((x) => x.flow === f.flow)) continue;
    const overdueMs = m?.overdue_ms ?? 0;
    const detail =
      status === "failed"
        ? f.failures.map(failureText).join("; ") || "failed"
        : m
          ? dueText(m, now)
          : "stalled";
    g.flows.push({ flow: f.flow, href: flowHealthHref(f), keys: keysText(f.keys), detail, overdueMs, lastActivity: f.last_activity });
  }
  for (const s of summary?.stopped ?? []) {
    if (s.status !== "stalled" && s.status !== "failed") continue;
    const g = groupOf(s.status, s.after, s.waiting_for);
    g.count = Math.max(g.count, s.flows);
  }
  const ageOf = (x: AttentionFlow) => x.overdueMs || now - Date.parse(x.lastActivity) || 0;
  const all = [...groups.values()];
  for (const g of all) {
    g.flows.sort((a, b) => ageOf(b) - ageOf(a) || a.lastActivity.localeCompare(b.lastActivity));
    g.count = Math.max(g.count, g.flows.length);
    g.title = groupTitle(g.status, g.count, g.after, g.waitingFor);
    const details = new Set(g.flows.map((f) => f.detail));
    g.sharedDetail = g.status === "failed" && g.flows.length > 1 && details.size === 1 ? g.flows[0].detail : null;
  }
  const oldest = (g: AttentionGroup) => (g.flows.length > 0 ? ageOf(g.flows[0]) : -Infinity);
  return all.sort(
    (a, b) => Number(a.status === "stalled") - Number(b.status === "stalled") || oldest(b) - oldest(a) || b.count - a.count,
  );
}
