//! `CircuitBreaker`: cluster thresholds and outlier detection.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, OutlierDetection, circuit_breakers::Thresholds};
use kuma_model::policy::CircuitBreakerConf;
use kuma_model::{Resource, Spec};

use crate::pb::{duration, u32v};

fn conf(policy: &Resource) -> Option<&CircuitBreakerConf> {
    match &policy.spec {
        Spec::CircuitBreaker(c) => c.conf.as_ref(),
        _ => None,
    }
}

pub(super) fn cluster(policy: &Resource, cluster: &mut Cluster) {
    let Some(c) = conf(policy) else { return };
    if let Some(t) = &c.thresholds {
        let thresholds = cluster.circuit_breakers.get_or_insert_with(Default::default);
        if thresholds.thresholds.is_empty() {
            thresholds.thresholds.push(Thresholds { track_remaining: true, ..Default::default() });
        }
        let th = &mut thresholds.thresholds[0];
        if let Some(v) = t.max_connections {
            th.max_connections = u32v(v);
        }
        if let Some(v) = t.max_pending_requests {
            th.max_pending_requests = u32v(v);
        }
        if let Some(v) = t.max_requests {
            th.max_requests = u32v(v);
        }
        if let Some(v) = t.max_retries {
            th.max_retries = u32v(v);
        }
    }
    let Some(d) = &c.detectors else { return };
    // Kuma's outlier detection: every detector not configured is disabled
    // (enforcing 0), so only what the policy names ejects hosts.
    let mut od = OutlierDetection {
        interval: c.interval.map(duration),
        base_ejection_time: c.base_ejection_time.map(duration),
        max_ejection_percent: c.max_ejection_percent.and_then(u32v),
        split_external_local_origin_errors: c.split_external_and_local_errors,
        enforcing_consecutive_5xx: u32v(0),
        enforcing_consecutive_gateway_failure: u32v(0),
        enforcing_consecutive_local_origin_failure: u32v(0),
        enforcing_success_rate: u32v(0),
        enforcing_failure_percentage: u32v(0),
        ..Default::default()
    };
    if let Some(e) = &d.total_errors {
        od.consecutive_5xx = e.consecutive.and_then(u32v);
        od.enforcing_consecutive_5xx = u32v(100);
    }
    if let Some(e) = &d.gateway_errors {
        od.consecutive_gateway_failure = e.consecutive.and_then(u32v);
        od.enforcing_consecutive_gateway_failure = u32v(100);
    }
    if let Some(e) = &d.local_errors {
        od.consecutive_local_origin_failure = e.consecutive.and_then(u32v);
        od.enforcing_consecutive_local_origin_failure = u32v(100);
    }
    if let Some(s) = &d.standard_deviation {
        od.success_rate_request_volume = s.request_volume.and_then(u32v);
        od.success_rate_minimum_hosts = s.minimum_hosts.and_then(u32v);
        od.success_rate_stdev_factor = s.factor.map(|f| (f * 1000.0).round() as u32).and_then(u32v);
        od.enforcing_success_rate = u32v(100);
    }
    if let Some(f) = &d.failure {
        od.failure_percentage_request_volume = f.request_volume.and_then(u32v);
        od.failure_percentage_minimum_hosts = f.minimum_hosts.and_then(u32v);
        od.failure_percentage_threshold = f.threshold.and_then(u32v);
        od.enforcing_failure_percentage = u32v(100);
    }
    cluster.outlier_detection = Some(od);
}
