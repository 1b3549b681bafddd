// Data loading for the views.

import { useCallback, useEffect, useRef, useState } from "react";

/** The state of a request. */
export type Loaded<T> =
  | { state: "loading"; value?: T }
  | { state: "ok"; value: T }
  | { state: "error"; error: Error; value?: T };

/**
 * Runs `load` whenever `deps` change (cancelling the previous call); `reload()` runs it again,
 * keeping the last value on screen meanwhile.
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): [Loaded<T>, () => void] {
  const [result, setResult] = useState<Loaded<T>>({ state: "loading" });
  const [generation, setGeneration] = useState(0);
  const last = useRef<T | undefined>(undefined);
  const depsKey = JSON.stringify(deps);
  const previousKey = useRef(depsKey);
  useEffect(() => {
    const controller = new AbortController();
    if (previousKey.current !== depsKey) {
      last.current = undefined;
      previousKey.current = depsKey;
    }
    setResult({ state: "loading", value: last.current });
    load(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        last.current = value;
        setResult({ state: "ok", value });
      },
      (error: Error) => {
        if (controller.signal.aborted) return;
        setResult({ state: "error", error, value: last.current });
      },
    );
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [depsKey, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return [result, reload];
}

/** The state of a live feed. */
export type LiveState = "connecting" | "live" | "offline";

/**
 * Follows the collector's live feed at `url` (server-sent events): calls `onChange` when events
 * of the flow become durable or the feed says it lagged — at most once per `throttleMs`.
 * EventSource reconnects by itself after a drop.
 */
export function useLive(url: string | null, onChange: () => void, throttleMs = 400): { state: LiveState; updates: number } {
  const [state, setState] = useState<LiveState>("connecting");
  const [updates, setUpdates] = useState(0);
  const callback = useRef(onChange);
  callback.current = onChange;
  useEffect(() => {
    if (url === null || typeof EventSource === "undefined") {
      setState("offline");
      return;
    }
    setState("connecting");
    const source = new EventSource(url);
    let timer: ReturnType<typeof setTimeout> | null = null;
    const changed = () => {
      setUpdates((n) => n + 1);
      if (timer !== null) return;
      timer = setTimeout(() => {
        timer = null;
        callback.current();
      }, throttleMs);
    };
    source.addEventListener("ready", () => setState("live"));
    source.addEventListener("stored", changed);
    source.addEventListener("lagged", changed);
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? "offline" : "connecting");
    return () => {
      if (timer !== null) clearTimeout(timer);
      source.close();
    };
  }, [url, throttleMs]);
  return { state, updates };
}
