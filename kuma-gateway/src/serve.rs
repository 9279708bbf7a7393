//! `serve`: the ADS server of `kuma-xds-server`, fed by a file watcher.
//!
//! The watcher ([`crate::watch`]) reloads once changes settle, re-parsing
//! only changed files; a valid load replaces the resource set
//! ([`ResourceSetSource::publish`]), an invalid one is reported and the last
//! good set keeps being served.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use kuma_model::ResourceSet;
use kuma_xds_server::{ResourceSetSource, XdsServer};
use tracing::{info, warn};

use crate::admin::Telemetry;
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

/// Serves `paths` over ADS on `address` until `shutdown` completes, with
/// the admin endpoint on `admin`.
pub(crate) async fn serve(
    paths: Vec<PathBuf>,
    address: SocketAddr,
    admin: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let telemetry = Telemetry::new();
    // First, so that /ready answers (not ready) while the files load.
    telemetry.serve(admin).await?;
    let mut loader = Loader::new(paths);
    let set = initial_load(&mut loader)?;
    info!(resources = set.len(), files = loader.file_count(), "loaded");
    telemetry.reloads.valid(set.len());
    let source = Arc::new(ResourceSetSource::new(set));
    let _watch = crate::watch::watch_files(loader, source.clone(), telemetry.reloads.clone())?;
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!(
                "cannot listen on {address}: the port is in use (another kuma-gateway serve or run?); pick another with --xds-address"
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot listen on {address}")),
    };
    telemetry.set_ready();
    XdsServer::new(source).with_metrics(telemetry.xds.clone()).serve(listener, shutdown).await?;
    Ok(())
}
