//! The gRPC Aggregated Discovery Service: one task per Envoy stream moves
//! messages between Envoy, a protocol state machine ([`crate::DeltaStream`]
//! or [`AdsStream`]) and a [`SnapshotSource`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kuma_xds_gen::EncodedSnapshot;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryService;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{error, info, warn};

use crate::ads::{AdsStream, RequestKind};
use crate::connections::Connections;
use crate::delta::DeltaStream;
use crate::history::NodeHistory;
use crate::limits::Limits;
use crate::metrics::XdsMetrics;
use crate::protocol::Protocol;
use crate::source::{NodeId, SnapshotSource};

/// The ADS service (incremental and State of the World) over a
/// [`SnapshotSource`]. Let [`crate::XdsServer`] serve it, which frames each
/// response into a buffer of its own size; or add it to your own tonic
/// server with
/// [`AggregatedDiscoveryServiceServer::new`](kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryServiceServer::new),
/// whose encoder keeps a buffer the size of the largest response for each
/// stream's life.
#[derive(Debug)]
pub struct AdsService<S> {
    source: Arc<S>,
    closing: watch::Receiver<bool>,
    /// Per data plane, what its Envoys accepted and rejected.
    histories: Arc<Mutex<HashMap<NodeId, NodeHistory>>>,
    metrics: XdsMetrics,
    /// Check every stream's dataplane token ([`SnapshotSource::authenticate`]).
    authenticate: bool,
    limits: Limits,
    /// Streams open now.
    open_streams: Arc<std::sync::atomic::AtomicUsize>,
    /// What each connected Envoy has.
    connections: Connections,
}

impl<S> Clone for AdsService<S> {
    fn clone(&self) -> Self {
        AdsService {
            source: self.source.clone(),
            closing: self.closing.clone(),
            histories: self.histories.clone(),
            metrics: self.metrics.clone(),
            authenticate: self.authenticate,
            limits: self.limits.clone(),
            open_streams: self.open_streams.clone(),
            connections: self.connections.clone(),
        }
    }
}

impl<S: SnapshotSource> AdsService<S> {
    /// A service answering from `source`, whose streams end (Envoy keeps
    /// its config) once `closing` turns true.
    pub fn new(source: Arc<S>, closing: watch::Receiver<bool>) -> Self {
        AdsService {
            source,
            closing,
            histories: Arc::default(),
            metrics: XdsMetrics::default(),
            authenticate: true,
            limits: Limits::default(),
            open_streams: Arc::default(),
            connections: Connections::default(),
        }
    }

    /// Applies `limits` (streams at once, time to a first request).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves every stream without checking tokens. Only for a server that
    /// nothing but this host can reach.
    pub fn allow_unauthenticated(mut self) -> Self {
        self.authenticate = false;
        self
    }

