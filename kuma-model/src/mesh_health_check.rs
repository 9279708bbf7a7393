//! `MeshHealthCheck`: Kuma 2.x active health checks of upstream clusters.

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::mesh_http_route::HeaderValue;
use crate::mesh_timeout::over;
use crate::target_ref::{POLICY_TOP_KINDS, TargetKind, TargetRef, TargetRules, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshHealthCheck`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshHealthCheckSpec {
    /// What the policy applies to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Checks of destinations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<HealthCheckEntry>,
}

/// A `to` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckEntry {
    /// Which destinations.
    pub target_ref: TargetRef,
    /// The check.
    #[serde(default)]
    pub default: HealthCheckConf,
}

/// A health check; unset fields keep what a less specific policy set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckConf {
    /// Time between checks (1 min).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Time a check may take (15 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Failures before unhealthy (5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
    /// Successes before healthy (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
    /// Jitter before the first check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_jitter: Option<Duration>,
    /// Jitter of each interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_jitter: Option<Duration>,
    /// Jitter of each interval, in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_jitter_percent: Option<u32>,
    /// Below this share of healthy hosts, ignore health (percent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_panic_threshold: Option<serde_json::Value>,
    /// In panic, fail traffic instead of sending it to every host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_traffic_on_panic: Option<bool>,
    /// Interval while the cluster has no traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_traffic_interval: Option<Duration>,
    /// Where check events are written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_log_path: Option<String>,
    /// Log every failed check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub always_log_health_check_failures: Option<bool>,
    /// Reuse the checking connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reuse_connection: Option<bool>,
    /// TCP check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheck>,
    /// HTTP check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// gRPC check (sidecars; gateway clusters use HTTP or TCP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<serde_json::Value>,
}

/// `tcp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpCheck {
    /// Off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Bytes sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// Bytes expected back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receive: Option<Vec<String>>,
}

/// `http`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpCheck {
    /// Off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Path requested (`/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Statuses that count as healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_statuses: Option<Vec<i32>>,
    /// Headers of the check request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_headers_to_add: Option<crate::mesh_rate_limit::HeadersToAdd>,
}

impl HealthCheckConf {
    /// `other` over `self`, field by field.
    pub fn merge(&mut self, o: &HealthCheckConf) {
        over(&mut self.interval, o.interval);
        over(&mut self.timeout, o.timeout);
        over(&mut self.unhealthy_threshold, o.unhealthy_threshold);
        over(&mut self.healthy_threshold, o.healthy_threshold);
        over(&mut self.initial_jitter, o.initial_jitter);
        over(&mut self.interval_jitter, o.interval_jitter);
        over(&mut self.interval_jitter_percent, o.interval_jitter_percent);
        over(&mut self.fail_traffic_on_panic, o.fail_traffic_on_panic);
        over(&mut self.no_traffic_interval, o.no_traffic_interval);
        over(&mut self.always_log_health_check_failures, o.always_log_health_check_failures);
        over(&mut self.reuse_connection, o.reuse_connection);
        for (slot, value) in
            [(&mut self.healthy_panic_threshold, &o.healthy_panic_threshold), (&mut self.grpc, &o.grpc)]
        {
            if value.is_some() {
                slot.clone_from(value);
            }
        }
        if o.event_log_path.is_some() {
            self.event_log_path.clone_from(&o.event_log_path);
        }
        if let Some(t) = &o.tcp {
            let mine = self.tcp.get_or_insert_with(TcpCheck::default);
            over(&mut mine.disabled, t.disabled);
            if t.send.is_some() {
                mine.send.clone_from(&t.send);
            }
            if t.receive.is_some() {
                mine.receive.clone_from(&t.receive);
            }
        }
        if let Some(h) = &o.http {
            let mine = self.http.get_or_insert_with(HttpCheck::default);
            over(&mut mine.disabled, h.disabled);
            if h.path.is_some() {
                mine.path.clone_from(&h.path);
            }
            if h.expected_statuses.is_some() {
                mine.expected_statuses.clone_from(&h.expected_statuses);
            }
            if h.request_headers_to_add.is_some() {
                mine.request_headers_to_add.clone_from(&h.request_headers_to_add);
            }
        }
    }
}

