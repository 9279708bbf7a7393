//! `MeshTimeout`: Kuma 2.x timeouts. On a builtin gateway `from` entries set
//! the listener's (downstream) timeouts and `to` entries the routes' and
//! upstream clusters' timeouts.

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::target_ref::{TargetKind, TargetRef, TargetRules, policy_to_kinds, validate_sections, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshTimeout`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshTimeoutSpec {
    /// What the policy applies to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Timeouts towards destinations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<TimeoutEntry>>,
    /// Timeouts of incoming traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<TimeoutEntry>>,
    /// Inbound rules (sidecars; read, not applied to gateways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<serde_json::Value>>,
}

/// A `to` or `from` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutEntry {
    /// Which destinations (or sources).
    pub target_ref: TargetRef,
    /// The timeouts.
    #[serde(default)]
    pub default: TimeoutConf,
}

/// Timeouts; unset fields keep what a less specific policy set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutConf {
    /// Upstream connect timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_timeout: Option<Duration>,
    /// Connection idle timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// HTTP timeouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<TimeoutHttp>,
}

/// HTTP timeouts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutHttp {
    /// Whole request, until the response is complete (route `timeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    /// Stream idle timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<Duration>,
    /// Longest a stream may last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<Duration>,
    /// Longest a connection may last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connection_duration: Option<Duration>,
    /// Time allowed for the request headers (downstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_headers_timeout: Option<Duration>,
}

impl TimeoutConf {
    /// `other` over `self`, field by field (Kuma merges `default` confs so).
    pub fn merge(&mut self, other: &TimeoutConf) {
        over(&mut self.connection_timeout, other.connection_timeout);
        over(&mut self.idle_timeout, other.idle_timeout);
        if let Some(o) = &other.http {
            let h = self.http.get_or_insert_with(TimeoutHttp::default);
            over(&mut h.request_timeout, o.request_timeout);
            over(&mut h.stream_idle_timeout, o.stream_idle_timeout);
            over(&mut h.max_stream_duration, o.max_stream_duration);
            over(&mut h.max_connection_duration, o.max_connection_duration);
            over(&mut h.request_headers_timeout, o.request_headers_timeout);
        }
    }
}

pub(crate) fn over<T: Copy>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn not_negative(path: &FieldPath, d: Option<Duration>, out: &mut Violations) {
    if d.is_some_and(|d| d.as_nanos() < 0) {
        out.add(path, "must not be negative when defined");
    }
}

impl MeshTimeoutSpec {
    /// The `to` entries: target and conf.
    pub fn to_confs(&self) -> Vec<(&TargetRef, &TimeoutConf)> {
        self.to.as_deref().unwrap_or_default().iter().map(|e| (&e.target_ref, &e.default)).collect()
    }

    /// Kuma's validation (system role).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        if let Some(t) = &self.target_ref {
            let kinds = [
                TargetKind::Mesh,
                TargetKind::MeshSubset,
                TargetKind::Dataplane,
                TargetKind::MeshGateway,
                TargetKind::MeshService,
                TargetKind::MeshServiceSubset,
                TargetKind::MeshHttpRoute,
            ];
            validate_target_ref(&root.field("targetRef"), t, TargetRules::with_listener_tags(&kinds), &mut out);
        }
        let (to, from, rules) =
            (self.to.as_deref().unwrap_or_default(), self.from.as_deref().unwrap_or_default(), self.rules.as_deref());
        let rules = rules.unwrap_or_default();
        validate_sections(&root, to.len(), from.len(), rules.len(), true, &mut out);
        let top = self.target_ref.as_ref().map_or(TargetKind::Mesh, |t| t.kind);
        let gateway_or_route = matches!(top, TargetKind::MeshHttpRoute | TargetKind::MeshGateway);
        if gateway_or_route && !from.is_empty() {
            out.add(root.field("from"), "must not be defined");
        } else {
            for (i, e) in from.iter().enumerate() {
                let p = root.field("from").index(i);
                validate_target_ref(
                    &p.field("targetRef"),
                    &e.target_ref,
                    TargetRules::kinds(&[TargetKind::Mesh]),
                    &mut out,
                );
                validate_conf(&p.field("default"), &e.default, top, &mut out);
            }
        }
        for (i, e) in to.iter().enumerate() {
            let p = root.field("to").index(i);
            let kinds = policy_to_kinds(top);
            validate_target_ref(&p.field("targetRef"), &e.target_ref, TargetRules::kinds(kinds), &mut out);
            validate_conf(&p.field("default"), &e.default, top, &mut out);
        }
        out
    }
}

fn validate_conf(path: &FieldPath, c: &TimeoutConf, top: TargetKind, out: &mut Violations) {
    if c.connection_timeout.is_none() && c.idle_timeout.is_none() && c.http.is_none() {
        out.add(path, "at least one timeout should be configured");
        return;
    }
    if top == TargetKind::MeshHttpRoute {
        let msg = "can't be specified when top-level TargetRef is referencing MeshHTTPRoute";
        if c.connection_timeout.is_some() {
            out.add(path.field("connectionTimeout"), msg);
        }
        if c.idle_timeout.is_some() {
            out.add(path.field("idleTimeout"), msg);
        }
        if let Some(h) = &c.http {
            if h.max_stream_duration.is_some() {
                out.add(path.field("http").field("maxStreamDuration"), msg);
            }
            if h.max_connection_duration.is_some() {
                out.add(path.field("http").field("maxConnectionDuration"), msg);
            }
        }
    }
    if c.connection_timeout.is_some_and(|d| !d.is_positive()) {
        out.add(path.field("connectionTimeout"), "must be greater than zero when defined");
    }
    not_negative(&path.field("idleTimeout"), c.idle_timeout, out);
    if let Some(h) = &c.http {
        let hp = path.field("http");
        if h.request_timeout.is_none()
            && h.stream_idle_timeout.is_none()
            && h.max_stream_duration.is_none()
            && h.max_connection_duration.is_none()
        {
            out.add(&hp, "at least one timeout in this section should be configured");
        }
        not_negative(&hp.field("requestTimeout"), h.request_timeout, out);
        not_negative(&hp.field("streamIdleTimeout"), h.stream_idle_timeout, out);
        not_negative(&hp.field("maxStreamDuration"), h.max_stream_duration, out);
        not_negative(&hp.field("maxConnectionDuration"), h.max_connection_duration, out);
        not_negative(&hp.field("requestHeadersTimeout"), h.request_headers_timeout, out);
    }
}
