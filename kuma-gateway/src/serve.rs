//! `serve`: the ADS server of `kuma-xds-server`, fed by a file watcher.
//!
//! The watcher reloads on every file-system event (no polling interval),
//! re-parsing only changed files; a valid load replaces the resource set
//! ([`ResourceSetSource::publish`]), an invalid one is reported and the last
//! good set keeps being served.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kuma_model::ResourceSet;
use kuma_xds_server::{ResourceSetSource, XdsServer};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::files::{Loaded, Loader};

/// Loads `paths` once: the set, or an error carrying the whole report.
fn initial_load(loader: &mut Loader) -> Result<ResourceSet> {
    match loader.load()? {
        Loaded::Valid(set, warnings) => {
            for w in warnings {
                warn!("{w}");
            }
            Ok(set)
        }
        Loaded::Invalid(e) => bail!("invalid resources:\n{e}"),
    }
}

/// Watches the loader's paths and publishes every valid change to
/// `source`. Returns the watcher, which stops when dropped.
fn watch_files(mut loader: Loader, source: Arc<ResourceSetSource>) -> Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event
            && !matches!(e.kind, notify::EventKind::Access(_))
        {
            let _ = events_tx.send(());
        }
    })
    .context("starting the file watcher")?;
    for path in loader.paths() {
        watcher.watch(path, RecursiveMode::Recursive).with_context(|| format!("watching {}", path.display()))?;
    }
    tokio::spawn(async move {
        while events_rx.recv().await.is_some() {
            // One reload for a burst of events (an editor's write, rename, chmod).
            while events_rx.try_recv().is_ok() {}
            let started = Instant::now();
            match loader.load() {
                Ok(Loaded::Valid(set, warnings)) => {
                    for w in warnings {
                        warn!("{w}");
                    }
                    let resources = set.len();
                    let generation = source.publish(set);
                    info!(
                        generation,
                        resources,
                        files = loader.file_count(),
                        took_ms = started.elapsed().as_secs_f64() * 1e3,
                        "reloaded"
                    );
                }
                Ok(Loaded::Invalid(e)) => {
                    error!("invalid change, still serving the last good config:\n{e}");
                }
                Err(e) => error!("reload failed, still serving the last good config: {e:#}"),
            }
        }
    });
    Ok(watcher)
}

/// Serves `paths` over ADS on `address` until `shutdown` completes.
pub(crate) async fn serve(
    paths: Vec<PathBuf>,
    address: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut loader = Loader::new(paths);
    let set = initial_load(&mut loader)?;
    info!(resources = set.len(), files = loader.file_count(), "loaded");
    let source = Arc::new(ResourceSetSource::new(set));
    let _watcher = watch_files(loader, source.clone())?;
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!(
                "cannot listen on {address}: the port is in use (another kuma-gateway serve or run?); pick another with --xds-address"
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot listen on {address}")),
    };
    XdsServer::new(source).serve(listener, shutdown).await?;
    Ok(())
}
