//! Who may use the HTTP server. Today one mode exists, `none` (no login): the collector then
//! refuses to listen on an address other hosts can reach unless told so, since every stored
//! payload would be readable by anyone who reaches the port (docs/security.md). Login by API
//! tokens, OpenID Connect and a trusted proxy's header will be modes of their own here.

use std::net::SocketAddr;

/// How users of the HTTP server are authenticated (`--auth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// No login: anyone who reaches the port reads everything stored.
    #[default]
    None,
}

/// `--auth` and its safety catch, shared by `collect`, `serve` and `demo`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AccessArgs {
    /// How users of the viewer and the API log in: `none` (the only mode yet).
    #[arg(long, env = "CHOREOSCOPE_AUTH", value_enum, default_value_t = AuthMode::None)]
    pub auth: AuthMode,
    /// Serve without a login on an address other hosts can reach (behind an authenticating
    /// proxy, say). Without it, `--auth none` listens on loopback addresses only.
    #[arg(long, env = "CHOREOSCOPE_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
}

/// Why the server will not listen where it was told to.
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
}

impl AccessArgs {
    /// Checks that serving on `addr` with these settings exposes nothing by mistake.
    pub fn check(&self, addr: SocketAddr) -> Result<(), AccessError> {
        match self.auth {
            AuthMode::None if !addr.ip().is_loopback() && !self.allow_unauthenticated => {
                Err(AccessError::Unauthenticated(addr))
            }
            AuthMode::None => Ok(()),
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
}
