import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import {
  Background,
  BezierEdge,
  Controls,
  MarkerType,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
  type Edge,
  type EdgeProps,
  type Node,
  type Viewport,
} from "@xyflow/react";
import type { GraphEdge } from "../lib/api";
import { duration } from "../lib/format";
import { edgeTitle } from "../lib/spans";
import {
  contains,
  moveOf,
  neighbour,
  regionOf,
  serviceColor,
  windowOf,
  GHOST_HEIGHT,
  GHOST_WIDTH,
  NODE_HEIGHT,
  NODE_WIDTH,
  type Ghost,
  type Layout,
  type Region,
} from "../lib/layout";
import { EventNode, type EventNodeData } from "./EventNode";
import { GhostNode, type GhostNodeData } from "./GhostNode";

const nodeTypes = { event: EventNode, ghost: GhostNode };

/** What a causal edge carries: how it was found, in words, for its tooltip. */
type CausalEdgeData = { inferred: boolean; cycle: boolean; rule: GraphEdge["rule"]; title: string };

/** A causal edge: React Flow's bezier edge, with a tooltip saying how it was found (SVG's
 *  `<title>` names its parent, the edge's group, so hovering the line or its label shows it). */
function CausalEdge(props: EdgeProps<Edge<CausalEdgeData, "causal">>) {
  return (
    <>
      {props.data && <title>{props.data.title}</title>}
      <BezierEdge {...props} />
    </>
  );
}

const edgeTypes = { causal: CausalEdge };

/** A cause → reaction edge for React Flow: dashed when inferred, red when it closes a cycle,
 *  labelled with the hop's latency, and saying how it was found on hover. */
export function causalEdge(e: GraphEdge): Edge<CausalEdgeData, "causal"> {
  const colour = e.cycle ? "var(--danger)" : "var(--edge)";
  const title = edgeTitle(e);
  return {
    id: `${e.from}->${e.to}`,
    type: "causal",
    source: e.from,
    target: e.to,
    label: duration(e.latency_ms),
    labelStyle: { fill: "var(--muted)", fontSize: 11 },
    labelBgStyle: { fill: "var(--bg)" },
    style: { stroke: colour, strokeDasharray: e.inferred ? "5 4" : undefined, strokeWidth: 1.5 },
    markerEnd: { type: MarkerType.ArrowClosed, color: e.cycle ? "#e15759" : "#8a8f98" },
    focusable: false,
    selectable: false,
    className: [e.inferred && "inferred", e.cycle && "cycle", `rule-${e.rule ?? "causation"}`].filter(Boolean).join(" "),
    ariaLabel: `${e.from} → ${e.to}: ${title}`,
    data: { inferred: e.inferred, cycle: e.cycle, rule: e.rule, title },
  };
}

/** A ghost's React Flow node: not selectable, not focusable (the keyboard walks events). */
function ghostNode(g: Ghost & { x: number; y: number }): Node<GhostNodeData, "ghost"> {
  return {
    id: g.id,
    type: "ghost",
    position: { x: g.x, y: g.y },
    width: GHOST_WIDTH,
    height: GHOST_HEIGHT,
    data: { ghost: g },
    selectable: false,
    focusable: false,
    draggable: false,
    connectable: false,
    ariaLabel: `Expected reaction ${g.label}, not arrived: ${g.due}`,
  };
}

/** The dashed edge from an event to the ghost of its missing reaction. */
function ghostEdge(g: Ghost): Edge {
  const colour = g.failed ? "var(--failed)" : g.overdue ? "var(--stalled)" : "var(--muted)";
  return {
    id: `${g.after}->${g.id}`,
    source: g.after,
    target: g.id,
    style: { stroke: colour, strokeDasharray: "3 4", strokeWidth: 1.5 },
    markerEnd: { type: MarkerType.ArrowClosed, color: g.failed ? "#e5484d" : g.overdue ? "#f0b429" : "#8a8f98" },
    focusable: false,
    selectable: false,
    className: "ghost-edge",
  };
}

/** Above this many nodes, only what is on screen is rendered. */
const VISIBLE_ONLY_ABOVE = 400;

/** Graphs up to this many nodes are refitted when the canvas changes size. */
const REFIT_UP_TO = 60;

interface Props {
  layout: Layout;
  selected: string | null;
  onSelect: (id: string | null) => void;
  /** Enter on a node. */
  onOpen?: (id: string) => void;
}

/** The causal graph, laid out left to right; arrows move between nodes (← cause, → reaction). */
export function FlowCanvas(props: Props) {
  return (
    <ReactFlowProvider>
      <Canvas {...props} />
    </ReactFlowProvider>
  );
}

