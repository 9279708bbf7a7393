//! `MeshRetry`: Kuma 2.x retries. On a builtin gateway `to` entries set the
//! routes' retry policy (`http`, `grpc`) and TCP proxies' connect attempts
//! (`tcp`).

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::mesh_http_route::HeaderMatch;
use crate::mesh_timeout::over;
use crate::tags::Tags;
use crate::target_ref::{TargetKind, TargetRef, TargetRules, policy_to_kinds, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshRetry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshRetrySpec {
    /// What the policy applies to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Retries towards destinations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<RetryEntry>,
}

/// A `to` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryEntry {
    /// Which destinations.
    pub target_ref: TargetRef,
    /// The retry settings.
    #[serde(default)]
    pub default: RetryConf,
}

/// Retry settings per protocol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConf {
    /// TCP connect attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<RetryTcp>,
    /// HTTP retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<RetryHttp>,
    /// gRPC retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<RetryGrpc>,
}

/// `tcp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryTcp {
    /// Connect attempts (Envoy's `max_connect_attempts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connect_attempt: Option<u32>,
}

/// `backOff`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct BackOff {
    /// First back-off interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_interval: Option<Duration>,
    /// Longest back-off interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<Duration>,
}

/// `rateLimitedBackOff`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitedBackOff {
    /// Headers that tell when to retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_headers: Option<Vec<ResetHeader>>,
    /// Longest back-off interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<Duration>,
}

/// A reset header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetHeader {
    /// The header.
    pub name: String,
    /// `Seconds` or `UnixTimestamp`.
    pub format: ResetHeaderFormat,
}

/// How a reset header's value reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum ResetHeaderFormat {
    Seconds,
    UnixTimestamp,
}

/// A host selection predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostPredicate {
    /// `OmitPreviousHosts`, `OmitHostsWithTags` or `OmitPreviousPriorities`.
    pub predicate: String,
    /// Tags of hosts to omit (`OmitHostsWithTags`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// `OmitPreviousPriorities` update frequency (default 2).
    #[serde(default = "two")]
    pub update_frequency: i32,
}

fn two() -> i32 {
    2
}

/// `http`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryHttp {
    /// Retries after the first attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    /// Timeout of each attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    /// Back-off between attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub back_off: Option<BackOff>,
    /// Back-off told by the upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limited_back_off: Option<RateLimitedBackOff>,
    /// Conditions (`5xx`, `GatewayError`, status codes, methods, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<String>>,
    /// Responses with these headers are retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retriable_response_headers: Option<Vec<HeaderMatch>>,
    /// Only requests with these headers are retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retriable_request_headers: Option<Vec<HeaderMatch>>,
    /// Host selection predicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_selection: Option<Vec<HostPredicate>>,
    /// Attempts at selecting a host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_selection_max_attempts: Option<i64>,
}

/// `grpc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryGrpc {
    /// Retries after the first attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    /// Timeout of each attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    /// Back-off between attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub back_off: Option<BackOff>,
    /// Back-off told by the upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limited_back_off: Option<RateLimitedBackOff>,
    /// Conditions (`Canceled`, `DeadlineExceeded`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<String>>,
}

/// The HTTP `retryOn` values Kuma knows besides status codes.
pub const HTTP_RETRY_ON: &[&str] = &[
    "5xx",
    "GatewayError",
    "Reset",
    "Retriable4xx",
    "ConnectFailure",
    "EnvoyRatelimited",
    "RefusedStream",
    "Http3PostConnectFailure",
    "HttpMethodConnect",
    "HttpMethodDelete",
    "HttpMethodGet",
    "HttpMethodHead",
    "HttpMethodOptions",
    "HttpMethodPatch",
    "HttpMethodPost",
    "HttpMethodPut",
    "HttpMethodTrace",
];

impl RetryConf {
    /// `other` over `self`, field by field.
    pub fn merge(&mut self, other: &RetryConf) {
        if let Some(o) = &other.tcp {
            over(&mut self.tcp.get_or_insert_with(Default::default).max_connect_attempt, o.max_connect_attempt);
        }
        if let Some(o) = &other.http {
            let h = self.http.get_or_insert_with(Default::default);
            over(&mut h.num_retries, o.num_retries);
            over(&mut h.per_try_timeout, o.per_try_timeout);
            merge_back_off(&mut h.back_off, &o.back_off);
            replace(&mut h.rate_limited_back_off, &o.rate_limited_back_off);
            replace(&mut h.retry_on, &o.retry_on);
            replace(&mut h.retriable_response_headers, &o.retriable_response_headers);
            replace(&mut h.retriable_request_headers, &o.retriable_request_headers);
            replace(&mut h.host_selection, &o.host_selection);
            over(&mut h.host_selection_max_attempts, o.host_selection_max_attempts);
        }
        if let Some(o) = &other.grpc {
            let g = self.grpc.get_or_insert_with(Default::default);
            over(&mut g.num_retries, o.num_retries);
            over(&mut g.per_try_timeout, o.per_try_timeout);
            merge_back_off(&mut g.back_off, &o.back_off);
            replace(&mut g.rate_limited_back_off, &o.rate_limited_back_off);
            replace(&mut g.retry_on, &o.retry_on);
        }
    }
}

fn merge_back_off(slot: &mut Option<BackOff>, other: &Option<BackOff>) {
    if let Some(o) = other {
        let b = slot.get_or_insert_with(Default::default);
        over(&mut b.base_interval, o.base_interval);
        over(&mut b.max_interval, o.max_interval);
    }
}

/// Lists are replaced whole, as in a JSON merge patch.
fn replace<T: Clone>(slot: &mut Option<T>, other: &Option<T>) {
    if other.is_some() {
        slot.clone_from(other);
    }
}

