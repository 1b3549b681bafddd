import { useMemo, useState, type FormEvent } from "react";
import {
  BaseEdge,
  Background,
  Controls,
  EdgeLabelRenderer,
  MarkerType,
  ReactFlow,
  type Edge,
  type EdgeProps,
  type Node,
} from "@xyflow/react";
import { api, type MapEdge, type Topology } from "../lib/api";
import { duration } from "../lib/format";
import { layered, routePath, serviceColor, type Route } from "../lib/layout";
import { mapHref } from "../lib/routes";
import { useLoad } from "../hooks";
import { useNavigation } from "../navigation";
import { ErrorNote } from "./ErrorNote";

const SERVICE = { width: 150, height: 34 };
const TOPIC = { width: 140, height: 28 };

/**
 * The map runs top to bottom: the demo's choreography is ten layers deep and three wide, so on a
 * wide screen it fits at a readable zoom this way (left to right it fitted at 0.45, its labels
 * 6 px on screen); labels sit beside the edges, where the layers leave them room.
 */
const MAP_SPACING = { rankdir: "TB" as const, nodesep: 60, ranksep: 30 };

/**
 * The default fit zooms out no further than this: the labels (15 px) stay at least 11 px on screen.
 * A map larger than the canvas at this zoom is panned, not shrunk into illegibility.
 */
const MIN_FIT_ZOOM = 0.75;

/** Time ranges offered with one click, in minutes. */
const PRESETS: [string, number | null][] = [
  ["15 min", 15],
  ["1 h", 60],
  ["24 h", 24 * 60],
  ["7 d", 7 * 24 * 60],
  ["all", null],
];

