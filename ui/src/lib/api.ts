// The collector's query API (/api/v1, see docs/api.md): its answers' types and a small client.

/** A node flag, as the API names it. */
export type Flag =
  | "root"
  | "end"
  | "cause_missing"
  | "duplicate_publish"
  | "duplicate_reaction"
  | "problems"
  | "cycle";

/** One event of a graph or a search page. */
export interface EventSummary {
  id: string;
  type: string | null;
  source: string | null;
  topic: string;
  partition: number;
  offset: number;
  time: string;
  time_us: number;
  subject: string | null;
  causation_id: string | null;
  correlation_id: string | null;
  trace_id: string | null;
  span_id: string | null;
  depth?: number | null;
  flags: Flag[] | string[];
  problem_count: number;
  delivery_count: number;
}

/** A causal edge: `from` caused `to`. */
export interface GraphEdge {
  from: string;
  to: string;
  latency_ms: number;
  inferred: boolean;
  cycle: boolean;
}

/** A causal graph. */
export interface Graph {
  nodes: EventSummary[];
  edges: GraphEdge[];
  truncated: string | null;
}

/** Bytes as UTF-8 text or base64. */
export interface Bytes {
  encoding: "utf8" | "base64";
  data: string;
}

/** One event in full. */
export interface EventDetail {
  id: string;
  id_source: string;
  trace_id: string | null;
  span_id: string | null;
  causation_id: string | null;
  correlation_id: string | null;
  topic: string;
  partition: number;
  offset: number;
  key: Bytes | null;
  time: string;
  event_time: string | null;
  broker_time: string | null;
  ingested_at: string;
  type: string | null;
  source: string | null;
  subject: string | null;
  keys: { name: string; value: string }[];
  headers: { name: string; value: Bytes | null }[];
  payload: { body: Bytes; size: number; truncated: boolean; content_type: string | null } | null;
  problems: { kind: string; detail: string }[];
  deliveries: { topic: string; partition: number; offset: number; broker_time: string | null }[];
  reactions: string[];
  cause_stored: boolean;
}

/** Where a flow currently ends. */
export interface FlowEnd {
  id: string;
  type: string | null;
  source: string | null;
  topic: string;
  time: string;
  idle_ms: number;
}

/** One conversation of a key, trace or correlation. */
export interface Flow {
  correlation_id: string | null;
  roots: string[];
  events: string[];
  services: string[];
  started: string;
  last_activity: string;
  duration_ms: number;
  ends: FlowEnd[];
  hops: unknown[];
}

/** `GET /keys/{name}/{value}`. */
export interface KeyAnswer {
  key: { name: string; value: string };
  matched_events: number;
  flows: Flow[];
  services: string[];
  graph: Graph;
}

/** `GET /traces/{id}` and `/correlations/{id}`. */
export interface FlowAnswer {
  id: string;
  flow: Flow;
  graph: Graph;
}

/** `GET /search`. */
export interface SearchPage {
  events: EventSummary[];
  next_cursor: string | null;
  limit: number;
}

/** `GET /topology`. */
export interface Topology {
  from: string;
  to: string;
  nodes: { id: string; kind: "service" | "topic" | string; name: string }[];
  edges: {
    from: string;
    to: string;
    kind: "produce" | "consume" | string;
    count: number;
    latency_p50_ms: number | null;
    latency_p95_ms: number | null;
  }[];
  truncated: string | null;
}

/** An error answer of the API, or a failure to reach it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    readonly detail: string,
  ) {
    super(`${kind}: ${detail}`);
  }
}

/** Something that fetches, so tests can answer without a server. */
export type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

const enc = encodeURIComponent;

/** The API client. */
export class Api {
  constructor(
    private readonly fetcher: Fetch = (u, i) => fetch(u, i),
    private readonly base = "/api/v1",
  ) {}

  private async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    let response: Response;
    try {
      response = await this.fetcher(this.base + path, { signal, headers: { accept: "application/json" } });
    } catch (e) {
      if ((e as Error).name === "AbortError") throw e;
      throw new ApiError(0, "unreachable", `the collector did not answer: ${(e as Error).message}`);
    }
    if (!response.ok) {
      let kind = `http_${response.status}`;
      let detail = response.statusText;
      try {
        const body = await response.json();
        kind = body.error ?? kind;
        detail = body.detail ?? detail;
      } catch {
        /* not JSON: keep the status line */
      }
      throw new ApiError(response.status, kind, detail);
    }
    return (await response.json()) as T;
  }

  event(id: string, signal?: AbortSignal) {
    return this.get<EventDetail>(`/events/${enc(id)}`, signal);
  }
  lineage(id: string, depth = 10, signal?: AbortSignal) {
    return this.get<Graph>(`/events/${enc(id)}/lineage?direction=both&depth=${depth}`, signal);
  }
  key(name: string, value: string, signal?: AbortSignal) {
    return this.get<KeyAnswer>(`/keys/${enc(name)}/${enc(value)}`, signal);
  }
  /** Key names seen; with `value`, the names under which that value is a key. */
  keyNames(signal?: AbortSignal, value?: string) {
    return this.get<{ names: string[] }>(value === undefined ? `/keys` : `/keys?value=${enc(value)}`, signal);
  }
  trace(id: string, signal?: AbortSignal) {
    return this.get<FlowAnswer>(`/traces/${enc(id)}`, signal);
  }
  correlation(id: string, signal?: AbortSignal) {
    return this.get<FlowAnswer>(`/correlations/${enc(id)}`, signal);
  }
  search(params: Record<string, string>, signal?: AbortSignal) {
    return this.get<SearchPage>(`/search?${new URLSearchParams(params)}`, signal);
  }
  topology(range: { from?: string; to?: string }, signal?: AbortSignal) {
    const q = new URLSearchParams();
    if (range.from) q.set("from", range.from);
    if (range.to) q.set("to", range.to);
    const s = q.toString();
    return this.get<Topology>(`/topology${s ? `?${s}` : ""}`, signal);
  }
  /** The URL of the live feed following these keys, correlations and traces. */
  liveUrl(follow: { keys?: [string, string][]; correlations?: string[]; traces?: string[] }) {
    const q = new URLSearchParams();
    for (const [n, v] of follow.keys ?? []) q.append("key", `${n}=${v}`);
    for (const c of follow.correlations ?? []) q.append("correlation", c);
    for (const t of follow.traces ?? []) q.append("trace", t);
    return `${this.base}/live?${q}`;
  }
}

/** The client the app uses. */
export const api = new Api();
