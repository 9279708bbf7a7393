//! The control plane's admin endpoint (`--admin-address`, loopback by
//! default), apart from the xDS port: `/metrics` (Prometheus text),
//! `/ready` and `/healthy`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kuma_xds_server::XdsMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::info;

/// `result="valid"` or `result="invalid"`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Counters of the file reloads.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReloadMetrics {
    reloads: Family<ResultLabels, Counter>,
    resources: Gauge,
}

impl ReloadMetrics {
    /// A reload that gave a valid set of `resources` resources.
    pub(crate) fn valid(&self, resources: usize) {
        self.reloads.get_or_create(&ResultLabels { result: "valid" }).inc();
        self.resources.set(i64::try_from(resources).unwrap_or(i64::MAX));
    }

    /// A reload that was refused (the last good set is still served).
    pub(crate) fn invalid(&self) {
        self.reloads.get_or_create(&ResultLabels { result: "invalid" }).inc();
    }
}

/// Everything the control plane counts, and whether it is ready.
#[derive(Debug, Clone)]
pub(crate) struct Telemetry {
    registry: Arc<Registry>,
    pub(crate) xds: XdsMetrics,
    pub(crate) reloads: ReloadMetrics,
    ready: Arc<AtomicBool>,
}

impl Telemetry {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("kuma_gateway");
        let xds = XdsMetrics::register(&mut registry);
        let reloads = ReloadMetrics::default();
        registry.register("reloads", "Reloads of the resource files, by result", reloads.reloads.clone());
        registry.register("resources", "Resources in the set being served", reloads.resources.clone());
        Telemetry { registry: Arc::new(registry), xds, reloads, ready: Arc::default() }
    }

    /// The resources are loaded and the xDS port is serving.
    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Binds the admin endpoint on `address` (port 0: any free port) and
    /// serves it in the background.
    pub(crate) async fn serve(&self, address: SocketAddr) -> Result<SocketAddr> {
        let listener = match tokio::net::TcpListener::bind(address).await {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
                "cannot listen on {address} (admin): the port is in use; pick another with --admin-address (port 0: any free port)"
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot listen on {address} (admin)")),
        };
        let bound = listener.local_addr()?;
        let router = Router::new()
            .route("/metrics", get(metrics))
            .route("/ready", get(ready))
            .route("/healthy", get(|| async { "healthy\n" }))
            .with_state(self.clone());
        info!(address = %bound, "admin endpoint listening (/metrics, /ready, /healthy)");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!("admin endpoint stopped: {e}");
            }
        });
        Ok(bound)
    }
}

async fn metrics(State(t): State<Telemetry>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &t.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            text,
        ),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain")], format!("{e}\n")),
    }
}

async fn ready(State(t): State<Telemetry>) -> impl IntoResponse {
    if t.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: the resources are not loaded yet\n")
    }
}
