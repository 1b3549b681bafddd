import { api, type ServiceCoverage } from "../lib/api";
import { byName, DEFAULT_WINDOW, lineageLabel, SHARES, shareFraction, shareText, spansText, windowText, WINDOWS } from "../lib/coverage";
import { serviceColor } from "../lib/layout";
import { servicesHref } from "../lib/routes";
import { useLoad } from "../hooks";
import { useNavigation } from "../navigation";
import { ErrorNote } from "./ErrorNote";

/**
 * Instrumentation coverage (`GET /api/v1/services`): per service, how its events arrive (the
 * share with `ce_id`, causation, correlation and `traceparent`, its baggage keys, the spans it
 * sends), what lineage that allows, and what to add. The window is in the address.
 */
export function ServicesView({ window: asked }: { window: string | null }) {
  const { navigate } = useNavigation();
  const current = asked ?? DEFAULT_WINDOW;
  const [answer] = useLoad((signal) => api.services(current, signal), [current]);
  const a = answer.value;
  const services = a ? byName(a.services) : [];
  const events = services.reduce((n, s) => n + s.events, 0);
  return (
    <section className="services-view" data-testid="services-view">
      <header className="view-header">
        <h1>Services</h1>
        <div className="range" role="group" aria-label="Window">
          {WINDOWS.map((w) => (
            <button
              key={w}
              type="button"
              aria-pressed={w === current}
              data-testid={`window-${w}`}
              onClick={() => navigate(servicesHref(w), { replace: true })}
            >
              {w}
            </button>
          ))}
        </div>
      </header>
      <p className="muted">
        How each service's events arrive over {windowText(current)}, what lineage that allows, and what to add.
      </p>
      {answer.state === "error" && <ErrorNote error={answer.error} />}
      {!a && answer.state === "loading" && <p className="muted">Loading…</p>}
      {a && (
        <p className="muted" data-testid="services-range">
          {a.from} → {a.to} · {services.length} service{services.length === 1 ? "" : "s"}, {events} event{events === 1 ? "" : "s"}
        </p>
      )}
      {a && events === 0 && (
        <p className="services-empty" data-testid="services-empty">
          No events in {windowText(current)}: nothing produced to the topics the collector reads.
          {(WINDOWS as readonly string[]).indexOf(current) < WINDOWS.length - 1 && " Try a longer window."}
        </p>
      )}
      {services.length > 0 && <CoverageTable services={services} />}
    </section>
  );
}

/** One row per service: events, the four shares, baggage keys, spans, lineage, advice. */
function CoverageTable({ services }: { services: ServiceCoverage[] }) {
  return (
    <table className="coverage" data-testid="services-table">
      <thead>
        <tr>
          <th scope="col">service</th>
          <th scope="col" className="num">events</th>
          {SHARES.map((s) => (
            <th key={s.key} scope="col" title={s.title}>
              {s.label}
            </th>
          ))}
          <th scope="col">baggage keys</th>
          <th scope="col">spans</th>
          <th scope="col">lineage</th>
          <th scope="col">what to add</th>
        </tr>
      </thead>
      <tbody>
        {services.map((s) => (
          <tr key={s.service} data-testid="service-row" data-service={s.service} data-lineage={s.lineage}>
            <th scope="row" className="service-name">
              <span className="swatch" style={{ background: serviceColor(s.service) }} /> {s.service}
            </th>
            <td className="num" data-testid="service-events">
              {s.events}
            </td>
            {SHARES.map((share) => (
              <Share key={share.key} name={share.key} part={s[share.key]} total={s.events} />
            ))}
            <td data-testid="service-baggage">
              {s.baggage_keys.length === 0 ? (
                <span className="muted">none</span>
              ) : (
                <ul className="inline-list">
                  {s.baggage_keys.map((k) => (
                    <li key={k}>
                      <code>{k}</code>
                    </li>
                  ))}
                </ul>
              )}
            </td>
            <td
              data-testid="service-spans"
              className={s.spans === null ? "muted" : s.spans.failed > 0 ? "failed-text" : undefined}
              title={
                s.spans
                  ? `${s.spans.consumer} consumer, ${s.spans.producer} producer spans; the last at ${s.spans.last_seen}`
                  : "No OpenTelemetry spans received from this service"
              }
            >
              {spansText(s.spans)}
            </td>
            <td>
              <span className={`badge lineage-${s.lineage}`} title={s.lineage_note} data-testid="service-lineage">
                {lineageLabel(s.lineage)}
              </span>
            </td>
            <td data-testid="service-advice">
              {s.advice.length === 0 ? (
                <span className="muted">nothing</span>
              ) : (
                <ul className="advice">
                  {s.advice.map((line, i) => (
                    <li key={i}>{line}</li>
                  ))}
                </ul>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A share of a service's events, in whole percent over a small bar. */
function Share({ name, part, total }: { name: string; part: number; total: number }) {
  const fraction = shareFraction(part, total);
  return (
    <td className="share" data-testid={`share-${name}`} title={`${part} of ${total} events`}>
      <span className="share-text">{shareText(part, total)}</span>
      <span className="share-bar" aria-hidden="true">
        <span style={{ width: `${Math.round(fraction * 100)}%` }} />
      </span>
    </td>
  );
}
