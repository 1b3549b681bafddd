// The timeline: the events of a flow in one lane per service, on a shared time axis.

import type { EventSummary, GraphEdge } from "./api";

/** One lane. */
export interface Lane {
  service: string;
  events: { event: EventSummary; at: number }[];
}

/** A timeline: lanes in order of each service's first event, positions in [0, 1]. */
export interface Timeline {
  lanes: Lane[];
  startUs: number;
  endUs: number;
  /** The earliest and the latest event (null without events). */
  first: EventSummary | null;
  last: EventSummary | null;
  /** Causal hops between lanes: (from lane, from position) → (to lane, to position). */
  hops: { from: [number, number]; to: [number, number]; cycle: boolean }[];
}

/** Where an event without a source goes. */
export const UNKNOWN_SERVICE = "(unknown)";

/** Builds the timeline of `events` (any order) and their `edges`. */
export function buildTimeline(events: EventSummary[], edges: GraphEdge[]): Timeline {
  const sorted = [...events].sort((a, b) => a.time_us - b.time_us || a.id.localeCompare(b.id));
  const startUs = sorted[0]?.time_us ?? 0;
  const endUs = sorted[sorted.length - 1]?.time_us ?? 0;
  const span = Math.max(endUs - startUs, 1);
  const lanes: Lane[] = [];
  const laneOf = new Map<string, number>();
  const where = new Map<string, [number, number]>();
  for (const event of sorted) {
    const service = event.source ?? UNKNOWN_SERVICE;
    let index = laneOf.get(service);
    if (index === undefined) {
      index = lanes.length;
      laneOf.set(service, index);
      lanes.push({ service, events: [] });
    }
    const at = sorted.length === 1 ? 0.5 : (event.time_us - startUs) / span;
    lanes[index].events.push({ event, at });
    where.set(event.id, [index, at]);
  }
  const hops = edges.flatMap((e) => {
    const from = where.get(e.from);
    const to = where.get(e.to);
    return from && to ? [{ from, to, cycle: e.cycle }] : [];
  });
  return { lanes, startUs, endUs, first: sorted[0] ?? null, last: sorted[sorted.length - 1] ?? null, hops };
}
