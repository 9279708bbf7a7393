//! Policies into Envoy settings: kuma-policy chooses which policy applies
//! (the route table holds the route-level choices, [`HostPolicies`] the
//! cluster-level ones); one module per policy type turns a chosen policy
//! into Envoy settings.

mod circuit_breaker;
pub(crate) mod fault_injection;
mod health_check;
pub(crate) mod mesh_health_check;
pub(crate) mod mesh_http_policies;
pub(crate) mod mesh_load_balancing;
pub(crate) mod mesh_tls;
pub(crate) mod mesh_trace;
pub(crate) mod proxy_template;
pub(crate) mod rate_limit;
mod retry;
mod timeout;
pub(crate) mod traffic_log;
pub(crate) mod traffic_trace;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::route::v3::{Route, RouteAction};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use kuma_model::{Kind, ResourceSet};
pub(crate) use kuma_policy::host_policies::HostPolicies;
use kuma_policy::host_policies::RoutePolicies;

/// Route-level connection policies of an HTTP route (request timeout, retries).
pub(crate) fn apply_route(chosen: &RoutePolicies<'_>, action: &mut RouteAction) {
    if let Some(p) = chosen.timeout {
        timeout::route(p, action);
    }
    if let Some(p) = chosen.retry {
        retry::route(p, action);
    }
}

/// Per-route filter settings (rate limit, fault injection) of an HTTP route.
pub(crate) fn apply_route_filters(chosen: &RoutePolicies<'_>, route: &mut Route) {
    if let Some(p) = chosen.rate_limit {
        rate_limit::route(p, route);
    }
    if let Some(p) = chosen.fault_injection {
        fault_injection::route(p, route);
    }
}

/// The connection policies chosen for a cluster (connect and idle
/// timeouts, circuit breaker, health check).
pub(crate) fn apply_cluster(choice: &kuma_policy::cluster_choice::ClusterChoice<'_>, cluster: &mut Cluster) {
    if let Some(p) = choice.legacy_timeout {
        timeout::cluster(p, cluster);
    }
    if let Some(p) = choice.legacy_circuit_breaker {
        circuit_breaker::cluster(p, cluster);
    }
    if let Some(p) = choice.legacy_health_check {
        health_check::cluster(p, cluster);
    }
}

/// Connection policies of a TCP proxy (Timeout, Retry).
pub(crate) fn apply_tcp_proxy(chosen: &RoutePolicies<'_>, proxy: &mut TcpProxy) {
    if let Some(p) = chosen.timeout {
        timeout::tcp_proxy(p, proxy);
    }
    if let Some(p) = chosen.retry {
        retry::tcp_proxy(p, proxy);
    }
}

/// Warnings for resources a gateway accepts but does not use: TrafficRoute
/// and VirtualOutbound (ignored by gateways, as in Kuma).
pub fn ignored(set: &ResourceSet) -> Vec<kuma_model::Diagnostic> {
    let mut out = Vec::new();
    for (kind, message) in [
        (Kind::TrafficRoute, "TrafficRoute is ignored by gateways (routes come from MeshGatewayRoute)"),
        (Kind::VirtualOutbound, "VirtualOutbound is ignored by gateways"),
    ] {
        for r in set.of_kind(kind) {
            out.push(kuma_model::Diagnostic {
                location: r.meta.location.clone(),
                resource: Some(r.key()),
                field: String::new(),
                message: message.into(),
                origin: kuma_model::Origin::Extra,
                severity: kuma_model::Severity::Warning,
            });
        }
    }
    out
}
