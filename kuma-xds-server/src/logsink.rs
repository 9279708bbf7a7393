//! The sink of access logs to `tcp` logging backends: what kuma-dp does for
//! Kuma. Envoy formats each access-log line itself and sends it, as the body
//! of an OpenTelemetry log record, to this gRPC service (on the same server
//! as ADS); the resource attribute
//! [`kuma_xds_gen::TCP_LOG_ADDRESS_ATTRIBUTE`] names the
//! backend. Each backend gets one TCP connection, written one line per record
//! and re-opened when it breaks. Only addresses that the
//! [`SnapshotSource`] allows ([`SnapshotSource::allows_log_backend`]) are
//! written to, so the sink cannot be used to reach anything else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kuma_xds_gen::envoy_types::pb::opentelemetry::proto::common::v1::{AnyValue, KeyValue, any_value};
use kuma_xds_gen::{TCP_LOG_ADDRESS_ATTRIBUTE, TCP_LOG_DATAPLANE_ATTRIBUTE, TCP_LOG_MESH_ATTRIBUTE};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::warn;

use crate::metrics::XdsMetrics;
use crate::source::{NodeId, SnapshotSource};

/// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`, the
/// fields the sink reads.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExportLogsServiceRequest {
    /// Records grouped by the resource (logger) that produced them.
    #[prost(message, repeated, tag = "1")]
    pub(crate) resource_logs: Vec<ResourceLogs>,
}

/// `opentelemetry.proto.logs.v1.ResourceLogs`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ResourceLogs {
    /// The producing resource.
    #[prost(message, optional, tag = "1")]
    pub(crate) resource: Option<Resource>,
    /// Its records, by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    pub(crate) scope_logs: Vec<ScopeLogs>,
}

/// `opentelemetry.proto.resource.v1.Resource`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Resource {
    /// Its attributes.
    #[prost(message, repeated, tag = "1")]
    pub(crate) attributes: Vec<KeyValue>,
}

/// `opentelemetry.proto.logs.v1.ScopeLogs`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ScopeLogs {
    /// The records.
    #[prost(message, repeated, tag = "2")]
    pub(crate) log_records: Vec<LogRecord>,
}

/// `opentelemetry.proto.logs.v1.LogRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct LogRecord {
    /// The formatted line.
    #[prost(message, optional, tag = "5")]
    pub(crate) body: Option<AnyValue>,
}

/// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse` (all accepted).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExportLogsServiceResponse {}

fn string(value: &Option<AnyValue>) -> Option<&str> {
    match value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// Bytes of lines queued for all backends at most; past it, lines are
/// dropped (and counted) until the backends catch up.
const MAX_QUEUED_BYTES: usize = 16 << 20;
/// Bytes queued for one backend at most, so that one slow or unreachable
/// backend cannot take the whole queue from the others.
const MAX_QUEUED_PER_BACKEND: usize = 4 << 20;
/// How long one write to a backend may take; then the connection is
/// dropped with the line.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Dropped lines are reported at most this often per backend.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What one backend's writer shares with the sink.
#[derive(Debug)]
struct Backend {
    lines: mpsc::UnboundedSender<String>,
    /// Bytes queued for this backend.
    queued: AtomicUsize,
    /// Lines dropped since the last warning.
    dropped: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl Backend {
    /// Counts a dropped line; warns at most once a minute.
    fn drop_line(&self, address: &str, why: &str, metrics: &XdsMetrics) {
        metrics.log_line_dropped();
        self.dropped.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            warn!(%address, dropped, "access log lines dropped ({why}); next report in a minute at most");
            *last = Some(Instant::now());
        }
    }
}

/// Writes records to their backends.
#[derive(Debug)]
struct LogSink<S> {
    source: Arc<S>,
    backends: Arc<Mutex<HashMap<String, Arc<Backend>>>>,
    /// Bytes queued for every backend together.
    queued: Arc<AtomicUsize>,
    authenticate: bool,
    metrics: XdsMetrics,
}

impl<S> Clone for LogSink<S> {
    fn clone(&self) -> Self {
        LogSink {
            source: self.source.clone(),
            backends: self.backends.clone(),
            queued: self.queued.clone(),
            authenticate: self.authenticate,
            metrics: self.metrics.clone(),
        }
    }
}

/// A record's attribute, as text.
fn attribute<'a>(logs: &'a ResourceLogs, key: &str) -> Option<&'a str> {
    logs.resource.iter().flat_map(|r| r.attributes.iter()).filter(|a| a.key == key).find_map(|a| string(&a.value))
}

