//! The seam between policy matching (kuma-policy) and the generated config:
//! for each host (listener tags) the connection policies whose `sources`
//! match, and for each destination or route the one that applies. One
//! module per policy type turns a chosen policy into Envoy settings.
//!
//! Cluster-level settings (connect/idle timeouts, circuit breakers) follow
//! the policy of the cluster's destination; route-level ones (request
//! timeout, retries) the policy chosen for all of the route's forward
//! backends by the seed's heuristic ([`kuma_policy::connection::for_destinations`]).

mod circuit_breaker;
pub(crate) mod fault_injection;
mod health_check;
pub(crate) mod mesh_health_check;
pub(crate) mod mesh_http_policies;
pub(crate) mod mesh_load_balancing;
pub(crate) mod proxy_template;
pub(crate) mod rate_limit;
mod retry;
mod timeout;
pub(crate) mod traffic_log;
pub(crate) mod traffic_trace;

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::route::v3::{Route, RouteAction};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use kuma_model::{Kind, Resource, ResourceSet, Tags};
use kuma_policy::connection::{SourceMatch, by_source, for_destination, for_destinations};
use kuma_policy::permission::Permissions;

/// The policy kinds that shape a gateway's routes and clusters.
const KINDS: [Kind; 7] = [
    Kind::Timeout,
    Kind::Retry,
    Kind::CircuitBreaker,
    Kind::HealthCheck,
    Kind::RateLimit,
    Kind::FaultInjection,
    Kind::TrafficLog,
];

/// The connection policies whose sources match one host's tags.
#[derive(Debug, Default)]
pub(crate) struct HostPolicies<'a> {
    by_kind: BTreeMap<Kind, Vec<SourceMatch<'a>>>,
    /// With mesh mTLS on and TrafficPermissions in the mesh: those, and the
    /// host's tags they are matched from.
    permissions: Option<(Permissions<'a>, Tags)>,
}

impl<'a> HostPolicies<'a> {
    /// Matches the connection policies of `mesh` that shape routes and
    /// clusters (Timeout, Retry, CircuitBreaker, HealthCheck, RateLimit,
    /// FaultInjection, TrafficLog) against `host_tags`.
    pub(crate) fn new(set: &'a ResourceSet, mesh: &str, host_tags: &Tags) -> Self {
        let by_kind =
            KINDS.iter().map(|k| (*k, by_source(set, mesh, *k, host_tags))).filter(|(_, v)| !v.is_empty()).collect();
        let permissions = Some(Permissions::new(set, mesh))
            .filter(|p| !p.is_empty() && crate::mtls::enabled(set, mesh))
            .map(|p| (p, host_tags.clone()));
        HostPolicies { by_kind, permissions }
    }

    /// Whether traffic from this host may reach `destination`: always, unless
    /// mesh mTLS is on and TrafficPermissions exist; then only when one of
    /// them (sources matching the host) has destinations matching it. The
    /// destination's sidecar would refuse the rest with a 403; the gateway
    /// answers it at the edge instead.
    pub(crate) fn permits(&self, destination: &Tags) -> bool {
        self.permissions.as_ref().is_none_or(|(p, host)| p.allows(host, destination))
    }

    fn candidates(&self, kind: Kind) -> &[SourceMatch<'a>] {
        self.by_kind.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// The policy of `kind` for one destination.
    pub(crate) fn for_destination(&self, kind: Kind, destination: &Tags) -> Option<&'a Resource> {
        for_destination(self.candidates(kind), destination)
    }

    /// The policy of `kind` for a route forwarding to `destinations`.
    pub(crate) fn for_route(&self, kind: Kind, destinations: &[Tags]) -> Option<&'a Resource> {
        for_destinations(self.candidates(kind), destinations)
    }

    /// Route-level policies of an HTTP route over `destinations`.
    pub(crate) fn apply_route(&self, destinations: &[Tags], action: &mut RouteAction) {
        if destinations.is_empty() {
            return;
        }
        if let Some(p) = self.for_route(Kind::Timeout, destinations) {
            timeout::route(p, action);
        }
        if let Some(p) = self.for_route(Kind::Retry, destinations) {
            retry::route(p, action);
        }
    }

    /// Per-route filter settings (rate limit, fault injection) of a route
    /// over `destinations`.
    pub(crate) fn apply_route_filters(&self, destinations: &[Tags], route: &mut Route) {
        if destinations.is_empty() {
            return;
        }
        if let Some(p) = self.for_route(Kind::RateLimit, destinations) {
            rate_limit::route(p, route);
        }
        // FaultInjection destinations must name an HTTP protocol (Kuma's
        // rule), which gateway backends rarely write: these are HTTP routes.
        let http: Vec<Tags> = destinations
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.entry(kuma_policy::endpoints::PROTOCOL_TAG.to_string()).or_insert_with(|| "http".to_string());
                d
            })
            .collect();
        if let Some(p) = self.for_route(Kind::FaultInjection, &http) {
            fault_injection::route(p, route);
        }
    }

    /// Cluster-level policies of the cluster for `destination`.
    pub(crate) fn apply_cluster(&self, destination: &Tags, cluster: &mut Cluster) {
        if let Some(p) = self.for_destination(Kind::Timeout, destination) {
            timeout::cluster(p, cluster);
        }
        if let Some(p) = self.for_destination(Kind::CircuitBreaker, destination) {
            circuit_breaker::cluster(p, cluster);
        }
        if let Some(p) = self.for_destination(Kind::HealthCheck, destination) {
            health_check::cluster(p, cluster);
        }
    }

    /// Policies of a TCP proxy over `destinations`.
    pub(crate) fn apply_tcp_proxy(&self, destinations: &[Tags], proxy: &mut TcpProxy) {
        if destinations.is_empty() {
            return;
        }
        if let Some(p) = self.for_route(Kind::Timeout, destinations) {
            timeout::tcp_proxy(p, proxy);
        }
        if let Some(p) = self.for_route(Kind::Retry, destinations) {
            retry::tcp_proxy(p, proxy);
        }
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
