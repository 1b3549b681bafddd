import type { ReactNode } from "react";
import { consumerGroupsOf, type EventDetail, type GroupPosition, type Handling } from "../lib/api";
import { bytesText, clock, duration, payloadText } from "../lib/format";
import { byStart, handlerText, handlingOutcome } from "../lib/spans";
import { eventHref, flowHref } from "../lib/routes";
import { Link } from "../navigation";

/**
 * Everything about one event. Headers, keys and payload are untrusted: they are rendered as
 * text nodes (never as HTML), payloads pretty-printed when they are JSON.
 */
export function EventDetails({ event, hrefFor = eventHref }: { event: EventDetail; hrefFor?: (id: string) => string }) {
  const payload = event.payload ? payloadText(event.payload.body) : null;
  const groups = consumerGroupsOf(event);
  return (
    <article className="details" data-testid="event-details" data-event-id={event.id}>
      <header>
        <h2 data-testid="details-type">{event.type ?? "(no type)"}</h2>
        <div className="muted">
          from <strong>{event.source ?? "(unknown service)"}</strong>
          {event.subject && <> · subject {event.subject}</>}
        </div>
      </header>
      <dl className="facts">
        <Fact name="id">
          <code data-testid="details-id">{event.id}</code> <span className="muted">({event.id_source})</span>
        </Fact>
        <Fact name="time">{event.time}</Fact>
        {event.event_time && event.event_time !== event.time && <Fact name="ce_time">{event.event_time}</Fact>}
        {event.broker_time && <Fact name="broker time">{event.broker_time}</Fact>}
        <Fact name="ingested">{event.ingested_at}</Fact>
        <Fact name="position">
          <code>
            {event.topic}[{event.partition}]@{event.offset}
          </code>
        </Fact>
        {event.key && (
          <Fact name="record key">
            <code>{bytesText(event.key)}</code>
          </Fact>
        )}
        <Fact name="cause">
          {event.causation_id === null ? (
            <span className="muted">none (starts a flow)</span>
          ) : event.cause_stored ? (
            <Link href={hrefFor(event.causation_id)} data-testid="cause-link">
              {event.causation_id}
            </Link>
          ) : (
            <span className="warn" data-testid="cause-missing">
              {event.causation_id} — never seen by the collector
            </span>
          )}
        </Fact>
        <Fact name="reactions">
          {event.reactions.length === 0 ? (
            <span className="muted">none yet</span>
          ) : (
            <ul className="inline-list">
              {event.reactions.map((r) => (
                <li key={r}>
                  <Link href={hrefFor(r)} data-testid="reaction-link">
                    {r}
                  </Link>
                </li>
              ))}
            </ul>
          )}
        </Fact>
        <Fact name="trace">
          <FlowLink kind="trace" id={event.trace_id} />
          {event.span_id && <span className="muted"> · span {event.span_id}</span>}
        </Fact>
        <Fact name="correlation">
          <FlowLink kind="correlation" id={event.correlation_id} />
        </Fact>
      </dl>
      <Handlings handlings={event.handlings ?? []} hrefFor={hrefFor} />
      {event.problems.length > 0 && (
        <section>
          <h3>Problems</h3>
          <ul className="problems" data-testid="problems">
            {event.problems.map((p, i) => (
              <li key={i}>
                <strong>{p.kind}</strong>: {p.detail}
              </li>
            ))}
          </ul>
        </section>
      )}
      {event.withheld && (
        <section>
          <h3>Withheld</h3>
          <p className="muted" data-testid="withheld">
            {event.withheld}
          </p>
        </section>
      )}
      {event.redactions && (
        <section>
          <h3>Redacted at ingest</h3>
          <ul className="redactions" data-testid="redactions">
            {redactionLines(event.redactions).map((line) => (
              <li key={line}>{line}</li>
            ))}
          </ul>
        </section>
      )}
      {(event.dead_letters ?? []).length > 0 && (
        <section>
          <h3 className="failed-text">Dead-lettered ({event.dead_letters.length})</h3>
          <ul className="dead-letters" data-testid="dead-letters">
            {event.dead_letters.map((d) => (
              <li key={`${d.topic}/${d.partition}/${d.offset}`}>
                <code>
                  {d.topic}[{d.partition}]@{d.offset}
                </code>{" "}
                <span className="muted" title={d.time}>
                  at {clock(d.time)}
                </span>
                {d.group && <span className="muted"> · group {d.group}</span>}
                <span className="muted"> · {recognisedText(d.recognised_by)}</span>
                <div>{d.reason}</div>
              </li>
            ))}
          </ul>
        </section>
      )}
      {groups.length > 0 && (
        <section>
          <h3>Consumer groups ({groups.length})</h3>
          <table className="groups" data-testid="consumer-groups">
            <thead>
              <tr>
                <th scope="col">group</th>
                <th scope="col">service</th>
                <th scope="col">state</th>
                <th scope="col">lag</th>
              </tr>
            </thead>
            <tbody>
              {groups.map((g) => (
                <tr key={g.group} data-state={g.state}>
                  <td>
                    <code>{g.group}</code>
                  </td>
                  <td>{g.service ?? <span className="muted">unknown</span>}</td>
                  <td className={`group-${g.state}`}>{g.state}</td>
                  <td>{lagText(g)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      {event.keys.length > 0 && (
        <section>
          <h3>Business keys</h3>
          <ul className="inline-list">
            {event.keys.map((k) => (
              <li key={`${k.name}=${k.value}`}>
                <Link href={flowHref({ kind: "key", name: k.name, value: k.value })}>
                  {k.name}={k.value}
                </Link>
              </li>
            ))}
          </ul>
        </section>
      )}
      {event.deliveries.length > 1 && (
        <section>
          <h3>Deliveries ({event.deliveries.length}: published more than once)</h3>
          <ul>
            {event.deliveries.map((d) => (
              <li key={`${d.topic}/${d.partition}/${d.offset}`}>
                <code>
                  {d.topic}[{d.partition}]@{d.offset}
                </code>{" "}
                <span className="muted">{d.broker_time}</span>
              </li>
            ))}
          </ul>
        </section>
      )}
      <section>
        <h3>Headers ({event.headers.length})</h3>
        <table className="headers" data-testid="headers">
          <tbody>
            {event.headers.map((h, i) => (
              <tr key={i}>
                <th scope="row">{h.name}</th>
                <td>
                  <code>{bytesText(h.value)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section>
        <h3>
          Payload
          {event.payload && (
            <span className="muted">
              {" "}
              · {event.payload.size} bytes{event.payload.truncated ? " (cut)" : ""}
              {payload?.json ? " · JSON" : ""}
              {event.payload.content_type ? ` · ${event.payload.content_type}` : ""}
            </span>
          )}
        </h3>
        {payload ? (
          <pre className="payload" data-testid="payload">
            {payload.text}
          </pre>
        ) : (
          <p className="muted">none</p>
        )}
      </section>
    </article>
  );
}

/**
 * Who handled the event (from its consumers' OpenTelemetry spans): each handling's service and
 * group, when, how long, ok or failed (and the exception), and the events it produced, linked.
 */
function Handlings({ handlings, hrefFor }: { handlings: Handling[]; hrefFor: (id: string) => string }) {
  return (
    <section data-testid="handlings">
      <h3>Handled by{handlings.length > 0 ? ` (${handlings.length})` : ""}</h3>
      {handlings.length === 0 ? (
        <p className="muted" data-testid="handlings-none">
          No consumer spans received for this event: the collector learns who handled an event only from its consumers'
          OpenTelemetry spans.
        </p>
      ) : (
        <ul className="handlings">
          {byStart(handlings).map((h) => {
            const outcome = handlingOutcome(h);
            return (
              <li key={`${h.trace_id}/${h.span_id}`} data-testid="handling" data-outcome={h.outcome} data-kind={outcome.kind}>
                <span className={`badge badge-${outcome.badge}`} data-testid="handling-badge">
                  {outcome.badge}
                </span>{" "}
                <strong data-testid="handling-service">{handlerText(h)}</strong>{" "}
                <span className="muted" title={h.started}>
                  at {clock(h.started)} · took {duration(h.duration_ms)}
                </span>
                <div className={`handling-outcome handling-${outcome.kind}`} data-testid="handling-outcome">
                  {outcome.text}
                </div>
                {h.produced.length > 0 && (
                  <ul className="inline-list">
                    {h.produced.map((id) => (
                      <li key={id}>
                        <Link href={hrefFor(id)} data-testid="produced-link">
                          {id}
                        </Link>
                      </li>
                    ))}
                  </ul>
                )}
                <div className="muted handling-span">
                  span <code>{h.span_name}</code> ·{" "}
                  <Link href={flowHref({ kind: "trace", id: h.trace_id })} title={`The flow of trace ${h.trace_id}`}>
                    its trace
                  </Link>
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

/** Where a group stands against the event, in a table cell. */
function lagText(g: GroupPosition): string {
  if (g.state === "consumed") return g.consumed_at ? `consumed ${g.consumed_at}` : "–";
  const parts: string[] = [];
  if (g.lag_records !== null) parts.push(`${g.lag_records} record${g.lag_records === 1 ? "" : "s"}`);
  if (g.lag_seconds !== null) parts.push(`~${duration(g.lag_seconds * 1000)}`);
  return parts.length > 0 ? parts.join(", ") : "–";
}

/** A link to the flow of a trace or a correlation, or "none". */
function FlowLink({ kind, id }: { kind: "trace" | "correlation"; id: string | null }) {
  if (!id) return <span className="muted">none</span>;
  return (
    <Link href={flowHref({ kind, id })} data-testid={`${kind}-link`}>
      {id}
    </Link>
  );
}

function Fact({ name, children }: { name: string; children: ReactNode }) {
  return (
    <>
      <dt>{name}</dt>
      <dd>{children}</dd>
    </>
  );
}

/** How a dead-letter copy was recognised: `recognised by Spring Kafka's headers`. */
export function recognisedText(by: string): string {
  switch (by) {
    case "spring":
      return "recognised by Spring Kafka's headers";
    case "connect":
      return "recognised by Kafka Connect's headers";
    case "topic_name":
      return "recognised by its topic's name";
    default:
      return `recognised by ${by}`;
  }
}

/** One line per kind of redaction the collector applied before storing the event. */
function redactionLines(r: NonNullable<EventDetail["redactions"]>): string[] {
  const lines: string[] = [];
  const list = (label: string, items: string[] | undefined) => {
    if (items && items.length > 0) lines.push(`${label}: ${items.join(", ")}`);
  };
  list("masked", r.masked);
  list("hashed", r.hashed);
  list("dropped", r.dropped);
  list("header values dropped", r.headers);
  list("keys hashed", r.keys);
  if (r.payload) lines.push(`payload: ${r.payload}`);
  if (r.record_key) lines.push(`record key: ${r.record_key}`);
  return lines;
}
