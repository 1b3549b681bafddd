// The search box: what the user typed, and where it leads.

import { Api, ApiError } from "./api";
import { eventHref, flowHref } from "./routes";

/** What a search box input means, before asking the collector. */
export type Query =
  | { kind: "key"; name: string; value: string }
  | { kind: "trace"; id: string }
  | { kind: "bare"; value: string }
  | { kind: "empty" };

const TRACE_ID = /^[0-9a-f]{32}$/;

/** Key names every event may carry; a value found under them and a specific name means the latter. */
const GENERIC_KEYS = new Set(["kafka.key", "subject"]);


/**
 * Reads the search box: `order.id=o-1001` (or `order.id: o-1001`) is a business key, 32 lowercase
 * hex digits a W3C trace id, `trace:ID` / `event:ID` / `correlation:ID` say what they are, and
 * anything else is a bare value (an event id, or the value of some key).
 */
export function parseQuery(input: string): Query | { kind: "event" | "correlation"; id: string } {
  const text = input.trim();
  if (text === "") return { kind: "empty" };
  const prefixed = /^(trace|event|correlation)\s*:\s*(\S.*)$/i.exec(text);
  if (prefixed) {
    const kind = prefixed[1].toLowerCase() as "trace" | "event" | "correlation";
    return { kind, id: prefixed[2].trim() };
  }
  const key = /^([A-Za-z_][\w.\-]*)\s*[=:]\s*(\S.*)$/.exec(text);
  if (key) return { kind: "key", name: key[1], value: key[2].trim() };
  if (TRACE_ID.test(text)) return { kind: "trace", id: text };
  return { kind: "bare", value: text };
}

/** Where a search leads: one address, several candidates to choose from, or nothing. */
export type Resolution =
  | { kind: "go"; href: string }
  | { kind: "choose"; options: { label: string; href: string }[] }
  | { kind: "nothing"; message: string };

/**
 * Decides where a search goes. A bare value is tried as an event id first, then as the value of
 * any business key (one key name: straight to its flow; several: the user chooses).
 */
export async function resolveQuery(api: Api, input: string): Promise<Resolution> {
  const q = parseQuery(input);
  switch (q.kind) {
    case "empty":
      return { kind: "nothing", message: "Type a business key (order.id=o-1001), a value, an event id or a trace id." };
    case "key":
      return { kind: "go", href: flowHref({ kind: "key", name: q.name, value: q.value }) };
    case "trace":
      return { kind: "go", href: flowHref({ kind: "trace", id: q.id }) };
    case "correlation":
      return { kind: "go", href: flowHref({ kind: "correlation", id: q.id }) };
    case "event":
      return { kind: "go", href: eventHref(q.id) };
    case "bare":
      break;
  }
  try {
    await api.event(q.value);
    return { kind: "go", href: eventHref(q.value) };
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
  }
  // Which key names hold this value: one index probe per name on the collector.
  const { names } = await api.keyNames(undefined, q.value);
  // `o-1001` is also the record key and part of a subject: the specific key names win.
  const specific = names.filter((n) => !GENERIC_KEYS.has(n));
  const chosen = specific.length > 0 ? specific : [...names];
  const options = chosen.sort().map((name) => ({
    label: `${name} = ${q.value}`,
    href: flowHref({ kind: "key", name, value: q.value }),
  }));
  if (options.length === 1) return { kind: "go", href: options[0].href };
  if (options.length > 1) return { kind: "choose", options };
  return { kind: "nothing", message: `No event, key value or trace is "${q.value}".` };
}

/** Key names matching what is typed so far, for the search box's suggestions. */
export function suggestKeys(names: string[], input: string, max = 8): string[] {
  const text = input.trim();
  if (text.includes("=")) return [];
  const lower = text.toLowerCase();
  const starts = names.filter((n) => n.toLowerCase().startsWith(lower));
  const contains = names.filter((n) => !n.toLowerCase().startsWith(lower) && n.toLowerCase().includes(lower));
  return [...starts, ...contains].slice(0, max).map((n) => `${n}=`);
}
