//! Serving the router on a socket: plain HTTP or HTTPS (rustls, the certificate reloaded when
//! its files change), with the request [`Limits`], until the collector stops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::admission::{Admission, Admit, Caps};
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

/// Serves `app` through admission ([`Admit`]) over plain HTTP or `tls`: a connection over a
/// cap is answered and closed as it is accepted, a slow or idle one is closed after the
/// header-read timeout, and an accept error (out of descriptors) is retried shortly rather than
/// stopping the server.
async fn run(
    listener: TcpListener,
    app: Router,
    live: LiveFeed,
    admission: Arc<Admission>,
    tls: Option<Tls>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let stopping = {
        let (handle, cancel) = (handle.clone(), cancel.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            // Open event streams would hold the shutdown forever.
            live.close();
            handle.graceful_shutdown(Some(DRAIN));
        })
    };
    let timeout = admission.caps().header_read_timeout;
    let served = match tls {
        None => {
            let mut server = axum_server::from_tcp(listener.into_std()?)?
                .acceptor(Admit::new(admission, axum_server::accept::DefaultAcceptor));
            tune(server.http_builder(), timeout);
            server.handle(handle).serve(app).await
        }
        Some(tls) => {
            let reloading = tokio::spawn(tls.clone().watch(cancel.clone()));
            let acceptor =
                axum_server::tls_rustls::RustlsAcceptor::new(tls.config).handshake_timeout(timeout);
            let mut server = axum_server::from_tcp(listener.into_std()?)?
                .acceptor(Admit::new(admission, acceptor));
            tune(server.http_builder(), timeout);
            let served = server.handle(handle).serve(app).await;
            reloading.abort();
            served
        }
    };
    stopping.abort();
    served
}

/// The HTTP/1 header-read timeout (which also closes connections idle between requests).
fn tune(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_read_timeout: Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_read_timeout);
}
