//! The closed set of resource kinds, and a resource: metadata plus spec.

use std::fmt;

use serde_json::Value;

use crate::dataplane::DataplaneSpec;
use crate::external_service::ExternalServiceSpec;
use crate::gateway::MeshGatewaySpec;
use crate::instance::MeshGatewayInstanceSpec;
use crate::mesh::MeshSpec;
use crate::mesh_access_log::MeshAccessLogSpec;
use crate::mesh_circuit_breaker::MeshCircuitBreakerSpec;
use crate::mesh_external_service::MeshExternalServiceSpec;
use crate::mesh_fault_injection::MeshFaultInjectionSpec;
use crate::mesh_health_check::MeshHealthCheckSpec;
use crate::mesh_http_route::MeshHttpRouteSpec;
use crate::mesh_load_balancing_strategy::MeshLoadBalancingStrategySpec;
use crate::mesh_rate_limit::MeshRateLimitSpec;
use crate::mesh_retry::MeshRetrySpec;
use crate::mesh_service::MeshServiceSpec;
use crate::mesh_tcp_route::MeshTcpRouteSpec;
use crate::mesh_timeout::MeshTimeoutSpec;
use crate::mesh_tls::MeshTlsSpec;
use crate::mesh_trace::MeshTraceSpec;
use crate::mesh_traffic_permission::MeshTrafficPermissionSpec;
use crate::meta::Meta;
use crate::policy::{
    CircuitBreakerSpec, FaultInjectionSpec, HealthCheckSpec, ProxyTemplateSpec, RateLimitSpec, RetrySpec, TimeoutSpec,
    TrafficLogSpec, TrafficPermissionSpec, TrafficRouteSpec, TrafficTraceSpec, VirtualOutboundSpec,
};
use crate::route::MeshGatewayRouteSpec;
use crate::secret::SecretSpec;
use crate::violation::Violations;
use crate::zone_egress::ZoneEgressSpec;

macro_rules! kinds {
    ($( $(#[$doc:meta])* $kind:ident($spec:ty) { mesh_scoped: $scoped:expr, namespaced: $ns:expr } )*) => {
        /// Every resource kind this gateway reads.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Kind {
            $( $(#[$doc])* $kind, )*
        }

        /// The spec of a resource, by kind.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        #[non_exhaustive]
        pub enum Spec {
            $( $(#[$doc])* $kind($spec), )*
        }

        impl Kind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [Kind] = &[$(Kind::$kind),*];

            /// The type name, as written in `type:` or `kind:`.
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$kind => stringify!($kind),)* }
            }

            /// The kind named `name` (`MeshGateway`), if any.
            pub fn parse(name: &str) -> Option<Kind> {
                match name { $(stringify!($kind) => Some(Kind::$kind),)* _ => None }
            }

            /// False only for `Mesh`, which is not inside a mesh.
            pub fn is_mesh_scoped(self) -> bool {
                match self { $(Kind::$kind => $scoped,)* }
            }

            /// Namespaced on Kubernetes, where the Kuma name is `name.namespace`.
            pub fn is_namespaced(self) -> bool {
                match self { $(Kind::$kind => $ns,)* }
            }
        }

        impl Spec {
            /// The kind of this spec.
            pub fn kind(&self) -> Kind {
                match self { $(Spec::$kind(_) => Kind::$kind,)* }
            }

            /// Kuma's validation of this spec alone (cross-resource checks
            /// are [`crate::ResourceSet`]'s).
            pub fn validate(&self) -> Violations {
                match self { $(Spec::$kind(s) => <$spec>::validate(s),)* }
            }

            /// The spec as proto JSON (camelCase keys, defaults omitted).
            pub fn to_json(&self) -> Value {
                let value = match self { $(Spec::$kind(s) => serde_json::to_value(s),)* };
                value.unwrap_or(Value::Null)
            }

            /// Deserialises a spec of `kind`; on error, the field path and message.
            pub fn from_json(kind: Kind, value: &Value) -> Result<Spec, SpecError> {
                Self::deserialize(kind, value)
            }

            /// [`Spec::from_json`] from any input read as JSON is: a value,
            /// or the marked tree a file was parsed into.
            pub(crate) fn deserialize<'de>(
                kind: Kind,
                input: impl serde::Deserializer<'de, Error = serde_json::Error> + Copy,
            ) -> Result<Spec, SpecError> {
                // Read without tracking the path first: the path is only
                // wanted for an error, and tracking it through every field
                // of every valid spec was an eighth of `validate`'s work on
                // a large gateway. Reading is deterministic, so the second
                // pass fails the same way.
                match kind {
                    $(Kind::$kind => match <$spec as serde::Deserialize>::deserialize(input) {
                        Ok(spec) => Ok(Spec::$kind(spec)),
                        Err(_) => serde_path_to_error::deserialize::<_, $spec>(input)
                            .map(Spec::$kind)
                            .map_err(SpecError::from),
                    },)*
                }
            }
        }
    };
}

