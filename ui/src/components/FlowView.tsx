import { useMemo } from "react";
import { api, type Flow, type Graph } from "../lib/api";
import { clock, duration } from "../lib/format";
import { banner, learningText } from "../lib/health";
import { layoutGraph } from "../lib/layout";
import { describeTarget, eventHref, flowHref, type FlowTarget } from "../lib/routes";
import { useLive, useLoad } from "../hooks";
import { Link, useNavigation } from "../navigation";
import { EventDetails } from "./EventDetails";
import { FlowCanvas } from "./FlowCanvas";
import { TimelineView } from "./TimelineView";
import { ErrorNote } from "./ErrorNote";

/** Ends of one flow named in the summary; the graph flags them all. */
const MAX_ENDS_LISTED = 5;

/** What the flow view needs, whatever it was asked for. */
interface FlowData {
  graph: Graph;
  flows: Flow[];
  matched: number | null;
  /** When it was read (ms since the epoch): "due in" is counted from then. */
  at: number;
}

async function loadFlow(target: FlowTarget, signal: AbortSignal): Promise<FlowData> {
  const at = Date.now();
  switch (target.kind) {
    case "key": {
      const a = await api.key(target.name, target.value, signal);
      return { graph: a.graph, flows: a.flows, matched: a.matched_events, at };
    }
    case "trace": {
      const a = await api.trace(target.id, signal);
      return { graph: a.graph, flows: [a.flow], matched: null, at };
    }
    case "correlation": {
      const a = await api.correlation(target.id, signal);
      return { graph: a.graph, flows: [a.flow], matched: null, at };
    }
  }
}

/**
 * A flow: where it stands (how many conversations, where each currently ends and for how long),
 * the causal graph, the per-service timeline, and the selected event's details. Follows the
 * collector's live feed and reloads as new events of the flow become durable.
 */
export function FlowView({ target, selected }: { target: FlowTarget; selected: string | null }) {
  const { navigate } = useNavigation();
  const [data, reload] = useLoad((signal) => loadFlow(target, signal), [target]);
  const value = data.value;
  const layout = useMemo(() => {
    if (!value) return null;
    const started = performance.now();
    const laidOut = layoutGraph(
      value.graph,
      value.flows.flatMap((f) => f.health?.missing ?? []),
      value.at,
    );
    performance.measure("choreoscope:layout", { start: started }); // read by e2e/bench.mjs
    return laidOut;
  }, [value]);
  const liveUrl = useMemo(() => {
    if (target.kind === "trace") return api.liveUrl({ traces: [target.id] });
    if (target.kind === "correlation") return api.liveUrl({ correlations: [target.id] });
    const correlations = (value?.flows ?? []).flatMap((f) => (f.correlation_id ? [f.correlation_id] : []));
    return api.liveUrl({ keys: [[target.name, target.value]], correlations: correlations.slice(0, 100) });
  }, [target, value]);
  const live = useLive(liveUrl, reload);
  const inGraph = useMemo(() => new Set(value?.graph.nodes.map((n) => n.id) ?? []), [value]);
  const select = (id: string | null) => navigate(flowHref(target, id), { replace: true });
  const hrefFor = (id: string) => (inGraph.has(id) ? flowHref(target, id) : eventHref(id));
  const [detail] = useLoad(
    (signal) => (selected ? api.event(selected, signal) : Promise.resolve(null)),
    [selected, data.state === "ok" ? value?.graph.nodes.length : -1],
  );

  return (
    <div className="flow-view" data-testid="flow-view">
      <header className="view-header">
        <h1 data-testid="flow-title">{describeTarget(target)}</h1>
        <span className={`live live-${live.state}`} data-testid="live-state" title="Updates as new events of this flow arrive">
          {live.state === "live" ? "● live" : live.state === "connecting" ? "○ connecting" : "○ offline"}
          {live.updates > 0 && <span className="muted"> · {live.updates} update{live.updates === 1 ? "" : "s"}</span>}
        </span>
      </header>
      {data.state === "error" && <ErrorNote error={data.error} />}
      {!value && data.state === "loading" && <p className="muted">Loading…</p>}
      {value && layout && (
        <>
          <HealthBanners flows={value.flows} at={value.at} />
          <FlowSummary data={value} />
          {value.graph.truncated && <p className="warn">{value.graph.truncated}</p>}
          <div className={`flow-body${selected ? " with-details" : ""}`}>
            <div className="flow-main">
              {value.graph.nodes.length === 0 ? (
                <p className="muted">No events.</p>
              ) : (
                <FlowCanvas
                  layout={layout}
                  selected={selected}
                  onSelect={select}
                  onOpen={(id) => navigate(eventHref(id))}
                />
              )}
              <TimelineView
                events={value.graph.nodes}
                edges={value.graph.edges}
                selected={selected}
                onSelect={(id) => select(id)}
              />
            </div>
            {selected && (
              <aside className="flow-details">
                <button type="button" className="close" onClick={() => select(null)} aria-label="Close the details">
                  ×
                </button>
                {detail.state === "error" && <ErrorNote error={detail.error} />}
                {detail.value && <EventDetails event={detail.value} hrefFor={hrefFor} />}
              </aside>
            )}
          </div>
        </>
      )}
    </div>
  );
}