/** A time input's value (local time, minutes) of an RFC 3339 time. */
function toLocalInput(rfc3339: string | null): string {
  if (!rfc3339) return "";
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return "";
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

/** An edge's health: `failed` when a failed flow's dead letter came from it, `stalled` when a
 *  stalled flow waits on it, else `healthy`. */
export type EdgeHealth = "failed" | "stalled" | "healthy";

export function edgeHealth(e: Pick<MapEdge, "stalled" | "failed">): EdgeHealth {
  if ((e.failed ?? 0) > 0) return "failed";
  if ((e.stalled ?? 0) > 0) return "stalled";
  return "healthy";
}

const HEALTH_COLOUR: Record<EdgeHealth, string> = { failed: "var(--failed)", stalled: "var(--stalled)", healthy: "var(--edge)" };
/** Arrowheads take a colour, not a variable. */
const HEALTH_MARKER: Record<EdgeHealth, string> = { failed: "#e5484d", stalled: "#e09b12", healthy: "#8a8f98" };

/** Edge labels' size on the canvas, chosen with the layout's spacing so that the demo's map at
 *  its default fit shows them at 11 px or more. */
const LABEL_SIZE = 15;

/** An edge's label, one line (the map is short of height, not of width): events, the hop
 *  latency, and the flows stuck there. */
export function edgeLabel(e: MapEdge): string[] {
  const parts = [String(e.count)];
  if (e.latency_p50_ms !== null) parts.push(`p50 ${duration(e.latency_p50_ms)}`, `p95 ${duration(e.latency_p95_ms ?? NaN)}`);
  if (e.failed) parts.push(`${e.failed} failed`);
  if (e.stalled) parts.push(`${e.stalled} stalled`);
  return [parts.join(" · ")];
}

/** The room a label takes on the canvas (a generous estimate of its text's size). */
function labelBox(lines: string[]): { width: number; height: number } {
  const longest = Math.max(...lines.map((l) => l.length));
  return { width: Math.ceil(longest * LABEL_SIZE * 0.58) + 10, height: lines.length * Math.ceil(LABEL_SIZE * 1.25) + 4 };
}

/** What a map edge carries: its health, its label and dagre's route. */
type MapEdgeData = { health: EdgeHealth; lines: string[]; route: Route };

/** A map edge: drawn along dagre's route, its label where dagre made room for it. */
function MapEdgeView({ id, data, markerEnd, style }: EdgeProps<Edge<MapEdgeData, "map">>) {
  if (!data) return null;
  const at = data.route.label;
  return (
    <>
      <BaseEdge id={id} path={routePath(data.route.points)} markerEnd={markerEnd} style={style} />
      {at && (
        <EdgeLabelRenderer>
          <div
            className={`map-edge-label map-${data.health}`}
            data-testid="map-edge-label"
            data-edge={id}
            data-health={data.health}
            style={{ transform: `translate(-50%, -50%) translate(${at.x}px, ${at.y}px)`, fontSize: LABEL_SIZE }}
          >
            {data.lines.map((l, i) => (
              <div key={i}>{l}</div>
            ))}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
}

const edgeTypes = { map: MapEdgeView };

/** The map's nodes and edges, laid out: services and topics, produce and consume edges. */
export function mapElements(t: Topology): { nodes: Node[]; edges: Edge<MapEdgeData, "map">[] } {
  const boxes = t.nodes.map((n) => ({ id: n.id, ...(n.kind === "service" ? SERVICE : TOPIC) }));
  const labels = new Map(t.edges.map((e) => [`${e.from}->${e.to}`, edgeLabel(e)]));
  const { at, routes } = layered(
    boxes,
    t.edges.map((e) => ({ ...e, label: labelBox(labels.get(`${e.from}->${e.to}`)!) })),
    MAP_SPACING,
  );
  const nodes: Node[] = t.nodes.map((n) => ({
    id: n.id,
    position: at.get(n.id)!,
    data: { label: n.name },
    className: `map-node map-${n.kind}`,
    style:
      n.kind === "service"
        ? { borderColor: serviceColor(n.name), width: SERVICE.width, height: SERVICE.height }
        : { width: TOPIC.width, height: TOPIC.height },
    draggable: false,
    connectable: false,
    sourcePosition: "bottom" as Node["sourcePosition"],
    targetPosition: "top" as Node["targetPosition"],
  }));
  const edges: Edge<MapEdgeData, "map">[] = t.edges.map((e) => {
    const id = `${e.from}->${e.to}`;
    const health = edgeHealth(e);
    const lines = labels.get(id)!;
    return {
      id: `${e.kind}:${id}`,
      type: "map",
      source: e.from,
      target: e.to,
      ariaLabel: `${e.from} ${e.kind === "produce" ? "produces to" : "is consumed by"} ${e.to}: ${lines.join(" · ")}`,
      className: `map-edge map-${e.kind} map-${health}`,
      data: { health, lines, route: routes.get(id) ?? { points: [], label: null } },
      style: {
        stroke: HEALTH_COLOUR[health],
        strokeWidth: health === "healthy" ? 1.5 : 3,
        strokeDasharray: e.kind === "consume" ? "6 4" : undefined,
      },
      markerEnd: { type: MarkerType.ArrowClosed, color: HEALTH_MARKER[health] },
    };
  });
  return { nodes, edges };
}

/** The choreography as it really ran over a time range: who produces to and consumes from what. */
export function MapView({ from, to }: { from: string | null; to: string | null }) {
  const { navigate } = useNavigation();
  const [topology] = useLoad((s) => api.topology({ from: from ?? undefined, to: to ?? undefined }, s), [from, to]);
  const elements = useMemo(() => (topology.value ? mapElements(topology.value) : null), [topology.value]);
  const [fromText, setFrom] = useState(toLocalInput(from));
  const [toText, setTo] = useState(toLocalInput(to));
  const preset = (minutes: number | null) => {
    if (minutes === null) {
      navigate(mapHref(new Date(0).toISOString(), null), { replace: true });
    } else {
      navigate(mapHref(new Date(Date.now() - minutes * 60_000).toISOString(), null), { replace: true });
    }
  };
  const apply = (e: FormEvent) => {
    e.preventDefault();
    const iso = (v: string) => (v ? new Date(v).toISOString() : null);
    navigate(mapHref(iso(fromText), iso(toText)), { replace: true });
  };
  const t = topology.value;
  return (
    <div className="map-view" data-testid="map-view">
      <header className="view-header">
        <h1>Choreography map</h1>
        <div className="range" role="group" aria-label="Time range">
          {PRESETS.map(([label, minutes]) => (
            <button key={label} type="button" onClick={() => preset(minutes)}>
              {label}
            </button>
          ))}
          <form onSubmit={apply} className="range-form">
            <label>
              from <input type="datetime-local" value={fromText} onChange={(e) => setFrom(e.target.value)} data-testid="map-from" />
            </label>
            <label>
              to <input type="datetime-local" value={toText} onChange={(e) => setTo(e.target.value)} data-testid="map-to" />
            </label>
            <button type="submit">Show</button>
          </form>
        </div>
      </header>
      {t && (
        <p className="muted" data-testid="map-range">
          {t.from} → {t.to} · {t.nodes.filter((n) => n.kind === "service").length} services,{" "}
          {t.nodes.filter((n) => n.kind === "topic").length} topics, {t.edges.length} edges
          {t.truncated ? ` · ${t.truncated}` : ""}
        </p>
      )}
      {t && <MapLegend edges={t.edges} />}
      {topology.state === "error" && <ErrorNote error={topology.error} />}
      {elements && (
        <div className="canvas map-canvas" data-testid="map-canvas" data-node-count={elements.nodes.length} data-edge-count={elements.edges.length}>
          <ReactFlow
            nodes={elements.nodes}
            edges={elements.edges}
            edgeTypes={edgeTypes}
            fitView
            nodesDraggable={false}
            nodesConnectable={false}
            proOptions={{ hideAttribution: true }}
            minZoom={0.1}
            fitViewOptions={{ padding: 0.04, minZoom: MIN_FIT_ZOOM }}
          >
            <Background gap={24} size={1} color="var(--grid)" />
            <Controls showInteractive={false} />
          </ReactFlow>
        </div>
      )}
    </div>
  );
}

/** What the lines and colours mean, with the totals of stalled and failed flows on the map. */
function MapLegend({ edges }: { edges: MapEdge[] }) {
  const stalled = edges.reduce((n, e) => n + (e.stalled ?? 0), 0);
  const failed = edges.reduce((n, e) => n + (e.failed ?? 0), 0);
  const line = (health: EdgeHealth, dashed = false) => (
    <svg width="34" height="10" aria-hidden="true">
      <line
        x1="1" y1="5" x2="33" y2="5"
        stroke={HEALTH_COLOUR[health]}
        strokeWidth={health === "healthy" ? 1.5 : 3}
        strokeDasharray={dashed ? "6 4" : undefined}
      />
    </svg>
  );
  return (
    <ul className="map-legend" data-testid="map-legend">
      <li>{line("healthy")} produces to a topic</li>
      <li>{line("healthy", true)} consumed by a service</li>
      <li>{line("stalled")} <span className="stalled-text">stalled flows wait for this service ({stalled})</span></li>
      <li>{line("failed")} <span className="failed-text">failed flows dead-lettered here ({failed})</span></li>
      <li className="muted">labels: events · hop latency (cause → reaction) p50, p95 · stalled, failed flows</li>
    </ul>
  );
}