kinds! {
    /// A mesh: mTLS, logging and tracing backends.
    Mesh(MeshSpec) { mesh_scoped: false, namespaced: false }
    /// A data plane proxy; gateways are `BUILTIN` or `DELEGATED` ones.
    Dataplane(DataplaneSpec) { mesh_scoped: true, namespaced: true }
    /// Listeners of a builtin gateway.
    MeshGateway(MeshGatewaySpec) { mesh_scoped: true, namespaced: false }
    /// Routes of a builtin gateway.
    MeshGatewayRoute(MeshGatewayRouteSpec) { mesh_scoped: true, namespaced: false }
    /// Kubernetes serving capacity for a builtin gateway.
    MeshGatewayInstance(MeshGatewayInstanceSpec) { mesh_scoped: true, namespaced: true }
    /// A service outside the mesh.
    ExternalService(ExternalServiceSpec) { mesh_scoped: true, namespaced: false }
    /// Secret data (certificates, keys).
    Secret(SecretSpec) { mesh_scoped: true, namespaced: false }
    /// Connection policy: cluster thresholds and outlier detection.
    CircuitBreaker(CircuitBreakerSpec) { mesh_scoped: true, namespaced: false }
    /// Connection policy: delays, aborts and bandwidth limits.
    FaultInjection(FaultInjectionSpec) { mesh_scoped: true, namespaced: false }
    /// Connection policy: active health checks.
    HealthCheck(HealthCheckSpec) { mesh_scoped: true, namespaced: false }
    /// Raw Envoy config modifications.
    ProxyTemplate(ProxyTemplateSpec) { mesh_scoped: true, namespaced: false }
    /// Connection policy: local rate limits.
    RateLimit(RateLimitSpec) { mesh_scoped: true, namespaced: false }
    /// Connection policy: retries.
    Retry(RetrySpec) { mesh_scoped: true, namespaced: false }
    /// Which services may talk to which.
    TrafficPermission(TrafficPermissionSpec) { mesh_scoped: true, namespaced: false }
    /// Sidecar routing (ignored by gateways).
    TrafficRoute(TrafficRouteSpec) { mesh_scoped: true, namespaced: false }
    /// Access logging.
    TrafficLog(TrafficLogSpec) { mesh_scoped: true, namespaced: false }
    /// Tracing: which data planes report spans to which mesh backend.
    TrafficTrace(TrafficTraceSpec) { mesh_scoped: true, namespaced: false }
    /// Connection policy: timeouts.
    Timeout(TimeoutSpec) { mesh_scoped: true, namespaced: false }
    /// Virtual hostnames for outbounds (ignored by gateways).
    VirtualOutbound(VirtualOutboundSpec) { mesh_scoped: true, namespaced: false }
    /// The zone's egress proxy (ExternalService traffic with `routing.zoneEgress`).
    ZoneEgress(ZoneEgressSpec) { mesh_scoped: false, namespaced: true }
    /// Kuma 2.x HTTP routes (on gateways: targeting a `MeshGateway`).
    MeshHTTPRoute(MeshHttpRouteSpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x TCP routes (on gateways: targeting a `MeshGateway`).
    MeshTCPRoute(MeshTcpRouteSpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x timeouts.
    MeshTimeout(MeshTimeoutSpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x retries.
    MeshRetry(MeshRetrySpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x connection limits and outlier detection.
    MeshCircuitBreaker(MeshCircuitBreakerSpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x fault injection.
    MeshFaultInjection(MeshFaultInjectionSpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x local rate limits.
    MeshRateLimit(MeshRateLimitSpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x active health checks.
    MeshHealthCheck(MeshHealthCheckSpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x access logs.
    MeshAccessLog(MeshAccessLogSpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x load balancing.
    MeshLoadBalancingStrategy(MeshLoadBalancingStrategySpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x tracing.
    MeshTrace(MeshTraceSpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x mesh TLS versions and ciphers.
    MeshTLS(MeshTlsSpec) { mesh_scoped: true, namespaced: true }
    /// Kuma 2.x access control (enforced by destination sidecars).
    MeshTrafficPermission(MeshTrafficPermissionSpec) { mesh_scoped: true, namespaced: true }
    /// A Kuma 2.x service as a resource (read; backendRefs with a port or
    /// section, which reference it, are refused).
    MeshService(MeshServiceSpec) { mesh_scoped: true, namespaced: true }
    /// A Kuma 2.x external service (read; not a route backend here).
    MeshExternalService(MeshExternalServiceSpec) { mesh_scoped: true, namespaced: true }
}

impl Kind {
    /// Kuma 2.x resources keep their spec under `spec` in the Universal form
    /// too (`type`, `name`, `mesh`, `labels`, then `spec`).
    pub fn has_spec_field(self) -> bool {
        matches!(
            self,
            Kind::MeshHTTPRoute
                | Kind::MeshTCPRoute
                | Kind::MeshTimeout
                | Kind::MeshRetry
                | Kind::MeshCircuitBreaker
                | Kind::MeshFaultInjection
                | Kind::MeshRateLimit
                | Kind::MeshHealthCheck
                | Kind::MeshAccessLog
                | Kind::MeshLoadBalancingStrategy
                | Kind::MeshTrace
                | Kind::MeshTLS
                | Kind::MeshTrafficPermission
                | Kind::MeshService
                | Kind::MeshExternalService
        )
    }
}

impl Spec {
    /// `sources` and `destinations` of a connection policy (including
    /// TrafficPermission); `None` for every other kind.
    pub fn sources_destinations(&self) -> Option<(&[crate::Selector], &[crate::Selector])> {
        match self {
            Spec::CircuitBreaker(p) => Some((&p.sources, &p.destinations)),
            Spec::FaultInjection(p) => Some((&p.sources, &p.destinations)),
            Spec::HealthCheck(p) => Some((&p.sources, &p.destinations)),
            Spec::RateLimit(p) => Some((&p.sources, &p.destinations)),
            Spec::Retry(p) => Some((&p.sources, &p.destinations)),
            Spec::Timeout(p) => Some((&p.sources, &p.destinations)),
            Spec::TrafficLog(p) => Some((&p.sources, &p.destinations)),
            Spec::TrafficRoute(p) => Some((&p.sources, &p.destinations)),
            Spec::TrafficPermission(p) => Some((&p.sources, &p.destinations)),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A spec that did not deserialise: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Field path (`conf.listeners[0].protocol`); empty for the spec itself.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl From<serde_path_to_error::Error<serde_json::Error>> for SpecError {
    fn from(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        use serde_path_to_error::Segment;
        let mut path = crate::violation::FieldPath::root();
        for segment in e.path().iter() {
            path = match segment {
                Segment::Seq { index } => path.index(*index),
                Segment::Map { key } | Segment::Enum { variant: key }
                    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    path.field(key)
                }
                Segment::Map { key } | Segment::Enum { variant: key } => path.key(key),
                Segment::Unknown => path,
            };
        }
        let field = path.to_string();
        let message = e.into_inner().to_string();
        // serde_json appends " at line 0 column 0" when reading from a Value.
        let message = message.split(" at line ").next().unwrap_or_default().to_string();
        SpecError { field, message }
    }
}

/// Identifies a resource: kind, mesh and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// The kind.
    pub kind: Kind,
    /// The mesh (empty for `Mesh`).
    pub mesh: String,
    /// The name.
    pub name: String,
}

impl fmt::Display for ResourceKey {
    /// `MeshGateway default/edge-gateway`, or `Mesh default`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_mesh_scoped() {
            write!(f, "{} {}/{}", self.kind, self.mesh, self.name)
        } else {
            write!(f, "{} {}", self.kind, self.name)
        }
    }
}

/// A resource: its metadata and its spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Name, mesh, creation time, origin.
    pub meta: Meta,
    /// The typed spec.
    pub spec: Spec,
}

impl Resource {
    /// The resource's key.
    pub fn key(&self) -> ResourceKey {
        ResourceKey { kind: self.spec.kind(), mesh: self.meta.mesh.clone(), name: self.meta.name.clone() }
    }
}
