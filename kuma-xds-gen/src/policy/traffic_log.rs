//! `TrafficLog`: access logs of gateway listeners, to the mesh's logging
//! backends, in Kuma's default formats (or the backend's own), with Kuma's
//! `%KUMA_*%` placeholders filled in.
//!
//! A `file` backend is Envoy's file access logger. A `tcp` backend is what
//! kuma-dp does for Kuma: Envoy formats each line itself (its OpenTelemetry
//! access logger, with the format as the record body) and sends the records
//! over gRPC to the control plane that serves it (`kuma-gateway serve`, on
//! the bootstrap's [`crate::render::ADS_CLUSTER`]), which writes them, one
//! line each, to the backend's `address` ([`TCP_ADDRESS_ATTRIBUTE`] says
//! which).

use envoy_types::pb::envoy::config::accesslog::v3::{AccessLog, access_log};
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, SubstitutionFormatString, data_source, substitution_format_string,
};
use envoy_types::pb::envoy::config::core::v3::{GrpcService, grpc_service};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{FileAccessLog, file_access_log};
use envoy_types::pb::envoy::extensions::access_loggers::open_telemetry::v3::OpenTelemetryAccessLogConfig;
use envoy_types::pb::opentelemetry::proto::common::v1::{AnyValue, KeyValue, KeyValueList, any_value};
use kuma_model::{Kind, ResourceSet, SERVICE_TAG, Spec, Tags};

use super::HostPolicies;

const HTTP_FORMAT: &str = "[%START_TIME%] %KUMA_MESH% \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-B3-TRACEID?X-DATADOG-TRACEID)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%KUMA_SOURCE_SERVICE%\" \"%KUMA_DESTINATION_SERVICE%\" \"%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%\" \"%UPSTREAM_HOST%\"\n";
const TCP_FORMAT: &str = "[%START_TIME%] %RESPONSE_FLAGS% %KUMA_MESH% %KUMA_SOURCE_ADDRESS_WITHOUT_PORT%(%KUMA_SOURCE_SERVICE%)->%UPSTREAM_HOST%(%KUMA_DESTINATION_SERVICE%) took %DURATION%ms, sent %BYTES_SENT% bytes, received: %BYTES_RECEIVED% bytes\n";

/// The OpenTelemetry resource attribute naming the `tcp` backend
/// (`host:port`) the records of an access logger go to.
pub const TCP_ADDRESS_ATTRIBUTE: &str = "kuma.io/log-address";

/// The resource attribute naming the sending data plane's mesh.
pub const TCP_MESH_ATTRIBUTE: &str = "kuma.io/mesh";

/// The resource attribute naming the sending data plane.
pub const TCP_DATAPLANE_ATTRIBUTE: &str = "kuma.io/dataplane";

/// The Envoy access logger of `tcp` backends.
pub(crate) const TCP_LOGGER: &str = "envoy.access_loggers.open_telemetry";

/// What the placeholders of a gateway listener's log format stand for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogContext<'s> {
    /// The mesh.
    pub mesh: &'s str,
    /// The data plane's name.
    pub dataplane: &'s str,
    /// The gateway's `kuma.io/service`.
    pub service: &'s str,
    /// The data plane address.
    pub address: &'s str,
    /// An HTTP listener (else TCP).
    pub http: bool,
}

