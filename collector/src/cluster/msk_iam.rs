//! Amazon MSK's IAM access control (`--sasl-mechanism AWS_MSK_IAM`): SASL OAUTHBEARER whose
//! token is a SigV4-presigned `kafka-cluster:Connect` request, signed with the credentials of the
//! AWS default chain (environment, shared profile, web identity on EKS, ECS task role, EC2
//! instance profile). librdkafka asks for a token when a client starts and again before the last
//! one expires (15 minutes); the client's context answers with [`MskIamTokens::token`].
//!
//! The signing is `aws-msk-iam-sasl-signer`'s; loading and refreshing the credentials is
//! `aws-config`'s. Both are async while librdkafka's request comes on the thread that polls the
//! client (often a runtime worker), so one thread of its own, started at the first request, runs
//! them and answers each request over a channel.

use std::sync::{mpsc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;
use rdkafka::client::OAuthToken;

/// How long a token request may take (credentials from the instance metadata service or STS
/// included) before the client is told it failed; librdkafka asks again.
const SIGN_WITHIN: Duration = Duration::from_secs(10);

/// Why no token could be made.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// The AWS credentials could not be found or the request could not be signed.
    #[error("AWS_MSK_IAM: no token for {region}: {reason}")]
    Sign {
        /// The region asked for.
        region: String,
        /// Why, as the AWS SDK says it.
        reason: String,
    },
    /// Signing did not finish in time.
    #[error("AWS_MSK_IAM: no token for {0} within 10 s (credentials not reachable?)")]
    TimedOut(String),
    /// The client asked for an OAUTHBEARER token but the settings name no way to get one.
    #[error(
        "SASL OAUTHBEARER without a token source: give --oauth-token-endpoint (OIDC) or use \
         --sasl-mechanism AWS_MSK_IAM"
    )]
    NoSource,
}

/// A token's value and expiry.
type Signed = Result<(String, i64), TokenError>;
/// A request to the signing thread: where to send the token.
type Request = mpsc::SyncSender<Signed>;

/// Makes MSK IAM tokens for one region; cheap to share (`Arc`) between the clients of a cluster.
pub struct MskIamTokens {
    region: String,
    /// Credentials given instead of the default chain (tests, embedders).
    provider: Option<SharedCredentialsProvider>,
    /// The signing thread's inbox, once started (started again if it is gone).
    signer: Mutex<Option<mpsc::Sender<Request>>>,
}

impl std::fmt::Debug for MskIamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MskIamTokens")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl MskIamTokens {
    /// Tokens for `region`, signed with the AWS default credential chain.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            provider: None,
            signer: Mutex::new(None),
        }
    }

    /// Tokens for `region`, signed with the credentials `provider` gives.
    pub fn with_provider(region: impl Into<String>, provider: SharedCredentialsProvider) -> Self {
        Self {
            provider: Some(provider),
            ..Self::new(region)
        }
    }

    /// The region the tokens are for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// A fresh token for librdkafka. Blocks up to 10 s; call it from librdkafka's token-refresh
    /// request (any thread, a runtime worker included).
    pub fn token(&self) -> Result<OAuthToken, TokenError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let signed = match self.send(reply) {
            Ok(()) => match answer.recv_timeout(SIGN_WITHIN) {
                Ok(signed) => signed,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    Err(TokenError::TimedOut(self.region.clone()))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    Err(self.sign_error("the signing thread stopped".into()))
                }
            },
            Err(e) => Err(e),
        };
        let (token, lifetime_ms) = signed?;
        tracing::info!(
            region = %self.region,
            expires_in_s = (lifetime_ms - crate::clock::now_us() / 1000) / 1000,
            "AWS_MSK_IAM: signed a new token"
        );
        Ok(OAuthToken {
            token,
            // MSK takes the principal from the signature; librdkafka only needs a name.
            principal_name: "aws-msk-iam".to_owned(),
            lifetime_ms,
        })
    }

    fn sign_error(&self, reason: String) -> TokenError {
        TokenError::Sign {
            region: self.region.clone(),
            reason,
        }
    }

    /// Hands `reply` to the signing thread, starting it at the first request and again when
    /// the one before is gone.
    fn send(&self, reply: Request) -> Result<(), TokenError> {
        let mut signer = self.signer.lock().unwrap_or_else(|p| p.into_inner());
        let reply = match signer.as_ref() {
            Some(inbox) => match inbox.send(reply) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(reply)) => reply,
            },
            None => reply,
        };
        let (inbox, requests) = mpsc::channel::<Request>();
        let region = Region::new(self.region.clone());
        let provider = self.provider.clone();
        std::thread::Builder::new()
            .name("msk-iam-signer".into())
            .spawn(move || sign_requests(region, provider, requests))
            .map_err(|e| self.sign_error(format!("cannot start the signing thread: {e}")))?;
        inbox
            .send(reply)
            .map_err(|_| self.sign_error("the signing thread stopped".into()))?;
        *signer = Some(inbox);
        Ok(())
    }
}

