//! How the collector proves who it is to the cluster and checks who the cluster is: TLS (a CA,
//! a client certificate and key) and SASL (PLAIN, SCRAM, OAUTHBEARER with OIDC, GSSAPI), mapped
//! onto librdkafka's properties.
//!
//! Secrets (the SASL password, the key's password, the OIDC client secret) come from a file or an
//! environment variable, never from a flag's value, where `ps` would show them; a [`Secret`]
//! prints as `<redacted>`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rdkafka::config::ClientConfig;

/// Kafka's `security.protocol`: how a connection is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL (librdkafka's default).
    Plaintext,
    /// TLS, no SASL: the client certificate, if any, says who the client is.
    Ssl,
    /// SASL without TLS: credentials cross the network in the clear with PLAIN.
    SaslPlaintext,
    /// SASL over TLS: what Confluent Cloud, MSK, Aiven and most Strimzi clusters use.
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

impl TryFrom<String> for SecurityProtocol {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "plaintext" => Ok(Self::Plaintext),
            "ssl" | "tls" => Ok(Self::Ssl),
            "sasl_plaintext" => Ok(Self::SaslPlaintext),
            "sasl_ssl" | "sasl_tls" => Ok(Self::SaslSsl),
            _ => Err(format!(
                "`{s}` is not a security protocol (plaintext, ssl, sasl_plaintext, sasl_ssl)"
            )),
        }
    }
}

/// Kafka's `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum SaslMechanism {
    /// A username and password, sent as they are (use it over TLS only).
    Plain,
    /// Salted challenge-response with SHA-256: the password never crosses the network.
    ScramSha256,
    /// Salted challenge-response with SHA-512.
    ScramSha512,
    /// A bearer token: from an OIDC provider by the client-credentials grant
    /// ([`OAuthSettings`]), or set up by `--kafka sasl.oauthbearer.*` properties.
    OAuthBearer,
    /// Kerberos, through Cyrus SASL (`--kafka sasl.kerberos.*` for the keytab and principal).
    Gssapi,
    /// Amazon MSK's IAM access control: OAUTHBEARER with a token signed (AWS SigV4) by the
    /// credentials of the AWS default chain (environment, profile, web identity on EKS, ECS task
    /// role, EC2 instance profile) for `--aws-region`; always over TLS.
    AwsMskIam,
}

impl SaslMechanism {
    /// Its name as `--sasl-mechanism` takes it (Kafka's name; `AWS_MSK_IAM` as AWS's own
    /// clients call it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::OAuthBearer => "OAUTHBEARER",
            Self::Gssapi => "GSSAPI",
            Self::AwsMskIam => "AWS_MSK_IAM",
        }
    }

    /// librdkafka's `sasl.mechanism` for it.
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            Self::AwsMskIam => "OAUTHBEARER",
            other => other.as_str(),
        }
    }

    /// Whether it authenticates with a username and password.
    pub fn takes_password(self) -> bool {
        matches!(self, Self::Plain | Self::ScramSha256 | Self::ScramSha512)
    }
}

impl TryFrom<String> for SaslMechanism {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for SaslMechanism {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().replace('_', "-").as_str() {
            "PLAIN" => Ok(Self::Plain),
            "SCRAM-SHA-256" => Ok(Self::ScramSha256),
            "SCRAM-SHA-512" => Ok(Self::ScramSha512),
            "OAUTHBEARER" => Ok(Self::OAuthBearer),
            "GSSAPI" | "KERBEROS" => Ok(Self::Gssapi),
            "AWS-MSK-IAM" => Ok(Self::AwsMskIam),
            _ => Err(format!(
                "`{s}` is not a SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, GSSAPI, AWS_MSK_IAM)"
            )),
        }
    }
}

