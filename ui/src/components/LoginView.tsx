import { useEffect, useState } from "react";
import { authConfig, logIn, type AuthConfig } from "../lib/session";

/**
 * The login page, shown instead of a view when the API answers 401. Takes an API token
 * (`--auth tokens`); under OpenID Connect (`--auth oidc`) it offers the identity provider's
 * login instead; behind an authenticating proxy (`--auth proxy`) the proxy signs users in and a
 * 401 means the request did not come through it, which the detail says.
 */
export function LoginView({ detail }: { detail: string }) {
  // `undefined` until the collector answers, so neither login flashes before the other.
  const [config, setConfig] = useState<AuthConfig | null | undefined>(undefined);
  useEffect(() => {
    let live = true;
    void authConfig().then((c) => live && setConfig(c));
    return () => {
      live = false;
    };
  }, []);
  if (config === undefined) {
    return (
      <section className="page login" data-testid="login">
        <h1>Log in to Choreoscope</h1>
        <p className="muted" data-testid="login-reason">
          {detail}
        </p>
      </section>
    );
  }
  if (config?.mode === "oidc") return <ProviderLogin detail={detail} login={config.login ?? "/auth/login"} />;
  return <TokenLogin detail={detail} />;
}

/** The OpenID Connect login: a link to `/auth/login`, which goes to the identity provider. */
function ProviderLogin({ detail, login }: { detail: string; login: string }) {
  return (
    <section className="page login" data-testid="login">
      <h1>Log in to Choreoscope</h1>
      <p className="muted" data-testid="login-reason">
        {detail}
      </p>
      <a className="button" href={login} data-testid="login-oidc">
        Log in with your identity provider
      </a>
      <p className="muted">Your role comes from your groups at the identity provider.</p>
    </section>
  );
}

/** The API token form of `--auth tokens`. */
function TokenLogin({ detail }: { detail: string }) {
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
