//! The cluster's refusals as a user reads them: wrong credentials, an untrusted certificate, an
//! ACL that denies a topic or the group, a protocol that does not match the listener — one line
//! each, saying what to check, told apart from the transient errors a client rides out.

use std::fmt;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What the cluster refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// SASL authentication failed: wrong username or password, unknown user, bad token.
    Credentials,
    /// The broker offered no mechanism the collector was told to use.
    Mechanism,
    /// The broker's certificate is not signed by a trusted CA, or not for the broker's name.
    UntrustedCertificate,
    /// The TLS handshake failed for another reason (the broker refused the client's certificate,
    /// no common protocol version or cipher).
    Tls,
    /// The listener speaks another protocol than the collector (TLS against a plaintext
    /// listener, or the other way round).
    ProtocolMismatch,
    /// An ACL denies reading a topic.
    Topic,
    /// An ACL denies using the collector's consumer group.
    Group,
    /// An ACL denies a cluster-wide request (listing consumer groups, say).
    Cluster,
}

impl RefusalKind {
    /// A short label, for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Credentials => "credentials",
            Self::Mechanism => "sasl_mechanism",
            Self::UntrustedCertificate => "untrusted_certificate",
            Self::Tls => "tls",
            Self::ProtocolMismatch => "protocol_mismatch",
            Self::Topic => "topic_acl",
            Self::Group => "group_acl",
            Self::Cluster => "cluster_acl",
        }
    }

    /// Whether the collector cannot connect at all while this lasts (as opposed to an ACL that
    /// denies one topic or request and leaves the rest working).
    pub fn blocks_connection(self) -> bool {
        matches!(
            self,
            Self::Credentials
                | Self::Mechanism
                | Self::UntrustedCertificate
                | Self::Tls
                | Self::ProtocolMismatch
        )
    }

    fn advice(self) -> &'static str {
        match self {
            Self::Credentials => {
                "check --sasl-mechanism, --sasl-username and the password (--sasl-password-file or CHOREOSCOPE_SASL_PASSWORD); with AWS_MSK_IAM, the AWS credentials, --aws-region and the role's kafka-cluster:Connect permission"
            }
            Self::Mechanism => "check --sasl-mechanism against the mechanisms the listener enables",
            Self::UntrustedCertificate => {
                "give the CA that signed the brokers' certificates with --ssl-ca, and connect by a name the certificate holds"
            }
            Self::Tls => "check --ssl-cert/--ssl-key and that the listener expects TLS",
            Self::ProtocolMismatch => {
                "check --security-protocol against the listener (ssl or sasl_ssl for a TLS port)"
            }
            Self::Topic => {
                "grant the collector's principal READ and DESCRIBE on the topic; the other topics are still collected"
            }
            Self::Group => "grant the collector's principal READ on its consumer group (--group)",
            Self::Cluster => {
                "grant DESCRIBE on the cluster (consumer-group lag needs it), or set --group-poll-every 0"
            }
        }
    }
}

/// A refusal by the cluster, with librdkafka's own words for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What was refused.
    pub kind: RefusalKind,
    /// librdkafka's description, on one line.
    pub detail: String,
}

impl Refusal {
    /// The refusal an error of the client stands for, if it is one; `reason` is librdkafka's
    /// text for it (empty when there is none).
    pub fn of(error: &KafkaError, reason: &str) -> Option<Self> {
        let code = error.rdkafka_error_code()?;
        let reason = one_line(reason);
        let text = if reason.is_empty() {
            error.to_string()
        } else {
            reason.clone()
        };
        let lower = text.to_ascii_lowercase();
        let kind = match code {
            RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
                if lower.contains("ssl handshake") || lower.contains("certificate") {
                    tls_kind(&lower)
                } else if lower.contains("unsupported sasl mechanism")
                    || lower.contains("mechanism") && lower.contains("not supported")
                {
                    RefusalKind::Mechanism
                } else {
                    RefusalKind::Credentials
                }
            }
            RDKafkaErrorCode::UnsupportedSASLMechanism => RefusalKind::Mechanism,
            RDKafkaErrorCode::SSL => tls_kind(&lower),
            RDKafkaErrorCode::TopicAuthorizationFailed => RefusalKind::Topic,
            RDKafkaErrorCode::GroupAuthorizationFailed => RefusalKind::Group,
            RDKafkaErrorCode::ClusterAuthorizationFailed => RefusalKind::Cluster,
            // librdkafka's hint for a client without TLS talking to a TLS listener.
            RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown
                if lower.contains("incorrect security.protocol") =>
            {
                RefusalKind::ProtocolMismatch
            }
            _ => return None,
        };
        Some(Self { kind, detail: text })
    }

    /// The refusal a librdkafka log line of facility `FAIL` (a connection that failed) stands
    /// for, if one. Some refusals reach the client only as such a line: a listener that drops the
    /// connection at the first request (`APIVERSION_QUERY`) speaks another protocol — TLS to a
    /// plaintext client, which librdkafka's error events report only as "all brokers down".
    pub fn of_connection_failure(message: &str) -> Option<Self> {
        let detail = one_line(message);
        let lower = message.to_ascii_lowercase();
        let kind = if lower.contains("ssl handshake failed") {
            tls_kind(&lower)
        } else if lower.contains("sasl authentication error")
            || lower.contains("authentication failed")
        {
            RefusalKind::Credentials
        } else if lower.contains("disconnected") && lower.contains("in state apiversion_query") {
            RefusalKind::ProtocolMismatch
        } else {
            return None;
        };
        Some(Self { kind, detail })
    }
}

