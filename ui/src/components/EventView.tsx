import { useMemo } from "react";
import { api, type EventDetail, type Graph } from "../lib/api";
import { layoutGraph } from "../lib/layout";
import { eventHref, flowHref } from "../lib/routes";
import { useLoad } from "../hooks";
import { Link, useNavigation } from "../navigation";
import { EventDetails } from "./EventDetails";
import { ErrorNote } from "./ErrorNote";
import { FlowCanvas } from "./FlowCanvas";

/** One event: its details, and its lineage (causes and reactions, ten hops each way). */
export function EventView({ id }: { id: string }) {
  const { navigate } = useNavigation();
  const [event] = useLoad((signal) => api.event(id, signal), [id]);
  const [lineage] = useLoad((signal) => api.lineage(id, 10, signal), [id]);
  const e = event.value;
  const layout = useMemo(() => (lineage.value ? layoutGraph(withOwnFlags(lineage.value, e)) : null), [lineage.value, e]);
  return (
    <div className="event-view" data-testid="event-view">
      <header className="view-header">
        <h1>Event</h1>
        {e?.correlation_id && (
          <Link href={flowHref({ kind: "correlation", id: e.correlation_id }, e.id)}>its whole flow</Link>
        )}
      </header>
      {event.state === "error" && <ErrorNote error={event.error} />}
      <div className="flow-body with-details">
        <div className="flow-main">
          {lineage.state === "error" && event.state !== "error" && <ErrorNote error={lineage.error} />}
          {layout && (
            <FlowCanvas
              layout={layout}
              selected={id}
              onSelect={(next) => next && next !== id && navigate(eventHref(next))}
            />
          )}
        </div>
        <aside className="flow-details">{e && <EventDetails event={e} />}</aside>
      </div>
    </div>
  );
}

/**
 * The lineage with the event's own flags on its node: a lineage walk does not flag what only a
 * flow answer or the event's own answer does (`dead_lettered`), and the event's page should
 * draw it as its flow view does.
 */
export function withOwnFlags(g: Graph, e: EventDetail | null | undefined): Graph {
  if (!e) return g;
  return {
    ...g,
    nodes: g.nodes.map((n) =>
      n.id === e.id ? { ...n, flags: [...new Set([...n.flags, ...e.flags.filter((f) => f !== "end")])] } : n,
    ),
  };
}
