//! `serve`: an ADS (State of the World) gRPC server fed by a file watcher.
//!
//! The watcher reloads on every file-system event (no polling interval),
//! re-parsing only changed files; a valid load replaces the resource set,
//! an invalid one is reported and the last good set keeps being served.
//! Each connected Envoy has a stream task that translates its own data
//! plane's snapshot whenever the set changes and sends only the types whose
//! content changed ([`crate::ads::AdsStream`]).
//!
//! Node identity: Envoy's `node.id` is the data plane name; the mesh is the
//! string `mesh` in `node.metadata` (`default` when absent). The bootstrap
//! from `kuma-gateway bootstrap` sets both.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::value::Kind as ValueKind;
use kuma_model::ResourceSet;
use kuma_xds_gen::GatewaySnapshot;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{error, info, warn};

use crate::ads::{AdsStream, RequestKind};
use crate::files::{Loaded, Loader};

/// The resources being served, with a counter bumped on every change.
#[derive(Debug, Clone)]
pub struct Served {
    /// The last valid set.
    pub set: Arc<ResourceSet>,
    /// 1 for the first load, +1 per accepted change.
    pub generation: u64,
    /// Per mesh, the generation that last changed it: a data plane whose
    /// mesh did not change since its last translation is not translated again.
    pub mesh_changed_at: Arc<BTreeMap<String, u64>>,
}

impl Served {
    /// The first load.
    pub fn initial(set: ResourceSet) -> Served {
        Served { set: Arc::new(set), generation: 1, mesh_changed_at: Arc::default() }
    }

    /// The next generation, `set`, recording which meshes it changes.
    pub fn next(&self, set: ResourceSet) -> Served {
        let generation = self.generation + 1;
        let mut changed = (*self.mesh_changed_at).clone();
        for mesh in changed_meshes(&self.set, &set) {
            changed.insert(mesh, generation);
        }
        Served { set: Arc::new(set), generation, mesh_changed_at: Arc::new(changed) }
    }

    /// True when `mesh` changed after `generation`.
    pub fn changed_since(&self, mesh: &str, generation: u64) -> bool {
        self.mesh_changed_at.get(mesh).is_some_and(|g| *g > generation)
    }
}

/// The meshes whose resources differ between two sets (a `Mesh` counts for
/// the mesh it is).
pub fn changed_meshes(old: &ResourceSet, new: &ResourceSet) -> BTreeSet<String> {
    let mesh_of = |r: &kuma_model::Resource| {
        if r.spec.kind() == kuma_model::Kind::Mesh { r.meta.name.clone() } else { r.meta.mesh.clone() }
    };
    let mut out = BTreeSet::new();
    for r in new.iter() {
        let key = r.key();
        let same = old
            .get(key.kind, &key.mesh, &key.name)
            .is_some_and(|o| o.spec == r.spec && o.meta.creation_time == r.meta.creation_time);
        if !same {
            out.insert(mesh_of(r));
        }
    }
    for r in old.iter() {
        let key = r.key();
        if new.get(key.kind, &key.mesh, &key.name).is_none() {
            out.insert(mesh_of(r));
        }
    }
    out
}

