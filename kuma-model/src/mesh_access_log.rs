//! `MeshAccessLog`: Kuma 2.x access logs. On a builtin gateway `to` entries
//! log what the gateway sends (source: the gateway, destination `*`) and
//! `from` entries what it receives (source `unknown`, destination: the
//! gateway), to file or TCP backends.

use serde::{Deserialize, Serialize};

use crate::target_ref::{POLICY_TOP_KINDS, TargetKind, TargetRef, TargetRules, validate_sections, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshAccessLog`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshAccessLogSpec {
    /// What the policy applies to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Logs of outgoing traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<AccessLogEntry>>,
    /// Logs of incoming traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<AccessLogEntry>>,
    /// Inbound rules (sidecars; read, not applied to gateways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<serde_json::Value>>,
}

/// A `to` or `from` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessLogEntry {
    /// Which peers (`Mesh` on gateways).
    pub target_ref: TargetRef,
    /// The backends.
    pub default: AccessLogConf,
}

/// `default`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogConf {
    /// Where lines go; a later policy's list replaces an earlier one's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<LogBackend>>,
}

/// A backend: `type` names which field applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogBackend {
    /// `File`, `Tcp` or `OpenTelemetry`.
    #[serde(rename = "type")]
    pub kind: LogBackendType,
    /// A file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileBackend>,
    /// A TCP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpBackend>,
    /// An OpenTelemetry collector (not served by this gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_telemetry: Option<serde_json::Value>,
}

/// Backend types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum LogBackendType {
    File,
    Tcp,
    OpenTelemetry,
}

/// `file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBackend {
    /// The file.
    pub path: String,
    /// The line format (Kuma's default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
}

/// `tcp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpBackend {
    /// `host:port` (or a URL).
    pub address: String,
    /// The line format (Kuma's default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
}

/// A line format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogFormat {
    /// `Plain` or `Json`.
    #[serde(rename = "type")]
    pub kind: LogFormatType,
    /// Envoy command operators in text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<String>,
    /// Keys and command operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Vec<JsonField>>,
    /// Leave empty values out.
    #[serde(default)]
    pub omit_empty_values: bool,
}

/// Format types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum LogFormatType {
    Plain,
    Json,
}

/// A JSON field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonField {
    /// The key.
    pub key: String,
    /// The value (command operators).
    pub value: String,
}

impl AccessLogConf {
    /// `other` over `self`: its backends replace these.
    pub fn merge(&mut self, other: &AccessLogConf) {
        if other.backends.is_some() {
            self.backends.clone_from(&other.backends);
        }
    }
}

impl MeshAccessLogSpec {
    /// The `to` entries: target and conf.
    pub fn to_confs(&self) -> Vec<(&TargetRef, &AccessLogConf)> {
        self.to.as_deref().unwrap_or_default().iter().map(|e| (&e.target_ref, &e.default)).collect()
    }

    /// The `from` entries: target and conf.
    pub fn from_confs(&self) -> Vec<(&TargetRef, &AccessLogConf)> {
        self.from.as_deref().unwrap_or_default().iter().map(|e| (&e.target_ref, &e.default)).collect()
    }

    /// Kuma's validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        let top = self.target_ref.as_ref().map_or(TargetKind::Mesh, |t| t.kind);
        if let Some(t) = &self.target_ref {
            validate_target_ref(
                &root.field("targetRef"),
                t,
                TargetRules::with_listener_tags(POLICY_TOP_KINDS),
                &mut out,
            );
        }
        let (to, from) = (self.to.as_deref().unwrap_or_default(), self.from.as_deref().unwrap_or_default());
        let rules = self.rules.as_deref().unwrap_or_default();
        validate_sections(&root, to.len(), from.len(), rules.len(), true, &mut out);
        for (i, e) in from.iter().enumerate() {
            let p = root.field("from").index(i);
            validate_target_ref(
                &p.field("targetRef"),
                &e.target_ref,
                TargetRules::kinds(&[TargetKind::Mesh]),
                &mut out,
            );
            validate_conf(&p.field("default"), &e.default, &mut out);
        }
        for (i, e) in to.iter().enumerate() {
            let p = root.field("to").index(i);
            let kinds: &[TargetKind] = if top == TargetKind::MeshGateway {
                &[TargetKind::Mesh]
            } else {
                &[
                    TargetKind::Mesh,
                    TargetKind::MeshService,
                    TargetKind::MeshExternalService,
                    TargetKind::MeshMultiZoneService,
                    TargetKind::MeshHttpRoute,
                ]
            };
            validate_target_ref(&p.field("targetRef"), &e.target_ref, TargetRules::kinds(kinds), &mut out);
            validate_conf(&p.field("default"), &e.default, &mut out);
        }
        out
    }
}

