// A real OpenID provider for the collector's `--auth oidc` tests: oidc-provider (a certified
// OpenID Provider implementation) on a free loopback port, printing `issuer <URL>` on stdout when
// it listens.
//
// - Client `choreoscope` (secret `choreoscope-secret`): the viewer's authorization-code flow
//   (PKCE) to the redirect URIs in REDIRECT_URIS (comma-separated), and client credentials.
// - Clients `api-admin` and `api-reader` (secret `<id>-secret`): client credentials only; their
//   access tokens carry `groups` `["platform"]` and `["payments-team"]`.
// - Access tokens for the resource `urn:choreoscope` are JWTs with `aud` `choreoscope`, for
//   `urn:other` with `aud` `other`.
// - Any login and password are accepted on the provider's login form (devInteractions): a user's
//   `preferred_username` is the login, and `alice` is in `platform`, everyone else in `staff`.
// - Test helpers, not part of OpenID Connect: `POST /test/sign` `{ key, claims }` signs claims
//   with the provider's key `k1`, the key `k2` (published only after `POST /test/rotate`) or a
//   `stranger` key that claims to be `k1`; `GET /test/jwks-fetches` counts the JWKS's fetches.
import { createServer } from "node:http";
import Provider, { errors } from "oidc-provider";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

const groupsOf = { "api-admin": ["platform"], "api-reader": ["payments-team"] };
const redirectUris = (process.env.REDIRECT_URIS ?? "http://127.0.0.1/auth/callback").split(",");

async function key(kid) {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const pub = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  const priv = { ...(await exportJWK(privateKey)), kid, alg: "RS256", use: "sig" };
  return { privateKey, pub, priv };
}
const k1 = await key("k1");
const k2 = await key("k2");
const stranger = await key("k1");
let rotated = false;
let jwksFetches = 0;

let provider;
const server = createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  if (path === "/jwks") {
    jwksFetches += 1;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: rotated ? [k1.pub, k2.pub] : [k1.pub] }));
    return;
  }
  if (path === "/test/jwks-fetches") {
    res.end(String(jwksFetches));
    return;
  }
  if (path === "/test/rotate" && req.method === "POST") {
    rotated = true;
    res.end("rotated");
    return;
  }
  if (path === "/test/sign" && req.method === "POST") {
    let body = "";
    for await (const chunk of req) body += chunk;
    const { key: which, claims } = JSON.parse(body);
    const signer = { k1, k2, stranger }[which];
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: signer.pub.kid, typ: "JWT" })
      .sign(signer.privateKey);
    res.end(jwt);
    return;
  }
  provider.callback()(req, res);
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const issuer = `http://127.0.0.1:${server.address().port}`;

const resources = { "urn:choreoscope": "choreoscope", "urn:other": "other" };

provider = new Provider(issuer, {
  jwks: { keys: [k1.priv] },
  clients: [
    {
      client_id: "choreoscope",
      client_secret: "choreoscope-secret",
      redirect_uris: redirectUris,
      grant_types: ["authorization_code", "client_credentials"],
      response_types: ["code"],
      scope: "openid profile email api",
    },
    ...Object.keys(groupsOf).map((id) => ({
      client_id: id,
      client_secret: `${id}-secret`,
      redirect_uris: [],
      grant_types: ["client_credentials"],
      response_types: [],
      scope: "api",
    })),
  ],
  claims: {
    openid: ["sub"],
    profile: ["preferred_username", "name", "groups"],
    email: ["email"],
  },
  scopes: ["openid", "offline_access", "profile", "email", "api"],
  conformIdTokenClaims: false,
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: id,
          email: `${id}@example.com`,
          groups: id === "alice" ? ["platform"] : ["staff"],
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    // First-party client: no consent screen.
    const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid profile email");
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      async getResourceServerInfo(_ctx, resourceIndicator) {
        const audience = resources[resourceIndicator];
        if (!audience) throw new errors.InvalidTarget();
        return { scope: "api", audience, accessTokenTTL: 300, accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } };
      },
    },
  },
  async extraTokenClaims(_ctx, token) {
    if (token.kind === "ClientCredentials") return { groups: groupsOf[token.clientId] ?? [] };
    return undefined;
  },
  pkce: { required: () => true },
});
console.log(`issuer ${issuer}`);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