/** Statuses, worst first. */
const WORST_FIRST = { failed: 0, stalled: 1, in_progress: 2, complete: 3 } as const;

/**
 * Each flow's health: a banner per flow that is stalled, failed or in progress (what is missing
 * or failed, since when, on what evidence, and why when the consumer groups tell), worst first;
 * the complete ones in one quiet line.
 */
function HealthBanners({ flows, at }: { flows: Flow[]; at: number }) {
  const assessed = flows.filter((f) => f.health);
  if (assessed.length === 0) return null;
  const open = assessed
    .filter((f) => f.health.status !== "complete")
    .sort((a, b) => WORST_FIRST[a.health.status] - WORST_FIRST[b.health.status]);
  const complete = assessed.length - open.length;
  const learning = assessed
    .filter((f) => f.health.status === "complete")
    .flatMap((f) => f.health.learning)
    .filter((s, i, all) => all.findIndex((o) => o.service === s.service && o.event_type === s.event_type) === i);
  const many = assessed.length > 1;
  return (
    <section className="health-banners" data-testid="flow-health">
      {open.map((f, i) => {
        const b = banner(f.health, at);
        return (
          <div
            key={f.correlation_id ?? i}
            className={`flow-status status-${b.status}`}
            data-testid="flow-status"
            data-status={b.status}
            role="status"
          >
            <span className={`status-dot status-${b.status}`} aria-hidden="true" />{" "}
            <strong className="flow-status-title">{b.title}</strong>
            {many && f.correlation_id && (
              <>
                {" "}
                <span className="muted">·</span>{" "}
                <Link className="muted" href={flowHref({ kind: "correlation", id: f.correlation_id })}>
                  correlation {f.correlation_id}
                </Link>
              </>
            )}
            {!f.health.tracked && <span className="muted"> · assessed when asked, not tracked live</span>}
            <ul className="flow-status-lines">
              {b.lines.map((line, j) => (
                <li key={j} data-testid="flow-status-line">
                  {line}
                </li>
              ))}
              {b.diagnoses.map((d, j) => (
                <li key={`d${j}`} className="flow-status-diagnosis" data-testid="flow-status-diagnosis">
                  {d}
                </li>
              ))}
            </ul>
          </div>
        );
      })}
      {complete > 0 && (
        <p className="flow-status status-complete quiet" data-testid="flow-status" data-status="complete">
          <span className="status-dot status-complete" aria-hidden="true" />{" "}
          {many
            ? `${complete} of ${assessed.length} flows complete: nothing expected is missing.`
            : "Complete: nothing expected is missing."}
          {learning.length > 0 && <span className="muted"> ({learningText(learning)}.)</span>}
        </p>
      )}
    </section>
  );
}

function FlowSummary({ data }: { data: FlowData }) {
  const { flows, graph } = data;
  return (
    <section className="summary" data-testid="flow-summary">
      <p>
        <strong>{graph.nodes.length}</strong> event{graph.nodes.length === 1 ? "" : "s"}
        {data.matched !== null && <> ({data.matched} carry the key)</>} in <strong>{flows.length}</strong> flow
        {flows.length === 1 ? "" : "s"}, <strong>{graph.edges.length}</strong> causal link
        {graph.edges.length === 1 ? "" : "s"}.
      </p>
      <ul className="flows">
        {flows.map((f, i) => (
          <li key={f.correlation_id ?? i} data-testid="flow-row">
            <span className="muted">{clock(f.started)}</span> {f.services.join(" → ")}{" "}
            <span className="muted">· {duration(f.duration_ms)}</span>
            {f.ends.slice(0, MAX_ENDS_LISTED).map((end) => (
              <span key={end.id} className="flow-end" data-testid="flow-end">
                {" "}
                · ends at{" "}
                <Link href={eventHref(end.id)}>
                  <strong>{end.type ?? "(no type)"}</strong>
                </Link>{" "}
                ({end.source ?? "unknown"}), idle {duration(end.idle_ms)}
              </span>
            ))}
            {f.ends.length > MAX_ENDS_LISTED && (
              <span className="muted"> · and {f.ends.length - MAX_ENDS_LISTED} more ends</span>
            )}
            {f.correlation_id && (
              <>
                {" "}
                ·{" "}
                <Link className="muted" href={flowHref({ kind: "correlation", id: f.correlation_id })}>
                  this flow alone
                </Link>
              </>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
