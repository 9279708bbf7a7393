//! The control plane's admin endpoint (`--admin-address`, loopback by
//! default), apart from the xDS port: `/metrics` (Prometheus text),
//! `/ready`, `/healthy`, and `/dataplanes` (what each connected Envoy has,
//! JSON).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kuma_xds_server::{Connections, XdsMetrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing::info;

/// `result="valid"` or `result="invalid"`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// A resource kind in a mesh (`mesh` is empty for a Mesh).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindMeshLabels {
    kind: String,
    mesh: String,
}

/// Counters of the reloads and of the store.
#[derive(Debug, Clone)]
pub(crate) struct ReloadMetrics {
    reloads: Family<ResultLabels, Counter>,
    resources: Family<KindMeshLabels, Gauge>,
    duration: Histogram,
    store_errors: Counter,
    store_reconnects: Counter,
    store_connected: Gauge,
    /// Why the store cannot be read now, when it cannot.
    store_down: Arc<std::sync::Mutex<Option<String>>>,
}

impl Default for ReloadMetrics {
    fn default() -> Self {
        ReloadMetrics {
            reloads: Family::default(),
            resources: Family::default(),
            // 1 ms to about 16 s, doubling.
            duration: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15)),
            store_errors: Counter::default(),
            store_reconnects: Counter::default(),
            store_connected: Gauge::default(),
            store_down: Arc::default(),
        }
    }
}

impl ReloadMetrics {
    /// A reload that gave the valid `set`: counted, and its resources
    /// counted by kind and mesh (kinds and meshes are few: each is written
    /// in the resources).
    pub(crate) fn valid(&self, set: &kuma_model::ResourceSet) {
        self.reloads.get_or_create(&ResultLabels { result: "valid" }).inc();
        let mut counts: std::collections::BTreeMap<(String, String), i64> = Default::default();
        for r in set.iter() {
            *counts.entry((r.spec.kind().to_string(), r.meta.mesh.clone())).or_default() += 1;
        }
        self.resources.clear();
        for ((kind, mesh), n) in counts {
            self.resources.get_or_create(&KindMeshLabels { kind, mesh }).set(n);
        }
    }

    /// A reload that was refused (the last good set is still served).
    pub(crate) fn invalid(&self) {
        self.reloads.get_or_create(&ResultLabels { result: "invalid" }).inc();
    }

    /// How long a reload took (read, parse, validate, publish).
    pub(crate) fn took(&self, seconds: f64) {
        self.duration.observe(seconds);
    }

    /// The store could not be read; the last good set is served.
    pub(crate) fn store_error(&self, why: String) {
        self.store_errors.inc();
        *self.store_down.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    /// The store's connection was lost (`Some`) or is back (`None`).
    pub(crate) fn store_lost(&self, why: Option<String>) {
        *self.store_down.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// The store was read.
    pub(crate) fn store_read(&self) {
        *self.store_down.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The store's notification connection came up (`true`) or went down.
    pub(crate) fn store_connection(&self, up: bool, reconnected: bool) {
        self.store_connected.set(i64::from(up));
        if reconnected {
            self.store_reconnects.inc();
        }
    }
}

/// Everything the control plane counts, and whether it is ready.
#[derive(Debug, Clone)]
pub(crate) struct Telemetry {
    registry: Arc<Registry>,
    pub(crate) xds: XdsMetrics,
    pub(crate) connections: Connections,
    pub(crate) reloads: ReloadMetrics,
    ready: Arc<AtomicBool>,
}

impl Telemetry {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("kuma_gateway");
        let xds = XdsMetrics::register(&mut registry);
        let reloads = ReloadMetrics::default();
        registry.register("reloads", "Reloads of the resource files, by result", reloads.reloads.clone());
        registry.register(
            "resources",
            "Resources in the set being served, by kind and mesh",
            reloads.resources.clone(),
        );
        registry.register_with_unit(
            "reload_duration",
            "Reloads: reading, parsing and validating the resources, and publishing them",
            prometheus_client::registry::Unit::Seconds,
            reloads.duration.clone(),
        );
        registry.register(
            "store_errors",
            "Reads of the store that failed (the last good set is still served)",
            reloads.store_errors.clone(),
        );
        registry.register(
            "store_reconnects",
            "Times the PostgreSQL store's notification connection came back",
            reloads.store_reconnects.clone(),
        );
        registry.register(
            "store_connected",
            "1 while the PostgreSQL store's notification connection is up",
            reloads.store_connected.clone(),
        );
        Telemetry {
            registry: Arc::new(registry),
            xds,
            connections: Connections::default(),
            reloads,
            ready: Arc::default(),
        }
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
            .route("/dataplanes", get(dataplanes))
            .with_state(self.clone());
        info!(address = %bound, "admin endpoint listening (/metrics, /ready, /healthy, /dataplanes)");
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
    if !t.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: the resources are not loaded yet\n".to_string());
    }
    match t.reloads.store_down.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        // Envoys are served the last good set: the control plane does its job.
        Some(why) => {
            (StatusCode::OK, format!("ready: serving the last good resources; the store cannot be read: {why}\n"))
        }
        None => (StatusCode::OK, "ready\n".to_string()),
    }
}

async fn dataplanes(State(t): State<Telemetry>) -> impl IntoResponse {
    let body = serde_json::to_string_pretty(&t.connections.list()).unwrap_or_else(|_| "[]".into());
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body + "\n")
}
