// The collector's query API (/api/v1, see docs/api.md): its answers' types and a small client.

// The answers' types are generated from the API's OpenAPI document (api-types.ts, `npm run
// api-types`), so they cannot drift from what the collector serves.
import type {
  EventDetail,
  GraphEdge,
  HandlingView,
  ServiceCoverage,
  Flow,
  MissingView,
  FlowAnswer,
  FlowsPage,
  FlowsSummary,
  FlowStatus,
  Graph,
  IngestProgress,
  KeyAnswer,
  KeyNames,
  SearchPage,
  ServicesAnswer,
  Topology,
  Me,
} from "./api-types";
import { requireLogin } from "./session";

export type {
  Bytes,
  Delivery,
  ErrorBody,
  EventDetail,
  EventSummary,
  FailureView,
  Flag,
  Flow,
  FlowAnswer,
  FlowEnd,
  FlowHealthView,
  FlowsPage,
  FlowsSummary,
  FlowStatus,
  Graph,
  GraphEdge,
  Hop,
  IngestProgress,
  KeyAnswer,
  KeyNames,
  KeyValue,
  Me,
  MapEdge,
  MapNode,
  MissingView,
  Reaction,
  SearchPage,
  ServiceCoverage,
  ServicesAnswer,
  SpanCoverage,
  StatusCounts,
  Step,
  StoppedGroupView,
  Topology,
} from "./api-types";

// Named by where they appear, so a schema renamed in the document does not rename them here.
/** A flow's health, as every flow of the key, trace and correlation answers carries it. */
export type FlowHealth = Flow["health"];
/** A copy of an event on a dead-letter topic. */
export type DeadLetter = EventDetail["dead_letters"][number];

/** How a graph edge was found: declared (`causation`) or the inference rule that found it. */
export type EdgeRule = GraphEdge["rule"];

/** A service's processing of an event, from its consumer span. */
export type Handling = HandlingView;

/** The exception a handler raised, as a handling or a failure carries it. */
export type ExceptionInfo = NonNullable<Handling["exception"]>;

/** The best lineage a service's events allow. */
export type LineageLevel = ServiceCoverage["lineage"];

/** One consumer group's position against one event's record. */
export type GroupPosition = EventDetail["consumer_groups"][number];

/** Why an expected reaction is missing, from consumer-group positions. */
export type Diagnosis = NonNullable<MissingView["diagnosis"]>;

/** A missing reaction's diagnosis (none while the collector polls no consumer groups). */
export function diagnosisOf(m: MissingView): Diagnosis | null {
  return m.diagnosis ?? null;
}

/** The consumer groups reading an event's topic (none while the collector polls none). */
export function consumerGroupsOf(e: EventDetail): GroupPosition[] {
  return e.consumer_groups;
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
      if (response.status === 401) requireLogin(detail);
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
    return this.get<KeyNames>(value === undefined ? `/keys` : `/keys?value=${enc(value)}`, signal);
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
  /** Tracked flows (an event in the last hour), oldest first, optionally of one status. */
  flows(params: { status?: FlowStatus; limit?: number }, signal?: AbortSignal) {
    const q = new URLSearchParams();
    if (params.status) q.set("status", params.status);
    if (params.limit !== undefined) q.set("limit", String(params.limit));
    const s = q.toString();
    return this.get<FlowsPage>(`/flows${s ? `?${s}` : ""}`, signal);
  }
  /** Counts per status, and the stalled and failed flows grouped by where they stopped. */
  flowsSummary(signal?: AbortSignal) {
    return this.get<FlowsSummary>(`/flows/summary`, signal);
  }
  /** Per service, how its events arrive and what lineage that allows, over the last `window` (`1h`, `24h`, `7d`). */
  services(window: string, signal?: AbortSignal) {
    return this.get<ServicesAnswer>(`/services?window=${enc(window)}`, signal);
  }
  /** How far behind its partitions the collector's consumption is, and when it will catch up. */
  ingestProgress(signal?: AbortSignal) {
    return this.get<IngestProgress>(`/ingest/progress`, signal);
  }
  /** Who the collector takes the viewer's user for, and what they see. */
  me(signal?: AbortSignal) {
    return this.get<Me>(`/me`, signal);
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