fn validate_conf(path: &FieldPath, c: &AccessLogConf, out: &mut Violations) {
    let Some(backends) = &c.backends else {
        out.add(path.field("backends"), "must be defined");
        return;
    };
    for (i, b) in backends.iter().enumerate() {
        let bp = path.field("backends").index(i);
        match b.kind {
            LogBackendType::File => match &b.file {
                None => out.add(bp.field("file"), "must be defined"),
                Some(f) => {
                    if let Some(format) = &f.format {
                        validate_format(&bp.field("file").field("format"), format, out);
                    }
                    if !f.path.starts_with('/') || f.path.contains('\0') {
                        out.add(bp.field("file").field("path"), "file backend requires a valid path");
                    }
                }
            },
            LogBackendType::Tcp => match &b.tcp {
                None => out.add(bp.field("tcp"), "must be defined"),
                Some(t) => {
                    if let Some(format) = &t.format {
                        validate_format(&bp.field("tcp").field("format"), format, out);
                        if format.kind == LogFormatType::Json {
                            out.add_extra(
                                bp.field("tcp").field("format").field("type"),
                                "Json is not supported for tcp backends by this gateway; use Plain",
                            );
                        }
                    }
                    let host_port =
                        t.address.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                    if !host_port {
                        out.add(bp.field("tcp").field("address"), "tcp backend requires valid address");
                    }
                }
            },
            LogBackendType::OpenTelemetry => out.add_extra(
                bp.field("type"),
                "OpenTelemetry backends are not supported by this gateway; use File or Tcp",
            ),
        }
    }
}

/// Envoy's access-log command operators without arguments (Kuma's own
/// `%KUMA_*%` placeholders are filled in before Envoy sees the format).
const OPERATORS: &[&str] = &[
    "START_TIME",
    "START_TIME_LOCAL",
    "EMIT_TIME",
    "REQUEST_HEADERS_BYTES",
    "BYTES_RECEIVED",
    "BYTES_RETRANSMITTED",
    "PACKETS_RETRANSMITTED",
    "UPSTREAM_WIRE_BYTES_RECEIVED",
    "UPSTREAM_HEADER_BYTES_RECEIVED",
    "DOWNSTREAM_WIRE_BYTES_RECEIVED",
    "DOWNSTREAM_HEADER_BYTES_RECEIVED",
    "PROTOCOL",
    "UPSTREAM_PROTOCOL",
    "RESPONSE_CODE",
    "RESPONSE_CODE_DETAILS",
    "CONNECTION_TERMINATION_DETAILS",
    "RESPONSE_HEADERS_BYTES",
    "RESPONSE_TRAILERS_BYTES",
    "BYTES_SENT",
    "UPSTREAM_WIRE_BYTES_SENT",
    "UPSTREAM_HEADER_BYTES_SENT",
    "DOWNSTREAM_WIRE_BYTES_SENT",
    "DOWNSTREAM_HEADER_BYTES_SENT",
    "DURATION",
    "REQUEST_DURATION",
    "REQUEST_TX_DURATION",
    "RESPONSE_DURATION",
    "RESPONSE_TX_DURATION",
    "DOWNSTREAM_HANDSHAKE_DURATION",
    "ROUNDTRIP_DURATION",
    "RESPONSE_FLAGS",
    "RESPONSE_FLAGS_LONG",
    "UPSTREAM_HOST",
    "UPSTREAM_HOST_NAME",
    "UPSTREAM_CLUSTER",
    "UPSTREAM_CLUSTER_RAW",
    "UPSTREAM_LOCAL_ADDRESS",
    "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
    "UPSTREAM_LOCAL_PORT",
    "UPSTREAM_REMOTE_ADDRESS",
    "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
    "UPSTREAM_REMOTE_PORT",
    "UPSTREAM_REQUEST_ATTEMPT_COUNT",
    "UPSTREAM_TLS_CIPHER",
    "UPSTREAM_TLS_VERSION",
    "UPSTREAM_TLS_SESSION_ID",
    "UPSTREAM_PEER_ISSUER",
    "UPSTREAM_PEER_CERT",
    "UPSTREAM_PEER_SUBJECT",
    "UPSTREAM_TRANSPORT_FAILURE_REASON",
    "UPSTREAM_CONNECTION_ID",
    "HOSTNAME",
    "DOWNSTREAM_LOCAL_ADDRESS",
    "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_LOCAL_PORT",
    "DOWNSTREAM_REMOTE_ADDRESS",
    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_REMOTE_PORT",
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS",
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_DIRECT_REMOTE_PORT",
    "CONNECTION_ID",
    "REQUESTED_SERVER_NAME",
    "ROUTE_NAME",
    "VIRTUAL_CLUSTER_NAME",
    "DOWNSTREAM_PEER_URI_SAN",
    "DOWNSTREAM_LOCAL_URI_SAN",
    "DOWNSTREAM_PEER_SUBJECT",
    "DOWNSTREAM_LOCAL_SUBJECT",
    "DOWNSTREAM_PEER_ISSUER",
    "DOWNSTREAM_TLS_SESSION_ID",
    "DOWNSTREAM_TLS_CIPHER",
    "DOWNSTREAM_TLS_VERSION",
    "DOWNSTREAM_PEER_FINGERPRINT_256",
    "DOWNSTREAM_PEER_FINGERPRINT_1",
    "DOWNSTREAM_PEER_SERIAL",
    "DOWNSTREAM_PEER_CERT",
    "DOWNSTREAM_PEER_CERT_V_START",
    "DOWNSTREAM_PEER_CERT_V_END",
    "DOWNSTREAM_TRANSPORT_FAILURE_REASON",
    "TRACE_ID",
    "UNIQUE_ID",
    "STREAM_ID",
    "LOCAL_REPLY_BODY",
    "ACCESS_LOG_TYPE",
    "CUSTOM_FLAGS",
];

