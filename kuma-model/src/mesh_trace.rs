//! `MeshTrace`: Kuma 2.x tracing. One `default` conf (no `to`/`from`): a
//! single backend (Zipkin, Datadog or OpenTelemetry), sampling and custom
//! tags. On a builtin gateway it sets the tracing of the HTTP listeners and
//! adds the collector's cluster.

use serde::{Deserialize, Serialize};

use crate::mesh_fault_injection::percentage;
use crate::target_ref::{POLICY_TOP_KINDS, TargetRef, TargetRules, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshTrace`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshTraceSpec {
    /// What the policy applies to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// The tracing conf.
    pub default: TraceConf,
}

/// The tracing conf; unset fields keep what a less specific policy set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceConf {
    /// Zero or one backend (Envoy reports to one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<TraceBackend>>,
    /// Sampling percentages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    /// Custom span tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TraceTag>>,
}

/// A tracing backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TraceBackend {
    /// `Zipkin`, `Datadog` or `OpenTelemetry`.
    #[serde(rename = "type")]
    pub kind: TraceBackendKind,
    /// The Zipkin collector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<ZipkinBackend>,
    /// The Datadog agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogBackend>,
    /// The OpenTelemetry collector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_telemetry: Option<OpenTelemetryBackend>,
}

/// The kind of a tracing backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceBackendKind {
    /// Zipkin (and Jaeger's Zipkin endpoint).
    Zipkin,
    /// Datadog.
    Datadog,
    /// OpenTelemetry (gRPC).
    OpenTelemetry,
}

/// `zipkin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ZipkinBackend {
    /// The collector URL (`http://host:port/api/v2/spans`).
    pub url: String,
    /// Generate 128-bit trace ids (false by default).
    #[serde(default, rename = "traceId128bit", skip_serializing_if = "Option::is_none")]
    pub trace_id_128bit: Option<bool>,
    /// `httpJson` (default) or `httpProto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Client and server spans share a span context (true by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_span_context: Option<bool>,
}

/// `datadog`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatadogBackend {
    /// The agent, `http://host:port`.
    pub url: String,
    /// Split the service name by traffic direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_service: Option<bool>,
}

/// `openTelemetry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenTelemetryBackend {
    /// The collector, `host:port` (gRPC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A `MeshOpenTelemetryBackend` reference (not supported here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<serde_json::Value>,
}

/// `sampling`: percentages, numbers or decimal strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sampling {
    /// Upper limit after all other sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overall: Option<serde_json::Value>,
    /// Requests with `x-client-trace-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<serde_json::Value>,
    /// Random selection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random: Option<serde_json::Value>,
}

/// A custom tag: a literal or a request header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceTag {
    /// The tag name.
    pub name: String,
    /// A literal value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    /// A request header's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderTag>,
}

/// A tag from a request header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeaderTag {
    /// The header.
    pub name: String,
    /// The value when the header is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl TraceConf {
    /// `other` over `self`: its set fields replace these (lists whole).
    pub fn merge(&mut self, other: &TraceConf) {
        if other.backends.is_some() {
            self.backends.clone_from(&other.backends);
        }
        if let Some(s) = &other.sampling {
            let mine = self.sampling.get_or_insert_with(Sampling::default);
            for (m, o) in
                [(&mut mine.overall, &s.overall), (&mut mine.client, &s.client), (&mut mine.random, &s.random)]
            {
                if o.is_some() {
                    m.clone_from(o);
                }
            }
        }
        if other.tags.is_some() {
            self.tags.clone_from(&other.tags);
        }
    }
}

/// A URL split as the collector cluster needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorUrl {
    /// `https`.
    pub tls: bool,
    /// The host name or address.
    pub host: String,
    /// The port (the scheme's default when not written).
    pub port: u16,
    /// The path as written (empty when none is).
    pub path: String,
    /// `host[:port]` as written (Kuma's `collector_hostname`).
    pub authority: String,
    /// True when the URL names its port.
    pub port_written: bool,
}

impl CollectorUrl {
    /// `http://host[:port][/path]` (or `https`); `None` for anything else.
    pub fn parse(url: &str) -> Option<CollectorUrl> {
        let (tls, rest) =
            if let Some(r) = url.strip_prefix("http://") { (false, r) } else { (true, url.strip_prefix("https://")?) };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') || path.contains(['?', '#']) {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, _)) if !h.ends_with(']') && h.contains(':') => (authority, None),
            Some((h, p)) => (h, Some(p.parse::<u16>().ok().filter(|p| *p > 0)?)),
            None => (authority, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return None;
        }
        Some(CollectorUrl {
            tls,
            host: host.to_string(),
            port: port.unwrap_or(if tls { 443 } else { 80 }),
            path: path.to_string(),
            authority: authority.to_string(),
            port_written: port.is_some(),
        })
    }
}

