import { ApiError } from "../lib/api";

/** An error from the collector, said plainly. */
export function ErrorNote({ error }: { error: Error }) {
  const status = error instanceof ApiError ? error.status : 0;
  const text =
    error instanceof ApiError
      ? status === 404
        ? `Not found: ${error.detail}`
        : `${error.kind}: ${error.detail}`
      : error.message;
  return (
    <p className="error" role="alert" data-testid="error">
      {text}
    </p>
  );
}
