//! `serve`: the ADS server of `kuma-xds-server`, fed by a store.
//!
//! The store says when its content may have changed (files: once edits
//! settle; PostgreSQL: a notification, a reconnection, or the periodic
//! resync); the content is read again, re-parsing only what changed, and a
//! valid set replaces the served one ([`ResourceSetSource::publish`]). An
//! invalid set, or a store that cannot be reached, is reported and the last
//! good set keeps being served.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kuma_model::ResourceSet;
use kuma_store::ResourceStore;
use kuma_xds_server::tokens::SigningKey;
use kuma_xds_server::{Limits, ResourceSetSource, XdsServer};
use tracing::{error, info, warn};

use crate::admin::{ReloadMetrics, Telemetry};
use crate::store::{AnyStore, Resources};

/// Reads the store once: the set and its revision, or an error carrying the
/// whole report.
async fn initial_load(store: &AnyStore) -> Result<(ResourceSet, u64, String)> {
    let content = store.read().await?;
    let described = store.describe(&content);
    match content.assemble() {
        Ok((set, warnings)) => {
            for w in warnings {
                warn!("{w}");
            }
            Ok((set, content.revision, described))
        }
        Err(e) => bail!("invalid resources in {described}:\n{e}"),
    }
}

/// Follows the store: every change is read, and a valid set is published.
async fn follow(store: Arc<AnyStore>, source: Arc<ResourceSetSource>, metrics: ReloadMetrics, mut revision: u64) {
    let mut changes = store.changes();
    let mut unreachable = false;
    while changes.changed().await.is_ok() {
        let started = Instant::now();
        let content = match store.read().await {
            Ok(c) => c,
            Err(e) => {
                metrics.store_error(e.to_string());
                if !unreachable {
                    metrics.invalid();
                    error!("reload failed, still serving the last good config: {e}");
                }
                unreachable = true;
                continue;
            }
        };
        metrics.store_read();
        unreachable = false;
        // A periodic resync of an unchanged store publishes nothing.
        if content.revision == revision && matches!(*store, AnyStore::Postgres(_)) {
            continue;
        }
        revision = content.revision;
        match content.assemble() {
            Ok((set, warnings)) => {
                for w in warnings {
                    warn!("{w}");
                }
                let resources = set.len();
                metrics.valid(&set);
                let generation = source.publish(set);
                metrics.took(started.elapsed().as_secs_f64());
                info!(generation, resources, revision, took_ms = started.elapsed().as_secs_f64() * 1e3, "reloaded");
            }
            Err(e) => {
                metrics.invalid();
                metrics.took(started.elapsed().as_secs_f64());
                error!("invalid change, still serving the last good config:\n{e}")
            }
        }
    }
}

/// Counts the PostgreSQL store's notification connection coming and going.
async fn count_connections(mut connected: tokio::sync::watch::Receiver<bool>, metrics: ReloadMetrics) {
    let mut was = *connected.borrow_and_update();
    let mut ever = was;
    metrics.store_connection(was, false);
    while connected.changed().await.is_ok() {
        let now = *connected.borrow_and_update();
        metrics.store_connection(now, now && !was && ever);
        if was && !now {
            metrics.store_lost(Some("the connection to the store was lost; reconnecting".into()));
        } else if now {
            metrics.store_lost(None);
        }
        ever |= now;
        was = now;
    }
}

/// How the xDS port is protected and bounded (`serve` and `run`).
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct XdsSecurity {
    /// The xDS server's TLS certificate chain (PEM). Needed, with
    /// --tls-key, on any address that is not loopback.
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Serve every Envoy without checking its dataplane token (loopback
    /// addresses only).
    #[arg(long)]
    pub(crate) allow_unauthenticated: bool,
    /// ADS streams held at once; more are refused (each refusal is logged).
    #[arg(long, default_value_t = 1024)]
    pub(crate) max_streams: usize,
}

impl XdsSecurity {
    /// Refuses what would expose configs (keys included) beyond this host.
    fn check(&self, address: SocketAddr) -> Result<()> {
        let loopback = address.ip().is_loopback();
        if !loopback && self.tls_cert.is_none() {
            bail!(
                "serving xDS on {address}, which is not a loopback address, needs TLS: pass --tls-cert FILE --tls-key FILE (PEM); every Envoy's config, private keys included, would otherwise travel in clear"
            );
        }
        if !loopback && self.allow_unauthenticated {
            bail!(
                "--allow-unauthenticated is for loopback addresses only: on {address} anyone who reaches the port would get every data plane's config"
            );
        }
        Ok(())
    }
}

/// Serves the resources over ADS on `address` until `shutdown` completes, with
/// the admin endpoint on `admin`. `extra_key` is a signing key held in
/// memory (by mesh) whose tokens are accepted too (`run` signs its own
/// Envoy's token with one).
pub(crate) async fn serve(
    resources: Resources,
    address: SocketAddr,
    admin: SocketAddr,
    security: XdsSecurity,
    extra_key: Option<(String, SigningKey)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    security.check(address)?;
    let telemetry = Telemetry::new();
    // First, so that /ready answers (not ready) while the files load.
    telemetry.serve(admin).await?;
    let store = Arc::new(resources.open().await?);
    if let AnyStore::Files(files) = &*store {
        files.follow()?;
    }
    let (set, revision, described) = initial_load(&store).await?;
    info!(resources = set.len(), from = %described, "loaded");
    telemetry.reloads.valid(&set);
    let source = Arc::new(ResourceSetSource::new(set));
    if let Some((mesh, key)) = extra_key {
        source.add_signing_key(&mesh, key);
    }
    if let AnyStore::Postgres(pg) = &*store {
        tokio::spawn(count_connections(pg.connected(), telemetry.reloads.clone()));
    }
    let follower = tokio::spawn(follow(store, source.clone(), telemetry.reloads.clone(), revision));
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!(
                "cannot listen on {address}: the port is in use (another kuma-gateway serve or run?); pick another with --xds-address"
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot listen on {address}")),
    };
    let mut limits = Limits::default();
    limits.max_streams = security.max_streams;
    let mut server = XdsServer::new(source)
        .with_metrics(telemetry.xds.clone())
        .with_connections(telemetry.connections.clone())
        .with_limits(limits);
    if let (Some(cert), Some(key)) = (&security.tls_cert, &security.tls_key) {
        let read = |p: &PathBuf, what: &str| std::fs::read(p).with_context(|| format!("--{what} {}", p.display()));
        server = server.with_tls(read(cert, "tls-cert")?, read(key, "tls-key")?);
        info!(cert = %cert.display(), "xDS over TLS");
    }
    if security.allow_unauthenticated {
        warn!(
            "serving without authentication (--allow-unauthenticated): any process on this host can get any data plane's config, keys included"
        );
        server = server.allow_unauthenticated();
    }
    telemetry.set_ready();
    let served = server.serve(listener, shutdown).await;
    follower.abort();
    served?;
    Ok(())
}
