//! The connection policies (Kuma 1.x `sources`/`destinations` kinds) of one
//! gateway host: those whose `sources` match the host's listener tags, and
//! for a destination or a route the one that applies.
//!
//! Route-level choices (request timeout, retries, rate limit, fault
//! injection) follow the policy chosen for all of a route's backends by the
//! seed's heuristic ([`crate::connection::for_destinations`]); cluster-level
//! ones (connect timeout, circuit breaker, health check) the policy of the
//! cluster's destination.

use std::collections::BTreeMap;

use kuma_model::{Kind, Resource, ResourceSet, Tags};

use crate::connection::{SourceMatch, by_source, for_destination, for_destinations};
use crate::permission::Permissions;

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
#[derive(Debug, Clone, Default)]
pub struct HostPolicies<'a> {
    by_kind: BTreeMap<Kind, Vec<SourceMatch<'a>>>,
    /// With mesh mTLS on and TrafficPermissions in the mesh: those, and the
    /// host's tags they are matched from.
    permissions: Option<(Permissions<'a>, Tags)>,
}

impl<'a> HostPolicies<'a> {
    /// Matches the connection policies of `mesh` that shape routes and
    /// clusters (Timeout, Retry, CircuitBreaker, HealthCheck, RateLimit,
    /// FaultInjection, TrafficLog) against `host_tags`.
    pub fn new(set: &'a ResourceSet, mesh: &str, host_tags: &Tags) -> Self {
        let by_kind =
            KINDS.iter().map(|k| (*k, by_source(set, mesh, *k, host_tags))).filter(|(_, v)| !v.is_empty()).collect();
        let mtls = set.mesh(mesh).is_some_and(kuma_model::mesh::MeshSpec::mtls_enabled);
        let permissions =
            Some(Permissions::new(set, mesh)).filter(|p| !p.is_empty() && mtls).map(|p| (p, host_tags.clone()));
        HostPolicies { by_kind, permissions }
    }

    /// Whether traffic from this host may reach `destination`: always, unless
    /// mesh mTLS is on and TrafficPermissions exist; then only when one of
    /// them (sources matching the host) has destinations matching it. The
    /// destination's sidecar would refuse the rest with a 403; the gateway
    /// answers it at the edge instead.
    pub fn permits(&self, destination: &Tags) -> bool {
        self.permissions.as_ref().is_none_or(|(p, host)| p.allows(host, destination))
    }

    fn candidates(&self, kind: Kind) -> &[SourceMatch<'a>] {
        self.by_kind.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// The policy of `kind` for one destination.
    pub fn for_destination(&self, kind: Kind, destination: &Tags) -> Option<&'a Resource> {
        for_destination(self.candidates(kind), destination)
    }

    /// The policy of `kind` for a route forwarding to `destinations`.
    pub fn for_route(&self, kind: Kind, destinations: &[Tags]) -> Option<&'a Resource> {
        for_destinations(self.candidates(kind), destinations)
    }

    /// The route-level policies of an HTTP route forwarding to
    /// `destinations` (none when it has no destinations).
    pub fn http_route(&self, destinations: &[Tags]) -> RoutePolicies<'a> {
        if destinations.is_empty() || !self.has_route_policies() {
            return RoutePolicies::default();
        }
        // FaultInjection destinations must name an HTTP protocol (Kuma's
        // rule), which gateway backends rarely write: these are HTTP routes.
        let http: Vec<Tags> = destinations
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.entry(crate::endpoints::PROTOCOL_TAG.to_string()).or_insert_with(|| "http".to_string());
                d
            })
            .collect();
        RoutePolicies {
            timeout: self.for_route(Kind::Timeout, destinations),
            retry: self.for_route(Kind::Retry, destinations),
            rate_limit: self.for_route(Kind::RateLimit, destinations),
            fault_injection: self.for_route(Kind::FaultInjection, &http),
        }
    }

    /// Whether any policy that applies per route (Timeout, Retry,
    /// RateLimit, FaultInjection) matched the host.
    pub fn has_route_policies(&self) -> bool {
        [Kind::Timeout, Kind::Retry, Kind::RateLimit, Kind::FaultInjection].iter().any(|k| self.by_kind.contains_key(k))
    }

    /// The route-level policies of a TCP route (Timeout and Retry).
    pub fn tcp_route(&self, destinations: &[Tags]) -> RoutePolicies<'a> {
        if destinations.is_empty()
            || !self.by_kind.contains_key(&Kind::Timeout) && !self.by_kind.contains_key(&Kind::Retry)
        {
            return RoutePolicies::default();
        }
        RoutePolicies {
            timeout: self.for_route(Kind::Timeout, destinations),
            retry: self.for_route(Kind::Retry, destinations),
            ..RoutePolicies::default()
        }
    }
}

/// The connection policies chosen for one route.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RoutePolicies<'a> {
    /// The `Timeout` (request timeout).
    pub timeout: Option<&'a Resource>,
    /// The `Retry`.
    pub retry: Option<&'a Resource>,
    /// The `RateLimit` (HTTP only).
    pub rate_limit: Option<&'a Resource>,
    /// The `FaultInjection` (HTTP only).
    pub fault_injection: Option<&'a Resource>,
}

impl<'a> RoutePolicies<'a> {
    /// The chosen policies, in the order they apply.
    pub fn iter(&self) -> impl Iterator<Item = &'a Resource> + use<'a> {
        [self.timeout, self.retry, self.rate_limit, self.fault_injection].into_iter().flatten()
    }
}
