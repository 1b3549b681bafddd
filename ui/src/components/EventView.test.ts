import { describe, expect, it } from "vitest";
import { withOwnFlags } from "./EventView";
import type { EventDetail, Graph } from "../lib/api";

describe("an event's page", () => {
  it("flags the event's node in its lineage as the event's own answer does", () => {
    const node = (id: string, flags: Graph["nodes"][number]["flags"]) => ({ id, flags }) as unknown as Graph["nodes"][number];
    const g = { nodes: [node("a", ["root"]), node("b", [])], edges: [], truncated: null } as unknown as Graph;
    const out = withOwnFlags(g, { id: "b", flags: ["dead_lettered", "end"] } as unknown as EventDetail);
    expect(out.nodes.map((n) => n.flags)).toEqual([["root"], ["dead_lettered"]]);
    expect(withOwnFlags(g, null)).toBe(g);
  });
});