/// The access logs of a listener whose hosts have `host_tags`: the TrafficLog
/// whose sources match them and whose destinations match `*` (the gateway's
/// pass-through), to its backend (or the mesh's default backend).
pub(crate) fn access_logs(set: &ResourceSet, host_tags: &Tags, ctx: LogContext<'_>) -> Vec<AccessLog> {
    let policies = HostPolicies::new(set, ctx.mesh, host_tags);
    let any: Tags = [(SERVICE_TAG.to_string(), "*".to_string())].into();
    let Some(policy) = policies.for_destination(Kind::TrafficLog, &any) else { return Vec::new() };
    let Spec::TrafficLog(log) = &policy.spec else { return Vec::new() };
    let Some(mesh) = set.mesh(ctx.mesh) else { return Vec::new() };
    let name = log.conf.as_ref().map_or("", |c| c.backend.as_str());
    let Some(backend) = mesh.logging_backend(name) else { return Vec::new() };
    if backend.kind != "file" && backend.kind != "tcp" {
        return Vec::new();
    }
    let format = if !backend.format.is_empty() {
        format!("{}\n", backend.format.trim_end_matches('\n'))
    } else if ctx.http {
        HTTP_FORMAT.to_string()
    } else {
        TCP_FORMAT.to_string()
    };
    let format = fill(&format, ctx, ctx.service, "*");
    if backend.kind == "tcp" {
        return vec![tcp_logger(backend.conf_str("address"), format.trim_end_matches('\n'), ctx)];
    }
    vec![file_logger(backend.conf_str("path"), substitution(Line::Text(format)))]
}

/// `format` with Kuma's placeholders filled in.
fn fill(format: &str, ctx: LogContext<'_>, source: &str, destination: &str) -> String {
    format
        .replace("%KUMA_MESH%", ctx.mesh)
        .replace("%KUMA_SOURCE_SERVICE%", source)
        .replace("%KUMA_DESTINATION_SERVICE%", destination)
        .replace("%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%", ctx.address)
        .replace("%KUMA_SOURCE_ADDRESS%", ctx.address)
}

/// A log line's format: text, or JSON from (key, value) pairs with
/// whether empty values are left out.
enum Line {
    Text(String),
    Json(Vec<(String, String)>, bool),
}

fn substitution(line: Line) -> SubstitutionFormatString {
    match line {
        Line::Json(fields, omit_empty_values) => SubstitutionFormatString {
            format: Some(substitution_format_string::Format::JsonFormat(crate::pb::string_struct(
                fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ))),
            omit_empty_values,
            ..Default::default()
        },
        Line::Text(text) => SubstitutionFormatString {
            format: Some(substitution_format_string::Format::TextFormatSource(DataSource {
                specifier: Some(data_source::Specifier::InlineString(text)),
                ..Default::default()
            })),
            ..Default::default()
        },
    }
}

fn file_logger(path: &str, format: SubstitutionFormatString) -> AccessLog {
    let file = FileAccessLog {
        path: path.to_string(),
        access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(format)),
    };
    AccessLog {
        name: "envoy.access_loggers.file".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(crate::pb::any(&file))),
        ..Default::default()
    }
}

