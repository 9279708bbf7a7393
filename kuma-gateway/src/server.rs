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
                    let generation = tx.borrow().generation + 1;
                    info!(
                        generation,
                        resources = set.len(),
                        files = loader.file_count(),
                        took_ms = started.elapsed().as_secs_f64() * 1e3,
                        "reloaded"
                    );
                    let _ = tx.send(Served { set: Arc::new(set), generation });
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
                let Some(new) = translate(&current, mesh, dataplane) else { continue };
                let responses = ads.handle_snapshot(&snapshot, &new);
                snapshot = new;
                if !responses.is_empty() {
                    info!(%dataplane, generation = current.generation, updates = responses.len(), "pushing");
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
    let (tx, rx) = watch::channel(Served { set: Arc::new(set), generation: 1 });
    let _watcher = watch_files(loader, tx)?;
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("binding {address}"))?;
    info!(%address, "ADS server listening");
    tonic::transport::Server::builder()
        .add_service(AggregatedDiscoveryServiceServer::new(AdsService::new(rx)).max_decoding_message_size(64 << 20))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), shutdown)
        .await
        .context("ADS server")?;
    info!("ADS server stopped");
    Ok(())
}
