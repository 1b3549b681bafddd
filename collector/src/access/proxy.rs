//! The trusted reverse-proxy mode (`--auth proxy`): an authenticating proxy in front
//! (oauth2-proxy, Pomerium, an ingress with auth) names the user and their groups in request
//! headers. The headers are believed only from the proxy's addresses (`--trusted-proxies`);
//! a request from anywhere else is refused, whatever it carries.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Where the proxy is and which headers it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// The proxy's addresses (CIDR blocks or single addresses).
    pub trusted: Vec<IpNet>,
    /// The header naming the user (oauth2-proxy: `X-Forwarded-User` or `X-Forwarded-Email`).
    pub user_header: String,
    /// The header listing the user's groups, comma-separated (oauth2-proxy:
    /// `X-Forwarded-Groups`).
    pub groups_header: String,
}

/// Why a request is not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyRefusal {
    /// It did not come from a trusted proxy address.
    #[error("requests are accepted only through the authenticating proxy; {0} is not one of --trusted-proxies")]
    Untrusted(String),
    /// It came from the proxy without a user.
    #[error("the proxy named no user (header `{0}`)")]
    NoUser(String),
}

/// Parses `--trusted-proxies`: CIDR blocks or single addresses.
pub fn parse_trusted(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{value}` is neither an address nor a CIDR block"))
}

impl ProxySettings {
    /// The user and groups a request from `peer` carries, when `peer` is a trusted proxy.
    pub fn identify(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<(String, Vec<String>), ProxyRefusal> {
        let trusted = peer.is_some_and(|ip| self.trusted.iter().any(|net| net.contains(&ip)));
        if !trusted {
            let from = peer.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
            return Err(ProxyRefusal::Untrusted(from));
        }
        let user = headers
            .get(&self.user_header)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ProxyRefusal::NoUser(self.user_header.clone()))?;
        let groups = headers
            .get_all(&self.groups_header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect();
        Ok((user.to_owned(), groups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ProxySettings {
        ProxySettings {
            trusted: vec![
                parse_trusted("10.0.0.0/8").unwrap(),
                parse_trusted("127.0.0.1").unwrap(),
            ],
            user_header: "x-forwarded-user".into(),
            groups_header: "x-forwarded-groups".into(),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_proxy_names_the_user_and_groups() {
        let h = headers(&[
            ("x-forwarded-user", "ann"),
            ("x-forwarded-groups", "payments, orders"),
        ]);
        let (user, groups) = settings()
            .identify(Some("10.1.2.3".parse().unwrap()), &h)
            .unwrap();
        assert_eq!(user, "ann");
        assert_eq!(groups, ["payments", "orders"]);
    }

    #[test]
    fn headers_from_another_address_are_not_believed() {
        let h = headers(&[("x-forwarded-user", "admin")]);
        let e = settings()
            .identify(Some("192.168.1.9".parse().unwrap()), &h)
            .unwrap_err();
        assert_eq!(e, ProxyRefusal::Untrusted("192.168.1.9".into()));
        assert!(settings().identify(None, &h).is_err());
    }

    #[test]
    fn the_proxy_without_a_user_is_refused() {
        let e = settings()
            .identify(Some("127.0.0.1".parse().unwrap()), &HeaderMap::new())
            .unwrap_err();
        assert!(matches!(e, ProxyRefusal::NoUser(_)));
    }

    #[test]
    fn a_trusted_proxy_is_an_address_or_a_block() {
        assert!(parse_trusted("::1").is_ok());
        assert!(parse_trusted("fd00::/8").is_ok());
        assert!(parse_trusted("proxy.local")
            .unwrap_err()
            .contains("neither"));
    }
}
