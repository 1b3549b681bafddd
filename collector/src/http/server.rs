//! Serving the router on a socket: plain HTTP or HTTPS (rustls, the certificate reloaded when
//! its files change), with the request [`Limits`], until the collector stops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::ConnectInfo;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::admission::{Admission, Caps};
use super::limits::Limits;
use super::AppState;
use crate::access::Access;
use crate::live::LiveFeed;

/// How long requests in flight may take to finish once the collector stops.
const DRAIN: Duration = Duration::from_secs(10);

/// How the server listens beyond its socket.
#[derive(Debug, Clone, Default)]
pub struct ServerSettings {
    /// Body size and rate limits.
    pub limits: Limits,
    /// Connection, stream and query caps, timeouts.
    pub caps: Caps,
    /// HTTPS with this certificate; `None`: plain HTTP.
    pub tls: Option<Tls>,
}

/// A server certificate and key read from PEM files, read again when the files change.
#[derive(Debug, Clone)]
pub struct Tls {
    config: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
    every: Duration,
}

/// A certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the TLS certificate {} with the key {}: {source}", cert.display(), key.display())]
pub struct TlsError {
    cert: PathBuf,
    key: PathBuf,
    source: std::io::Error,
}

impl Tls {
    /// Reads the certificate chain `cert` and its private key `key` (PEM); the files are
    /// looked at again every `every` and a changed pair replaces the one in use for new
    /// connections.
    pub async fn load(cert: &Path, key: &Path, every: Duration) -> Result<Self, TlsError> {
        // Two crypto providers are linked (aws-lc-rs for this, ring for the OIDC client's own
        // configuration): name the process default, once, before any configuration is built.
        let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config = RustlsConfig::from_pem_file(cert, key)
            .await
            .map_err(|source| TlsError {
                cert: cert.to_owned(),
                key: key.to_owned(),
                source,
            })?;
        Ok(Self {
            config,
            cert: cert.to_owned(),
            key: key.to_owned(),
            every,
        })
    }

    /// When either file last changed.
    fn changed_at(&self) -> Option<(SystemTime, SystemTime)> {
        let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((at(&self.cert)?, at(&self.key)?))
    }

    /// Reloads the pair whenever the files change, until `stop`. A pair that does not load
    /// (a key written after its certificate, say) is logged and tried again at the next look;
    /// the one in use stays.
    async fn watch(self, stop: CancellationToken) {
        let mut seen = self.changed_at();
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = self.changed_at();
            if now == seen || now.is_none() {
                continue;
            }
            match self
                .config
                .reload_from_pem_file(&self.cert, &self.key)
                .await
            {
                Ok(()) => {
                    tracing::info!(cert = %self.cert.display(), "reloaded the TLS certificate");
                    seen = now;
                }
                Err(error) => tracing::warn!(
                    cert = %self.cert.display(),
                    %error,
                    "the changed TLS certificate does not load; keeping the one in use"
                ),
            }
        }
    }
}

/// Serves the viewer, the API, `/metrics` and `/healthz` ([`super::app_with`]) on `listener`
/// under `settings`, until `cancel` fires, then lets the requests in flight finish.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    access: Arc<Access>,
    settings: ServerSettings,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let live = state.live.clone();
    let admission = Admission::new(settings.caps, state.metrics.clone());
    let app = super::router(state, access, settings.limits, admission.clone());
    run(listener, app, live, admission, settings.tls, cancel).await
}

/// Serves `/metrics` and `/healthz` alone on `listener` (`--ops-listen`), without a login:
/// the address is for scrapers and probes, and kept from users by the network.
pub async fn serve_ops(
    listener: TcpListener,
    state: AppState,
    tls: Option<Tls>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let live = state.live.clone();
    let admission = Admission::new(Caps::default(), state.metrics.clone());
    run(
        listener,
        super::ops_app(state),
        live,
        admission,
        tls,
        cancel,
    )
    .await
}

/// Connections over a cap that may be in the middle of being refused at once: with the
/// admitted ones, the most descriptors the server holds.
pub const REFUSAL_SLACK: usize = 64;

/// Serves `app` over plain HTTP or `tls` under `admission`, accepting no more connections than
/// its cap plus [`REFUSAL_SLACK`] hold descriptors: one over a cap is answered at once and
/// closed, a slow or idle one is closed after the header-read timeout, an accept that fails
/// (out of descriptors) is retried 50 ms later. On `cancel`: no more accepts, the live feed
/// closed, requests in flight given [`DRAIN`] to finish.
async fn run(
    listener: TcpListener,
    app: Router,
    live: LiveFeed,
    admission: Arc<Admission>,
    tls: Option<Tls>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt as _;

    let caps = admission.caps();
    let budget = Arc::new(tokio::sync::Semaphore::new(
        caps.max_connections + REFUSAL_SLACK,
    ));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(caps.header_read_timeout);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let reloading = tls
        .as_ref()
        .map(|tls| tokio::spawn(tls.clone().watch(cancel.clone())));
    loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => break,
            permit = budget.clone().acquire_owned() => permit.expect("the budget is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    admission.accept_failed(&error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let ticket = match admission.admit_connection(peer.ip()) {
            Ok(ticket) => ticket,
            Err(shed) => {
                tokio::spawn(async move {
                    super::admission::refuse(stream, shed).await;
                    drop(permit);
                });
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.as_ref().map(|tls| tls.config.get_inner());
        tokio::spawn(async move {
            let _held = (permit, ticket);
            match tls {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection.into_owned()).await;
                }
                Some(config) => {
                    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(caps.header_read_timeout, handshake).await
                    else {
                        return;
                    };
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection.into_owned()).await;
                }
            }
        });
    }
    drop(listener);
    // Open event streams would hold the shutdown forever.
    live.close();
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    if let Some(reloading) = reloading {
        reloading.abort();
    }
    Ok(())
}