/// A secret's value, read from a file or an environment variable; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret of this value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the client configuration only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The contents of the file at `path`, without the line break an editor leaves at its end.
    pub fn from_file(path: &Path) -> Result<Self, SecurityError> {
        let text = std::fs::read_to_string(path).map_err(|e| SecurityError::SecretFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let value = text.strip_suffix('\n').unwrap_or(&text);
        let value = value.strip_suffix('\r').unwrap_or(value);
        Ok(Self(value.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret comes from: a file's contents or an environment variable's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file holding the secret (a mounted Kubernetes secret, say).
    File(PathBuf),
    /// An environment variable holding it.
    Env(String),
}

impl SecretSource {
    /// Reads the secret.
    pub fn read(&self) -> Result<Secret, SecurityError> {
        match self {
            Self::File(path) => Secret::from_file(path),
            Self::Env(name) => std::env::var(name)
                .map(Secret)
                .map_err(|_| SecurityError::SecretEnv(name.clone())),
        }
    }
}

/// OAUTHBEARER tokens from an OpenID Connect provider by the client-credentials grant
/// (librdkafka's `sasl.oauthbearer.method=oidc`): Confluent Cloud, Aiven, Strimzi with Keycloak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The provider's token endpoint.
    pub token_endpoint: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// Scopes asked for, space-separated.
    pub scope: Option<String>,
}

/// The collector's TLS and SASL settings; [`Security::apply`] maps them onto librdkafka's
/// properties (which `--kafka KEY=VALUE` may still override).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// `security.protocol`; `None` leaves librdkafka's choice (plaintext) or the passthrough's.
    pub protocol: Option<SecurityProtocol>,
    /// CA certificates (PEM) that sign the brokers' certificates; the system's when `None`.
    pub ca_file: Option<PathBuf>,
    /// The client's certificate (PEM), for clusters that authenticate clients by certificate.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// The private key's password, when it is encrypted.
    pub key_password: Option<Secret>,
    /// `sasl.mechanism`.
    pub mechanism: Option<SaslMechanism>,
    /// The SASL username (PLAIN, SCRAM).
    pub username: Option<String>,
    /// The SASL password (PLAIN, SCRAM).
    pub password: Option<Secret>,
    /// OAUTHBEARER by OIDC client credentials.
    pub oauth: Option<OAuthSettings>,
    /// The AWS region of the MSK cluster, for `AWS_MSK_IAM`'s signed tokens.
    pub aws_region: Option<String>,
}

/// Why the security settings cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityError {
    /// A secret's file could not be read.
    #[error("cannot read the secret file {path}: {reason}")]
    SecretFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A secret's environment variable is not set.
    #[error("the environment variable {0} holding a secret is not set")]
    SecretEnv(String),
    /// The settings contradict each other or miss a part.
    #[error("{0}")]
    Inconsistent(String),
}

impl Security {
    /// The security protocol these settings amount to: the one given, else SASL's when a
    /// mechanism is given (over TLS when a CA or certificate is given too, or the mechanism is
    /// `AWS_MSK_IAM`, which MSK serves over TLS only), else TLS when a CA or certificate is given.
    pub fn effective_protocol(&self) -> Option<SecurityProtocol> {
        let tls_files = self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.mechanism == Some(SaslMechanism::AwsMskIam);
        self.protocol
            .or(match (self.mechanism.is_some(), tls_files) {
                (true, true) => Some(SecurityProtocol::SaslSsl),
                (true, false) => Some(SecurityProtocol::SaslPlaintext),
                (false, true) => Some(SecurityProtocol::Ssl),
                (false, false) => None,
            })
    }

