import { describe, expect, it } from "vitest";
import type { EventSummary, Flag, Graph, GraphEdge, MissingView } from "./api";
import { contains, ghostsOf, layoutGraph, moveOf, neighbour, regionOf, serviceColor, windowOf, GHOST_HEIGHT, GHOST_WIDTH, NODE_HEIGHT, NODE_WIDTH } from "./layout";

function ev(id: string, t: number, flags: Flag[] = [], source = "svc"): EventSummary {
  return {
    id, type: id.toUpperCase(), source, topic: "t", partition: 0, offset: t, time: "", time_us: t,
    subject: null, causation_id: null, correlation_id: null, trace_id: null, span_id: null,
    flags, problem_count: 0, delivery_count: 1, opaque: false,
  };
}

const edge = (from: string, to: string, cycle = false): GraphEdge => ({ from, to, latency_ms: 1, inferred: false, rule: "causation", cycle });

// a → b → {c, d}; d → e
const fanOut: Graph = {
  nodes: [ev("a", 1, ["root"]), ev("b", 2), ev("c", 3, ["end"]), ev("d", 4), ev("e", 5, ["end"])],
  edges: [edge("a", "b"), edge("b", "c"), edge("b", "d"), edge("d", "e")],
  truncated: null,
};

describe("the flow layout", () => {
  it("places every cause left of its reactions and keeps every node and edge", () => {
    const l = layoutGraph(fanOut);
    expect(l.nodes.map((n) => n.id)).toEqual(["a", "b", "c", "d", "e"]);
    expect(l.edges).toHaveLength(4);
    const at = new Map(l.nodes.map((n) => [n.id, n]));
    for (const e of fanOut.edges) expect(at.get(e.from)!.x).toBeLessThan(at.get(e.to)!.x);
    // c and d share a column, one above the other, without overlapping.
    expect(at.get("c")!.x).toBe(at.get("d")!.x);
    expect(Math.abs(at.get("c")!.y - at.get("d")!.y)).toBeGreaterThanOrEqual(66);
  });

  it("lays out a causation cycle and drops edges to events outside the graph", () => {
    const cyclic: Graph = {
      nodes: [ev("x", 1), ev("y", 2)],
      edges: [edge("x", "y", true), edge("y", "x", true), edge("y", "ghost"), edge("x", "x")],
      truncated: null,
    };
    const l = layoutGraph(cyclic);
    expect(l.nodes).toHaveLength(2);
    expect(l.edges.map((e) => `${e.from}>${e.to}`)).toEqual(["x>y", "y>x"]);
    expect(l.nodes.every((n) => Number.isFinite(n.x) && Number.isFinite(n.y))).toBe(true);
  });

  it("lays a large causal tree out without crossing edges", () => {
    // 600 events (above the quick-layout threshold), each causing up to three reactions.
    const nodes = Array.from({ length: 600 }, (_, i) => ev(`n${i}`, i));
    const edges = nodes.slice(1).map((n, i) => edge(`n${Math.floor(i / 3)}`, n.id));
    const l = layoutGraph({ nodes, edges, truncated: null });
    const at = new Map(l.nodes.map((n) => [n.id, n]));
    for (const e of edges) expect(at.get(e.from)!.x).toBeLessThan(at.get(e.to)!.x);
    let crossings = 0;
    for (const a of edges) {
      for (const b of edges) {
        const [a1, a2, b1, b2] = [at.get(a.from)!, at.get(a.to)!, at.get(b.from)!, at.get(b.to)!];
        if (a1.x === b1.x && a1.y < b1.y && a2.y > b2.y) crossings++;
      }
    }
    expect(crossings).toBe(0);
  });

  it("keeps a long chain with side reactions on one row", () => {
    // 600 events: a chain of 120 steps, each with four side reactions.
    const nodes = Array.from({ length: 600 }, (_, i) => ev(`s${i}`, i));
    const edges = nodes.slice(1).map((n, j) => {
      const i = j + 1;
      return edge(`s${i % 5 === 0 ? i - 5 : i - (i % 5)}`, n.id);
    });
    const l = layoutGraph({ nodes, edges, truncated: null });
    const at = new Map(l.nodes.map((n) => [n.id, n]));
    const spine = nodes.filter((_, i) => i % 5 === 0).map((n) => at.get(n.id)!);
    expect(new Set(spine.map((p) => p.y)).size).toBe(1);
    for (let k = 1; k < spine.length; k++) expect(spine[k].x).toBeGreaterThan(spine[k - 1].x);
  });

  it("lays out 2 000 events", () => {
    const nodes = Array.from({ length: 2000 }, (_, i) => ev(`n${i}`, i));
    const edges = nodes.slice(1).map((n, i) => edge(`n${Math.floor(i / 3)}`, n.id));
    const l = layoutGraph({ nodes, edges, truncated: null });
    expect(new Set(l.nodes.map((n) => `${n.x},${n.y}`)).size).toBe(2000);
  });
});

