// The viewer's addresses. Every view has one, so any view can be linked to and reloaded.

/** What a flow view shows: the flows of a business key, a trace, or a correlation. */
export type FlowTarget =
  | { kind: "key"; name: string; value: string }
  | { kind: "trace"; id: string }
  | { kind: "correlation"; id: string };

/** A parsed address. */
export type Route =
  | { view: "home" }
  | { view: "flow"; target: FlowTarget; selected: string | null }
  | { view: "event"; id: string }
  | { view: "search"; q: string }
  | { view: "map"; from: string | null; to: string | null }
  | { view: "services"; window: string | null }
  | { view: "not_found"; path: string };

const enc = encodeURIComponent;

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** Reads a path and query string (as in `location.pathname`, `location.search`). */
export function parseRoute(pathname: string, search = ""): Route {
  const query = new URLSearchParams(search);
  const raw = pathname.split("/").filter((s) => s.length > 0);
  const parts = raw.map(decode);
  if (parts.some((p) => p === null)) return { view: "not_found", path: pathname };
  const p = parts as string[];
  if (p.length === 0) return { view: "home" };
  const selected = query.get("event");
  if (p[0] === "flows") {
    if (p[1] === "key" && p.length === 4) {
      return { view: "flow", target: { kind: "key", name: p[2], value: p[3] }, selected };
    }
    if ((p[1] === "trace" || p[1] === "correlation") && p.length === 3) {
      return { view: "flow", target: { kind: p[1], id: p[2] }, selected };
    }
  }
  if (p[0] === "events" && p.length === 2) return { view: "event", id: p[1] };
  if (p[0] === "search" && p.length === 1) return { view: "search", q: query.get("q") ?? "" };
  if (p[0] === "map" && p.length === 1) {
    return { view: "map", from: query.get("from"), to: query.get("to") };
  }
  if (p[0] === "services" && p.length === 1) return { view: "services", window: query.get("window") };
  return { view: "not_found", path: pathname };
}

/** The address of a flow view, optionally with an event selected. */
export function flowHref(target: FlowTarget, selected?: string | null): string {
  const base =
    target.kind === "key"
      ? `/flows/key/${enc(target.name)}/${enc(target.value)}`
      : `/flows/${target.kind}/${enc(target.id)}`;
  return selected ? `${base}?event=${enc(selected)}` : base;
}

/** The address of an event. */
export function eventHref(id: string): string {
  return `/events/${enc(id)}`;
}

/** The address of a search. */
export function searchHref(q: string): string {
  return `/search?q=${enc(q)}`;
}

/** The address of the choreography map over a time range. */
export function mapHref(from?: string | null, to?: string | null): string {
  const q = new URLSearchParams();
  if (from) q.set("from", from);
  if (to) q.set("to", to);
  const s = q.toString();
  return s ? `/map?${s}` : "/map";
}

/** The address of the Services page (instrumentation coverage) over a window (`1h`, `24h`, `7d`). */
export function servicesHref(window?: string | null): string {
  return window ? `/services?window=${enc(window)}` : "/services";
}

/** A short title of a flow target, for headings. */
export function describeTarget(target: FlowTarget): string {
  switch (target.kind) {
    case "key":
      return `${target.name} = ${target.value}`;
    case "trace":
      return `trace ${target.id}`;
    case "correlation":
      return `correlation ${target.id}`;
  }
}