/// A listener's `MeshAccessLog` loggers: `to` backends (source: the
/// gateway, destination `*`), then `from` backends (source `unknown`,
/// destination: the gateway), as Kuma's plugin adds them.
pub(crate) fn mesh_access_logs(
    policies: &kuma_policy::mesh_policies::ListenerPolicies,
    ctx: LogContext<'_>,
) -> Vec<AccessLog> {
    use kuma_model::mesh_access_log::{LogBackendType, LogFormat, LogFormatType};
    let default = if ctx.http { HTTP_FORMAT } else { TCP_FORMAT };
    let render = |format: Option<&LogFormat>, source: &str, destination: &str| -> Line {
        match format {
            Some(f) if f.kind == LogFormatType::Json => {
                let fields = f.json.iter().flatten().map(|j| (j.key.clone(), fill(&j.value, ctx, source, destination)));
                Line::Json(fields.collect(), f.omit_empty_values)
            }
            Some(f) => {
                let text = f.plain.as_deref().unwrap_or(default).trim_end_matches('\n');
                Line::Text(format!("{}\n", fill(text, ctx, source, destination)))
            }
            None => Line::Text(fill(default, ctx, source, destination)),
        }
    };
    let mut out = Vec::new();
    let sides = [
        (policies.access_log_to.mesh.as_deref(), ctx.service, "*"),
        (policies.access_log_from.as_ref(), "unknown", ctx.service),
    ];
    for (conf, source, destination) in sides {
        for b in conf.and_then(|c| c.backends.as_ref()).into_iter().flatten() {
            match b.kind {
                LogBackendType::File => {
                    let Some(f) = &b.file else { continue };
                    out.push(file_logger(&f.path, substitution(render(f.format.as_ref(), source, destination))));
                }
                LogBackendType::Tcp => {
                    let Some(t) = &b.tcp else { continue };
                    // Validation refuses JSON for tcp backends.
                    if let Line::Text(text) = render(t.format.as_ref(), source, destination) {
                        out.push(tcp_logger(&t.address, text.trim_end_matches('\n'), ctx));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn string(s: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(any_value::Value::StringValue(s.to_string())) })
}

fn tcp_logger(address: &str, format: &str, ctx: LogContext<'_>) -> AccessLog {
    let config = OpenTelemetryAccessLogConfig {
        grpc_service: Some(GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(grpc_service::EnvoyGrpc {
                cluster_name: crate::render::ADS_CLUSTER.into(),
                ..Default::default()
            })),
            ..Default::default()
        }),
        // One logger (and gRPC stream) per backend.
        log_name: format!("kuma-tcp-log {address}"),
        body: string(format),
        resource_attributes: Some(KeyValueList {
            values: vec![
                KeyValue { key: TCP_ADDRESS_ATTRIBUTE.into(), value: string(address), ..Default::default() },
                // Who sends the records: the sink checks the stream's token
                // against this data plane, as ADS does.
                KeyValue { key: TCP_MESH_ATTRIBUTE.into(), value: string(ctx.mesh), ..Default::default() },
                KeyValue { key: TCP_DATAPLANE_ATTRIBUTE.into(), value: string(ctx.dataplane), ..Default::default() },
            ],
        }),
        disable_builtin_labels: true,
        ..Default::default()
    };
    AccessLog {
        name: TCP_LOGGER.into(),
        config_type: Some(access_log::ConfigType::TypedConfig(crate::pb::any(&config))),
        ..Default::default()
    }
}

/// True when `bytes` (an encoded listener) may hold a logger to the sink:
/// its name is written as is in the encoding, so a listener without it is
/// never decoded.
pub(crate) fn may_log_to_sink(bytes: &[u8]) -> bool {
    bytes.windows(TCP_LOGGER.len()).any(|w| w == TCP_LOGGER.as_bytes())
}

/// Adds `token` to the loggers of `listener` that send to the log sink;
/// true when there was one.
pub(crate) fn add_log_credentials(
    listener: &mut envoy_types::pb::envoy::config::listener::v3::Listener,
    token: &str,
) -> bool {
    use envoy_types::pb::envoy::config::listener::v3::filter;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
    use prost::{Message, Name};

    fn patch_logs(logs: &mut [AccessLog], token: &str) -> bool {
        let mut changed = false;
        for log in logs.iter_mut().filter(|l| l.name == TCP_LOGGER) {
            let Some(access_log::ConfigType::TypedConfig(any)) = &mut log.config_type else { continue };
            let Ok(mut config) = OpenTelemetryAccessLogConfig::decode(any.value.as_slice()) else { continue };
            if let Some(grpc) = config.grpc_service.as_mut() {
                grpc.initial_metadata = vec![envoy_types::pb::envoy::config::core::v3::HeaderValue {
                    key: crate::render::AUTHORIZATION.into(),
                    value: token.into(),
                    ..Default::default()
                }];
                *any = crate::pb::any(&config);
                changed = true;
            }
        }
        changed
    }

    let mut changed = false;
    for chain in &mut listener.filter_chains {
        for f in &mut chain.filters {
            let Some(filter::ConfigType::TypedConfig(any)) = &mut f.config_type else { continue };
            if any.type_url == HttpConnectionManager::type_url() {
                let Ok(mut hcm) = HttpConnectionManager::decode(any.value.as_slice()) else { continue };
                if patch_logs(&mut hcm.access_log, token) {
                    *any = crate::pb::any(&hcm);
                    changed = true;
                }
            } else if any.type_url == TcpProxy::type_url() {
                let Ok(mut proxy) = TcpProxy::decode(any.value.as_slice()) else { continue };
                if patch_logs(&mut proxy.access_log, token) {
                    *any = crate::pb::any(&proxy);
                    changed = true;
                }
            }
        }
    }
    changed
}
