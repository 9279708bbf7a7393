//! The sink of access logs to `tcp` logging backends: what kuma-dp does for
//! Kuma. Envoy formats each access-log line itself and sends it, as the body
//! of an OpenTelemetry log record, to this gRPC service (on the same server
//! as ADS); the resource attribute
//! [`kuma_xds_gen::policy::traffic_log::TCP_ADDRESS_ATTRIBUTE`] names the
//! backend. Each backend gets one TCP connection, written one line per record
//! and re-opened when it breaks. Only addresses that a loaded Mesh names as a
//! `tcp` logging backend are written to, so the sink cannot be used to reach
//! anything else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use envoy_types::pb::opentelemetry::proto::common::v1::{AnyValue, KeyValue, any_value};
use kuma_model::{Kind, ResourceSet, Spec};
use kuma_xds_gen::policy::traffic_log::TCP_ADDRESS_ATTRIBUTE;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use crate::server::Served;

/// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`, the
/// fields the sink reads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsServiceRequest {
    /// Records grouped by the resource (logger) that produced them.
    #[prost(message, repeated, tag = "1")]
    pub resource_logs: Vec<ResourceLogs>,
}

/// `opentelemetry.proto.logs.v1.ResourceLogs`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceLogs {
    /// The producing resource.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// Its records, by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_logs: Vec<ScopeLogs>,
}

/// `opentelemetry.proto.resource.v1.Resource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    /// Its attributes.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// `opentelemetry.proto.logs.v1.ScopeLogs`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeLogs {
    /// The records.
    #[prost(message, repeated, tag = "2")]
    pub log_records: Vec<LogRecord>,
}

/// `opentelemetry.proto.logs.v1.LogRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRecord {
    /// The formatted line.
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
}

/// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse` (all accepted).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsServiceResponse {}

/// The `tcp` logging backends a set names (`host:port`).
pub fn tcp_backends(set: &ResourceSet) -> impl Iterator<Item = &str> {
    set.of_kind(Kind::Mesh)
        .filter_map(|m| match &m.spec {
            Spec::Mesh(spec) => spec.logging.as_ref(),
            _ => None,
        })
        .flat_map(|l| l.backends.iter())
        .filter(|b| b.kind == "tcp")
        .map(|b| b.conf_str("address"))
}

fn string(value: &Option<AnyValue>) -> Option<&str> {
    match value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// Writes records to their backends.
#[derive(Debug, Clone)]
pub struct LogSink {
    served: watch::Receiver<Served>,
    writers: Arc<Mutex<HashMap<String, mpsc::Sender<String>>>>,
}

impl LogSink {
    /// A sink writing to the backends of the served resources.
    pub fn new(served: watch::Receiver<Served>) -> Self {
        LogSink { served, writers: Arc::default() }
    }

    /// Queues every record of `request` for its backend; records for an
    /// address no Mesh names are dropped with a warning.
    pub fn accept(&self, request: ExportLogsServiceRequest) {
        for logs in request.resource_logs {
            let attributes = logs.resource.iter().flat_map(|r| r.attributes.iter());
            let Some(address) = attributes.filter(|a| a.key == TCP_ADDRESS_ATTRIBUTE).find_map(|a| string(&a.value))
            else {
                continue;
            };
            if !tcp_backends(&self.served.borrow().set).any(|a| a == address) {
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
/// (only `Export`), written out by hand as tonic's generator would: the
/// collector protos are not part of envoy-types.
#[derive(Debug, Clone)]
pub struct LogsServiceServer {
    sink: LogSink,
}

impl LogsServiceServer {
    /// Serves `sink`.
    pub fn new(sink: LogSink) -> Self {
        LogsServiceServer { sink }
    }
}

impl tonic::server::NamedService for LogsServiceServer {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}

#[derive(Clone)]
struct Export(LogSink);

impl tonic::server::UnaryService<ExportLogsServiceRequest> for Export {
    type Response = ExportLogsServiceResponse;
    type Future = tonic::codegen::BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<ExportLogsServiceRequest>) -> Self::Future {
        self.0.accept(request.into_inner());
        Box::pin(async { Ok(tonic::Response::new(ExportLogsServiceResponse {})) })
    }
}

impl<B> tonic::codegen::Service<tonic::codegen::http::Request<B>> for LogsServiceServer
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
    use kuma_model::UnknownFields;

    fn request(address: &str, lines: &[&str]) -> ExportLogsServiceRequest {
        let value = |s: &str| Some(AnyValue { value: Some(any_value::Value::StringValue(s.into())) });
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: TCP_ADDRESS_ATTRIBUTE.into(),
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
        let (_tx, rx) = watch::channel(Served::initial(set));
        let sink = LogSink::new(rx);
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
