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

fn validate_format(path: &FieldPath, f: &LogFormat, out: &mut Violations) {
    match f.kind {
        LogFormatType::Plain => match f.plain.as_deref() {
            None => out.add(path.field("plain"), "must be defined"),
            Some("") => out.add(path.field("plain"), "must not be empty"),
            Some(_) => {}
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
                }
            }
        },
    }
}