impl MeshRetrySpec {
    /// The `to` entries: target and conf.
    pub fn to_confs(&self) -> Vec<(&TargetRef, &RetryConf)> {
        self.to.as_slice().iter().map(|e| (&e.target_ref, &e.default)).collect()
    }

    /// Kuma's validation (system role).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        if let Some(t) = &self.target_ref {
            let kinds = [
                TargetKind::Mesh,
                TargetKind::MeshSubset,
                TargetKind::MeshGateway,
                TargetKind::MeshService,
                TargetKind::MeshServiceSubset,
                TargetKind::MeshHttpRoute,
                TargetKind::Dataplane,
            ];
            validate_target_ref(&root.field("targetRef"), t, TargetRules::with_listener_tags(&kinds), &mut out);
        }
        let top = self.target_ref.as_ref().map_or(TargetKind::Mesh, |t| t.kind);
        for (i, e) in self.to.iter().enumerate() {
            let p = root.field("to").index(i);
            let kinds = policy_to_kinds(top);
            validate_target_ref(&p.field("targetRef"), &e.target_ref, TargetRules::kinds(kinds), &mut out);
            validate_conf(&p.field("default").field("conf"), &e.default, &mut out);
        }
        out
    }
}

fn validate_conf(path: &FieldPath, c: &RetryConf, out: &mut Violations) {
    if c.tcp.is_none() && c.http.is_none() && c.grpc.is_none() {
        out.add(path, "at least one of the 'tcp', 'http', 'grpc' must be specified");
    }
    if let Some(t) = &c.tcp {
        match t.max_connect_attempt {
            None => out.add(path.field("tcp"), "must not be empty"),
            Some(0) => out.add(path.field("tcp").field("maxConnectAttempt"), "must be greater than 0"),
            Some(_) => {}
        }
    }
    if let Some(h) = &c.http {
        let p = path.field("http");
        if h == &RetryHttp::default() {
            out.add(&p, "must not be empty");
        }
        if h.per_try_timeout.is_some_and(|d| d.as_nanos() < 0) {
            out.add_extra(p.field("perTryTimeout"), "must not be negative");
        }
        back_off(&p, h.back_off.as_ref(), h.rate_limited_back_off.as_ref(), out);
        for (i, r) in h.retry_on.iter().flatten().enumerate() {
            let status = r.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c));
            if !HTTP_RETRY_ON.contains(&r.as_str()) && !status {
                out.add(p.field("retryOn").index(i), format!("unknown item '{r}'"));
            }
        }
        let mut priorities = false;
        for (i, pred) in h.host_selection.iter().flatten().enumerate() {
            let pp = p.field("hostSelection").index(i);
            match pred.predicate.as_str() {
                "OmitHostsWithTags" if pred.tags.is_none() => out.add(pp.field("tags"), "must be defined"),
                "OmitPreviousPriorities" => {
                    if priorities {
                        out.add(pp.field("predicate"), "OmitPreviousPriorities must only be specified once");
                    }
                    if pred.update_frequency <= 0 {
                        out.add(pp.field("updateFrequency"), "must be defined and greater than zero");
                    }
                    priorities = true;
                }
                "OmitHostsWithTags" | "OmitPreviousHosts" => {}
                other => out.add(pp.field("predicate"), format!("unknown predicate type '{other}'")),
            }
        }
    }
    if let Some(g) = &c.grpc {
        let p = path.field("grpc");
        if g == &RetryGrpc::default() {
            out.add(&p, "must not be empty");
        }
        if g.per_try_timeout.is_some_and(|d| d.as_nanos() < 0) {
            out.add_extra(p.field("perTryTimeout"), "must not be negative");
        }
        back_off(&p, g.back_off.as_ref(), g.rate_limited_back_off.as_ref(), out);
        for (i, r) in g.retry_on.iter().flatten().enumerate() {
            if !["Canceled", "DeadlineExceeded", "Internal", "ResourceExhausted", "Unavailable"].contains(&r.as_str()) {
                out.add(p.field("retryOn").index(i), format!("unknown item '{r}'"));
            }
        }
    }
}

fn back_off(path: &FieldPath, b: Option<&BackOff>, r: Option<&RateLimitedBackOff>, out: &mut Violations) {
    if let Some(b) = b
        && b.base_interval.is_none()
        && b.max_interval.is_none()
    {
        out.add(path.field("backOff"), "must not be empty");
    }
    // Envoy refuses zero or negative back-off times, and a maximum below the base.
    if let Some(b) = b {
        for (field, d) in [("baseInterval", b.base_interval), ("maxInterval", b.max_interval)] {
            if d.is_some_and(|d| !d.is_positive()) {
                out.add_extra(
                    path.field("backOff").field(field),
                    "must be greater than 0: Envoy's back-off needs a time",
                );
            }
        }
        // Without a base Envoy's (and Kuma's initial) 25 ms applies.
        let base = b.base_interval.unwrap_or(Duration::from_millis(25));
        if b.max_interval.is_some_and(|max| max < base) {
            out.add_extra(
                path.field("backOff").field("maxInterval"),
                "cannot be less than baseInterval (25ms when unset)",
            );
        }
    }
    if let Some(r) = r {
        let p = path.field("rateLimitedBackOff");
        if r.max_interval.is_some_and(|d| !d.is_positive()) {
            out.add(p.field("maxInterval"), "must be greater than 0");
        }
        match &r.reset_headers {
            None => out.add(p.field("resetHeaders"), "must be defined"),
            Some(hs) => {
                for (i, h) in hs.iter().enumerate() {
                    if h.name.is_empty() {
                        out.add(p.field("resetHeaders").index(i).field("name"), "must be defined");
                    }
                }
            }
        }
    }
}
