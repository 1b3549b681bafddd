import { useEffect, useState } from "react";
import { api } from "../lib/api";
import { resolveQuery, type Resolution } from "../lib/query";
import { Link, useNavigation } from "../navigation";
import { ErrorNote } from "./ErrorNote";

/** Resolves a search: goes straight to the answer, or lists the candidates. */
export function SearchView({ q }: { q: string }) {
  const { navigate } = useNavigation();
  const [result, setResult] = useState<Resolution | Error | null>(null);
  useEffect(() => {
    let cancelled = false;
    setResult(null);
    resolveQuery(api, q).then(
      (r) => {
        if (cancelled) return;
        if (r.kind === "go") navigate(r.href, { replace: true });
        else setResult(r);
      },
      (e: Error) => !cancelled && setResult(e),
    );
    return () => {
      cancelled = true;
    };
  }, [q, navigate]);
  return (
    <section className="page" data-testid="search-view">
      <h1>Search: {q}</h1>
      {result === null && <p className="muted">Looking…</p>}
      {result instanceof Error && <ErrorNote error={result} />}
      {result && !(result instanceof Error) && result.kind === "nothing" && <p data-testid="search-nothing">{result.message}</p>}
      {result && !(result instanceof Error) && result.kind === "choose" && (
        <>
          <p>This value is held by several keys:</p>
          <ul>
            {result.options.map((o) => (
              <li key={o.href}>
                <Link href={o.href}>{o.label}</Link>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
