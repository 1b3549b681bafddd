import { api } from "../lib/api";
import { clock, FLAG_LABELS } from "../lib/format";
import { eventHref, flowHref } from "../lib/routes";
import { serviceColor } from "../lib/layout";
import { useLoad } from "../hooks";
import { Link } from "../navigation";
import { ErrorNote } from "./ErrorNote";
import { prefillSearch } from "./SearchBox";

/** The start page: how to ask, the key names seen, the latest events and the latest problems. */
export function HomeView() {
  const [names] = useLoad((s) => api.keyNames(s), []);
  const [recent] = useLoad((s) => api.search({ limit: "15" }, s), []);
  const [problems] = useLoad((s) => api.search({ problem: "any", limit: "8" }, s).catch(() => null), []);
  return (
    <section className="page home" data-testid="home">
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
