import { useEffect } from "react";
import { api, type FlowsSummary, type FlowHealthView } from "../lib/api";
import { clock, FLAG_LABELS } from "../lib/format";
import { attentionGroups } from "../lib/health";
import { eventHref, flowHref } from "../lib/routes";
import { serviceColor } from "../lib/layout";
import { useLoad } from "../hooks";
import { Link } from "../navigation";
import { ErrorNote } from "./ErrorNote";
import { prefillSearch } from "./SearchBox";

/** Stuck flows fetched per status for the start page. */
const ATTENTION_LIMIT = 200;
/** The list is read again this often (flow health changes as time passes). */
const REFRESH_MS = 10_000;
/** Flows listed per group; the group's count says how many there are. */
const FLOWS_PER_GROUP = 8;

/**
 * The start page: what needs attention (stalled and failed flows, grouped by where they
 * stopped), how to ask, the key names seen, the latest events and the latest problems.
 */
export function HomeView() {
  const [names] = useLoad((s) => api.keyNames(s), []);
  const [recent] = useLoad((s) => api.search({ limit: "15" }, s), []);
  const [problems] = useLoad((s) => api.search({ problem: "any", limit: "8" }, s).catch(() => null), []);
  return (
    <section className="page home" data-testid="home">
      <NeedsAttention />
      <h1>What happened to this business entity?</h1>
      <p>
        Type a business key such as <code>order.id=o-1001</code> (or just <code>o-1001</code>), an event id or a trace id
        above. <kbd>/</kbd> jumps to the search box.
      </p>
      {names.value && names.value.names.length > 0 && (
        <p>
          Key names seen:{" "}
          {names.value.names.map((n) => (
            <button key={n} type="button" className="chip" onClick={() => prefillSearch(`${n}=`)} title={`Search by ${n}`}>
              <code>{n}</code>
            </button>
          ))}
        </p>
      )}
      <h2>Latest events</h2>
      {recent.state === "error" && <ErrorNote error={recent.error} />}
      <EventList events={recent.value?.events ?? []} />
      {problems.value && problems.value.events.length > 0 && (
        <>
          <h2>Latest events with problems</h2>
          <EventList events={problems.value.events} />
        </>
      )}
    </section>
  );
}

interface Attention {
  summary: FlowsSummary;
  stuck: FlowHealthView[];
  at: number;
}

async function loadAttention(signal: AbortSignal): Promise<Attention> {
  const [summary, stalled, failed] = await Promise.all([
    api.flowsSummary(signal),
    api.flows({ status: "stalled", limit: ATTENTION_LIMIT }, signal),
    api.flows({ status: "failed", limit: ATTENTION_LIMIT }, signal),
  ]);
  return { summary, stuck: [...failed.flows, ...stalled.flows], at: Date.now() };
}

/** Counts per status, then the stalled and failed flows grouped by where they stopped. */
function NeedsAttention() {
  const [loaded, reload] = useLoad(loadAttention, []);
  useEffect(() => {
    const timer = setInterval(reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);
  const value = loaded.value;
  const groups = value ? attentionGroups(value.summary, value.stuck, value.at) : [];
  const counts = value?.summary.counts;
  return (
    <section className="attention" data-testid="needs-attention">
      <h2>Needs attention</h2>
      {loaded.state === "error" && <ErrorNote error={loaded.error} />}
      {counts && (
        <p className="status-counts" data-testid="status-counts">
          <span className="count count-failed" data-testid="count-failed">
            <strong>{counts.failed}</strong> failed
          </span>
          <span className="count count-stalled" data-testid="count-stalled">
            <strong>{counts.stalled}</strong> stalled
          </span>
          <span className="count count-in_progress" data-testid="count-in_progress">
            <strong>{counts.in_progress}</strong> in progress
          </span>
          <span className="count count-complete" data-testid="count-complete">
            <strong>{counts.complete}</strong> complete
          </span>
          <span className="muted"> · flows with an event in the last hour</span>
        </p>
      )}
      {value && groups.length === 0 && (
        <p className="attention-empty" data-testid="attention-empty">
          Nothing needs attention: no flow is stalled or failed.
        </p>
      )}
      {groups.map((g) => (
        <div key={g.key} className={`attention-group status-${g.status}`} data-testid="attention-group" data-status={g.status}>
          <h3 className="attention-title">
            <span className={`status-dot status-${g.status}`} aria-hidden="true" /> {g.title}
          </h3>
          {g.sharedDetail && (
            <p className={`attention-shared attention-detail status-${g.status}`} data-testid="attention-shared">
              {g.sharedDetail}
            </p>
          )}
          <ul className="attention-flows">
            {g.flows.slice(0, FLOWS_PER_GROUP).map((f) => (
              <li key={f.flow} data-testid="attention-flow" data-flow={f.flow}>
                <Link href={f.href}>{f.keys.length > 0 ? f.keys[0] : <code>{f.flow}</code>}</Link>
                {f.keys.slice(1).map((k) => (
                  <span key={k} className="muted">
                    {" "}
                    · {k}
                  </span>
                ))}{" "}
                {!g.sharedDetail && (
                  <>
                    · <span className={`attention-detail status-${g.status}`}>{f.detail}</span>{" "}
                  </>
                )}
                <span className="muted">· last event {clock(f.lastActivity)}</span>
              </li>
            ))}
            {g.count > Math.min(g.flows.length, FLOWS_PER_GROUP) && (
              <li className="muted">and {g.count - Math.min(g.flows.length, FLOWS_PER_GROUP)} more</li>
            )}
          </ul>
        </div>
      ))}
      {value && value.summary.lagged_batches > 0 && (
        <p className="warn">
          Flow health fell behind on {value.summary.lagged_batches} batch{value.summary.lagged_batches === 1 ? "" : "es"} of
          events: some flows may read stalled until the collector restarts.
        </p>
      )}
    </section>
  );
}

function EventList({ events }: { events: import("../lib/api").EventSummary[] }) {
  return (
    <table className="event-list">
      <tbody>
        {events.map((e) => (
          <tr key={e.id}>
            <td className="muted">{clock(e.time)}</td>
            <td>
              <span className="swatch" style={{ background: serviceColor(e.source) }} /> {e.source ?? "(unknown)"}
            </td>
            <td>
              <Link href={eventHref(e.id)}>{e.type ?? "(no type)"}</Link>
            </td>
            <td className="muted">{e.topic}</td>
            <td>
              {e.correlation_id && <Link href={flowHref({ kind: "correlation", id: e.correlation_id })}>flow</Link>}
            </td>
            <td>
              {(e.flags as string[]).map((f) => (
                <span key={f} className={`flag flag-${f}`}>
                  {FLAG_LABELS[f]?.short ?? f}
                </span>
              ))}
              {e.problem_count > 0 && <span className="flag flag-problems">problems</span>}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