/// `(mesh, dataplane)` of an Envoy node.
pub fn node_identity(node: &Node) -> (String, String) {
    let mesh = node
        .metadata
        .as_ref()
        .and_then(|m| m.fields.get("mesh"))
        .and_then(|v| match &v.kind {
            Some(ValueKind::StringValue(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| kuma_model::DEFAULT_MESH.to_string());
    (mesh, node.id.clone())
}

/// Loads `paths` once: the set, or an error carrying the whole report.
pub fn initial_load(loader: &mut Loader) -> Result<ResourceSet> {
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

/// Watches the loader's paths and publishes every valid change.
/// Returns the watcher, which stops when dropped.
pub fn watch_files(mut loader: Loader, tx: watch::Sender<Served>) -> Result<notify::RecommendedWatcher> {
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
                    let next = tx.borrow().next(set);
                    let generation = next.generation;
                    info!(
                        generation,
                        resources = next.set.len(),
                        files = loader.file_count(),
                        took_ms = started.elapsed().as_secs_f64() * 1e3,
                        "reloaded"
                    );
                    let _ = tx.send(next);
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

/// The gRPC ADS service.
#[derive(Debug, Clone)]
pub struct AdsService {
    served: watch::Receiver<Served>,
}

impl AdsService {
    /// A service answering from `served`.
    pub fn new(served: watch::Receiver<Served>) -> Self {
        AdsService { served }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn translate(served: &Served, mesh: &str, dataplane: &str) -> Option<GatewaySnapshot> {
    match kuma_xds_gen::translate(&served.set, mesh, dataplane) {
        Ok(s) => Some(s),
        Err(e) => {
            error!(%mesh, %dataplane, "cannot generate config, keeping the last good one: {e}");
            None
        }
    }
}

async fn run_stream(
    mut inbound: Streaming<DiscoveryRequest>,
    mut served: watch::Receiver<Served>,
    out: mpsc::Sender<Result<DiscoveryResponse, Status>>,
) {
    let mut ads = AdsStream::new();
    let mut node: Option<(String, String)> = None;
    let mut snapshot = GatewaySnapshot::default();
    // The generation this stream last translated.
    let mut translated = 0;
    loop {
        tokio::select! {
            message = inbound.message() => {
                let request = match message {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(status) => {
                        info!("stream closed: {status}");
                        break;
                    }
                };
                if node.is_none() {
                    let Some(n) = request.node.as_ref() else {
                        let _ = out.send(Err(Status::invalid_argument("the first request must carry node"))).await;
                        break;
                    };
                    let (mesh, dataplane) = node_identity(n);
                    info!(%mesh, %dataplane, "Envoy connected");
                    let current = served.borrow_and_update().clone();
                    if let Some(s) = translate(&current, &mesh, &dataplane) {
                        snapshot = s;
                    }
                    translated = current.generation;
                    node = Some((mesh, dataplane));
                }
                let (mesh, dataplane) = node.as_ref().expect("set above");
                let outcome = ads.handle_request(&request, &snapshot);
                let type_url = request.type_url.rsplit('/').next().unwrap_or_default();
                match &outcome.kind {
                    RequestKind::Nack { version, detail } => warn!(
                        %mesh, %dataplane, r#type = type_url, kept_version = %version,
                        "Envoy rejected the config (NACK), it keeps the last good one: {detail}"
                    ),
                    RequestKind::Ack { version } => info!(%dataplane, r#type = type_url, %version, "ACK"),
                    _ => {}
                }
                for response in outcome.responses {
                    if out.send(Ok(response)).await.is_err() {
                        return;
                    }
                }
            }
            changed = served.changed() => {
                if changed.is_err() {
                    break;
                }
                let Some((mesh, dataplane)) = node.as_ref() else { continue };
                let current = served.borrow_and_update().clone();
                // Only what the change affects: other meshes' edits leave this
                // data plane's config as it is.
                if !current.changed_since(mesh, translated) {
                    translated = current.generation;
                    continue;
                }
                translated = current.generation;
                let started = Instant::now();
                let Some(new) = translate(&current, mesh, dataplane) else { continue };
                let translate_ms = started.elapsed().as_secs_f64() * 1e3;
                let responses = ads.handle_snapshot(&snapshot, &new);
                snapshot = new;
                if !responses.is_empty() {
                    let diff_ms = started.elapsed().as_secs_f64() * 1e3 - translate_ms;
                    info!(%dataplane, generation = current.generation, updates = responses.len(), translate_ms, diff_ms, "pushing");
                }
                for response in responses {
                    if out.send(Ok(response)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsService {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(run_stream(request.into_inner(), self.served.clone(), tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented("this server speaks State of the World ADS only"))
    }
}

/// Serves `paths` over ADS on `address` until `shutdown` completes.
pub async fn serve(
    paths: Vec<PathBuf>,
    address: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut loader = Loader::new(paths);
    let set = initial_load(&mut loader)?;
    info!(resources = set.len(), files = loader.file_count(), "loaded");
    let (tx, rx) = watch::channel(Served::initial(set));
    let _watcher = watch_files(loader, tx)?;
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("binding {address}"))?;
    info!(%address, "ADS server listening");
    // Without TCP_NODELAY the last segment of an update waits for Envoy's
    // delayed ACK (Nagle): ~40 ms added to every push.
    let incoming = tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |conn| {
        conn.inspect(|c| {
            let _ = c.set_nodelay(true);
        })
    });
    tonic::transport::Server::builder()
        .add_service(
            AggregatedDiscoveryServiceServer::new(AdsService::new(rx.clone())).max_decoding_message_size(64 << 20),
        )
        .add_service(crate::logsink::LogsServiceServer::new(crate::logsink::LogSink::new(rx)))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("ADS server")?;
    info!("ADS server stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuma_model::UnknownFields;

    fn set(yaml: &str) -> ResourceSet {
        ResourceSet::load([("t.yaml", yaml)], UnknownFields::Reject).unwrap().0
    }

    const A: &str = "type: Mesh\nname: a\n---\ntype: Mesh\nname: b\n---\ntype: Secret\nmesh: a\nname: s\ndata: aGk=\n---\ntype: Secret\nmesh: b\nname: s\ndata: aGk=\n";

    #[test]
    fn only_meshes_whose_resources_changed_are_retranslated() {
        let first = Served::initial(set(A));
        // Same content, another generation: nothing changed.
        let same = first.next(set(A));
        assert!(!same.changed_since("a", 1) && !same.changed_since("b", 1));
        // A secret of mesh b changes.
        let edited = same.next(set(&A.replace("mesh: b\nname: s\ndata: aGk=", "mesh: b\nname: s\ndata: aG8=")));
        assert!(!edited.changed_since("a", 1));
        assert!(edited.changed_since("b", 2));
        assert!(!edited.changed_since("b", 3), "translated at generation 3 already");
        // A removal counts, and so does a Mesh resource for its own mesh.
        let removed = edited.next(set(
            "type: Mesh\nname: a\n---\ntype: Mesh\nname: b\n---\ntype: Secret\nmesh: b\nname: s\ndata: aG8=\n",
        ));
        assert!(removed.changed_since("a", 3));
        assert_eq!(
            changed_meshes(
                &set("type: Mesh\nname: c\n"),
                &set("type: Mesh\nname: c\nmtls: {enabledBackend: x, backends: [{name: x, type: builtin}]}\n")
            ),
            BTreeSet::from(["c".to_string()])
        );
    }
}
