import { useMemo, useState, type FormEvent } from "react";
import { Background, Controls, MarkerType, ReactFlow, type Edge, type Node } from "@xyflow/react";
import { api, type Topology } from "../lib/api";
import { duration } from "../lib/format";
import { layered, serviceColor } from "../lib/layout";
import { mapHref } from "../lib/routes";
import { useLoad } from "../hooks";
import { useNavigation } from "../navigation";
import { ErrorNote } from "./ErrorNote";

const SERVICE = { width: 150, height: 44 };
const TOPIC = { width: 150, height: 34 };

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

/** The map's nodes and edges, laid out: services and topics, produce and consume edges. */
export function mapElements(t: Topology): { nodes: Node[]; edges: Edge[] } {
  const boxes = t.nodes.map((n) => ({ id: n.id, ...(n.kind === "service" ? SERVICE : TOPIC) }));
  const { at } = layered(boxes, t.edges, { nodesep: 30, ranksep: 150 });
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
    sourcePosition: "right" as Node["sourcePosition"],
    targetPosition: "left" as Node["targetPosition"],
  }));
  const edges: Edge[] = t.edges.map((e) => {
    const latency =
      e.latency_p50_ms !== null ? ` · p50 ${duration(e.latency_p50_ms)} · p95 ${duration(e.latency_p95_ms ?? NaN)}` : "";
    return {
      id: `${e.kind}:${e.from}->${e.to}`,
      source: e.from,
      target: e.to,
      label: `${e.count}${latency}`,
      ariaLabel: `${e.from} ${e.kind === "produce" ? "produces to" : "is consumed by"} ${e.to}: ${e.count}${latency}`,
      labelStyle: { fill: "var(--muted)", fontSize: 11 },
      labelBgStyle: { fill: "var(--bg)" },
      className: `map-edge map-${e.kind}`,
      style: { stroke: "var(--edge)", strokeDasharray: e.kind === "consume" ? "6 4" : undefined },
      markerEnd: { type: MarkerType.ArrowClosed, color: "#8a8f98" },
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
          Solid: a service produces to a topic · dashed: a service consumes from it · edge labels: events, and the
          hop latency (cause produced → reaction produced) at p50 and p95.
          <br />
          {t.from} → {t.to} · {t.nodes.filter((n) => n.kind === "service").length} services,{" "}
          {t.nodes.filter((n) => n.kind === "topic").length} topics, {t.edges.length} edges
          {t.truncated ? ` · ${t.truncated}` : ""}
        </p>
      )}
      {topology.state === "error" && <ErrorNote error={topology.error} />}
      {elements && (
        <div className="canvas map-canvas" data-testid="map-canvas" data-node-count={elements.nodes.length} data-edge-count={elements.edges.length}>
          <ReactFlow
            nodes={elements.nodes}
            edges={elements.edges}
            fitView
            nodesDraggable={false}
            nodesConnectable={false}
            proOptions={{ hideAttribution: true }}
            minZoom={0.1}
          >
            <Background gap={24} size={1} color="var(--grid)" />
            <Controls showInteractive={false} />
          </ReactFlow>
        </div>
      )}
    </div>
  );
}