    /// Checks that the settings fit together: a mechanism's credentials are there, TLS files are
    /// not given to a protocol without TLS, a certificate comes with its key.
    pub fn validate(&self) -> Result<(), SecurityError> {
        let bad = |s: &str| Err(SecurityError::Inconsistent(s.to_owned()));
        let protocol = self.effective_protocol();
        if let Some(p) = protocol {
            if self.mechanism.is_some() && !p.uses_sasl() {
                return bad(&format!(
                    "--sasl-mechanism needs --security-protocol sasl_ssl or sasl_plaintext, not {}",
                    p.as_str()
                ));
            }
            if p.uses_sasl() && self.mechanism.is_none() {
                return bad(&format!(
                    "--security-protocol {} needs --sasl-mechanism",
                    p.as_str()
                ));
            }
            if (self.ca_file.is_some() || self.cert_file.is_some()) && !p.uses_tls() {
                return bad(&format!(
                    "--ssl-ca and --ssl-cert need --security-protocol ssl or sasl_ssl, not {}",
                    p.as_str()
                ));
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return bad("--ssl-cert and --ssl-key go together");
        }
        if let Some(m) = self.mechanism.filter(|m| m.takes_password()) {
            if self.username.is_none() || self.password.is_none() {
                return bad(&format!(
                    "SASL {} needs --sasl-username and a password (--sasl-password-file or CHOREOSCOPE_SASL_PASSWORD)",
                    m.as_str()
                ));
            }
        }
        if self.oauth.is_some() && self.mechanism != Some(SaslMechanism::OAuthBearer) {
            return bad("--oauth-token-endpoint needs --sasl-mechanism OAUTHBEARER");
        }
        match (self.mechanism, &self.aws_region) {
            (Some(SaslMechanism::AwsMskIam), None) => {
                return bad("SASL AWS_MSK_IAM needs --aws-region (or AWS_REGION)")
            }
            (Some(SaslMechanism::AwsMskIam), Some(_)) | (_, None) => {}
            (_, Some(_)) => return bad("--aws-region needs --sasl-mechanism AWS_MSK_IAM"),
        }
        Ok(())
    }

    /// Sets librdkafka's properties for these settings on `client`.
    pub fn apply(&self, client: &mut ClientConfig) {
        let path = |p: &PathBuf| p.display().to_string();
        if let Some(p) = self.effective_protocol() {
            client.set("security.protocol", p.as_str());
        }
        if let Some(ca) = &self.ca_file {
            client.set("ssl.ca.location", path(ca));
        }
        if let Some(cert) = &self.cert_file {
            client.set("ssl.certificate.location", path(cert));
        }
        if let Some(key) = &self.key_file {
            client.set("ssl.key.location", path(key));
        }
        if let Some(password) = &self.key_password {
            client.set("ssl.key.password", password.expose());
        }
        if let Some(m) = self.mechanism {
            client.set("sasl.mechanism", m.librdkafka_name());
        }
        if let Some(username) = &self.username {
            client.set("sasl.username", username);
        }
        if let Some(password) = &self.password {
            client.set("sasl.password", password.expose());
        }
        if let Some(oauth) = &self.oauth {
            client
                .set("sasl.oauthbearer.method", "oidc")
                .set("sasl.oauthbearer.token.endpoint.url", &oauth.token_endpoint)
                .set("sasl.oauthbearer.client.id", &oauth.client_id)
                .set(
                    "sasl.oauthbearer.client.secret",
                    oauth.client_secret.expose(),
                );
            if let Some(scope) = &oauth.scope {
                client.set("sasl.oauthbearer.scope", scope);
            }
        }
    }

    /// How connections are made, for the start-up log: protocol, mechanism and user, never a
    /// secret.
    pub fn describe(&self) -> String {
        let protocol = self
            .effective_protocol()
            .map_or("plaintext (librdkafka's default)", SecurityProtocol::as_str);
        match (self.mechanism, &self.username, &self.aws_region) {
            (Some(m), Some(user), _) => format!("{protocol}, SASL {} as {user}", m.as_str()),
            (Some(m), None, Some(region)) => {
                format!("{protocol}, SASL {} in {region}", m.as_str())
            }
            (Some(m), None, None) => format!("{protocol}, SASL {}", m.as_str()),
            _ => protocol.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scram() -> Security {
        Security {
            mechanism: Some(SaslMechanism::ScramSha512),
            username: Some("alice".into()),
            password: Some(Secret::new("s3cret")),
            ca_file: Some("/etc/ca.pem".into()),
            ..Security::default()
        }
    }

    fn properties(security: &Security) -> Vec<(String, String)> {
        let mut client = ClientConfig::new();
        security.apply(&mut client);
        let mut all: Vec<_> = client
            .config_map()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn a_mechanism_with_a_ca_means_sasl_over_tls() {
        let s = scram();
        assert_eq!(s.effective_protocol(), Some(SecurityProtocol::SaslSsl));
        assert_eq!(s.validate(), Ok(()));
        let mut client = ClientConfig::new();
        s.apply(&mut client);
        let get = |k: &str| client.get(k);
        assert_eq!(get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(get("sasl.username"), Some("alice"));
        assert_eq!(get("sasl.password"), Some("s3cret"));
        assert_eq!(get("ssl.ca.location"), Some("/etc/ca.pem"));
    }

    #[test]
    fn nothing_given_sets_nothing() {
        assert!(properties(&Security::default()).is_empty());
        assert_eq!(Security::default().validate(), Ok(()));
    }

    #[test]
    fn a_secret_never_shows_in_debug_output_or_the_description() {
        let s = scram();
        let printed = format!("{s:?} {}", s.describe());
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("<redacted>"));
        assert_eq!(s.describe(), "sasl_ssl, SASL SCRAM-SHA-512 as alice");
    }

    #[test]
    fn a_password_mechanism_without_a_password_is_refused_in_one_line() {
        let s = Security {
            password: None,
            ..scram()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("SCRAM-SHA-512 needs --sasl-username and a password"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn a_mechanism_over_a_protocol_without_sasl_is_refused() {
        let s = Security {
            protocol: Some(SecurityProtocol::Ssl),
            ..scram()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("needs --security-protocol sasl_ssl"), "{e}");
    }

    #[test]
    fn tls_files_over_plaintext_are_refused() {
        let s = Security {
            protocol: Some(SecurityProtocol::Plaintext),
            ca_file: Some("/ca.pem".into()),
            ..Security::default()
        };
        assert!(s.validate().is_err());
    }

    #[test]
    fn a_certificate_needs_its_key() {
        let s = Security {
            cert_file: Some("/c.pem".into()),
            ..Security::default()
        };
        assert_eq!(s.effective_protocol(), Some(SecurityProtocol::Ssl));
        let e = s.validate().unwrap_err().to_string();
        assert_eq!(e, "--ssl-cert and --ssl-key go together");
    }

    #[test]
    fn oidc_settings_become_librdkafkas_oidc_method() {
        let s = Security {
            protocol: Some(SecurityProtocol::SaslSsl),
            mechanism: Some(SaslMechanism::OAuthBearer),
            oauth: Some(OAuthSettings {
                token_endpoint: "https://idp/token".into(),
                client_id: "choreoscope".into(),
                client_secret: Secret::new("cs"),
                scope: Some("kafka".into()),
            }),
            ..Security::default()
        };
        assert_eq!(s.validate(), Ok(()));
        let mut client = ClientConfig::new();
        s.apply(&mut client);
        assert_eq!(client.get("sasl.oauthbearer.method"), Some("oidc"));
        assert_eq!(client.get("sasl.oauthbearer.client.secret"), Some("cs"));
        assert_eq!(client.get("sasl.oauthbearer.scope"), Some("kafka"));
    }

    #[test]
    fn msk_iam_is_oauthbearer_over_tls_in_a_region() {
        let s = Security {
            mechanism: Some(SaslMechanism::AwsMskIam),
            aws_region: Some("eu-west-1".into()),
            ..Security::default()
        };
        assert_eq!(s.validate(), Ok(()));
        let mut client = ClientConfig::new();
        s.apply(&mut client);
        assert_eq!(client.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(client.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(s.describe(), "sasl_ssl, SASL AWS_MSK_IAM in eu-west-1");
        assert_eq!("aws_msk_iam".parse(), Ok(SaslMechanism::AwsMskIam));
    }

    #[test]
    fn msk_iam_without_a_region_is_refused_and_a_region_needs_msk_iam() {
        let without = Security {
            mechanism: Some(SaslMechanism::AwsMskIam),
            ..Security::default()
        };
        let e = without.validate().unwrap_err().to_string();
        assert_eq!(e, "SASL AWS_MSK_IAM needs --aws-region (or AWS_REGION)");
        let stray = Security {
            aws_region: Some("eu-west-1".into()),
            ..scram()
        };
        let e = stray.validate().unwrap_err().to_string();
        assert_eq!(e, "--aws-region needs --sasl-mechanism AWS_MSK_IAM");
    }

    #[test]
    fn protocol_and_mechanism_names_parse_as_kafka_writes_them_and_refuse_others() {
        assert_eq!("SASL_SSL".parse(), Ok(SecurityProtocol::SaslSsl));
        assert_eq!("scram-sha-256".parse(), Ok(SaslMechanism::ScramSha256));
        assert_eq!("SCRAM_SHA_512".parse(), Ok(SaslMechanism::ScramSha512));
        let e = "kerberos5".parse::<SaslMechanism>().unwrap_err();
        assert!(e.starts_with("`kerberos5` is not a SASL mechanism"), "{e}");
        assert!("ssl3".parse::<SecurityProtocol>().is_err());
    }

    #[test]
    fn a_secret_file_loses_its_final_line_break_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "pa ss\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), "pa ss");
        let missing = Secret::from_file(&dir.path().join("none")).unwrap_err();
        assert!(missing
            .to_string()
            .starts_with("cannot read the secret file"));
    }

    #[test]
    fn an_unset_secret_variable_is_named() {
        let e = SecretSource::Env("CHOREOSCOPE_TEST_UNSET_SECRET".into())
            .read()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the environment variable CHOREOSCOPE_TEST_UNSET_SECRET holding a secret is not set"
        );
    }
}
