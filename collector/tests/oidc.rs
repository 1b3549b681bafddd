//! `--auth oidc` against a real OpenID provider: `oidc-provider` (certified, npm) started by the
//! test from tests/oidc/provider.mjs on a free port (its packages installed by
//! `scripts/lib.sh`'s `ensure_oidc_provider`). Bearer JWTs of the provider are checked against
//! its JWKS, their groups mapped to roles by `[access]` grants; expired, wrongly signed and
//! wrongly addressed tokens are refused; a rotated key is found by fetching the JWKS again; the
//! viewer's login redirects to the provider with PKCE. Runs the real router over SQLite.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use choreoscope::access::{Access, AccessArgs, AuthMode, Grants};
use choreoscope::http::{app_with_access, AppState};
use choreoscope::live::LiveFeed;
use choreoscope::metrics::Metrics;
use choreoscope::store::Store;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The provider's process, killed when dropped.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn provider() -> Provider {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "the test OpenID provider's packages are missing: (cd tests/oidc && npm ci), as scripts/test does"
    );
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .current_dir(&dir)
        .env("REDIRECT_URIS", "http://collector.test/auth/callback")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs the test OpenID provider");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let issuer = loop {
        let line = lines
            .next()
            .expect("the provider printed its issuer")
            .unwrap();
        if let Some(issuer) = line.strip_prefix("issuer ") {
            break issuer.to_owned();
        }
    };
    Provider { child, issuer }
}

const GRANTS: &str = r#"
default_role = "viewer"
[[grants]]
group = "platform"
role = "admin"
[[grants]]
group = "payments-team"
role = "reader"
topics = ["payments"]
"#;

struct Server {
    state: AppState,
    access: Arc<Access>,
    provider: Provider,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let provider = provider();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("oidc.db").display());
    let state = AppState {
        store: Store::connect(&url).await.unwrap(),
        metrics: Arc::new(Metrics::new()),
        live: LiveFeed::new(),
        health: Default::default(),
        groups: Default::default(),
        progress: Default::default(),
        redaction: Default::default(),
    };
    let args = AccessArgs {
        auth: AuthMode::Oidc,
        oidc_issuer: Some(provider.issuer.clone()),
        oidc_client_id: Some("choreoscope".to_owned()),
        oidc_client_secret: Some("choreoscope-secret".parse().unwrap()),
        public_url: Some("http://collector.test".to_owned()),
        ..AccessArgs::default()
    };
    let grants: Grants = toml::from_str(GRANTS).unwrap();
    let access = Arc::new(Access::from_args(&args, grants).await.unwrap());
    Server {
        state,
        access,
        provider,
        _dir: dir,
    }
}

impl Server {
    /// A client-credentials access token of `client` for `resource`.
    async fn token(&self, client: &str, resource: &str) -> String {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/token", self.provider.issuer))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", resource),
                ("scope", "api"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {answer}"))
            .to_owned()
    }