/// One line however the record reads: newlines, carriage returns and other
/// control characters (but tab) are escaped, so a record can never forge a
/// second line.
fn one_line(body: &str) -> String {
    if !body.contains(|c: char| c.is_control() && c != '\t') {
        return format!("{body}\n");
    }
    let mut out = String::with_capacity(body.len() + 1);
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

impl<S: SnapshotSource> LogSink<S> {
    fn new(source: Arc<S>) -> Self {
        LogSink {
            source,
            backends: Arc::default(),
            queued: Arc::default(),
            authenticate: true,
            metrics: XdsMetrics::default(),
        }
    }

    /// Queues every record of `request`, sent with `token`, for its backend.
    /// The records must name a data plane the token is valid for (as ADS
    /// checks it), and go to a `tcp` backend of that data plane's mesh.
    fn accept(&self, request: ExportLogsServiceRequest, token: Option<&str>) -> Result<(), tonic::Status> {
        for logs in &request.resource_logs {
            let Some(address) = attribute(logs, TCP_LOG_ADDRESS_ATTRIBUTE) else { continue };
            let mesh = attribute(logs, TCP_LOG_MESH_ATTRIBUTE).unwrap_or_default();
            let node = NodeId {
                mesh: mesh.to_string(),
                name: attribute(logs, TCP_LOG_DATAPLANE_ATTRIBUTE).unwrap_or_default().to_string(),
            };
            if self.authenticate
                && let Err(e) = self.source.authenticate(&node, token)
            {
                warn!(mesh = %node.mesh, dataplane = %node.name, "access log records refused: {e}");
                return Err(e.into());
            }
            if !self.source.allows_log_backend(mesh, address) {
                warn!(%mesh, %address, "access log records for an address the mesh does not name as a tcp backend dropped");
                continue;
            }
            let backend = self.backend(address);
            for body in logs.scope_logs.iter().flat_map(|s| s.log_records.iter()).filter_map(|r| string(&r.body)) {
                // Escaping only lengthens a line: a record that does not fit
                // as it is is dropped before any work is spent on it.
                let full = |q: &AtomicUsize, max: usize, len: usize| q.load(Ordering::Acquire) + len > max;
                if full(&self.queued, MAX_QUEUED_BYTES, body.len() + 1)
                    || full(&backend.queued, MAX_QUEUED_PER_BACKEND, body.len() + 1)
                {
                    backend.drop_line(address, "the backend is behind (4 MiB queued, 16 MiB for all)", &self.metrics);
                    continue;
                }
                let line = one_line(body);
                let len = line.len();
                let reserve = |q: &AtomicUsize, max: usize| {
                    q.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n + len <= max).then_some(n + len)).is_ok()
                };
                if !reserve(&backend.queued, MAX_QUEUED_PER_BACKEND) {
                    backend.drop_line(address, "the backend is behind (4 MiB queued)", &self.metrics);
                    continue;
                }
                if !reserve(&self.queued, MAX_QUEUED_BYTES) {
                    backend.queued.fetch_sub(len, Ordering::AcqRel);
                    backend.drop_line(address, "the backends are behind (16 MiB queued)", &self.metrics);
                    continue;
                }
                self.metrics.log_queue_bytes(self.queued.load(Ordering::Relaxed));
                if backend.lines.send(line).is_err() {
                    self.queued.fetch_sub(len, Ordering::AcqRel);
                    backend.queued.fetch_sub(len, Ordering::AcqRel);
                }
            }
        }
        Ok(())
    }

    fn backend(&self, address: &str) -> Arc<Backend> {
        let mut backends = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = backends.get(address).filter(|b| !b.lines.is_closed()) {
            return b.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let backend = Arc::new(Backend {
            lines: tx,
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        });
        let writer = Writer {
            address: address.to_string(),
            backend: backend.clone(),
            queued: self.queued.clone(),
            metrics: self.metrics.clone(),
        };
        tokio::spawn(writer.run(rx));
        backends.insert(address.to_string(), backend.clone());
        backend
    }
}

/// How long connecting to a backend may take before the line is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One backend's connection.
struct Writer {
    address: String,
    backend: Arc<Backend>,
    queued: Arc<AtomicUsize>,
    metrics: XdsMetrics,
}