fn validate_sampling(path: &FieldPath, v: &serde_json::Value, out: &mut Violations) {
    match percentage(v) {
        None => out.add(path, "string is not a number"),
        Some(p) if !(0.0..=100.0).contains(&p) => out.add(path, "must be between 0 and 100"),
        Some(_) => {}
    }
}

impl MeshTraceSpec {
    /// Kuma's validation (system role).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        if let Some(t) = &self.target_ref {
            // Listener tags are not allowed: tracing is per data plane.
            validate_target_ref(&root.field("targetRef"), t, TargetRules::kinds(POLICY_TOP_KINDS), &mut out);
        }
        let d = root.field("default");
        let backends = d.field("backends");
        match self.default.backends.as_deref() {
            None => out.add(&backends, "must be defined"),
            Some([]) => {}
            Some([b]) => validate_backend(&backends.index(0), b, &mut out),
            Some(_) => out.add(&backends, "must have zero or one backend defined"),
        }
        for (i, tag) in self.default.tags.iter().flatten().enumerate() {
            let p = d.field("tags").index(i);
            if tag.name.is_empty() {
                out.add(p.field("name"), "must not be empty");
            }
            if tag.header.is_some() == tag.literal.is_some() {
                out.add(&p, "tag must have only one type defined: header, literal");
            }
        }
        if let Some(s) = &self.default.sampling {
            let p = d.field("sampling");
            for (name, v) in [("client", &s.client), ("random", &s.random), ("overall", &s.overall)] {
                if let Some(v) = v {
                    validate_sampling(&p.field(name), v, &mut out);
                }
            }
        }
        out
    }
}

fn validate_backend(path: &FieldPath, b: &TraceBackend, out: &mut Violations) {
    match b.kind {
        TraceBackendKind::Zipkin => {
            let p = path.field("zipkin");
            match &b.zipkin {
                None => out.add(&p, "must be defined"),
                Some(z) if z.url.is_empty() => out.add(p.field("url"), "must not be empty"),
                Some(z) if CollectorUrl::parse(&z.url).is_none() => out.add(p.field("url"), "must be a valid url"),
                Some(z) => {
                    if let Some(v) = z.api_version.as_deref().filter(|v| !["httpJson", "httpProto"].contains(v)) {
                        out.add_extra(p.field("apiVersion"), format!("{v:?} must be httpJson or httpProto"));
                    }
                }
            }
        }
        TraceBackendKind::Datadog => {
            let p = path.field("datadog");
            let Some(d) = &b.datadog else { return out.add(&p, "must be defined") };
            let url = p.field("url");
            match CollectorUrl::parse(&d.url) {
                None => out.add(&url, "must be a valid url"),
                Some(u) => {
                    if u.tls {
                        out.add(&url, "scheme must be http");
                    }
                    if !u.port_written {
                        out.add(&url, "port must be defined");
                    }
                    if !u.path.is_empty() {
                        out.add(&url, "path must not be defined");
                    }
                }
            }
        }
        TraceBackendKind::OpenTelemetry => {
            let p = path.field("openTelemetry");
            let Some(o) = &b.open_telemetry else { return out.add(&p, "must be defined") };
            match (o.endpoint.as_deref().filter(|e| !e.is_empty()), &o.backend_ref) {
                (Some(_), Some(_)) => out.add(&p, "openTelemetry must have only one type defined: endpoint, backendRef"),
                (None, None) => out.add(&p, "openTelemetry must have exactly one defined: endpoint, backendRef"),
                (None, Some(_)) => out.add_extra(
                    p.field("backendRef"),
                    "MeshOpenTelemetryBackend references are not supported by this gateway; write the collector's endpoint",
                ),
                (Some(e), None) if e.contains(['/', '?', '#']) => {
                    out.add(p.field("endpoint"), "must be in host:port format, not a URL")
                }
                (Some(e), None) => {
                    if CollectorUrl::parse(&format!("http://{e}")).is_none() {
                        out.add_extra(p.field("endpoint"), "must be host:port");
                    }
                }
            }
        }
    }
}
