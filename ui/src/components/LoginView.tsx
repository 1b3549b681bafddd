import { useState } from "react";
import { logIn } from "../lib/session";

/**
 * The login page, shown instead of a view when the API answers 401. Takes an API token
 * (`--auth tokens`); behind an authenticating proxy (`--auth proxy`) the proxy signs users in
 * and a 401 means the request did not come through it, which the detail says.
 */
export function LoginView({ detail }: { detail: string }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const result = await logIn(token);
    setBusy(false);
    if (result.ok) window.location.reload();
    else setError(result.detail);
  };
  return (
    <section className="page login" data-testid="login">
      <h1>Log in to Choreoscope</h1>
      <p className="muted" data-testid="login-reason">
        {detail}
      </p>
      <form onSubmit={submit}>
        <label htmlFor="login-token">API token</label>
        <input
          id="login-token"
          data-testid="login-token"
          type="password"
          autoComplete="off"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          placeholder="chs_…"
        />
        <button type="submit" disabled={busy || token.trim() === ""} data-testid="login-submit">
          Log in
        </button>
      </form>
      {error && (
        <p className="error" role="alert" data-testid="login-error">
          {error}
        </p>
      )}
      <p className="muted">
        An admin makes tokens with <code>choreoscope token new --name NAME --role viewer</code>. Behind a
        single sign-on proxy, open the viewer through the proxy's address instead.
      </p>
    </section>
  );
}