impl Writer {
    /// One connection, opened on the first line and again after a failure
    /// (one retry per line; a line that still cannot be written is dropped,
    /// and as with any TCP sender, a line written just as the backend
    /// closes the connection can be lost). A write that takes longer than
    /// 5 s drops the connection and the line.
    async fn run(self, mut lines: mpsc::UnboundedReceiver<String>) {
        let address = self.address.as_str();
        let mut conn: Option<TcpStream> = None;
        while let Some(line) = lines.recv().await {
            for attempt in 0..2 {
                if conn.is_none() {
                    let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await;
                    match connect.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())) {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            // Unreachable: drop what waits too, rather than
                            // spend a connect timeout on every line.
                            self.backend.drop_line(address, &format!("cannot connect: {e}"), &self.metrics);
                            while let Ok(waiting) = lines.try_recv() {
                                self.backend.drop_line(address, &format!("cannot connect: {e}"), &self.metrics);
                                self.release(waiting.len());
                            }
                            break;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { break };
                match tokio::time::timeout(WRITE_TIMEOUT, c.write_all(line.as_bytes())).await {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => {
                        conn = None;
                        if attempt == 1 {
                            self.backend.drop_line(address, &format!("writing failed: {e}"), &self.metrics);
                        }
                    }
                    Err(_) => {
                        conn = None;
                        self.backend.drop_line(address, "a write took over 5 s", &self.metrics);
                        break;
                    }
                }
            }
            self.release(line.len());
        }
    }

    /// Gives back the queue space of a line written or dropped.
    fn release(&self, len: usize) {
        self.backend.queued.fetch_sub(len, Ordering::AcqRel);
        let left = self.queued.fetch_sub(len, Ordering::AcqRel) - len;
        self.metrics.log_queue_bytes(left);
    }
}

/// The gRPC service `opentelemetry.proto.collector.logs.v1.LogsService`
/// (only `Export`), where Envoy sends the access-log lines of `tcp` logging
/// backends; written out by hand as tonic's generator would, since the
/// collector protos are not part of envoy-types.
#[derive(Debug)]
pub struct LogsServiceServer<S> {
    sink: LogSink<S>,
}

impl<S> Clone for LogsServiceServer<S> {
    fn clone(&self) -> Self {
        LogsServiceServer { sink: self.sink.clone() }
    }
}

impl<S: SnapshotSource> LogsServiceServer<S> {
    /// A log sink writing to the backends `source` allows, for calls that
    /// carry a dataplane token valid for the data plane their records name.
    pub fn new(source: Arc<S>) -> Self {
        LogsServiceServer { sink: LogSink::new(source) }
    }

    /// Takes calls without a token (loopback servers only).
    pub fn allow_unauthenticated(mut self) -> Self {
        self.sink.authenticate = false;
        self
    }

    /// Counts queued bytes and dropped lines in `metrics`.
    pub fn with_metrics(mut self, metrics: XdsMetrics) -> Self {
        self.sink.metrics = metrics;
        self
    }
}

impl<S> tonic::server::NamedService for LogsServiceServer<S> {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}

struct Export<S>(LogSink<S>);

impl<S: SnapshotSource> tonic::server::UnaryService<ExportLogsServiceRequest> for Export<S> {
    type Response = ExportLogsServiceResponse;
    type Future = tonic::codegen::BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<ExportLogsServiceRequest>) -> Self::Future {
        let token = request.metadata().get(kuma_xds_gen::render::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = token.map(|t| t.trim().to_string());
        let result = self.0.accept(request.into_inner(), token.as_deref());
        Box::pin(async move { result.map(|()| tonic::Response::new(ExportLogsServiceResponse {})) })
    }
}

