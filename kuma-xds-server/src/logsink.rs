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
use std::sync::{Arc, Mutex};

use kuma_xds_gen::TCP_LOG_ADDRESS_ATTRIBUTE;
use kuma_xds_gen::envoy_types::pb::opentelemetry::proto::common::v1::{AnyValue, KeyValue, any_value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::warn;

use crate::source::SnapshotSource;

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

/// Writes records to their backends.
#[derive(Debug)]
struct LogSink<S> {
    source: Arc<S>,
    writers: Arc<Mutex<HashMap<String, mpsc::Sender<String>>>>,
}

impl<S> Clone for LogSink<S> {
    fn clone(&self) -> Self {
        LogSink { source: self.source.clone(), writers: self.writers.clone() }
    }
}

impl<S: SnapshotSource> LogSink<S> {
    fn new(source: Arc<S>) -> Self {
        LogSink { source, writers: Arc::default() }
    }

    /// Queues every record of `request` for its backend; records for an
    /// address the source does not allow are dropped with a warning.
    fn accept(&self, request: ExportLogsServiceRequest) {
        for logs in request.resource_logs {
            let attributes = logs.resource.iter().flat_map(|r| r.attributes.iter());
            let Some(address) =
                attributes.filter(|a| a.key == TCP_LOG_ADDRESS_ATTRIBUTE).find_map(|a| string(&a.value))
            else {
                continue;
            };
            if !self.source.allows_log_backend(address) {
                warn!(%address, "access log records for an address no Mesh names as a tcp backend dropped");
                continue;
            }
            let tx = self.writer(address);
            for line in logs.scope_logs.iter().flat_map(|s| s.log_records.iter()).filter_map(|r| string(&r.body)) {
                if tx.try_send(line.to_string()).is_err() {
                    warn!(%address, "access log backend is behind; a line was dropped");
                }
            }
        }
    }

    fn writer(&self, address: &str) -> mpsc::Sender<String> {
        let mut writers = self.writers.lock().expect("writers lock");
        if let Some(tx) = writers.get(address).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(write_lines(address.to_string(), rx));
        writers.insert(address.to_string(), tx.clone());
        tx
    }
}

/// How long connecting to a backend may take before the line is dropped.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// One connection per backend, opened on the first line and again after a
/// failure (one retry per line; a line that still cannot be written is
/// dropped, and as with any TCP sender, a line written just as the backend
/// closes the connection can be lost).
async fn write_lines(address: String, mut lines: mpsc::Receiver<String>) {
    let mut conn: Option<TcpStream> = None;
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        for attempt in 0..2 {
            if conn.is_none() {
                let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await;
                match connect.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())) {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        warn!(%address, error = %e, "cannot connect to the access log backend");
                        break;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { break };
            match c.write_all(line.as_bytes()).await {
                Ok(()) => break,
                Err(e) => {
                    conn = None;
                    if attempt == 1 {
                        warn!(%address, error = %e, "writing to the access log backend failed");
                    }
                }
            }
        }
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
    /// A log sink writing to the backends `source` allows.
    pub fn new(source: Arc<S>) -> Self {
        LogsServiceServer { sink: LogSink::new(source) }
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
        self.0.accept(request.into_inner());
        Box::pin(async { Ok(tonic::Response::new(ExportLogsServiceResponse {})) })
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
    use kuma_xds_gen::kuma_model::{ResourceSet, UnknownFields};

    fn request(address: &str, lines: &[&str]) -> ExportLogsServiceRequest {
        let value = |s: &str| Some(AnyValue { value: Some(any_value::Value::StringValue(s.into())) });
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: TCP_LOG_ADDRESS_ATTRIBUTE.into(),
                        value: value(address),
                        ..Default::default()
                    }],
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: lines.iter().map(|l| LogRecord { body: value(l) }).collect(),
                }],
            }],
        }
    }

    #[tokio::test]
    async fn lines_reach_only_backends_a_mesh_names() {
        let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = collector.local_addr().unwrap().to_string();
        let yaml = format!(
            "type: Mesh\nname: default\nlogging: {{backends: [{{name: c, type: tcp, conf: {{address: '{address}'}}}}]}}\n"
        );
        let set = ResourceSet::load([("m.yaml", yaml.as_str())], UnknownFields::Reject).unwrap().0;
        let sink = LogSink::new(Arc::new(ResourceSetSource::new(set)));
        sink.accept(request("127.0.0.1:1", &["nowhere"]));
        assert!(sink.writers.lock().unwrap().is_empty(), "no writer for an address no Mesh names");
        sink.accept(request(&address, &["first", "second"]));
        let (conn, _) = collector.accept().await.unwrap();
        let mut text = String::new();
        let mut reader = tokio::io::BufReader::new(conn);
        for _ in 0..2 {
            tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut text).await.unwrap();
        }
        assert_eq!(text, "first\nsecond\n");
    }
}
