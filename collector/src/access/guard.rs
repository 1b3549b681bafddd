//! The access guard: a middleware in front of every route that establishes the request's
//! [`Principal`], answers 401 or 403 as JSON when it cannot, and writes the audit log; and the
//! `/auth` routes of the viewer's login form.
//!
//! What is guarded: the API (`/api/…`) always; `/metrics` and `/healthz` under
//! `--ops-access login` (admins only). The viewer's files are served to anyone: they hold no
//! data, and the viewer shows its login page when the API answers 401.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::audit::{resource, AuditLog, AuditRecord};
use super::grants::Grants;
use super::proxy::{parse_trusted, ProxySettings};
use super::role::{Principal, Role};
use super::tokens::Tokens;
use super::{AccessArgs, AccessError, AuthMode, OpsAccess};

/// The cookie the viewer's login form sets under `--auth tokens` (`HttpOnly`, `SameSite=Strict`).
pub const TOKEN_COOKIE: &str = "choreoscope_token";

/// A JSON error answer in the API's shape (`{ "error", "detail" }`, see
/// `crate::http::error::ErrorBody`): `unauthenticated` for 401, `forbidden` otherwise.
fn refusal(status: StatusCode, detail: impl Into<String>) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::NOT_FOUND => "not_found",
        _ => "forbidden",
    };
    (
        status,
        Json(serde_json::json!({ "error": code, "detail": detail.into() })),
    )
        .into_response()
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
enum Authenticator {
    None,
    Tokens(Tokens),
    Proxy {
        settings: ProxySettings,
        grants: Grants,
    },
}

/// The access settings in force: how requests are authenticated, whether `/metrics` and
/// `/healthz` are public, and the audit log.
#[derive(Debug, Clone)]
pub struct Access {
    authenticator: Authenticator,
    ops: OpsAccess,
    audit: Option<AuditLog>,
}

impl Default for Access {
    fn default() -> Self {
        Self::open()
    }
}

/// A request the guard does not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credential, or one that is not valid (401).
    Unauthenticated(String),
    /// A valid credential whose role does not cover the request (403).
    Forbidden(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthenticated(detail) => {
                let mut response = refusal(StatusCode::UNAUTHORIZED, detail);
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"choreoscope\""),
                );
                response
            }
            Refusal::Forbidden(detail) => refusal(StatusCode::FORBIDDEN, detail),
        }
    }
}

impl Access {
    /// No login, public `/metrics`, no audit log.
    pub fn open() -> Self {
        Self {
            authenticator: Authenticator::None,
            ops: OpsAccess::Public,
            audit: None,
        }
    }

    /// The settings `args` name, with the config file's `[access]` grants.
    pub fn from_args(args: &AccessArgs, grants: Grants) -> Result<Self, AccessError> {
        let setting = |e: String| AccessError::Setting(e);
        let authenticator = match args.auth {
            AuthMode::None => Authenticator::None,
            AuthMode::Tokens => {
                let path = args.auth_tokens.as_ref().ok_or_else(|| {
                    setting(
                        "--auth tokens needs --auth-tokens FILE (CHOREOSCOPE_AUTH_TOKENS)".into(),
                    )
                })?;
                Authenticator::Tokens(Tokens::load(path).map_err(|e| setting(e.to_string()))?)
            }
            AuthMode::Proxy => {
                if args.trusted_proxies.is_empty() {
                    return Err(setting(
                        "--auth proxy needs --trusted-proxies (the proxy's addresses)".into(),
                    ));
                }
                let trusted = args
                    .trusted_proxies
                    .iter()
                    .map(|t| {
                        parse_trusted(t).map_err(|e| setting(format!("--trusted-proxies: {e}")))
                    })
                    .collect::<Result<_, _>>()?;
                Authenticator::Proxy {
                    settings: ProxySettings {
                        trusted,
                        user_header: args.proxy_user_header.to_ascii_lowercase(),
                        groups_header: args.proxy_groups_header.to_ascii_lowercase(),
                    },
                    grants,
                }
            }
        };
        let audit = args
            .audit_log
            .as_ref()
            .map(|path| {
                AuditLog::open(path)
                    .map_err(|e| setting(format!("--audit-log {}: {e}", path.display())))
            })
            .transpose()?;
        Ok(Self {
            authenticator,
            ops: args.ops_access,
            audit,
        })
    }

    /// The same settings, writing the audit log to `audit`.
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The `--auth` mode.
    pub fn mode(&self) -> AuthMode {
        match self.authenticator {
            Authenticator::None => AuthMode::None,
            Authenticator::Tokens(_) => AuthMode::Tokens,
            Authenticator::Proxy { .. } => AuthMode::Proxy,
        }
    }

