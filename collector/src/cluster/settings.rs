//! The security settings as given: flags with their environment fallbacks, and the config file's
//! `[kafka]` table (same names, snake case), flags over the file; then resolved into [`Security`]
//! with the secrets read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::security::{
    OAuthSettings, SaslMechanism, SecretSource, Security, SecurityError, SecurityProtocol,
};

/// Environment variable holding the SASL password when no `--sasl-password-file` is given.
pub const SASL_PASSWORD_ENV: &str = "CHOREOSCOPE_SASL_PASSWORD";
/// Environment variable holding the client key's password when no `--ssl-key-password-file`.
pub const SSL_KEY_PASSWORD_ENV: &str = "CHOREOSCOPE_SSL_KEY_PASSWORD";
/// Environment variable holding the OIDC client secret when no `--oauth-client-secret-file`.
pub const OAUTH_CLIENT_SECRET_ENV: &str = "CHOREOSCOPE_OAUTH_CLIENT_SECRET";

/// AWS's own environment variable for the region, read when no `--aws-region` is given.
pub const AWS_REGION_ENV: &str = "AWS_REGION";

/// TLS and SASL to the cluster. Secrets are read from a file (`…-file`) or an environment
/// variable (CHOREOSCOPE_SASL_PASSWORD, CHOREOSCOPE_SSL_KEY_PASSWORD,
/// CHOREOSCOPE_OAUTH_CLIENT_SECRET), never from a flag. The config file's `[kafka]` table takes
/// the same settings (snake case, e.g. `sasl_mechanism = "SCRAM-SHA-512"`) and a
/// `[kafka.properties]` table of librdkafka properties; flags win over the file.
#[derive(clap::Args, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// plaintext, ssl, sasl_plaintext or sasl_ssl (default: sasl_ssl with a SASL mechanism and
    /// --ssl-ca, sasl_plaintext with a mechanism alone, ssl with --ssl-ca alone, else plaintext).
    #[arg(long, env = "CHOREOSCOPE_SECURITY_PROTOCOL")]
    pub security_protocol: Option<SecurityProtocol>,
    /// CA certificates (PEM) that sign the brokers' certificates (default: the system's).
    #[arg(long, env = "CHOREOSCOPE_SSL_CA", value_name = "PEM")]
    pub ssl_ca: Option<PathBuf>,
    /// Client certificate (PEM), for clusters that authenticate clients by certificate (mTLS).
    #[arg(long, env = "CHOREOSCOPE_SSL_CERT", value_name = "PEM")]
    pub ssl_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "CHOREOSCOPE_SSL_KEY", value_name = "PEM")]
    pub ssl_key: Option<PathBuf>,
    /// File holding the private key's password (else CHOREOSCOPE_SSL_KEY_PASSWORD, if set).
    #[arg(long, env = "CHOREOSCOPE_SSL_KEY_PASSWORD_FILE", value_name = "FILE")]
    pub ssl_key_password_file: Option<PathBuf>,
    /// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, GSSAPI or AWS_MSK_IAM (Amazon MSK's IAM
    /// access control, with the AWS default credential chain and --aws-region).
    #[arg(long, env = "CHOREOSCOPE_SASL_MECHANISM")]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL username (PLAIN, SCRAM).
    #[arg(long, env = "CHOREOSCOPE_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// File holding the SASL password (else CHOREOSCOPE_SASL_PASSWORD).
    #[arg(long, env = "CHOREOSCOPE_SASL_PASSWORD_FILE", value_name = "FILE")]
    pub sasl_password_file: Option<PathBuf>,
    /// OAUTHBEARER: the OIDC provider's token endpoint (client-credentials grant).
    #[arg(long, env = "CHOREOSCOPE_OAUTH_TOKEN_ENDPOINT", value_name = "URL")]
    pub oauth_token_endpoint: Option<String>,
    /// OAUTHBEARER: the OIDC client id.
    #[arg(long, env = "CHOREOSCOPE_OAUTH_CLIENT_ID")]
    pub oauth_client_id: Option<String>,
    /// OAUTHBEARER: file holding the OIDC client secret (else CHOREOSCOPE_OAUTH_CLIENT_SECRET).
    #[arg(
        long,
        env = "CHOREOSCOPE_OAUTH_CLIENT_SECRET_FILE",
        value_name = "FILE"
    )]
    pub oauth_client_secret_file: Option<PathBuf>,
    /// OAUTHBEARER: the scopes to ask for, space-separated.
    #[arg(long, env = "CHOREOSCOPE_OAUTH_SCOPE")]
    pub oauth_scope: Option<String>,
    /// AWS_MSK_IAM: the MSK cluster's AWS region (else AWS_REGION, if set).
    #[arg(long, env = "CHOREOSCOPE_AWS_REGION")]
    pub aws_region: Option<String>,
    /// The config file's `[kafka.properties]`: librdkafka properties, under `--kafka`'s.
    #[arg(skip)]
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl SecuritySettings {
    /// These settings, each taken from `file` where not given here.
    pub fn over(self, file: SecuritySettings) -> SecuritySettings {
        SecuritySettings {
            security_protocol: self.security_protocol.or(file.security_protocol),
            ssl_ca: self.ssl_ca.or(file.ssl_ca),
            ssl_cert: self.ssl_cert.or(file.ssl_cert),
            ssl_key: self.ssl_key.or(file.ssl_key),
            ssl_key_password_file: self.ssl_key_password_file.or(file.ssl_key_password_file),
            sasl_mechanism: self.sasl_mechanism.or(file.sasl_mechanism),
            sasl_username: self.sasl_username.or(file.sasl_username),
            sasl_password_file: self.sasl_password_file.or(file.sasl_password_file),
            oauth_token_endpoint: self.oauth_token_endpoint.or(file.oauth_token_endpoint),
            oauth_client_id: self.oauth_client_id.or(file.oauth_client_id),
            oauth_client_secret_file: self
                .oauth_client_secret_file
                .or(file.oauth_client_secret_file),
            oauth_scope: self.oauth_scope.or(file.oauth_scope),
            aws_region: self.aws_region.or(file.aws_region),
            properties: {
                let mut all = file.properties;
                all.extend(self.properties);
                all
            },
        }
    }

    /// The settings with their secrets read (files first, then the environment through `env`),
    /// checked for consistency.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<Security, SecurityError> {
        // A file when one is named, else the variable when it is set, else nothing.
        let secret = |file: &Option<PathBuf>, var: &str| match file {
            Some(path) => SecretSource::File(path.clone()).read().map(Some),
            None => Ok(env(var).map(super::Secret::new)),
        };
        let mechanism = self.sasl_mechanism;
        let password = match mechanism {
            Some(m) if m.takes_password() => secret(&self.sasl_password_file, SASL_PASSWORD_ENV)?,
            _ => None,
        };
        let oauth = match &self.oauth_token_endpoint {
            None => None,
            Some(endpoint) => Some(OAuthSettings {
                token_endpoint: endpoint.clone(),
                client_id: self.oauth_client_id.clone().ok_or_else(|| {
                    SecurityError::Inconsistent("--oauth-token-endpoint needs --oauth-client-id".into())
                })?,
                client_secret: secret(&self.oauth_client_secret_file, OAUTH_CLIENT_SECRET_ENV)?
                    .ok_or_else(|| {
                        SecurityError::Inconsistent(format!(
                            "--oauth-token-endpoint needs --oauth-client-secret-file or {OAUTH_CLIENT_SECRET_ENV}"
                        ))
                    })?,
                scope: self.oauth_scope.clone(),
            }),
        };
        let security = Security {
            protocol: self.security_protocol,
            ca_file: self.ssl_ca.clone(),
            cert_file: self.ssl_cert.clone(),
            key_file: self.ssl_key.clone(),
            key_password: if self.ssl_key.is_some() {
                secret(&self.ssl_key_password_file, SSL_KEY_PASSWORD_ENV)?
            } else {
                None
            },
            mechanism,
            username: self.sasl_username.clone(),
            password,
            oauth,
            // AWS's own variable serves AWS_MSK_IAM only: set in a shell, it is no reason to
            // refuse other mechanisms.
            aws_region: self.aws_region.clone().or_else(|| {
                (mechanism == Some(SaslMechanism::AwsMskIam))
                    .then(|| env(AWS_REGION_ENV))
                    .flatten()
            }),
        };
        security.validate()?;
        Ok(security)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_password_comes_from_the_environment_when_no_file_is_named() {
        let given = SecuritySettings {
            sasl_mechanism: Some(SaslMechanism::ScramSha256),
            sasl_username: Some("alice".into()),
            ..SecuritySettings::default()
        };
        let env = |name: &str| (name == SASL_PASSWORD_ENV).then(|| "from-env".to_owned());
        let security = given.resolve(env).unwrap();
        assert_eq!(security.password.unwrap().expose(), "from-env");
        assert_eq!(
            security.protocol, None,
            "the effective protocol is derived, not stored"
        );
    }

    #[test]
    fn a_password_file_wins_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let given = SecuritySettings {
            sasl_mechanism: Some(SaslMechanism::Plain),
            sasl_username: Some("alice".into()),
            sasl_password_file: Some(file),
            ..SecuritySettings::default()
        };
        let security = given.resolve(|_| Some("from-env".into())).unwrap();
        assert_eq!(security.password.unwrap().expose(), "from-file");
    }

    #[test]
    fn a_scram_user_without_any_password_is_refused() {
        let given = SecuritySettings {
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            sasl_username: Some("alice".into()),
            ..SecuritySettings::default()
        };
        let e = given.resolve(no_env).unwrap_err().to_string();
        assert!(e.contains("CHOREOSCOPE_SASL_PASSWORD"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file_and_properties_merge_with_the_flags_last() {
        let file: SecuritySettings = toml::from_str(
            r#"
            security_protocol = "sasl_ssl"
            sasl_mechanism = "SCRAM-SHA-512"
            sasl_username = "from-file"
            ssl_ca = "/etc/kafka/ca.pem"
            [properties]
            "client.id" = "file"
            "socket.keepalive.enable" = "true"
            "#,
        )
        .unwrap();
        let flags = SecuritySettings {
            sasl_username: Some("from-flag".into()),
            properties: [("client.id".to_owned(), "flag".to_owned())].into(),
            ..SecuritySettings::default()
        };
        let merged = flags.over(file);
        assert_eq!(merged.sasl_username.as_deref(), Some("from-flag"));
        assert_eq!(merged.sasl_mechanism, Some(SaslMechanism::ScramSha512));
        assert_eq!(merged.security_protocol, Some(SecurityProtocol::SaslSsl));
        assert_eq!(merged.properties["client.id"], "flag");
        assert_eq!(merged.properties["socket.keepalive.enable"], "true");
    }

    #[test]
    fn an_unknown_key_or_mechanism_in_the_file_is_refused() {
        let unknown = toml::from_str::<SecuritySettings>("sasl_pasword = 'x'").unwrap_err();
        assert!(unknown.to_string().contains("unknown field"), "{unknown}");
        let mechanism = toml::from_str::<SecuritySettings>("sasl_mechanism = 'MD5'").unwrap_err();
        assert!(
            mechanism.to_string().contains("is not a SASL mechanism"),
            "{mechanism}"
        );
    }

    #[test]
    fn oidc_needs_a_client_id_and_secret() {
        let given = SecuritySettings {
            sasl_mechanism: Some(SaslMechanism::OAuthBearer),
            oauth_token_endpoint: Some("https://idp/token".into()),
            oauth_client_id: Some("cs".into()),
            ..SecuritySettings::default()
        };
        let e = given.resolve(no_env).unwrap_err().to_string();
        assert!(e.contains(OAUTH_CLIENT_SECRET_ENV), "{e}");
        let security = given
            .resolve(|n| (n == OAUTH_CLIENT_SECRET_ENV).then(|| "s".to_owned()))
            .unwrap();
        assert_eq!(security.oauth.unwrap().client_id, "cs");
    }

    #[test]
    fn the_msk_region_falls_back_to_aws_region_for_msk_iam_only() {
        let env = |n: &str| (n == AWS_REGION_ENV).then(|| "eu-central-1".to_owned());
        let msk = SecuritySettings {
            sasl_mechanism: Some(SaslMechanism::AwsMskIam),
            ..SecuritySettings::default()
        };
        assert_eq!(
            msk.resolve(env).unwrap().aws_region.as_deref(),
            Some("eu-central-1")
        );
        let scram = SecuritySettings {
            sasl_mechanism: Some(SaslMechanism::ScramSha256),
            sasl_username: Some("alice".into()),
            ..SecuritySettings::default()
        };
        let env = |n: &str| match n {
            AWS_REGION_ENV => Some("eu-central-1".to_owned()),
            SASL_PASSWORD_ENV => Some("pw".to_owned()),
            _ => None,
        };
        assert_eq!(scram.resolve(env).unwrap().aws_region, None);
    }
}
