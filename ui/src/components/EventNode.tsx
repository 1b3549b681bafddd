import { memo } from "react";
import { Handle, Position, type NodeProps, type Node } from "@xyflow/react";
import type { EventSummary } from "../lib/api";
import { clock, FLAG_LABELS } from "../lib/format";
import { NODE_HEIGHT, NODE_WIDTH, serviceColor } from "../lib/layout";

/** What an event node carries. */
export type EventNodeData = { event: EventSummary };

/** A node of the causal graph: the service's colour, the type, the time, the flags. */
export const EventNode = memo(function EventNode({ data, selected }: NodeProps<Node<EventNodeData, "event">>) {
  const e = data.event;
  const flags = (e.flags as string[]).filter((f) => f !== "root");
  return (
    <div
      className={`event-node${e.opaque ? " is-opaque" : ""}${selected ? " selected" : ""}${flags.includes("end") ? " is-end" : ""}${flags.includes("dead_lettered") || flags.includes("handler_failed") ? " is-dead" : ""}`}
      style={{ width: NODE_WIDTH, height: NODE_HEIGHT, borderLeftColor: serviceColor(e.source) }}
      data-testid="event-node"
      data-event-id={e.id}
      data-flags={flags.join(" ")}
      data-opaque={e.opaque ? "true" : undefined}
      title={
        e.opaque
          ? "An event of a topic your role does not cover: it stays so the flow stays connected"
          : `${e.type ?? "(no type)"} from ${e.source ?? "(unknown service)"} on ${e.topic}[${e.partition}]@${e.offset}`
      }
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="event-node-service" style={{ color: serviceColor(e.source) }}>
        {e.opaque ? "another team" : (e.source ?? "(unknown)")}
      </div>
      <div className="event-node-type">{e.opaque ? "(not shown to your role)" : (e.type ?? "(no type)")}</div>
      <div className="event-node-meta">
        <span className="event-node-time">{clock(e.time)}</span>
        {flags.map((f) => (
          <span key={f} className={`flag flag-${f}`} title={FLAG_LABELS[f]?.title ?? f}>
            {FLAG_LABELS[f]?.short ?? f}
          </span>
        ))}
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});