    /// Who makes a request from `peer` with `headers`.
    pub fn authenticate(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<Principal, Refusal> {
        match &self.authenticator {
            Authenticator::None => Ok(Principal::anonymous()),
            Authenticator::Tokens(tokens) => {
                let token = bearer(headers).or_else(|| cookie(headers, TOKEN_COOKIE)).ok_or_else(
                    || {
                        Refusal::Unauthenticated(
                            "log in: send `Authorization: Bearer <token>` (an API token of --auth-tokens)"
                                .to_owned(),
                        )
                    },
                )?;
                tokens.find(&token).cloned().ok_or_else(|| {
                    Refusal::Unauthenticated(
                        "the token is not one of this collector's API tokens".to_owned(),
                    )
                })
            }
            Authenticator::Proxy { settings, grants } => {
                let (user, groups) = settings
                    .identify(peer, headers)
                    .map_err(|e| Refusal::Unauthenticated(e.to_string()))?;
                grants.principal(&user, &groups, "proxy").ok_or_else(|| {
                    Refusal::Forbidden(format!(
                        "`{user}` is signed in, but no [access] grant gives them a role"
                    ))
                })
            }
        }
    }

    fn audit(&self, request: &Audited, principal: Option<&Principal>, status: StatusCode) {
        let Some(log) = &self.audit else { return };
        let (kind, id) = resource(&request.path);
        log.write(&AuditRecord {
            time: crate::clock::rfc3339(crate::clock::now_us()),
            who: principal.map_or_else(|| "-".to_owned(), |p| p.name.clone()),
            role: principal.map(|p| p.role.as_str()),
            via: principal.map(|p| p.via),
            from: request.peer.map(|ip| ip.to_string()),
            forwarded_for: request.forwarded_for.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            resource: kind,
            id,
            status: status.as_u16(),
        });
    }
}

/// What the audit log says of a request, taken before it is handled.
struct Audited {
    peer: Option<IpAddr>,
    forwarded_for: Option<String>,
    method: String,
    path: String,
    query: Option<String>,
}

/// The bearer token of `Authorization`.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// A cookie's value.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// What part of the server a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Api,
    Ops,
    Open,
}

fn part(path: &str) -> Part {
    if path == "/api" || path.starts_with("/api/") {
        Part::Api
    } else if path == "/metrics" || path == "/healthz" {
        Part::Ops
    } else {
        Part::Open
    }
}

/// The middleware: authenticates API (and, under `--ops-access login`, ops) requests, puts the
/// [`Principal`] in the request's extensions, refuses with 401/403 JSON, and audits.
pub async fn guard(
    State(access): State<Arc<Access>>,
    mut request: Request,
    next: Next,
) -> Response {
    let part = part(request.uri().path());
    if part == Part::Open || (part == Part::Ops && access.ops == OpsAccess::Public) {
        return next.run(request).await;
    }
    let audited = Audited {
        peer: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
        forwarded_for: request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
    };
    let principal = match access.authenticate(audited.peer, request.headers()) {
        Ok(principal) => principal,
        Err(refused) => {
            let response = refused.into_response();
            access.audit(&audited, None, response.status());
            return response;
        }
    };
    if part == Part::Ops && principal.role != Role::Admin {
        let response = Refusal::Forbidden(format!(
            "{} is for admins (--ops-access login); `{}` is a {}",
            audited.path, principal.name, principal.role
        ))
        .into_response();
        access.audit(&audited, Some(&principal), response.status());
        return response;
    }
    request.extensions_mut().insert(principal.clone());
    let response = next.run(request).await;
    if part == Part::Api {
        access.audit(&audited, Some(&principal), response.status());
    }
    response
}

/// The body of `POST /auth/token`.
#[derive(Debug, serde::Deserialize)]
struct TokenLogin {
    token: String,
}

/// The viewer's login and logout (`POST /auth/token`, `POST /auth/logout`).
pub fn routes(access: Arc<Access>) -> Router {
    Router::new()
        .route("/auth/token", post(token_login))
        .route("/auth/logout", post(logout))
        .with_state(access)
}

/// Checks a token and keeps it in an `HttpOnly` cookie, so the viewer's requests and event
/// streams carry it. Only JSON is accepted, so no other site's form can post here.
async fn token_login(
    State(access): State<Arc<Access>>,
    headers: HeaderMap,
    Json(login): Json<TokenLogin>,
) -> Response {
    let Authenticator::Tokens(tokens) = &access.authenticator else {
        return refusal(
            StatusCode::NOT_FOUND,
            "this collector does not use --auth tokens",
        );
    };
    let Some(principal) = tokens.find(login.token.trim()) else {
        return Refusal::Unauthenticated(
            "the token is not one of this collector's API tokens".into(),
        )
        .into_response();
    };
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{}",
        login.token.trim(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Json(serde_json::json!({
        "name": principal.name,
        "role": principal.role.as_str(),
    }))
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Forgets the viewer's token cookie.
async fn logout() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "choreoscope_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_and_the_cookie_are_read() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer  chs_abc ".parse().unwrap());
        h.insert(
            header::COOKIE,
            "a=1; choreoscope_token=chs_def".parse().unwrap(),
        );
        assert_eq!(bearer(&h).as_deref(), Some("chs_abc"));
        assert_eq!(cookie(&h, TOKEN_COOKIE).as_deref(), Some("chs_def"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn the_api_is_guarded_and_the_viewer_files_are_not() {
        assert_eq!(part("/api/v1/events/x"), Part::Api);
        assert_eq!(part("/api"), Part::Api);
        assert_eq!(part("/metrics"), Part::Ops);
        assert_eq!(part("/healthz"), Part::Ops);
        assert_eq!(part("/"), Part::Open);
        assert_eq!(part("/assets/index.js"), Part::Open);
        assert_eq!(part("/apix"), Part::Open);
    }
}