fn tls_kind(lower: &str) -> RefusalKind {
    if lower.contains("certificate verify failed")
        || lower.contains("could not be verified")
        || lower.contains("hostname mismatch")
        || lower.contains("self-signed")
        || lower.contains("self signed")
    {
        RefusalKind::UntrustedCertificate
    } else if lower.contains("wrong version number") || lower.contains("packet length too long") {
        RefusalKind::ProtocolMismatch
    } else {
        RefusalKind::Tls
    }
}

/// librdkafka's text without line breaks, its leading "[thrd:…]: " or its trailing "(after N ms
/// in state …)".
fn one_line(reason: &str) -> String {
    let flat = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat = match flat
        .strip_prefix("[thrd:")
        .and_then(|rest| rest.split_once("]: "))
    {
        Some((_, message)) => message.to_owned(),
        None => flat,
    };
    match flat.rfind(" (after ") {
        Some(at) if flat.ends_with(')') => flat[..at].to_owned(),
        _ => flat,
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            RefusalKind::Credentials => "the cluster refused the collector's credentials",
            RefusalKind::Mechanism => "the cluster does not offer the SASL mechanism asked for",
            RefusalKind::UntrustedCertificate => "the broker's TLS certificate is not trusted",
            RefusalKind::Tls => "the TLS handshake with the broker failed",
            RefusalKind::ProtocolMismatch => "the listener speaks another security protocol",
            RefusalKind::Topic => "not authorized to read a topic",
            RefusalKind::Group => "not authorized to use the consumer group",
            RefusalKind::Cluster => "not authorized for a cluster request",
        };
        write!(f, "{what} ({}); {}", self.detail, self.kind.advice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: RDKafkaErrorCode, reason: &str) -> Option<Refusal> {
        Refusal::of(&KafkaError::Global(code), reason)
    }

    #[test]
    fn a_wrong_scram_password_is_a_credentials_refusal_on_one_line() {
        let r = refusal(
            RDKafkaErrorCode::Authentication,
            "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: SaslAuthenticateRequest failed: Local: Broker handshake failed (after 3ms in state AUTH_REQ)",
        )
        .unwrap();
        assert_eq!(r.kind, RefusalKind::Credentials);
        let line = r.to_string();
        assert!(line.starts_with("the cluster refused the collector's credentials (sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error"), "{line}");
        assert!(!line.contains("after 3ms"), "{line}");
        assert!(line.contains("--sasl-username"));
        assert!(!line.contains('\n'));
    }

    #[test]
    fn an_unverifiable_certificate_is_untrusted() {
        let r = refusal(
            RDKafkaErrorCode::SSL,
            "ssl://localhost:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install ca-certificates package) (after 4ms in state SSL_HANDSHAKE)",
        )
        .unwrap();
        assert_eq!(r.kind, RefusalKind::UntrustedCertificate);
        assert!(r.to_string().contains("--ssl-ca"));
        assert!(r.kind.blocks_connection());
    }

    #[test]
    fn tls_against_a_plaintext_listener_is_a_protocol_mismatch() {
        let r = refusal(
            RDKafkaErrorCode::SSL,
            "ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: error:0A00010B:SSL routines::wrong version number",
        )
        .unwrap();
        assert_eq!(r.kind, RefusalKind::ProtocolMismatch);
        let r = refusal(
            RDKafkaErrorCode::BrokerTransportFailure,
            "127.0.0.1:9093/bootstrap: Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?) or broker version is < 0.10 (see api.version.request) (after 2ms in state APIVERSION_QUERY)",
        )
        .unwrap();
        assert_eq!(r.kind, RefusalKind::ProtocolMismatch);
    }

    #[test]
    fn acl_denials_name_what_to_grant_and_leave_the_connection_up() {
        let topic = refusal(RDKafkaErrorCode::TopicAuthorizationFailed, "").unwrap();
        assert_eq!(topic.kind, RefusalKind::Topic);
        assert!(!topic.kind.blocks_connection());
        assert!(topic
            .to_string()
            .contains("the other topics are still collected"));
        let group = refusal(RDKafkaErrorCode::GroupAuthorizationFailed, "").unwrap();
        assert_eq!(group.kind, RefusalKind::Group);
        assert!(group.to_string().contains("READ on its consumer group"));
    }

    #[test]
    fn a_connection_dropped_at_the_first_request_is_a_protocol_mismatch() {
        let r = Refusal::of_connection_failure(
            "localhost:29093/bootstrap: Disconnected: connection reset by peer (after 1ms in state APIVERSION_QUERY)",
        )
        .unwrap();
        assert_eq!(r.kind, RefusalKind::ProtocolMismatch);
        assert_eq!(
            r.detail,
            "localhost:29093/bootstrap: Disconnected: connection reset by peer"
        );
        assert_eq!(
            Refusal::of_connection_failure(
                "localhost:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)"
            ),
            None,
            "nobody listening is no refusal"
        );
    }

    #[test]
    fn transient_errors_are_not_refusals() {
        assert_eq!(
            refusal(
                RDKafkaErrorCode::BrokerTransportFailure,
                "127.0.0.1:9092/1: Connection refused"
            ),
            None
        );
        assert_eq!(
            refusal(RDKafkaErrorCode::AllBrokersDown, "1/1 brokers are down"),
            None
        );
        assert_eq!(Refusal::of(&KafkaError::Canceled, ""), None);
    }
}
