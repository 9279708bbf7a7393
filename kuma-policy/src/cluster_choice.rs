//! The policies chosen for one cluster: a backend destination as seen from
//! one listener (its tags). Every route entry to that destination on that
//! listener shares the cluster, so the choice is made once per cluster.

use std::sync::Arc;

use kuma_model::mesh_circuit_breaker::CircuitBreakerConf;
use kuma_model::mesh_health_check::HealthCheckConf;
use kuma_model::mesh_load_balancing_strategy::LoadBalancingConf;
use kuma_model::mesh_timeout::TimeoutConf;
use kuma_model::{Kind, Resource, SERVICE_TAG, Tags};

use crate::host_policies::HostPolicies;
use crate::mesh_policies::ListenerPolicies;
use crate::mesh_services::RealService;

/// The policies chosen for one cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterChoice<'a> {
    /// The name `to` entries of kind `MeshService` select the cluster by:
    /// its `kuma.io/service`, or for a `MeshService` port the MeshService's.
    pub service: String,
    /// A `MeshService` port (Kuma sets no connect or idle timeouts on its
    /// clusters unless a `MeshTimeout` does).
    pub real: bool,
    /// The `Timeout` of the destination (connect and idle timeouts).
    pub legacy_timeout: Option<&'a Resource>,
    /// The `CircuitBreaker` of the destination.
    pub legacy_circuit_breaker: Option<&'a Resource>,
    /// The `HealthCheck` of the destination.
    pub legacy_health_check: Option<&'a Resource>,
    /// The merged `MeshTimeout` conf of the service.
    pub timeout: Option<Arc<TimeoutConf>>,
    /// Some `MeshTimeout` `to` entry applies to the listener at all.
    pub timeouts_configured: bool,
    /// The merged `MeshCircuitBreaker` conf of the service.
    pub circuit_breaker: Option<Arc<CircuitBreakerConf>>,
    /// The merged `MeshHealthCheck` conf of the service.
    pub health_check: Option<Arc<HealthCheckConf>>,
    /// The merged `MeshLoadBalancingStrategy` conf of the service.
    pub load_balancing: Option<Arc<LoadBalancingConf>>,
}

impl<'a> ClusterChoice<'a> {
    /// The choice for `destination` from a listener whose Kuma 2.x policies
    /// are `policies` and connection policies `legacy`; `real`: the
    /// `MeshService` port the destination stands for, if any.
    pub fn new(
        policies: &ListenerPolicies,
        legacy: &HostPolicies<'a>,
        destination: &Tags,
        real: Option<&RealService<'_>>,
    ) -> Self {
        let service = match real {
            Some(r) => r.service_name(),
            None => destination.get(SERVICE_TAG).map_or("", String::as_str),
        };
        ClusterChoice {
            service: service.to_string(),
            real: real.is_some(),
            legacy_timeout: legacy.for_destination(Kind::Timeout, destination),
            legacy_circuit_breaker: legacy.for_destination(Kind::CircuitBreaker, destination),
            legacy_health_check: legacy.for_destination(Kind::HealthCheck, destination),
            timeout: policies.timeout.service_shared(service).cloned(),
            timeouts_configured: policies.timeout.any,
            circuit_breaker: policies.circuit_breaker.service_shared(service).cloned(),
            health_check: policies.health_check.service_shared(service).cloned(),
            load_balancing: policies.load_balancing.service_shared(service).cloned(),
        }
    }

    /// The connection policies chosen, in the order they apply.
    pub fn legacy(&self) -> impl Iterator<Item = &'a Resource> + use<'a> {
        [self.legacy_timeout, self.legacy_circuit_breaker, self.legacy_health_check].into_iter().flatten()
    }
}