impl<S: SnapshotSource, B> tonic::codegen::Service<tonic::codegen::http::Request<B>> for LogsServiceServer<S>
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        if request.uri().path() == "/opentelemetry.proto.collector.logs.v1.LogsService/Export" {
            let method = Export(self.sink.clone());
            return Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(method, request).await)
            });
        }
        Box::pin(async {
            let mut response = tonic::codegen::http::Response::new(tonic::body::Body::default());
            let headers = response.headers_mut();
            headers.insert(tonic::Status::GRPC_STATUS, (tonic::Code::Unimplemented as i32).into());
            headers.insert(tonic::codegen::http::header::CONTENT_TYPE, tonic::metadata::GRPC_CONTENT_TYPE);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResourceSetSource;
    use crate::tokens::{DataplaneClaims, SigningKey};
    use kuma_xds_gen::kuma_model::{ResourceSet, UnknownFields};

    fn request(mesh: &str, dataplane: &str, address: &str, lines: &[&str]) -> ExportLogsServiceRequest {
        let value = |s: &str| Some(AnyValue { value: Some(any_value::Value::StringValue(s.into())) });
        let attribute = |k: &str, v: &str| KeyValue { key: k.into(), value: value(v), ..Default::default() };
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        attribute(TCP_LOG_ADDRESS_ATTRIBUTE, address),
                        attribute(TCP_LOG_MESH_ATTRIBUTE, mesh),
                        attribute(TCP_LOG_DATAPLANE_ATTRIBUTE, dataplane),
                    ],
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: lines.iter().map(|l| LogRecord { body: value(l) }).collect(),
                }],
            }],
        }
    }

    /// Mesh `default` with a tcp backend at `address` and a gateway `gw`;
    /// mesh `other` names no backend.
    fn source(address: &str, key: Option<&SigningKey>) -> Arc<ResourceSetSource> {
        use base64::Engine as _;
        let mut yaml = format!(
            "type: Mesh\nname: default\nlogging: {{backends: [{{name: c, type: tcp, conf: {{address: '{address}'}}}}]}}\n---\n\
type: Mesh\nname: other\n---\n\
type: Dataplane\nname: gw\nnetworking: {{address: 127.0.0.1, gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw}}}}}}\n"
        );
        if let Some(key) = key {
            let pem = base64::engine::general_purpose::STANDARD.encode(key.to_pem().unwrap());
            yaml += &format!("---\ntype: Secret\nname: dataplane-token-signing-key-default-1\ndata: {pem}\n");
        }
        Arc::new(ResourceSetSource::new(
            ResourceSet::load([("m.yaml", yaml.as_str())], UnknownFields::Reject).unwrap().0,
        ))
    }

    async fn read_lines(collector: &tokio::net::TcpListener, n: usize) -> String {
        let (conn, _) = collector.accept().await.unwrap();
        let mut text = String::new();
        let mut reader = tokio::io::BufReader::new(conn);
        for _ in 0..n {
            tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut text).await.unwrap();
        }
        text
    }

    #[tokio::test]
    async fn only_authenticated_records_reach_only_their_meshs_backends_one_line_each() {
        let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = collector.local_addr().unwrap().to_string();
        let key = SigningKey::generate("1").unwrap();
        let sink = LogSink::new(source(&address, Some(&key)));
        let claims = DataplaneClaims::new(
            "gw",
            "default",
            Default::default(),
            std::time::SystemTime::now(),
            Duration::from_secs(60),
        );
        let token = key.issue(&claims).unwrap();

        let refused = sink.accept(request("default", "gw", &address, &["forged"]), None).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        let refused = sink.accept(request("default", "other-gw", &address, &["forged"]), Some(&token)).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "a token for another data plane");
        assert!(sink.backends.lock().unwrap().is_empty(), "nothing was queued");
        // Another mesh's records may not use this mesh's backend.
        sink.accept(request("other", "gw", &address, &["x"]), Some(&token)).unwrap_err();
        sink.accept(request("default", "gw", "127.0.0.1:1", &["nowhere"]), Some(&token)).unwrap();
        assert!(sink.backends.lock().unwrap().is_empty(), "no writer for an address the mesh does not name");

        sink.accept(request("default", "gw", &address, &["first", "two\nlines\r\u{1b}[31m"]), Some(&token)).unwrap();
        assert_eq!(read_lines(&collector, 2).await, "first\ntwo\\nlines\\r\\u{1b}[31m\n");
    }

    fn rss_bytes() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<usize>().ok());
        kb.unwrap_or(0) * 1024
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_collector_that_never_reads_costs_at_most_the_queue() {
        // It accepts the connection and never reads: its socket buffers
        // fill, then writes wait (and time out).
        let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = collector.local_addr().unwrap().to_string();
        let _held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = collector.accept().await {
                held.push(conn);
            }
        });
        let mut sink = LogSink::new(source(&address, None));
        sink.authenticate = false;
        let before = rss_bytes();
        let record = "x".repeat(1 << 20);
        let mut peak = 0;
        for _ in 0..10_000 {
            sink.accept(request("default", "gw", &address, &[&record]), None).unwrap();
            peak = peak.max(sink.queued.load(Ordering::Relaxed));
        }
        assert!(peak <= MAX_QUEUED_PER_BACKEND, "queued {peak} bytes for one backend");
        let grown = rss_bytes().saturating_sub(before);
        assert!(grown < 64 << 20, "10,000 records of 1 MiB grew the process by {} MiB", grown >> 20);
        let backend = sink.backends.lock().unwrap().values().next().cloned().unwrap();
        assert!(backend.dropped.load(Ordering::Relaxed) > 9_000 || backend.last_warning.lock().unwrap().is_some());
    }
}