/// The signing thread: loads the credential chain once (its providers cache and refresh the
/// credentials), then signs a token per request until every sender is gone.
fn sign_requests(
    region: Region,
    provider: Option<SharedCredentialsProvider>,
    requests: mpsc::Receiver<Request>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "AWS_MSK_IAM: cannot start the signing runtime");
            return;
        }
    };
    let provider = match provider {
        Some(provider) => Some(provider),
        None => runtime.block_on(async {
            aws_config::defaults(BehaviorVersion::latest())
                .region(region.clone())
                .load()
                .await
                .credentials_provider()
        }),
    };
    while let Ok(first) = requests.recv() {
        // Requests queued meanwhile (several clients, or askers that gave up) share one token.
        let replies: Vec<Request> = std::iter::once(first).chain(requests.try_iter()).collect();
        let signed = match &provider {
            None => Err(TokenError::Sign {
                region: region.to_string(),
                reason: "the AWS default chain has no credentials provider".into(),
            }),
            Some(provider) => runtime.block_on(async {
                let sign = aws_msk_iam_sasl_signer::generate_auth_token_from_credentials_provider(
                    region.clone(),
                    provider.clone(),
                );
                match tokio::time::timeout(SIGN_WITHIN, sign).await {
                    Ok(Ok(signed)) => Ok(signed),
                    Ok(Err(e)) => Err(TokenError::Sign {
                        region: region.to_string(),
                        reason: e.to_string(),
                    }),
                    Err(_) => Err(TokenError::TimedOut(region.to_string())),
                }
            }),
        };
        for reply in replies {
            // The asker may have given up waiting; nothing to do then.
            let _ = reply.send(signed.clone());
        }
    }
}

/// Answers librdkafka's token request for a client of a cluster with `tokens`: what every
/// client context of the collector does in `generate_oauth_token`.
pub fn oauth_token(
    tokens: Option<&MskIamTokens>,
) -> Result<OAuthToken, Box<dyn std::error::Error>> {
    let Some(tokens) = tokens else {
        return Err(Box::new(TokenError::NoSource));
    };
    tokens.token().map_err(|e| {
        tracing::error!("{e}");
        Box::new(e) as Box<dyn std::error::Error>
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use base64::Engine;

    /// A token, or the test fails with why not.
    fn token_of(tokens: &MskIamTokens) -> OAuthToken {
        tokens.token().unwrap_or_else(|e| panic!("{e}"))
    }

    fn tokens(region: &str) -> MskIamTokens {
        let credentials = Credentials::from_keys("AKIDEXAMPLE", "secret-example", None);
        MskIamTokens::with_provider(region, SharedCredentialsProvider::new(credentials))
    }

    /// The presigned request a token carries, decoded.
    fn request(token: &OAuthToken) -> String {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token.token)
            .expect("a token is base64url without padding");
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_token_is_a_presigned_connect_request_to_the_regions_msk_endpoint() {
        let token = token_of(&tokens("eu-west-1"));
        let request = request(&token);
        assert!(
            request.starts_with(
                "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect"
            ),
            "{request}"
        );
        assert!(request.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"));
        assert!(
            request.contains("X-Amz-Credential=AKIDEXAMPLE%2F"),
            "signed with the given key: {request}"
        );
        assert!(request.contains("%2Feu-west-1%2Fkafka-cluster%2Faws4_request"));
        assert!(request.contains("X-Amz-Signature="));
        assert!(
            !request.contains("secret-example"),
            "the secret key never travels"
        );
    }

    #[test]
    fn a_token_expires_in_about_fifteen_minutes() {
        let token = token_of(&tokens("us-east-1"));
        let now_ms = crate::clock::now_us() / 1000;
        let left = token.lifetime_ms - now_ms;
        assert!(
            (14 * 60_000..=15 * 60_000 + 5_000).contains(&left),
            "{left} ms"
        );
    }

    #[test]
    fn tokens_can_be_asked_for_from_inside_an_async_runtime() {
        let tokens = tokens("ap-southeast-2");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let token = runtime.block_on(async { token_of(&tokens) });
        assert!(request(&token).contains("kafka.ap-southeast-2.amazonaws.com"));
    }

    #[test]
    fn a_client_without_a_token_source_is_told_in_one_line() {
        let Err(e) = oauth_token(None) else {
            panic!("a token without a source");
        };
        let e = e.to_string();
        assert!(
            e.starts_with("SASL OAUTHBEARER without a token source"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }
}