describe("the ghosts of missing reactions", () => {
  const NOW = Date.parse("2026-12-06T20:00:00Z");
  const missing = (after_event: string, overrides: Partial<MissingView> = {}): MissingView => ({
    after_event,
    after: { service: "payment", event_type: "PaymentCreated" },
    expected: { kind: "by_service", service: "bank" },
    diagnosis: null,
    support: 1,
    samples: 40,
    origin: "learned",
    deadline: "2026-12-06T19:59:03Z",
    overdue_ms: 57_000,
    ...overrides,
  });

  it("are one dashed box per missing reaction of an event in the graph, joined to that event", () => {
    const found = ghostsOf(
      new Set(["a", "b"]),
      [
        missing("b"),
        missing("b", { expected: { kind: "specific", service: "mail", event_type: "EmailSent" }, overdue_ms: null, deadline: "2026-12-06T20:00:08Z" }),
        missing("a", { expected: { kind: "any" } }),
        missing("b"), // the same reaction twice: one ghost
        missing("elsewhere"), // not in the graph: none
      ],
      NOW,
    );
    expect(found.ghosts.map((g) => [g.after, g.label, g.due, g.overdue])).toEqual([
      ["b", "bank", "overdue 57 s", true],
      ["b", "mail/EmailSent", "due in 8 s", false],
      ["a", "any reaction", "overdue 57 s", true],
    ]);
    expect(found.edges).toEqual(found.ghosts.map((g) => ({ from: g.after, to: g.id })));
    expect(new Set(found.ghosts.map((g) => g.id)).size).toBe(3);
    // Two lines in the box: a service and a type side by side would not fit it.
    expect(found.ghosts.map((g) => [g.heading, g.name])).toEqual([
      ["expected reaction from", "bank"],
      ["expected from mail", "EmailSent"],
      ["expected", "any reaction"],
    ]);
    expect(found.ghosts.every((g) => !g.failed)).toBe(true);
    // After a dead-lettered event, the ghost says so (drawn red).
    const dead = ghostsOf(new Set(["b"]), [missing("b")], NOW, new Set(["b"]));
    expect(dead.ghosts.map((g) => g.failed)).toEqual([true]);
  });

  it("are laid out as reactions of their event, beside its real reactions, overlapping nothing", () => {
    // a → b → {c, d}; d → e; the ghost after b goes into c and d's column.
    const l = layoutGraph(fanOut, [missing("b"), missing("e", { expected: { kind: "any" } })], NOW);
    expect(l.nodes).toHaveLength(5);
    expect(l.edges).toHaveLength(4);
    expect(l.ghosts.map((g) => [g.after, g.label])).toEqual([["b", "bank"], ["e", "any reaction"]]);
    const at = new Map(l.nodes.map((n) => [n.id, n]));
    const [afterB, afterE] = l.ghosts;
    // In c and d's column (centres aligned, as dagre centres a column's boxes).
    expect(afterB.x + GHOST_WIDTH / 2).toBe(at.get("c")!.x + NODE_WIDTH / 2);
    expect(afterE.x).toBeGreaterThan(at.get("e")!.x);
    const boxes = [
      ...l.nodes.map((n) => ({ x: n.x, y: n.y, w: NODE_WIDTH, h: NODE_HEIGHT })),
      ...l.ghosts.map((g) => ({ x: g.x, y: g.y, w: GHOST_WIDTH, h: GHOST_HEIGHT })),
    ];
    for (const p of boxes) {
      for (const q of boxes) {
        if (p === q) continue;
        const overlap = p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h;
        expect(overlap).toBe(false);
      }
    }
  });

  it("are none without missing reactions", () => {
    expect(layoutGraph(fanOut).ghosts).toEqual([]);
  });
});