function Canvas({ layout, selected, onSelect, onOpen }: Props) {
  const flow = useReactFlow();
  const wrapper = useRef<HTMLDivElement>(null);
  // One node object per event for the life of the layout: React Flow skips nodes whose object
  // did not change, so a selection rebuilds two nodes, not two thousand.
  const baseNodes: Node<EventNodeData, "event">[] = useMemo(
    () =>
      layout.nodes.map((p) => ({
        id: p.id,
        type: "event",
        position: { x: p.x, y: p.y },
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
        data: { event: p.event },
        selected: false,
        draggable: false,
        connectable: false,
        ariaLabel: `${p.event.type ?? "event"} from ${p.event.source ?? "unknown service"}`,
      })),
    [layout],
  );
  // A small graph is shown whole. A large one opens at a readable zoom on the selected event or
  // the first root, and the renderer gets only the part of it around the viewport (`windowOf`),
  // moved along as the user pans and zooms; the timeline and zoom-out show the rest.
  const large = layout.nodes.length > VISIBLE_ONLY_ABOVE;
  const initialViewport = useMemo(() => {
    const first = selected ?? neighbour(layout, null, "first");
    const p = layout.nodes.find((n) => n.id === first);
    const zoom = 0.8;
    const height = Math.max(window.innerHeight * 0.58, 360);
    return p ? { x: 40 - p.x * zoom, y: height / 2 - (p.y + NODE_HEIGHT / 2) * zoom, zoom } : { x: 0, y: 0, zoom };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [layout]);
  const [region, setRegion] = useState<Region>(() =>
    regionOf(initialViewport, { width: window.innerWidth, height: window.innerHeight }),
  );
  const follow = useCallback(
    (viewport: Viewport) => {
      if (!large) return;
      const box = { width: wrapper.current?.clientWidth ?? 1000, height: wrapper.current?.clientHeight ?? 600 };
      // Move the window only when the screen leaves it.
      if (!contains(region, regionOf(viewport, box, 0))) setRegion(regionOf(viewport, box));
    },
    [large, region],
  );
  const shown = useMemo(() => (large ? windowOf(layout, region) : null), [large, layout, region]);
  const ghostNodes = useMemo(() => layout.ghosts.map(ghostNode), [layout]);
  const nodes: Node[] = useMemo(
    () => [
      ...baseNodes
        .filter((n) => shown === null || shown.nodes.has(n.id))
        .map((n) => (n.id === selected ? { ...n, selected: true } : n)),
      ...ghostNodes.filter((n) => shown === null || shown.nodes.has(n.data.ghost.after)),
    ],
    [baseNodes, ghostNodes, selected, shown],
  );
  const allEdges: Edge[] = useMemo(() => layout.edges.map(causalEdge), [layout]);
  const edges = useMemo(() => {
    const ghosts = layout.ghosts.filter((g) => shown === null || shown.nodes.has(g.after)).map(ghostEdge);
    if (shown === null) return [...allEdges, ...ghosts];
    const keep = new Set(shown.edges.map((e) => `${e.from}->${e.to}`));
    return [...allEdges.filter((e) => keep.has(e.id)), ...ghosts];
  }, [allEdges, layout, shown]);
  // Bring the selected node into view when it changes by keyboard or by address.
  const centre = useCallback(
    (id: string) => {
      const p = layout.nodes.find((n) => n.id === id);
      if (!p) return;
      const zoom = Math.max(flow.getZoom(), 0.6);
      flow.setCenter(p.x + NODE_WIDTH / 2, p.y + NODE_HEIGHT / 2, { zoom, duration: 200 });
    },
    [flow, layout],
  );
  const firstSelection = useRef(true);
  useEffect(() => {
    if (selected && !firstSelection.current) centre(selected);
    firstSelection.current = false;
  }, [selected, centre]);
  // A small graph is refitted when its box changes size (the details panel opens or closes).
  useEffect(() => {
    const el = wrapper.current;
    if (!el || layout.nodes.length > REFIT_UP_TO || typeof ResizeObserver === "undefined") return;
    let width = el.clientWidth;
    const observer = new ResizeObserver(() => {
      if (Math.abs(el.clientWidth - width) < 8) return;
      width = el.clientWidth;
      flow.fitView({ padding: 0.1, maxZoom: 1.2, duration: 150 });
    });
    observer.observe(el);
    return () => observer.disconnect();
  }, [flow, layout]);
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === "Escape") {
      onSelect(null);
      return;
    }
    if (e.key === "Enter" && selected && onOpen) {
      onOpen(selected);
      return;
    }
    const move = moveOf(e.key);
    if (!move) return;
    e.preventDefault();
    const next = neighbour(layout, selected, move);
    if (next) onSelect(next);
  };
  return (
    <div
      ref={wrapper}
      className="canvas"
      tabIndex={0}
      onKeyDown={onKeyDown}
      data-testid="flow-canvas"
      data-node-count={layout.nodes.length}
      data-edge-count={layout.edges.length}
      data-ghost-count={layout.ghosts.length}
      aria-label="Causal graph. Arrow keys: left to the cause, right to a reaction, up and down within a column; Home: the first event; End: the flow's end; Enter: open."
    >
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        onNodeClick={(_, node) => node.type === "event" && onSelect(node.id)}
        onPaneClick={() => onSelect(null)}
        fitView={!large}
        defaultViewport={large ? initialViewport : undefined}
        onMove={(_, viewport) => follow(viewport)}
        fitViewOptions={{ padding: 0.1, maxZoom: 1.2 }}
        minZoom={0.02}
        maxZoom={2}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable
        onlyRenderVisibleElements={large}
        proOptions={{ hideAttribution: true }}
        onInit={() => {
          performance.mark("choreoscope:ready");
          wrapper.current?.setAttribute("data-ready", "true");
        }}
      >
        <Background gap={24} size={1} color="var(--grid)" />
        <Controls showInteractive={false} />
        {/* Above VISIBLE_ONLY_ABOVE nodes the minimap (a rectangle per node, redrawn at every
            selection) cost a quarter of a second per change; the timeline gives the overview. */}
        {layout.nodes.length > 12 && !large && (
          <MiniMap
            pannable
            zoomable
            nodeColor={(n) => (n.type === "ghost" ? "transparent" : serviceColor((n.data as EventNodeData).event.source))}
          />
        )}
      </ReactFlow>
    </div>
  );
}
