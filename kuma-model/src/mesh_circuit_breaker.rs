//! `MeshCircuitBreaker`: Kuma 2.x connection limits and outlier detection
//! for upstream clusters.

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::mesh_timeout::over;
use crate::target_ref::{POLICY_TOP_KINDS, TargetKind, TargetRef, TargetRules, validate_sections, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshCircuitBreaker`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshCircuitBreakerSpec {
    /// What the policy applies to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Limits towards destinations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<CircuitBreakerEntry>>,
    /// Limits of incoming traffic (sidecars).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<CircuitBreakerEntry>>,
    /// Inbound rules (sidecars; read, not applied to gateways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<serde_json::Value>>,
}

/// A `to` or `from` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CircuitBreakerEntry {
    /// Which destinations (or sources).
    pub target_ref: TargetRef,
    /// The settings.
    #[serde(default)]
    pub default: CircuitBreakerConf,
}

/// Connection limits and outlier detection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CircuitBreakerConf {
    /// Cluster thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_limits: Option<ConnectionLimits>,
    /// Ejection of failing endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
}

/// `connectionLimits`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionLimits {
    /// Connections to the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Connection pools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connection_pools: Option<u32>,
    /// Requests waiting for a connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u32>,
    /// Concurrent retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Concurrent requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
}

/// `outlierDetection`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Turns detection off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Time between sweeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Base ejection time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<Duration>,
    /// Most endpoints ejected, in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
    /// Count local-origin errors apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_external_and_local_errors: Option<bool>,
    /// Below this share of healthy hosts, ignore health (percent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_panic_threshold: Option<serde_json::Value>,
    /// The detectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detectors: Option<Detectors>,
}

/// `detectors`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Detectors {
    /// Consecutive 5xx (and local errors unless split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_failures: Option<Consecutive>,
    /// Consecutive 502/503/504.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_failures: Option<Consecutive>,
    /// Consecutive local-origin failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_origin_failures: Option<Consecutive>,
    /// Success-rate statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<SuccessRate>,
    /// Failure percentage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_percentage: Option<FailurePercentage>,
}

/// `{consecutive}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Consecutive {
    /// How many in a row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive: Option<u32>,
}

/// `successRate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SuccessRate {
    /// Hosts needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_hosts: Option<u32>,
    /// Requests needed per host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_volume: Option<u32>,
    /// Standard deviation factor (number or string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_deviation_factor: Option<serde_json::Value>,
}

/// `failurePercentage`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FailurePercentage {
    /// Hosts needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_hosts: Option<u32>,
    /// Requests needed per host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_volume: Option<u32>,
    /// Failure percentage that ejects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
}

impl CircuitBreakerConf {
    /// `other` over `self`, field by field (outlier detection as a whole).
    pub fn merge(&mut self, other: &CircuitBreakerConf) {
        if let Some(o) = &other.connection_limits {
            let l = self.connection_limits.get_or_insert_with(Default::default);
            over(&mut l.max_connections, o.max_connections);
            over(&mut l.max_connection_pools, o.max_connection_pools);
            over(&mut l.max_pending_requests, o.max_pending_requests);
            over(&mut l.max_retries, o.max_retries);
            over(&mut l.max_requests, o.max_requests);
        }
        if other.outlier_detection.is_some() {
            self.outlier_detection.clone_from(&other.outlier_detection);
        }
    }
}

fn positive(path: &FieldPath, v: Option<u32>, out: &mut Violations) {
    if v == Some(0) {
        out.add(path, "must be greater than zero when defined");
    }
}

fn percent(path: &FieldPath, v: Option<u32>, out: &mut Violations) {
    if v.is_some_and(|v| v > 100) {
        out.add(path, "must be in inclusive range [0, 100]");
    }
}

impl MeshCircuitBreakerSpec {
    /// The `to` entries: target and conf.
    pub fn to_confs(&self) -> Vec<(&TargetRef, &CircuitBreakerConf)> {
        self.to.as_deref().unwrap_or_default().iter().map(|e| (&e.target_ref, &e.default)).collect()
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
            let kinds = [
                TargetKind::Mesh,
                TargetKind::MeshService,
                TargetKind::MeshExternalService,
                TargetKind::MeshMultiZoneService,
            ];
            validate_target_ref(&p.field("targetRef"), &e.target_ref, TargetRules::kinds(&kinds), &mut out);
            validate_conf(&p.field("default"), &e.default, &mut out);
        }
        out
    }
}

fn validate_conf(path: &FieldPath, c: &CircuitBreakerConf, out: &mut Violations) {
    if c.connection_limits.is_none() && c.outlier_detection.is_none() {
        out.add(path, "at least one of: 'connectionLimits' or 'outlierDetection' should be configured");
        return;
    }
    if let Some(l) = &c.connection_limits {
        let p = path.field("connectionLimits");
        positive(&p.field("maxConnections"), l.max_connections, out);
        positive(&p.field("maxConnectionPools"), l.max_connection_pools, out);
        positive(&p.field("maxPendingRequests"), l.max_pending_requests, out);
        positive(&p.field("maxRetries"), l.max_retries, out);
        positive(&p.field("maxRequests"), l.max_requests, out);
    }
    if let Some(o) = &c.outlier_detection {
        let p = path.field("outlierDetection");
        if o.interval.is_some_and(|d| !d.is_positive()) {
            out.add(p.field("interval"), "must be greater than zero when defined");
        }
        if o.base_ejection_time.is_some_and(|d| !d.is_positive()) {
            out.add(p.field("baseEjectionTime"), "must be greater than zero when defined");
        }
        percent(&p.field("maxEjectionPercent"), o.max_ejection_percent, out);
        crate::mesh_health_check::percentage(
            &p.field("healthyPanicThreshold"),
            o.healthy_panic_threshold.as_ref(),
            out,
        );
        let dp = p.field("detectors");
        let Some(d) = &o.detectors else {
            out.add(&dp, "must be defined");
            return;
        };
        if d == &Detectors::default() {
            out.add(
                &dp,
                "must have at least one defined: totalFailures, gatewayFailures, localOriginFailures, successRate, failurePercentage",
            );
            return;
        }
        for (name, c) in [
            ("totalFailures", &d.total_failures),
            ("gatewayFailures", &d.gateway_failures),
            ("localOriginFailures", &d.local_origin_failures),
        ] {
            positive(&dp.field(name).field("consecutive"), c.as_ref().and_then(|c| c.consecutive), out);
        }
        if let Some(s) = &d.success_rate {
            positive(&dp.field("successRate").field("minimumHosts"), s.minimum_hosts, out);
            positive(&dp.field("successRate").field("requestVolume"), s.request_volume, out);
        }
        if let Some(f) = &d.failure_percentage {
            positive(&dp.field("failurePercentage").field("minimumHosts"), f.minimum_hosts, out);
            positive(&dp.field("failurePercentage").field("requestVolume"), f.request_volume, out);
            percent(&dp.field("failurePercentage").field("threshold"), f.threshold, out);
        }
    }
}