/// Envoy's access-log command operators that take an argument: `%REQ(x)%`.
const OPERATORS_WITH_ARGUMENT: &[&str] = &[
    "REQ",
    "RESP",
    "TRAILER",
    "DYNAMIC_METADATA",
    "CLUSTER_METADATA",
    "UPSTREAM_METADATA",
    "FILTER_STATE",
    "UPSTREAM_FILTER_STATE",
    "START_TIME",
    "START_TIME_LOCAL",
    "EMIT_TIME",
    "ENVIRONMENT",
    "QUERY_PARAM",
    "PATH",
    "COMMON_DURATION",
    "DOWNSTREAM_PEER_CERT_V_START",
    "DOWNSTREAM_PEER_CERT_V_END",
];

/// Refuses what Envoy's format parser refuses: a `%` that is neither `%%`
/// nor a known command operator (`%NAME%`, `%NAME(arg)%`, optionally
/// `:length` after the name or argument).
pub(crate) fn validate_log_format(path: &FieldPath, text: &str, out: &mut Violations) {
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            rest = tail;
            continue;
        }
        match operator_length(after) {
            Some(len) => rest = &after[len..],
            None => {
                out.add_extra(
                    path,
                    "a % starts an Envoy command operator (%START_TIME%, %REQ(x-id)%, …); write %% for a literal %",
                );
                return;
            }
        }
    }
}

/// The length of a known operator after its opening `%`, closing `%`
/// included: `NAME%`, `NAME(arg)%`, with an optional `:length` before the
/// closing `%`.
fn operator_length(text: &str) -> Option<usize> {
    let name_len = text.bytes().take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_').count();
    let name = &text[..name_len];
    let mut i = name_len;
    if text[i..].starts_with('(') {
        if !OPERATORS_WITH_ARGUMENT.contains(&name) {
            return None;
        }
        i += text[i..].find(')')? + 1;
    } else if !(OPERATORS.contains(&name) || name.starts_with("KUMA_")) {
        // Kuma's placeholders are filled in before Envoy reads the format.
        return None;
    }
    if let Some(len) = text[i..].strip_prefix(':') {
        let digits = len.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        i += 1 + digits;
    }
    text[i..].starts_with('%').then_some(i + 1)
}

fn validate_format(path: &FieldPath, f: &LogFormat, out: &mut Violations) {
    match f.kind {
        LogFormatType::Plain => match f.plain.as_deref() {
            None => out.add(path.field("plain"), "must be defined"),
            Some("") => out.add(path.field("plain"), "must not be empty"),
            Some(text) => validate_log_format(&path.field("plain"), text, out),
        },
        LogFormatType::Json => match &f.json {
            None => out.add(path.field("json"), "must be defined"),
            Some(fields) => {
                if fields.is_empty() {
                    out.add(path.field("json"), "must not be empty");
                }
                for (i, field) in fields.iter().enumerate() {
                    if field.key.is_empty() {
                        out.add(path.field("json").index(i).field("key"), "key cannot be empty");
                    }
                    if field.value.is_empty() {
                        out.add(path.field("json").index(i).field("value"), "value cannot be empty");
                    }
                    validate_log_format(&path.field("json").index(i).field("value"), &field.value, out);
                }
            }
        },
    }
}