describe("keyboard moves", () => {
  const l = layoutGraph(fanOut);
  it("map keys to moves", () => {
    expect(moveOf("ArrowLeft")).toBe("cause");
    expect(moveOf("l")).toBe("reaction");
    expect(moveOf("x")).toBeNull();
  });
  it("go to causes, reactions, column neighbours, the start and the end", () => {
    expect(neighbour(l, null, "reaction")).toBe("a");
    expect(neighbour(l, "a", "reaction")).toBe("b");
    expect(neighbour(l, "d", "cause")).toBe("b");
    expect(neighbour(l, "a", "cause")).toBeNull();
    const top = neighbour(l, "b", "reaction")!;
    expect(["c", "d"]).toContain(top);
    const other = top === "c" ? "d" : "c";
    expect(neighbour(l, top, "down")).toBe(other);
    expect(neighbour(l, other, "up")).toBe(top);
    expect(neighbour(l, "c", "first")).toBe("a");
    expect(neighbour(l, "a", "end")).toBe("e");
  });
});

describe("service colours", () => {
  it("are stable per service and grey without one", () => {
    expect(serviceColor("payment")).toBe(serviceColor("payment"));
    expect(serviceColor(null)).toBe("#8a8f98");
    const colours = new Set(["shop", "order", "payment", "bank", "inventory", "notification"].map(serviceColor));
    expect(colours.size).toBeGreaterThanOrEqual(4);
  });
});

describe("the window of a large graph", () => {
  it("is the viewport's region in layout coordinates, grown by a margin", () => {
    expect(regionOf({ x: -100, y: 50, zoom: 0.5 }, { width: 400, height: 300 }, 0)).toEqual({ x: 200, y: -100, width: 800, height: 600 });
    const grown = regionOf({ x: 0, y: 0, zoom: 1 }, { width: 100, height: 50 });
    expect(grown).toEqual({ x: -100, y: -50, width: 300, height: 150 });
    expect(contains(grown, { x: 0, y: 0, width: 100, height: 50 })).toBe(true);
    expect(contains(grown, { x: 150, y: 0, width: 100, height: 50 })).toBe(false);
  });

  it("holds the nodes in the region, the edges touching them, and both ends of each", () => {
    // a chain of 50 events, laid out left to right.
    const nodes = Array.from({ length: 50 }, (_, i) => ev(`c${i}`, i));
    const edges = nodes.slice(1).map((n, i) => edge(`c${i}`, n.id));
    const l = layoutGraph({ nodes, edges, truncated: null });
    const at = new Map(l.nodes.map((n) => [n.id, n]));
    const c10 = at.get("c10")!;
    // A region covering c10 alone.
    const w = windowOf(l, { x: c10.x + 1, y: c10.y + 1, width: 10, height: 10 });
    expect([...w.nodes].sort()).toEqual(["c10", "c11", "c9"]);
    expect(w.edges.map((e) => `${e.from}>${e.to}`)).toEqual(["c9>c10", "c10>c11"]);
    // Everything, and nothing.
    expect(windowOf(l, { x: -1e9, y: -1e9, width: 2e9, height: 2e9 }).nodes.size).toBe(50);
    expect(windowOf(l, { x: -1e6, y: -1e6, width: 10, height: 10 }).nodes.size).toBe(0);
  });
});
