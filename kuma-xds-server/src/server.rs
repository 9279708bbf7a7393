//! [`XdsServer`]: the ADS service and the access-log sink on one gRPC
//! server, with the settings Envoy needs.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::info;

use crate::connections::Connections;
use crate::limits::Limits;
use crate::logsink::LogsServiceServer;
use crate::metrics::XdsMetrics;
use crate::service::AdsService;
use crate::source::SnapshotSource;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listener's address could not be read.
    #[error("the listener's address: {0}")]
    Address(#[source] std::io::Error),
    /// The gRPC server failed.
    #[error("ADS server: {0}")]
    Transport(#[source] tonic::transport::Error),
    /// The TLS certificate or key could not be used.
    #[error("ADS server TLS: {0}")]
    Tls(#[source] tonic::transport::Error),
}

/// How long a stopping server waits for its connections to close after it
/// ended every stream; then they are dropped.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// An ADS server for the snapshots of one [`SnapshotSource`].
///
/// ```no_run
/// # async fn run(set: kuma_xds_gen::kuma_model::ResourceSet) -> Result<(), kuma_xds_server::ServeError> {
/// use kuma_xds_server::{ResourceSetSource, XdsServer};
/// let source = std::sync::Arc::new(ResourceSetSource::new(set));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:5678").await.expect("bind");
/// XdsServer::new(source).serve(listener, std::future::pending()).await
/// # }
/// ```
#[derive(Debug)]
pub struct XdsServer<S> {
    source: Arc<S>,
    metrics: XdsMetrics,
    connections: Connections,
    tls: Option<tonic::transport::Identity>,
    authenticate: bool,
    limits: Limits,
}

impl<S: SnapshotSource> XdsServer<S> {
    /// A server for `source`.
    pub fn new(source: Arc<S>) -> Self {
        XdsServer {
            source,
            metrics: XdsMetrics::default(),
            connections: Connections::default(),
            tls: None,
            authenticate: true,
            limits: Limits::default(),
        }
    }

    /// Applies `limits` instead of [`Limits::default`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves every stream without checking dataplane tokens. Only for a
    /// server that nothing but this host can reach: anyone who reaches it
    /// gets any data plane's config, keys included.
    pub fn allow_unauthenticated(mut self) -> Self {
        self.authenticate = false;
        self
    }

    /// Serves over TLS with this certificate chain and private key (PEM).
    /// Envoys then need the CA in their bootstrap
    /// ([`kuma_xds_gen::render::AdsBootstrap::xds_ca_pem`]).
    pub fn with_tls(mut self, cert_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Self {
        self.tls = Some(tonic::transport::Identity::from_pem(cert_pem, key_pem));
        self
    }

    /// Counts streams, responses, ACKs and NACKs in `metrics` (see
    /// [`XdsMetrics::register`]).
    pub fn with_metrics(mut self, metrics: XdsMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Records what each connected Envoy has in `connections` (keep a
    /// clone to read it: `/dataplanes`).
    pub fn with_connections(mut self, connections: Connections) -> Self {
        self.connections = connections;
        self
    }

    /// Serves ADS and the access-log sink on `listener` until `shutdown`
    /// completes. Then every stream is ended (connected Envoys keep their
    /// config and try to reconnect) and the server returns within a few
    /// seconds, even when a client keeps its connection open.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let address = listener.local_addr().map_err(ServeError::Address)?;
        info!(%address, "ADS server listening");
        // Without TCP_NODELAY the last segment of an update waits for Envoy's
        // delayed ACK (Nagle): ~40 ms added to every push.
        let incoming = tokio_stream::StreamExt::map(TcpListenerStream::new(listener), |conn| {
            conn.inspect(|c| {
                let _ = c.set_nodelay(true);
            })
        });
        let (closing_tx, closing) = watch::channel(false);
        let mut service = AdsService::new(self.source.clone(), closing.clone())
            .with_metrics(self.metrics.clone())
            .with_connections(self.connections.clone())
            .with_limits(self.limits.clone());
        let mut logs = LogsServiceServer::new(self.source.clone()).with_metrics(self.metrics);
        if !self.authenticate {
            service = service.allow_unauthenticated();
            logs = logs.allow_unauthenticated();
        }
        let ads = crate::grpc::AdsGrpc::new(service, self.limits.max_message_bytes);
        let mut stopping = closing.clone();
        let mut builder = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(self.limits.keepalive_interval))
            .http2_keepalive_timeout(Some(self.limits.keepalive_timeout))
            .tcp_keepalive(Some(self.limits.keepalive_interval));
        if let Some(identity) = self.tls {
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .map_err(ServeError::Tls)?;
        }
        let server = builder.add_service(ads).add_service(logs).serve_with_incoming_shutdown(incoming, async move {
            let _ = stopping.wait_for(|c| *c).await;
        });
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result.map_err(ServeError::Transport),
            () = shutdown => {}
        }
        info!("ADS server stopping: ending the streams");
        let _ = closing_tx.send(true);
        match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
            Ok(result) => result.map_err(ServeError::Transport)?,
            Err(_) => info!("connections still open after {SHUTDOWN_GRACE:?}: dropped"),
        }
        info!("ADS server stopped");
        Ok(())
    }
}