    /// `claims` (with this issuer and audience unless they say otherwise) signed by `key`
    /// (`k1`, `k2` or `stranger`) through the provider's test helper.
    async fn signed(&self, key: &str, claims: serde_json::Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut all = serde_json::json!({
            "iss": self.provider.issuer,
            "aud": "choreoscope",
            "sub": "someone",
            "iat": now,
            "exp": now + 300,
        });
        for (k, v) in claims.as_object().unwrap() {
            all[k] = v.clone();
        }
        reqwest::Client::new()
            .post(format!("{}/test/sign", self.provider.issuer))
            .json(&serde_json::json!({ "key": key, "claims": all }))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn get(
        &self,
        path: &str,
        bearer: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        self.get_with_cookie(path, bearer, None).await
    }

    async fn get_with_cookie(
        &self,
        path: &str,
        bearer: Option<&str>,
        cookie: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut request = Request::get(path);
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = app_with_access(self.state.clone(), self.access.clone())
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    async fn me(&self, bearer: Option<&str>) -> (StatusCode, serde_json::Value) {
        let (status, _, body) = self.get("/api/v1/me", bearer).await;
        (status, serde_json::from_str(&body).unwrap_or_default())
    }
}

#[tokio::test]
async fn a_providers_access_token_gets_the_role_its_groups_are_granted() {
    let server = server().await;
    let admin = server.token("api-admin", "urn:choreoscope").await;
    let (status, me) = server.me(Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "api-admin");
    assert_eq!(me["role"], "admin");
    let reader = server.token("api-reader", "urn:choreoscope").await;
    let (status, me) = server.me(Some(&reader)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["role"], "reader");
}

#[tokio::test]
async fn a_token_whose_groups_no_grant_names_gets_the_default_role() {
    let server = server().await;
    let token = server.token("choreoscope", "urn:choreoscope").await;
    let (status, me) = server.me(Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["role"], "viewer");
}

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge() {
    let server = server().await;
    let (status, headers, body) = server.get("/api/v1/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    assert!(body.contains("unauthenticated"), "{body}");
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let server = server().await;
    let long_ago = 1_700_000_000u64;
    let token = server
        .signed(
            "k1",
            serde_json::json!({ "iat": long_ago, "exp": long_ago + 300 }),
        )
        .await;
    let (status, _) = server.me(Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_the_providers_key_id_is_401() {
    let server = server().await;
    let genuine = server.signed("k1", serde_json::json!({})).await;
    assert_eq!(server.me(Some(&genuine)).await.0, StatusCode::OK);
    let forged = server.signed("stranger", serde_json::json!({})).await;
    assert_eq!(server.me(Some(&forged)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_whose_claims_were_altered_after_signing_is_401() {
    let server = server().await;
    let token = server.token("api-reader", "urn:choreoscope").await;
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["groups"] = serde_json::json!(["platform"]);
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert_eq!(server.me(Some(&altered)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unsigned_token_is_401() {
    let server = server().await;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = server.token("api-admin", "urn:choreoscope").await;
    let claims = token.split('.').nth(1).unwrap().to_owned();
    let unsigned = format!("{}.{claims}.", b64.encode(r#"{"alg":"none","kid":"k1"}"#));
    assert_eq!(server.me(Some(&unsigned)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_for_another_audience_is_401() {
    let server = server().await;
    let token = server.token("api-admin", "urn:other").await;
    assert_eq!(server.me(Some(&token)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_of_another_issuer_is_401() {
    let server = server().await;
    let token = server
        .signed(
            "k1",
            serde_json::json!({ "iss": "https://elsewhere.example" }),
        )
        .await;
    assert_eq!(server.me(Some(&token)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_rotated_key_is_found_by_fetching_the_jwks_again_at_most_once_per_interval() {
    let server = server().await;
    let fetches = || async {
        reqwest::get(format!("{}/test/jwks-fetches", server.provider.issuer))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    reqwest::Client::new()
        .post(format!("{}/test/rotate", server.provider.issuer))
        .send()
        .await
        .unwrap();
    let token = server.signed("k2", serde_json::json!({})).await;
    assert_eq!(
        server.me(Some(&token)).await.0,
        StatusCode::UNAUTHORIZED,
        "the JWKS was fetched at start, too recently to fetch it again"
    );
    assert_eq!(fetches().await, "1");
    tokio::time::sleep(std::time::Duration::from_secs(
        choreoscope::access::oidc::JWKS_REFETCH_SECS + 1,
    ))
    .await;
    assert_eq!(server.me(Some(&token)).await.0, StatusCode::OK);
    assert_eq!(server.me(Some(&token)).await.0, StatusCode::OK);
    assert_eq!(
        fetches().await,
        "2",
        "a known key id is served from the cache"
    );
}

#[tokio::test]
async fn the_login_redirects_to_the_provider_with_pkce_state_and_nonce() {
    let server = server().await;
    let (status, headers, _) = server.get("/auth/login", None).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = url::Url::parse(headers[header::LOCATION].to_str().unwrap()).unwrap();
    assert!(location
        .as_str()
        .starts_with(&format!("{}/auth?", server.provider.issuer)));
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], "http://collector.test/auth/callback");
    for param in ["state", "nonce", "code_challenge"] {
        assert!(query[param].len() >= 43, "{param}");
    }
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("choreoscope_oidc_flow="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_callback_without_this_browsers_login_is_401() {
    let server = server().await;
    let (status, _, body) = server.get("/auth/callback?code=abc&state=def", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn the_login_page_learns_the_mode_from_auth_config() {
    let server = server().await;
    let (status, _, body) = server.get("/auth/config", None).await;
    assert_eq!(status, StatusCode::OK);
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["mode"], "oidc");
    assert_eq!(config["login"], "/auth/login");
}

#[tokio::test]
async fn a_callback_with_a_forged_login_cookie_is_401() {
    let server = server().await;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let flow = b64.encode(r#"{"state":"def","nonce":"n","verifier":"v","expires":99999999999}"#);
    let cookie = format!("choreoscope_oidc_flow={flow}.{}", b64.encode([0u8; 32]));
    let (status, _, body) = server
        .get_with_cookie("/auth/callback?code=abc&state=def", None, Some(&cookie))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("not this collector's"), "{body}");
}

#[tokio::test]
async fn a_session_cookie_that_is_no_valid_id_token_is_401() {
    let server = server().await;
    let forged = server.signed("stranger", serde_json::json!({})).await;
    for cookie in [
        "choreoscope_session=garbage".to_owned(),
        format!("choreoscope_session={forged}"),
    ] {
        let (status, _, body) = server
            .get_with_cookie("/api/v1/me", None, Some(&cookie))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
}
