//! OpenID Connect (`--auth oidc`): bearer JWTs for the API and the viewer's login by the
//! authorization-code flow with PKCE.
//!
//! At start the issuer's `/.well-known/openid-configuration` names its endpoints. Every token
//! (a bearer access token, or the ID token the viewer's session cookie holds) is checked
//! against the issuer's JWKS: the signature with the algorithm of the key its `kid` names
//! (never `none`, never a MAC), `iss`, `aud`, `exp` and `nbf` with [`LEEWAY_SECS`] of leeway.
//! The JWKS is cached; a `kid` it does not hold fetches it again, at most once every
//! [`JWKS_REFETCH_SECS`] (the issuer rotated its keys). The user's name is the token's
//! `preferred_username`, `email` or `sub`; their role and topics come from the groups claim
//! through the config file's `[access]` grants ([`super::grants`]).
//!
//! The login flow keeps its `state`, `nonce` and PKCE verifier in a short-lived `HttpOnly`
//! cookie signed with a key derived from the client secret (so replicas share it), checks
//! them at the callback, and keeps the verified ID token in the session cookie.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::grants::Grants;
use super::role::Principal;

/// Seconds of clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// The JWKS is fetched again for an unknown `kid` at most this often.
pub const JWKS_REFETCH_SECS: u64 = 30;
/// How long a login may take between `/auth/login` and `/auth/callback`.
pub const FLOW_TTL_SECS: u64 = 600;

/// Why OpenID Connect cannot start, or a token is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The issuer, its discovery document or its JWKS could not be fetched.
    #[error("cannot reach the OpenID provider: {0}")]
    Fetch(String),
    /// The discovery document does not fit the configured issuer.
    #[error("the OpenID provider's discovery document: {0}")]
    Discovery(String),
    /// The token is not a valid JWT of this issuer for this audience.
    #[error("the token is not valid: {0}")]
    Token(String),
    /// The login flow failed (state, code exchange, nonce).
    #[error("the login failed: {0}")]
    Login(String),
}

/// The client secret: shown as `<redacted>` by `Debug`, so no log line can carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// The secret itself, for the token request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ClientSecret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The settings of `--auth oidc`.
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer's URL, exactly as its tokens' `iss`.
    pub issuer: String,
    /// This collector's client id at the provider.
    pub client_id: String,
    /// The client secret (for the code exchange); never logged.
    pub client_secret: Option<ClientSecret>,
    /// The `aud` bearer tokens must carry.
    pub audience: String,
    /// The claim listing the user's groups.
    pub groups_claim: String,
    /// The scopes the viewer's login asks for.
    pub scopes: String,
    /// The collector's external URL (the redirect URI is `<public_url>/auth/callback`).
    pub public_url: Option<url::Url>,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("audience", &self.audience)
            .field("groups_claim", &self.groups_claim)
            .field("scopes", &self.scopes)
            .field(
                "public_url",
                &self.public_url.as_ref().map(url::Url::as_str),
            )
            .finish()
    }
}

/// The parts of the discovery document the collector uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer; must equal the configured one.
    pub issuer: String,
    /// Where the viewer's login is sent.
    pub authorization_endpoint: String,
    /// Where codes are exchanged for tokens.
    pub token_endpoint: String,
    /// The provider's signing keys.
    pub jwks_uri: String,
}

/// The cached JWKS and when it was last fetched.
struct JwksCache {
    keys: JwkSet,
    fetched: Instant,
}

/// A connected OpenID provider: its endpoints, its keys (cached) and the grants.
pub struct Oidc {
    settings: OidcSettings,
    metadata: ProviderMetadata,
    http: reqwest::Client,
    jwks: Mutex<JwksCache>,
    grants: Grants,
    flow_key: [u8; 32],
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("settings", &self.settings)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// The login in progress, kept signed in the flow cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// The `state` sent to the provider, checked at the callback.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// Unix seconds after which the flow is refused.
    pub expires: u64,
}

