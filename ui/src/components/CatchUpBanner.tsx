import { useEffect, useState } from "react";
import { api, type IngestProgress } from "../lib/api";
import { catchUpText } from "../lib/progress";

/** How often the banner asks again (the collector measures every 5 s). */
const POLL_MS = 10_000;

/**
 * A banner under the header while the collector is catching up on a backlog: records behind, the
 * topics most behind, and when it will have caught up. Nothing otherwise (and nothing in `serve`,
 * which consumes no cluster). Recent flows and the map miss what it has not read yet.
 */
export function CatchUpBanner({ pollMs = POLL_MS }: { pollMs?: number }) {
  const [progress, setProgress] = useState<IngestProgress | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = () => {
      api.ingestProgress(controller.signal).then(
        (p) => {
          if (!controller.signal.aborted) setProgress(p);
        },
        () => {
          /* an older collector without the endpoint, or unreachable: show nothing */
        },
      ).finally(() => {
        if (!controller.signal.aborted) timer = setTimeout(poll, pollMs);
      });
    };
    poll();
    return () => {
      controller.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [pollMs]);
  const text = progress && catchUpText(progress);
  if (!text) return null;
  return (
    <div className="catch-up" role="status" data-testid="catch-up">
      <strong>{text.headline}</strong>
      {text.topics && <span className="catch-up-topics"> ({text.topics})</span>}
      <span> · {text.pace}.</span>
      <span className="muted"> Recent flows and the map miss what it has not read yet.</span>
    </div>
  );
}
