// Lays a causal graph out left to right with dagre (the layered Sugiyama layout), and the
// small rules around it: node sizes, service colours, keyboard moves between nodes.

import dagre from "@dagrejs/dagre";
import type { EventSummary, Graph, GraphEdge, MissingView } from "./api";
import { dueText, reactionText } from "./health";

/** Size of an event's box on the canvas. */
export const NODE_WIDTH = 210;
export const NODE_HEIGHT = 66;

/** An event placed on the canvas (top-left corner). */
export interface Placed {
  id: string;
  x: number;
  y: number;
  event: EventSummary;
}

/** Size of a ghost's box: an expected reaction that has not arrived. */
export const GHOST_WIDTH = NODE_WIDTH;
export const GHOST_HEIGHT = NODE_HEIGHT;

/** An expected reaction that has not arrived, drawn as a dashed box after the event it should follow. */
export interface Ghost {
  id: string;
  /** The event it should follow. */
  after: string;
  /** The reaction expected: `bank`, `bank/PaymentConfirmed`, `any reaction`. */
  label: string;
  /** The box's two lines: `expected from bank` over `PaymentConfirmed`, `expected reaction from` over
   *  `bank`, `expected` over `any reaction` (a service and a type on one line do not fit the box). */
  heading: string;
  name: string;
  /** `overdue 57 s` or `due in 8 s`. */
  due: string;
  overdue: boolean;
  /** The event it should follow was dead-lettered: the reaction is missing because a consumer gave up. */
  failed: boolean;
}

/** A ghost placed on the canvas (top-left corner). */
export interface PlacedGhost extends Ghost {
  x: number;
  y: number;
}

/** A laid-out graph: its events, its edges, and the ghosts of the reactions it misses. */
export interface Layout {
  nodes: Placed[];
  edges: GraphEdge[];
  ghosts: PlacedGhost[];
  width: number;
  height: number;
}

/** A ghost's heading and name (see `Ghost`). */
function ghostLines(r: MissingView["expected"]): [string, string] {
  switch (r.kind) {
    case "specific":
      return [`expected from ${r.service}`, r.event_type];
    case "by_service":
      return ["expected reaction from", r.service];
    case "any":
      return ["expected", "any reaction"];
  }
}

/**
 * The ghosts of a flow's missing reactions (its health's `missing`), at time `now`: one per
 * missing reaction whose event is in the graph (`events`), each joined to that event by an edge.
 */