fn random_string() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The PKCE S256 challenge of `verifier`.
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Oidc {
    /// Reads the issuer's discovery document and JWKS.
    pub async fn discover(settings: OidcSettings, grants: Grants) -> Result<Self, OidcError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError::Fetch(e.to_string()))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            settings.issuer.trim_end_matches('/')
        );
        let metadata: ProviderMetadata = get_json(&http, &url).await?;
        if metadata.issuer != settings.issuer {
            return Err(OidcError::Discovery(format!(
                "it names the issuer `{}`, not --oidc-issuer `{}`",
                metadata.issuer, settings.issuer
            )));
        }
        let keys: JwkSet = get_json(&http, &metadata.jwks_uri).await?;
        tracing::info!(
            issuer = %settings.issuer,
            keys = keys.keys.len(),
            "openid connect provider discovered"
        );
        let flow_key = match &settings.client_secret {
            Some(secret) => {
                let mut h = Sha256::new();
                h.update(b"choreoscope oidc flow\0");
                h.update(secret.expose().as_bytes());
                h.finalize().into()
            }
            None => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                key
            }
        };
        Ok(Self {
            settings,
            metadata,
            http,
            jwks: Mutex::new(JwksCache {
                keys,
                fetched: Instant::now(),
            }),
            grants,
            flow_key,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// The key `kid` names (or the only key when the token names none), fetching the JWKS
    /// again when it is unknown and the last fetch is old enough.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, OidcError> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let mut cache = self.jwks.lock().await;
        if let Some(key) = find(&cache.keys) {
            return Ok(key);
        }
        if cache.fetched.elapsed() >= Duration::from_secs(JWKS_REFETCH_SECS) {
            tracing::info!(
                kid = kid.unwrap_or("-"),
                "unknown key id: fetching the jwks again"
            );
            cache.fetched = Instant::now();
            match get_json::<JwkSet>(&self.http, &self.metadata.jwks_uri).await {
                Ok(keys) => cache.keys = keys,
                Err(e) => tracing::warn!(error = %e, "jwks refetch failed"),
            }
            if let Some(key) = find(&cache.keys) {
                return Ok(key);
            }
        }
        Err(OidcError::Token(format!(
            "no key of the issuer has the id `{}`",
            kid.unwrap_or("")
        )))
    }

    /// Verifies `token` (signature, `iss`, `aud` = `audience`, `exp`, `nbf`) and returns its
    /// claims.
    pub async fn verify(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<serde_json::Map<String, Value>, OidcError> {
        let bad = |e: jsonwebtoken::errors::Error| OidcError::Token(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(bad)?;
        let jwk = self.key(header.kid.as_deref()).await?;
        let alg = key_algorithm(&jwk, header.alg)?;
        let key = DecodingKey::from_jwk(&jwk).map_err(bad)?;
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(bad)?;
        Ok(data.claims)
    }

    /// Who a bearer access token names, or `None` when no grant gives them a role.
    pub async fn principal_of_bearer(&self, token: &str) -> Result<Option<Principal>, OidcError> {
        let claims = self.verify(token, &self.settings.audience).await?;
        Ok(self.principal(&claims))
    }

    /// Who the session's ID token names.
    pub async fn principal_of_session(
        &self,
        id_token: &str,
    ) -> Result<Option<Principal>, OidcError> {
        let claims = self.verify(id_token, &self.settings.client_id).await?;
        Ok(self.principal(&claims))
    }

    /// The user's name in `claims` (`preferred_username`, `email`, `sub`).
    pub fn name(claims: &serde_json::Map<String, Value>) -> String {
        ["preferred_username", "email", "sub"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .unwrap_or("-")
            .to_owned()
    }

    /// The groups in the groups claim (a list, or one string).
    pub fn groups(&self, claims: &serde_json::Map<String, Value>) -> Vec<String> {
        match claims.get(&self.settings.groups_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => s
                .split([',', ' '])
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }

    fn principal(&self, claims: &serde_json::Map<String, Value>) -> Option<Principal> {
        self.grants
            .principal(&Self::name(claims), &self.groups(claims), "oidc")
    }

    /// The redirect URI registered at the provider, when `--public-url` is set.
    pub fn redirect_uri(&self) -> Option<String> {
        self.settings
            .public_url
            .as_ref()
            .map(|u| format!("{}/auth/callback", u.as_str().trim_end_matches('/')))
    }

    /// Whether the session cookie must be `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.settings
            .public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https")
    }

    /// Starts a login: the authorization URL to send the viewer to, and the flow to keep.
    pub fn start_login(&self) -> Result<(String, Flow), OidcError> {
        let redirect_uri = self
            .redirect_uri()
            .ok_or_else(|| OidcError::Login("the collector has no --public-url".to_owned()))?;
        let flow = Flow {
            state: random_string(),
            nonce: random_string(),
            verifier: random_string(),
            expires: unix_now() + FLOW_TTL_SECS,
        };
        let mut url = url::Url::parse(&self.metadata.authorization_endpoint)
            .map_err(|e| OidcError::Discovery(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &self.settings.scopes)
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &code_challenge(&flow.verifier))
            .append_pair("code_challenge_method", "S256");
        Ok((url.into(), flow))
    }

    /// The flow as a signed cookie value.
    pub fn seal_flow(&self, flow: &Flow) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(flow).unwrap_or_default());
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.flow_key).expect("any key length");
        mac.update(body.as_bytes());
        format!(
            "{body}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    /// The flow of a signed cookie value, if the signature holds and it has not expired.
    pub fn open_flow(&self, sealed: &str) -> Result<Flow, OidcError> {
        let refuse = |why: &str| OidcError::Login(why.to_owned());
        let (body, tag) = sealed
            .split_once('.')
            .ok_or_else(|| refuse("no login in progress"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| refuse("the login cookie is damaged"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.flow_key).expect("any key length");
        mac.update(body.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| refuse("the login cookie is not this collector's"))?;
        let flow: Flow = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| refuse("the login cookie is damaged"))?;
        if flow.expires < unix_now() {
            return Err(refuse("the login took too long: start again"));
        }
        Ok(flow)
    }

    /// Finishes a login: checks `state`, exchanges `code` and verifies the ID token (its
    /// `nonce` too); returns the ID token, which the session cookie keeps.
    pub async fn finish_login(
        &self,
        flow: &Flow,
        state: &str,
        code: &str,
    ) -> Result<String, OidcError> {
        let refuse = |why: String| OidcError::Login(why);
        if flow.state != state {
            return Err(refuse(
                "the state does not match this browser's login".to_owned(),
            ));
        }
        let redirect_uri = self
            .redirect_uri()
            .ok_or_else(|| refuse("the collector has no --public-url".to_owned()))?;
        let mut request = self.http.post(&self.metadata.token_endpoint).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &flow.verifier),
            ("client_id", &self.settings.client_id),
        ]);
        if let Some(secret) = &self.settings.client_secret {
            request = request.basic_auth(
                form_encode(&self.settings.client_id),
                Some(form_encode(secret.expose())),
            );
        }
        let response = request
            .send()
            .await
            .map_err(|e| OidcError::Fetch(e.to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| OidcError::Fetch(e.to_string()))?;
        if !status.is_success() {
            return Err(refuse(format!(
                "the provider refused the code ({status}): {}",
                body.get("error").and_then(Value::as_str).unwrap_or("-")
            )));
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| refuse("the provider sent no ID token".to_owned()))?;
        let claims = self
            .verify(id_token, &self.settings.client_id)
            .await
            .map_err(|e| refuse(e.to_string()))?;
        if claims.get("nonce").and_then(Value::as_str) != Some(flow.nonce.as_str()) {
            return Err(refuse(
                "the ID token's nonce is not this login's".to_owned(),
            ));
        }
        tracing::info!(user = %Self::name(&claims), "openid connect login");
        Ok(id_token.to_owned())
    }
}

/// `application/x-www-form-urlencoded` of a client id or secret, as RFC 6749 §2.3.1 asks
/// before HTTP Basic.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The algorithm to verify with: the key's own `alg` when it names one, else the token's, which
/// must fit the key's type. MACs are refused: the issuer's keys are public.
fn key_algorithm(jwk: &Jwk, token_alg: Algorithm) -> Result<Algorithm, OidcError> {
    let alg = match &jwk.common.key_algorithm {
        Some(named) => named.to_string().parse::<Algorithm>().map_err(|_| {
            OidcError::Token(format!("the key's algorithm {named} is not supported"))
        })?,
        None => token_alg,
    };
    let fits = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(_) => matches!(alg, Algorithm::ES256 | Algorithm::ES384),
        AlgorithmParameters::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => false,
    };
    if !fits || alg != token_alg {
        return Err(OidcError::Token(format!(
            "the token is signed with {token_alg:?}, which the key does not allow"
        )));
    }
    Ok(alg)
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, OidcError> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| OidcError::Fetch(format!("{url}: {e}")))?;
    if !response.status().is_success() {
        return Err(OidcError::Fetch(format!("{url}: {}", response.status())));
    }
    response
        .json()
        .await
        .map_err(|e| OidcError::Discovery(format!("{url}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_secret_never_shows_in_debug_output() {
        let secret: ClientSecret = "s3cr3t-value".parse().unwrap();
        assert_eq!(secret.expose(), "s3cr3t-value");
        let args = crate::access::AccessArgs {
            oidc_client_secret: Some(secret),
            ..Default::default()
        };
        assert!(!format!("{args:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn the_pkce_challenge_is_the_unpadded_base64url_sha256_of_the_verifier() {
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mJ92IZ1ESvY6ZrhxGHsRkQo5GrwS8LQnK"),
            "NdjUo27FxXBef2Fr4j4PewR_ruiimLhIMXnlKHGDYCg"
        );
    }
}
