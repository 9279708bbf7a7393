//! `TrafficLog`: access logs of gateway listeners, to the mesh's `file`
//! logging backends, in Kuma's default formats (or the backend's own), with
//! Kuma's `%KUMA_*%` placeholders filled in. `tcp` backends are not
//! supported (Kuma streams those through kuma-dp).

use envoy_types::pb::envoy::config::accesslog::v3::{AccessLog, access_log};
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, SubstitutionFormatString, data_source, substitution_format_string,
};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{FileAccessLog, file_access_log};
use kuma_model::{Kind, ResourceSet, SERVICE_TAG, Spec, Tags};

use super::HostPolicies;

const HTTP_FORMAT: &str = "[%START_TIME%] %KUMA_MESH% \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-B3-TRACEID?X-DATADOG-TRACEID)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%KUMA_SOURCE_SERVICE%\" \"%KUMA_DESTINATION_SERVICE%\" \"%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%\" \"%UPSTREAM_HOST%\"\n";
const TCP_FORMAT: &str = "[%START_TIME%] %RESPONSE_FLAGS% %KUMA_MESH% %KUMA_SOURCE_ADDRESS_WITHOUT_PORT%(%KUMA_SOURCE_SERVICE%)->%UPSTREAM_HOST%(%KUMA_DESTINATION_SERVICE%) took %DURATION%ms, sent %BYTES_SENT% bytes, received: %BYTES_RECEIVED% bytes\n";

/// What the placeholders of a gateway listener's log format stand for.
#[derive(Debug, Clone, Copy)]
pub struct LogContext<'s> {
    /// The mesh.
    pub mesh: &'s str,
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
pub fn access_logs(set: &ResourceSet, host_tags: &Tags, ctx: LogContext<'_>) -> Vec<AccessLog> {
    let policies = HostPolicies::new(set, ctx.mesh, host_tags);
    let any: Tags = [(SERVICE_TAG.to_string(), "*".to_string())].into();
    let Some(policy) = policies.for_destination(Kind::TrafficLog, &any) else { return Vec::new() };
    let Spec::TrafficLog(log) = &policy.spec else { return Vec::new() };
    let Some(mesh) = set.mesh(ctx.mesh) else { return Vec::new() };
    let name = log.conf.as_ref().map_or("", |c| c.backend.as_str());
    let Some(backend) = mesh.logging_backend(name) else { return Vec::new() };
    if backend.kind != "file" {
        return Vec::new();
    }
    let format = if !backend.format.is_empty() {
        format!("{}\n", backend.format.trim_end_matches('\n'))
    } else if ctx.http {
        HTTP_FORMAT.to_string()
    } else {
        TCP_FORMAT.to_string()
    };
    let format = format
        .replace("%KUMA_MESH%", ctx.mesh)
        .replace("%KUMA_SOURCE_SERVICE%", ctx.service)
        .replace("%KUMA_DESTINATION_SERVICE%", "*")
        .replace("%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%", ctx.address)
        .replace("%KUMA_SOURCE_ADDRESS%", ctx.address);
    let file = FileAccessLog {
        path: backend.conf_str("path").to_string(),
        access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(SubstitutionFormatString {
            format: Some(substitution_format_string::Format::TextFormatSource(DataSource {
                specifier: Some(data_source::Specifier::InlineString(format)),
                ..Default::default()
            })),
            ..Default::default()
        })),
    };
    vec![AccessLog {
        name: "envoy.access_loggers.file".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(crate::pb::any(&file))),
        ..Default::default()
    }]
}
