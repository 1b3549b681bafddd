// The viewer's login: when the API answers 401, the viewer shows its login page instead of the
// view (docs/security.md). Under `--auth tokens` the page takes an API token and the collector
// keeps it in an HttpOnly cookie (`POST /auth/token`), so requests and event streams carry it;
// under `--auth proxy` the proxy in front signs the user in, and the page says so; under
// `--auth oidc` the page sends the user to the identity provider (`GET /auth/login`), which
// returns them with a session cookie. `GET /auth/config` tells the page which mode is in force.

/** Why the viewer asks for a login: the API's 401 detail. */
export type LoginNeed = { detail: string } | null;

type Listener = (need: LoginNeed) => void;

let need: LoginNeed = null;
const listeners = new Set<Listener>();

/** The current need for a login (none until the API answers 401). */
export function loginNeed(): LoginNeed {
  return need;
}

/** Called by the API client when an answer is 401. */
export function requireLogin(detail: string) {
  need = { detail };
  for (const l of listeners) l(need);
}

/** Follows the need for a login; returns the unsubscribe function. */
export function onLoginNeed(listener: Listener): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

/** The answer of a login attempt: who is signed in, or why not. */
export type LoginResult = { ok: true; name: string; role: string } | { ok: false; detail: string };

/** Sends an API token to the collector, which keeps it in a cookie when it is valid. */
export async function logIn(token: string, fetcher: typeof fetch = fetch): Promise<LoginResult> {
  let response: Response;
  try {
    response = await fetcher("/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ token: token.trim() }),
    });
  } catch (e) {
    return { ok: false, detail: `the collector did not answer: ${(e as Error).message}` };
  }
  let body: { name?: string; role?: string; detail?: string } = {};
  try {
    body = await response.json();
  } catch {
    /* not JSON: keep the status */
  }
  if (!response.ok) return { ok: false, detail: body.detail ?? `HTTP ${response.status}` };
  return { ok: true, name: body.name ?? "", role: body.role ?? "" };
}

/** Forgets the token cookie. */
export async function logOut(fetcher: typeof fetch = fetch): Promise<void> {
  await fetcher("/auth/logout", { method: "POST" });
}

/** How the collector signs users in (`GET /auth/config`). */
export type AuthConfig = { mode: "none" | "tokens" | "proxy" | "oidc" | string; login: string | null };

/** Asks the collector how users log in; `null` when it does not say (an older collector). */
export async function authConfig(fetcher: typeof fetch = fetch): Promise<AuthConfig | null> {
  try {
    const response = await fetcher("/auth/config", { headers: { accept: "application/json" } });
    if (!response.ok) return null;
    const body = (await response.json()) as Partial<AuthConfig>;
    if (typeof body.mode !== "string") return null;
    return { mode: body.mode, login: typeof body.login === "string" ? body.login : null };
  } catch {
    return null;
  }
}