    /// Counts streams, responses, ACKs and NACKs in `metrics`.
    pub fn with_metrics(mut self, metrics: XdsMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Records each stream's state in `connections` (shared).
    pub fn with_connections(mut self, connections: Connections) -> Self {
        self.connections = connections;
        self
    }

    /// What the Envoys of `node` accepted and rejected so far (shared by all
    /// its streams, and kept while this service runs).
    pub fn history(&self, node: &NodeId) -> NodeHistory {
        let mut histories = self.histories.lock().unwrap_or_else(|e| e.into_inner());
        histories.entry(node.clone()).or_default().clone()
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl<S: SnapshotSource> AdsService<S> {
    /// Takes a place among the open streams and runs one in its own task;
    /// its responses come out of the receiver.
    #[allow(clippy::result_large_err)]
    pub(crate) fn open_stream<P: Protocol>(
        &self,
        request: Request<Streaming<P::Request>>,
    ) -> Result<mpsc::Receiver<Result<P::Response, Status>>, Status> {
        let token = token_of(&request)?;
        let address = request.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        let open = Slot::take(&self.open_streams, self.limits.max_streams).ok_or_else(|| {
            warn!(limit = self.limits.max_streams, "stream refused: too many streams open");
            Status::resource_exhausted(format!("this server holds at most {} streams", self.limits.max_streams))
        })?;
        let (tx, rx) = mpsc::channel(64);
        let service = self.clone();
        let inbound = request.into_inner();
        tokio::spawn(async move {
            let _open = open;
            run_stream::<S, P>(service, inbound, (token, address), tx).await;
        });
        Ok(rx)
    }

    /// [`Self::open_stream`], as the tonic trait answers it.
    #[allow(clippy::result_large_err)]
    fn spawn_stream<P: Protocol>(
        &self,
        request: Request<Streaming<P::Request>>,
    ) -> Result<Response<ResponseStream<P::Response>>, Status> {
        let rx = self.open_stream::<P>(request)?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// The node's snapshot from the source; on error, logged, and `None` so the
/// stream keeps what it has.
fn lookup<S: SnapshotSource>(source: &S, node: &NodeId, since: Option<u64>) -> Option<Arc<EncodedSnapshot>> {
    match source.snapshot(node, since) {
        Ok(s) => s,
        Err(e) => {
            error!(mesh = %node.mesh, dataplane = %node.name, "cannot generate config, keeping the last good one: {e}");
            None
        }
    }
}

/// One of the open streams the limit allows, given back when dropped.
struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    fn take(open: &Arc<std::sync::atomic::AtomicUsize>, max: usize) -> Option<Slot> {
        use std::sync::atomic::Ordering;
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Slot(open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The next request; the first one must come by `first_by` (a client that
/// opens streams and says nothing must not hold them). The deadline is
/// fixed when the stream opens, so other events cannot push it back.
async fn first_or_next<R>(
    inbound: &mut Streaming<R>,
    first_by: Option<tokio::time::Instant>,
) -> Result<Option<R>, Status> {
    let Some(deadline) = first_by else { return inbound.message().await };
    match tokio::time::timeout_at(deadline, inbound.message()).await {
        Ok(m) => m,
        Err(_) => {
            warn!("stream closed: no first request in time");
            Err(Status::deadline_exceeded("no first request in time"))
        }
    }
}

/// What moves a stream after its first request.
enum Next {
    /// The source's generation moved to this one.
    Changed(u64),
    /// The snapshot this stream holds is due anew (its identity certificate
    /// is to be issued again): translate whatever the source says.
    Due,
    /// The source is gone.
    Gone,
}

/// Waits for the source's changes, or for `due` (the held snapshot's
/// [`EncodedSnapshot::refresh_at`]), whichever comes first.
async fn next_event(changes: &mut watch::Receiver<u64>, due: Option<std::time::SystemTime>) -> Next {
    let wait = async {
        match due {
            Some(t) => tokio::time::sleep(t.duration_since(std::time::SystemTime::now()).unwrap_or_default()).await,
            None => std::future::pending().await,
        }
    };
    let changed = tokio::select! {
        changed = changes.changed() => changed.is_ok(),
        () = wait => return Next::Due,
    };
    if changed { Next::Changed(*changes.borrow_and_update()) } else { Next::Gone }
}

/// The snapshot this stream's Envoy gets: its access loggers to the log
/// sink present the stream's own token. (Only then is it a copy; all other
/// streams share the source's.)
fn with_token(snapshot: Arc<EncodedSnapshot>, token: Option<&str>) -> Arc<EncodedSnapshot> {
    match token.and_then(|t| snapshot.with_log_credentials(t)) {
        Some(patched) => Arc::new(patched),
        None => snapshot,
    }
}

/// The dataplane token of a stream: its one `authorization` metadata value,
/// as kuma-dp sends it (the raw token).
fn token_of<T>(request: &Request<T>) -> Result<Option<String>, Status> {
    let mut values = request.metadata().get_all(kuma_xds_gen::render::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Status::unauthenticated("more than one authorization value"));
    }
    match first.map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(t)) => Ok(Some(t.trim().to_string())),
        Some(Err(_)) => Err(Status::unauthenticated("the authorization value is not text")),
    }
}

async fn run_stream<S: SnapshotSource, P: Protocol>(
    service: AdsService<S>,
    mut inbound: Streaming<P::Request>,
    (token, address): (Option<String>, String),
    out: mpsc::Sender<Result<P::Response, Status>>,
) {
    let entry = service.connections.open(address, P::NAME);
    // Responses a change caused, by nonce, with the moment it was seen.
    let mut pending: HashMap<String, Instant> = HashMap::new();
    let source = service.source.clone();
    let metrics = service.metrics.clone();
    /// Counts the stream as open while it runs.
    struct Open(XdsMetrics);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.stream_closed();
        }
    }
    metrics.stream_opened();
    let _open = Open(metrics.clone());
    // Whether the source knows this node: only then are its NACKs counted
    // under its own name (any client can claim any name; counting those
    // would let it grow the metrics without bound).
    let mut known = false;
    let first_by = tokio::time::Instant::now() + service.limits.first_request_timeout;
    let mut closing = service.closing.clone();
    let mut changes = source.changes();
    let mut ads = P::with_history(NodeHistory::new());
    let mut node: Option<NodeId> = None;
    let mut snapshot = Arc::new(EncodedSnapshot::default());
    // The source's snapshot, when `snapshot` is this stream's copy of it
    // (with its token): held so that the source keeps sharing it with the
    // node's other streams.
    let mut _shared: Option<Arc<EncodedSnapshot>> = None;
    // The generation this stream last asked the source about.
    let mut seen = 0;
    loop {
        tokio::select! {
            // The server is stopping: end the stream, so that the connection
            // can close; Envoy keeps serving the config it has.
            // (It only ever turns true, and a dropped sender means the same.)
            _ = closing.changed() => break,
            message = first_or_next(&mut inbound, node.is_none().then_some(first_by)) => {
                let request = match message {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(status) => {
                        info!("stream closed: {status}");
                        let _ = out.send(Err(status)).await;
                        break;
                    }
                };
                if node.is_none() {
                    let Some(n) = P::node(&request) else {
                        let _ = out.send(Err(Status::invalid_argument("the first request must carry node"))).await;
                        break;
                    };
                    let id = NodeId::of(n);
                    if service.authenticate
                        && let Err(e) = source.authenticate(&id, token.as_deref())
                    {
                        warn!(mesh = %id.mesh, dataplane = %id.name, "stream refused: {e}");
                        let _ = out.send(Err(e.into())).await;
                        break;
                    }
                    info!(mesh = %id.mesh, dataplane = %id.name, "Envoy connected");
                    ads = P::with_history(service.history(&id));
                    seen = *changes.borrow_and_update();
                    if let Some(s) = lookup(&*source, &id, None) {
                        snapshot = with_token(s.clone(), token.as_deref());
                        _shared = Some(s);
                        known = true;
                    }
                    node = Some(id);
                }
                let id = node.as_ref().expect("set above");
                // A stream speaks for one data plane: the one it was
                // authenticated for.
                if let Some(n) = P::node(&request)
                    && NodeId::of(n) != *id
                {
                    warn!(mesh = %id.mesh, dataplane = %id.name, "stream closed: it named another node");
                    let _ = out.send(Err(Status::permission_denied("the node cannot change on a stream"))).await;
                    break;
                }
                let outcome = ads.handle_request(&request, &snapshot);
                entry.update(id, &ads, outcome.resource_type.map(|t| (t, &outcome.kind)));
                match &outcome.kind {
                    RequestKind::Ack { .. } => {
                        if let Some(seen_at) = pending.remove(P::response_nonce(&request)) {
                            metrics.change_acked(seen_at.elapsed().as_secs_f64());
                        }
                    }
                    RequestKind::Nack { .. } => {
                        pending.remove(P::response_nonce(&request));
                    }
                    _ => {}
                }
                let type_url = P::type_url(&request).rsplit('/').next().unwrap_or_default();
                match &outcome.kind {
                    RequestKind::Nack { version, detail } => {
                        metrics.nack(known.then_some(id), P::type_url(&request));
                        let rejections = outcome.resource_type.and_then(|t| ads.history().rejections().get(&t).copied()).unwrap_or_default();
                        warn!(
                            mesh = %id.mesh, dataplane = %id.name, r#type = type_url, kept_version = %version, rejections,
                            "Envoy rejected the config (NACK); it keeps the last good one, and the rejected version is not sent again: {detail}"
                        )
                    }
                    RequestKind::Ack { version } => {
                        metrics.ack(known.then_some(id), P::type_url(&request));
                        info!(dataplane = %id.name, r#type = type_url, %version, "ACK")
                    }
                    RequestKind::Resume { version } => {
                        info!(dataplane = %id.name, r#type = type_url, %version, "Envoy already has the current version: nothing sent")
                    }
                    _ => {}
                }
                for response in outcome.responses {
                    metrics.response(P::response_type_url(&response));
                    if out.send(Ok(response)).await.is_err() {
                        return;
                    }
                }
            }
            next = next_event(&mut changes, snapshot.refresh_at), if node.is_some() => {
                let (generation, forced) = match next {
                    Next::Changed(g) => (g, false),
                    Next::Due => (seen, true),
                    Next::Gone => break,
                };
                let Some(id) = node.as_ref() else { continue };
                // A revoked token, or a signing key removed, ends the stream.
                if service.authenticate
                    && let Err(e) = source.authenticate(id, token.as_deref())
                {
                    warn!(mesh = %id.mesh, dataplane = %id.name, "stream closed: {e}");
                    let _ = out.send(Err(e.into())).await;
                    break;
                }
                let since = std::mem::replace(&mut seen, generation);
                let started = Instant::now();
                // Only what the change affects: the source answers None when
                // nothing this data plane reads changed.
                // (Due: translate anyway, the source cannot know which
                // certificate this stream holds.)
                let Some(shared) = lookup(&*source, id, (!forced).then_some(since)) else { continue };
                let new = with_token(shared.clone(), token.as_deref());
                _shared = Some(shared);
                known = true;
                let translate_ms = started.elapsed().as_secs_f64() * 1e3;
                metrics.translated(translate_ms / 1e3);
                let responses = ads.handle_snapshot(&snapshot, &new);
                snapshot = new;
                entry.update(id, &ads, None);
                // Responses never ACKed (a stream that stopped answering)
                // are not kept past a few changes.
                if pending.len() > 64 {
                    pending.clear();
                }
                pending.extend(responses.iter().map(|r| (P::nonce(r).to_string(), started)));
                if !responses.is_empty() {
                    let diff_ms = started.elapsed().as_secs_f64() * 1e3 - translate_ms;
                    info!(dataplane = %id.name, generation, updates = responses.len(), translate_ms, diff_ms, "pushing");
                }
                for response in responses {
                    metrics.response(P::response_type_url(&response));
                    if out.send(Ok(response)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[tonic::async_trait]
impl<S: SnapshotSource> AggregatedDiscoveryService for AdsService<S> {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        self.spawn_stream::<AdsStream>(request)
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        self.spawn_stream::<DeltaStream>(request)
    }
}