export function ghostsOf(
  events: ReadonlySet<string>,
  missing: MissingView[],
  now: number,
  deadLettered: ReadonlySet<string> = new Set(),
): { ghosts: Ghost[]; edges: { from: string; to: string }[] } {
  const ghosts: Ghost[] = [];
  const seen = new Set<string>();
  for (const m of missing) {
    if (!events.has(m.after_event)) continue;
    const label = reactionText(m.expected);
    const id = `ghost:${m.after_event}:${label}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const [heading, name] = ghostLines(m.expected);
    ghosts.push({ id, after: m.after_event, label, heading, name, due: dueText(m, now), overdue: m.overdue_ms !== null, failed: deadLettered.has(m.after_event) });
  }
  return { ghosts, edges: ghosts.map((g) => ({ from: g.after, to: g.id })) };
}

type DagreGraph = InstanceType<typeof dagre.graphlib.Graph>;

/**
 * dagre's rank step, for causal graphs: a node's column is its causal depth (the longest chain of
 * causes before it), found in one pass in topological order. dagre calls it after breaking
 * cycles, so the graph is acyclic here. Its own rankers search for the rank assignment with the
 * shortest edges, which is what a causal graph has already; on a 2,000-event chain with fan-outs
 * their search took 2.1 s of a 2.8 s layout (profiled), this pass a few milliseconds.
 */
export function causalDepthRanker(g: DagreGraph): void {
  const label = (v: string) => g.node(v) as { rank: number };
  const waiting = new Map<string, number>();
  const ready: string[] = [];
  for (const v of g.nodes()) {
    const n = g.inEdges(v)?.length ?? 0;
    waiting.set(v, n);
    label(v).rank = 0;
    if (n === 0) ready.push(v);
  }
  for (let i = 0; i < ready.length; i++) {
    const v = ready[i];
    const rank = label(v).rank;
    for (const e of g.outEdges(v) ?? []) {
      const minlen = (g.edge(e) as { minlen?: number }).minlen ?? 1;
      label(e.w).rank = Math.max(label(e.w).rank, rank + minlen);
      const left = (waiting.get(e.w) ?? 1) - 1;
      waiting.set(e.w, left);
      if (left === 0) ready.push(e.w);
    }
  }
}

/**
 * dagre's order step for `quick` layouts: within each rank, nodes in the order a depth-first walk
 * from the earliest ranks meets them, each node's biggest branch in the middle of its siblings
 * (dagre's own first order, before its sweeps, is the same walk in plain successor order). Runs on dagre's internal graph, so it orders
 * the dummy nodes of long edges too.
 */
export function depthFirstOrder(g: DagreGraph): void {
  const label = (v: string) => g.node(v) as { rank: number; order: number };
  // The biggest branch in the middle of its siblings: dagre aligns a node with the median of its
  // reactions, so a long chain with short side reactions stays on one row, its side reactions
  // around it (in plain successor order it ran down a staircase).
  const size = new Map<string, number>();
  const byRankDown = g.nodes().sort((a, b) => label(b).rank - label(a).rank);
  for (const v of byRankDown) {
    size.set(v, 1 + (g.successors(v) ?? []).reduce((sum, w) => sum + (size.get(w) ?? 1), 0));
  }
  const next = new Map<number, number>();
  const seen = new Set<string>();
  const starts = g.nodes().filter((v) => (g.children(v) ?? []).length === 0);
  starts.sort((a, b) => label(a).rank - label(b).rank);
  for (const start of starts) {
    const stack = [start];
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      const n = label(v);
      n.order = next.get(n.rank) ?? 0;
      next.set(n.rank, n.order + 1);
      const bySize = [...(g.successors(v) ?? [])].sort((a, b) => (size.get(b) ?? 1) - (size.get(a) ?? 1));
      const arranged: string[] = [];
      bySize.forEach((w, i) => (i % 2 === 0 ? arranged.push(w) : arranged.unshift(w)));
      // Reversed onto the stack, so they are visited (and placed) in the arranged order.
      for (let i = arranged.length - 1; i >= 0; i--) stack.push(arranged[i]);
    }
  }
}

/**
 * Places boxes left to right (or top to bottom: `spacing.rankdir`) in layers with dagre so every edge points right where it can
 * (cycles are broken by dagre's acyclicer and drawn back). Returns top-left corners and the
 * drawing's size. Edges naming unknown boxes, and self-loops, are ignored.
 */
export function layered(
  boxes: { id: string; width: number; height: number }[],
  links: { from: string; to: string; label?: { width: number; height: number } }[],
  spacing: { nodesep: number; ranksep: number; rankdir?: "LR" | "TB" } = { nodesep: 18, ranksep: 70 },
  options: { quick?: boolean } = {},
): { at: Map<string, { x: number; y: number }>; routes: Map<string, Route>; width: number; height: number } {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", ...spacing, marginx: 20, marginy: 20, ranker: causalDepthRanker });
  g.setDefaultEdgeLabel(() => ({}));
  const size = new Map<string, { width: number; height: number }>();
  for (const b of boxes) {
    size.set(b.id, b);
    g.setNode(b.id, { width: b.width, height: b.height });
  }
  for (const l of links) {
    if (!size.has(l.from) || !size.has(l.to) || l.from === l.to) continue;
    // A label's box is laid out like a node's, so labels overlap neither boxes nor each other.
    g.setEdge(l.from, l.to, l.label ? { minlen: 1, width: l.label.width, height: l.label.height, labelpos: "c" } : { minlen: 1 });
  }
  // `quick` keeps dagre's first, depth-first order and skips its crossing-reduction sweeps (and
  // the per-layer graphs it builds for them even when told not to sweep): a causal tree in
  // depth-first order has no crossings to reduce, and that step was a third of a 2,000-node layout.
  dagre.layout(g, options.quick ? { customOrder: depthFirstOrder } : {});
  const at = new Map<string, { x: number; y: number }>();
  for (const [id, s] of size) {
    const p = g.node(id) as { x: number; y: number };
    at.set(id, { x: p.x - s.width / 2, y: p.y - s.height / 2 });
  }
  const routes = new Map<string, Route>();
  for (const e of g.edges()) {
    const label = g.edge(e) as { points?: { x: number; y: number }[]; x?: number; y?: number; width?: number };
    routes.set(`${e.v}->${e.w}`, {
      points: label.points ?? [],
      label: label.width !== undefined && label.x !== undefined && label.y !== undefined ? { x: label.x, y: label.y } : null,
    });
  }
  const graph = g.graph() as { width?: number; height?: number };
  return { at, routes, width: graph.width ?? 0, height: graph.height ?? 0 };
}

/** How dagre routed an edge: points from its source's border to its target's, and the centre of
 *  its label when it was given one. */
export interface Route {
  points: { x: number; y: number }[];
  label: { x: number; y: number } | null;
}

/** An SVG path through a route's points, smoothed at each bend (through the midpoints). */
export function routePath(points: { x: number; y: number }[]): string {
  if (points.length === 0) return "";
  const [first, ...rest] = points;
  let d = `M ${first.x} ${first.y}`;
  for (let i = 0; i < rest.length - 1; i++) {
    const p = rest[i];
    const q = rest[i + 1];
    d += ` Q ${p.x} ${p.y} ${(p.x + q.x) / 2} ${(p.y + q.y) / 2}`;
  }
  const last = rest[rest.length - 1];
  if (last) d += ` L ${last.x} ${last.y}`;
  return d;
}

/** Above this many nodes the layout skips dagre's crossing reduction. */
export const QUICK_LAYOUT_ABOVE = 400;

/**
 * Lays a causal graph out: causes left of their reactions, and the ghost of each missing
 * reaction (`missing`, from the flow's health, at time `now`) laid out as a reaction of the
 * event it should follow.
 */
export function layoutGraph(graph: Graph, missing: MissingView[] = [], now = Date.now()): Layout {
  const ids = new Set(graph.nodes.map((n) => n.id));
  const edges = graph.edges.filter((e) => ids.has(e.from) && ids.has(e.to) && e.from !== e.to);
  const dead = new Set(
    graph.nodes
      .filter((n) => (n.flags as string[]).some((f) => f === "dead_lettered" || f === "handler_failed"))
      .map((n) => n.id),
  );
  const ghostsFound = ghostsOf(ids, missing, now, dead);
  const { at, width, height } = layered(
    [
      ...graph.nodes.map((n) => ({ id: n.id, width: NODE_WIDTH, height: NODE_HEIGHT })),
      ...ghostsFound.ghosts.map((g) => ({ id: g.id, width: GHOST_WIDTH, height: GHOST_HEIGHT })),
    ],
    [...edges, ...ghostsFound.edges],
    undefined,
    { quick: graph.nodes.length > QUICK_LAYOUT_ABOVE },
  );
  const nodes = graph.nodes.map((n) => ({ id: n.id, ...at.get(n.id)!, event: n }));
  const ghosts = ghostsFound.ghosts.map((g) => ({ ...g, ...at.get(g.id)! }));
  return { nodes, edges, ghosts, width, height };
}

/** A rectangle of the canvas, in layout coordinates. */
export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The region a viewport (`x`, `y` pan, `zoom`) shows in a box of `width` × `height` pixels,
 *  grown by `margin` times its size on every side. */
export function regionOf(
  viewport: { x: number; y: number; zoom: number },
  box: { width: number; height: number },
  margin = 1,
): Region {
  const width = box.width / viewport.zoom;
  const height = box.height / viewport.zoom;
  return {
    x: -viewport.x / viewport.zoom - margin * width,
    y: -viewport.y / viewport.zoom - margin * height,
    width: width * (1 + 2 * margin),
    height: height * (1 + 2 * margin),
  };
}

/** Whether `inner` lies wholly inside `outer`. */
export function contains(outer: Region, inner: Region): boolean {
  return (
    inner.x >= outer.x &&
    inner.y >= outer.y &&
    inner.x + inner.width <= outer.x + outer.width &&
    inner.y + inner.height <= outer.y + outer.height
  );
}

/**
 * What of a large graph to hand the renderer for `region`: the nodes that overlap it, the edges
 * touching them, and those edges' other ends (so every edge drawn has both ends). The renderer's
 * cost grows with what it is given, not with what is on screen.
 */
export function windowOf(layout: Layout, region: Region): { nodes: Set<string>; edges: GraphEdge[] } {
  const nodes = new Set<string>();
  for (const p of layout.nodes) {
    if (
      p.x + NODE_WIDTH >= region.x &&
      p.x <= region.x + region.width &&
      p.y + NODE_HEIGHT >= region.y &&
      p.y <= region.y + region.height
    ) {
      nodes.add(p.id);
    }
  }
  const edges = layout.edges.filter((e) => nodes.has(e.from) || nodes.has(e.to));
  for (const e of edges) {
    nodes.add(e.from);
    nodes.add(e.to);
  }
  return { nodes, edges };
}

const PALETTE = [
  "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#86bcb6", "#d37295", "#8cd17d",
];

/** A stable colour per service name (the same service has the same colour in every view). */
export function serviceColor(service: string | null | undefined): string {
  if (!service) return "#8a8f98";
  let h = 2166136261;
  for (let i = 0; i < service.length; i++) {
    h ^= service.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return PALETTE[(h >>> 0) % PALETTE.length];
}

/** A keyboard move on the graph. */
export type Move = "cause" | "reaction" | "up" | "down" | "first" | "end";

/** The key of a keyboard event, as a move. */
export function moveOf(key: string): Move | null {
  switch (key) {
    case "ArrowLeft":
    case "h":
      return "cause";
    case "ArrowRight":
    case "l":
      return "reaction";
    case "ArrowUp":
    case "k":
      return "up";
    case "ArrowDown":
    case "j":
      return "down";
    case "Home":
      return "first";
    case "End":
      return "end";
    default:
      return null;
  }
}

/**
 * The node a move leads to from `selected` (or the first root when nothing is selected):
 * left to the cause, right to the topmost reaction, up/down to the nearest node of the same
 * column, Home to the earliest root, End to the latest flow end. `null` when there is none.
 */
export function neighbour(layout: Layout, selected: string | null, move: Move): string | null {
  const nodes = layout.nodes;
  if (nodes.length === 0) return null;
  const byTime = [...nodes].sort((a, b) => a.event.time_us - b.event.time_us);
  const flagged = (p: Placed, f: string) => (p.event.flags as string[]).includes(f);
  if (move === "first" || selected === null) {
    return (byTime.find((p) => flagged(p, "root")) ?? byTime[0]).id;
  }
  if (move === "end") {
    const ends = byTime.filter((p) => flagged(p, "end"));
    return (ends[ends.length - 1] ?? byTime[byTime.length - 1]).id;
  }
  const at = new Map(nodes.map((p) => [p.id, p]));
  const here = at.get(selected);
  if (!here) return byTime[0].id;
  if (move === "cause" || move === "reaction") {
    const next = layout.edges
      .filter((e) => (move === "cause" ? e.to === selected : e.from === selected))
      .map((e) => at.get(move === "cause" ? e.from : e.to))
      .filter((p): p is Placed => p !== undefined)
      .sort((a, b) => a.y - b.y);
    return next[0]?.id ?? null;
  }
  const column = nodes
    .filter((p) => Math.abs(p.x - here.x) < 1 && p.id !== here.id)
    .filter((p) => (move === "up" ? p.y < here.y : p.y > here.y))
    .sort((a, b) => Math.abs(a.y - here.y) - Math.abs(b.y - here.y));
  return column[0]?.id ?? null;
}
