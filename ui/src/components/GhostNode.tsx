import { memo } from "react";
import { Handle, Position, type NodeProps, type Node } from "@xyflow/react";
import { GHOST_HEIGHT, GHOST_WIDTH, type Ghost } from "../lib/layout";

/** What a ghost node carries. */
export type GhostNodeData = { ghost: Ghost };

/** An expected reaction that has not arrived: a dashed box after the event it should follow. */
export const GhostNode = memo(function GhostNode({ data }: NodeProps<Node<GhostNodeData, "ghost">>) {
  const g = data.ghost;
  return (
    <div
      className={`ghost-node${g.overdue ? " overdue" : ""}${g.failed ? " failed" : ""}`}
      style={{ width: GHOST_WIDTH, height: GHOST_HEIGHT }}
      data-testid="ghost-node"
      data-after={g.after}
      data-overdue={g.overdue}
      data-failed={g.failed}
      title={`Expected: ${g.label} — not arrived (${g.due})${g.failed ? "; the event it follows was dead-lettered" : ""}`}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="ghost-node-kind">{g.heading}</div>
      <div className="ghost-node-label">{g.name}</div>
      <div className="ghost-node-due">{g.due}</div>
    </div>
  );
});
