//! Who may use the HTTP server, and what each may see (docs/security.md).
//!
//! `--auth` picks how users are authenticated: `none` (no login; loopback only unless
//! `--allow-unauthenticated`), `tokens` (static API tokens from a file, [`tokens`]) or `proxy`
//! (an authenticating reverse proxy's headers, believed only from its addresses, [`proxy`]).
//! Each request gets a [`Principal`] with a [`Role`] and optional topic patterns; the answers
//! are veiled to its [`crate::query::visibility::Sight`]. Users named by a proxy get their role
//! from the config file's `[access]` grants ([`grants`]). Every API request can be written to
//! an audit log ([`audit`]).
//!
//! # Layout
//! - [`role`]: roles and the principal.
//! - [`tokens`]: the tokens file, token hashes, new tokens.
//! - [`grants`]: the `[access]` table, group and user → role.
//! - [`proxy`]: the trusted proxy's headers.
//! - [`audit`]: the audit log.
//! - [`guard`]: the middleware that authenticates, refuses (401/403 JSON) and audits, and the
//!   `/auth` routes of the viewer's login.

pub mod audit;
pub mod grants;
pub mod guard;
pub mod proxy;
pub mod role;
pub mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use audit::AuditLog;
pub use grants::Grants;
pub use guard::Access;
pub use role::{Principal, Role};

/// How users of the HTTP server are authenticated (`--auth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// No login: anyone who reaches the port reads everything stored.
    #[default]
    None,
    /// Static API tokens (`--auth-tokens FILE`): `Authorization: Bearer <token>`, or the
    /// viewer's login form.
    Tokens,
    /// An authenticating reverse proxy names the user in headers (`--trusted-proxies`).
    Proxy,
}

impl AuthMode {
    /// The mode's name, as `--auth` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Tokens => "tokens",
            AuthMode::Proxy => "proxy",
        }
    }
}

/// Whether `/metrics` and `/healthz` ask for a login (`--ops-access`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OpsAccess {
    /// Answered to anyone (scrapers and probes usually carry no credential).
    #[default]
    Public,
    /// Answered to an admin only, under `--auth`.
    Login,
}

/// `--auth` and its settings, shared by `collect`, `serve` and `demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct AccessArgs {
    /// How users of the viewer and the API log in: `none`, `tokens` (--auth-tokens) or `proxy`
    /// (--trusted-proxies).
    #[arg(long, env = "CHOREOSCOPE_AUTH", value_enum, default_value_t = AuthMode::None)]
    pub auth: AuthMode,
    /// Serve without a login on an address other hosts can reach (behind an authenticating
    /// proxy, say). Without it, `--auth none` listens on loopback addresses only.
    #[arg(long, env = "CHOREOSCOPE_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// The tokens file of `--auth tokens` (TOML `[[tokens]]`: name, sha256, role, topics;
    /// `choreoscope token new` makes one).
    #[arg(long, env = "CHOREOSCOPE_AUTH_TOKENS", value_name = "FILE")]
    pub auth_tokens: Option<PathBuf>,
    /// The authenticating proxy's addresses under `--auth proxy` (comma-separated addresses or
    /// CIDR blocks); requests from anywhere else are refused.
    #[arg(
        long,
        env = "CHOREOSCOPE_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub trusted_proxies: Vec<String>,
    /// The header in which the proxy names the user.
    #[arg(
        long,
        env = "CHOREOSCOPE_PROXY_USER_HEADER",
        default_value = "X-Forwarded-User"
    )]
    pub proxy_user_header: String,
    /// The header in which the proxy lists the user's groups (comma-separated).
    #[arg(
        long,
        env = "CHOREOSCOPE_PROXY_GROUPS_HEADER",
        default_value = "X-Forwarded-Groups"
    )]
    pub proxy_groups_header: String,
    /// Whether `/metrics` and `/healthz` are `public` or need an admin `login`.
    #[arg(long, env = "CHOREOSCOPE_OPS_ACCESS", value_enum, default_value_t = OpsAccess::Public)]
    pub ops_access: OpsAccess,
    /// Write one JSON line per API request (who, what, when, from where) to this file, or `-`
    /// for stdout.
    #[arg(long, env = "CHOREOSCOPE_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

impl Default for AccessArgs {
    fn default() -> Self {
        Self {
            auth: AuthMode::None,
            allow_unauthenticated: false,
            auth_tokens: None,
            trusted_proxies: Vec::new(),
            proxy_user_header: "X-Forwarded-User".to_owned(),
            proxy_groups_header: "X-Forwarded-Groups".to_owned(),
            ops_access: OpsAccess::Public,
            audit_log: None,
        }
    }
}

/// Why the server will not start with these access settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// No login, on an address others can reach, without `--allow-unauthenticated`.
    #[error(
        "refusing to serve every stored event without a login on {0}, which other hosts can reach: \
         listen on 127.0.0.1, or put it behind an authenticating proxy and pass \
         --allow-unauthenticated (CHOREOSCOPE_ALLOW_UNAUTHENTICATED=true)"
    )]
    Unauthenticated(SocketAddr),
    /// A setting is missing or cannot be used.
    #[error("{0}")]
    Setting(String),
}

impl AccessArgs {
    /// Checks that serving on `addr` with these settings exposes nothing by mistake.
    pub fn check(&self, addr: SocketAddr) -> Result<(), AccessError> {
        match self.auth {
            AuthMode::None if !addr.ip().is_loopback() && !self.allow_unauthenticated => {
                Err(AccessError::Unauthenticated(addr))
            }
            AuthMode::None if self.ops_access == OpsAccess::Login => Err(AccessError::Setting(
                "--ops-access login needs a login: pick --auth tokens or proxy".to_owned(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn no_login_on_loopback_is_allowed() {
        let access = AccessArgs::default();
        assert_eq!(access.check(addr("127.0.0.1:8080")), Ok(()));
        assert_eq!(access.check(addr("[::1]:8080")), Ok(()));
    }

    #[test]
    fn no_login_on_a_reachable_address_is_refused_in_one_line() {
        let access = AccessArgs::default();
        for a in ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:8080"] {
            let e = access.check(addr(a)).unwrap_err().to_string();
            assert!(
                e.starts_with("refusing to serve every stored event without a login on "),
                "{e}"
            );
            assert!(
                e.contains("--allow-unauthenticated") && !e.contains('\n'),
                "{e}"
            );
        }
    }

    #[test]
    fn allow_unauthenticated_lifts_the_refusal() {
        let access = AccessArgs {
            allow_unauthenticated: true,
            ..AccessArgs::default()
        };
        assert_eq!(access.check(addr("0.0.0.0:8080")), Ok(()));
    }

    #[test]
    fn a_login_may_listen_anywhere() {
        let access = AccessArgs {
            auth: AuthMode::Tokens,
            ..AccessArgs::default()
        };
        assert_eq!(access.check(addr("0.0.0.0:8080")), Ok(()));
    }
}