/// Headers as `(name, value)` pairs of a header list.
pub fn header_pairs(headers: Option<&Vec<HeaderValue>>) -> impl Iterator<Item = (&str, &str)> {
    headers.into_iter().flatten().map(|h| (h.name.as_str(), h.value.as_str()))
}

/// Kuma's `ValidatePercentageOrNil`: a number (or decimal string) from 0 to 100.
pub(crate) fn percentage(path: &FieldPath, v: Option<&serde_json::Value>, out: &mut Violations) {
    let Some(v) = v else { return };
    match crate::mesh_fault_injection::percentage(v) {
        None => out.add(path, "string must be a valid number"),
        Some(p) if !(0.0..=100.0).contains(&p) => out.add(path, "must be in inclusive range [0.0, 100.0]"),
        Some(_) => {}
    }
}

fn positive(path: &FieldPath, d: Option<Duration>, out: &mut Violations) {
    if d.is_some_and(|d| !d.is_positive()) {
        out.add(path, "must be greater than zero when defined");
    }
}

impl MeshHealthCheckSpec {
    /// The `to` entries: target and conf.
    pub fn to_confs(&self) -> Vec<(&TargetRef, &HealthCheckConf)> {
        self.to.iter().map(|e| (&e.target_ref, &e.default)).collect()
    }

    /// Kuma's validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        if let Some(t) = &self.target_ref {
            validate_target_ref(
                &root.field("targetRef"),
                t,
                TargetRules::with_listener_tags(POLICY_TOP_KINDS),
                &mut out,
            );
        }
        for (i, e) in self.to.iter().enumerate() {
            let p = root.field("to").index(i);
            let kinds = [
                TargetKind::Mesh,
                TargetKind::MeshService,
                TargetKind::MeshExternalService,
                TargetKind::MeshMultiZoneService,
            ];
            validate_target_ref(&p.field("targetRef"), &e.target_ref, TargetRules::kinds(&kinds), &mut out);
            let c = &e.default;
            let dp = p.field("default");
            positive(&dp.field("interval"), c.interval, &mut out);
            positive(&dp.field("timeout"), c.timeout, &mut out);
            for (name, v) in [("unhealthyThreshold", c.unhealthy_threshold), ("healthyThreshold", c.healthy_threshold)]
            {
                if v == Some(0) {
                    out.add(dp.field(name), "must be greater than zero when defined");
                }
            }
            positive(&dp.field("initialJitter"), c.initial_jitter, &mut out);
            positive(&dp.field("intervalJitter"), c.interval_jitter, &mut out);
            if c.interval_jitter_percent.is_some_and(|p| p > 100) {
                out.add(dp.field("intervalJitterPercent"), "must be in inclusive range [0, 100]");
            }
            positive(&dp.field("noTrafficInterval"), c.no_traffic_interval, &mut out);
            percentage(&dp.field("healthyPanicThreshold"), c.healthy_panic_threshold.as_ref(), &mut out);
            if let Some(h) = &c.http {
                if let Some(headers) = &h.request_headers_to_add {
                    headers.validate(&dp.field("http").field("requestHeadersToAdd"), &mut out);
                }
                if h.path.as_deref() == Some("") {
                    out.add(dp.field("http").field("path"), "must be defined");
                }
                for (j, s) in h.expected_statuses.iter().flatten().enumerate() {
                    if !(100..=599).contains(s) {
                        out.add(
                            dp.field("http").field("expectedStatuses").index(j),
                            "must be in inclusive range [100, 599]",
                        );
                    }
                }
            }
            if c.http.is_none() && c.tcp.is_none() && c.grpc.is_none() {
                out.add(&dp, "must have at least one defined: http, tcp, grpc");
            }
        }
        out
    }
}
