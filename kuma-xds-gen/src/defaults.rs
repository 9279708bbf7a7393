//! What a gateway gets when no policy says otherwise: the effect of the four
//! policies a new Kuma mesh creates (`mesh-gateways-timeout-all-default`,
//! `mesh-timeout-all-default`, `mesh-retry-all-default`,
//! `mesh-circuit-breaker-all-default`) plus the builtin gateway's own
//! constants. `docs/xds.md` lists them.

use envoy_types::pb::envoy::config::cluster::v3::{CircuitBreakers, circuit_breakers::Thresholds};
use envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions as CommonHttpProtocolOptions;
use envoy_types::pb::envoy::config::route::v3::{RetryPolicy, retry_policy::RetryBackOff};
use envoy_types::pb::google::protobuf::Duration;

use kuma_model::ResourceSet;

use crate::pb::{millis, secs, u32v};

/// Which of the initial policies Kuma creates with a mesh this mesh has: all
/// of them, unless the Mesh lists their types (or `*`) in
/// `skipCreatingInitialPolicies`. Without `MeshTimeout` routes carry no
/// timeout and upstream HTTP connections never idle out; without `MeshRetry`
/// routes have no retry policy and TCP proxies Envoy's one connect attempt;
/// without `MeshCircuitBreaker` clusters keep Envoy's thresholds — what Kuma
/// generates when those policies are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Initial {
    /// `mesh-gateways-timeout-all-default` exists.
    pub timeout: bool,
    /// `mesh-retry-all-default` exists.
    pub retry: bool,
    /// `mesh-circuit-breaker-all-default` exists.
    pub circuit_breaker: bool,
}

impl Initial {
    /// The initial policies of `mesh` (all of them when the Mesh is not defined).
    pub(crate) fn of(set: &ResourceSet, mesh: &str) -> Self {
        let skipped = set.mesh(mesh).map_or(&[][..], |m| m.skip_creating_initial_policies.as_slice());
        let has = |kind: &str| !skipped.iter().any(|s| s == "*" || s == kind);
        Initial { timeout: has("MeshTimeout"), retry: has("MeshRetry"), circuit_breaker: has("MeshCircuitBreaker") }
    }

    /// The route timeout, if any.
    pub(crate) fn route_timeout(self) -> Option<Duration> {
        self.timeout.then(|| millis(ROUTE_TIMEOUT_MS))
    }

    /// The route retry policy, if any.
    pub(crate) fn retry_policy(self) -> Option<RetryPolicy> {
        self.retry.then(retry_policy)
    }

    /// TCP proxy connect attempts, if set.
    pub(crate) fn tcp_max_connect_attempts(self) -> Option<u32> {
        self.retry.then_some(TCP_MAX_CONNECT_ATTEMPTS)
    }

    /// Cluster circuit breakers, if any.
    pub(crate) fn circuit_breakers(self) -> Option<CircuitBreakers> {
        self.circuit_breaker.then(circuit_breakers)
    }

    /// Upstream HTTP connection options.
    pub(crate) fn upstream_common_http(self) -> CommonHttpProtocolOptions {
        CommonHttpProtocolOptions {
            idle_timeout: Some(millis(if self.timeout { UPSTREAM_IDLE_TIMEOUT_MS } else { 0 })),
            max_connection_duration: Some(secs(0)),
            max_stream_duration: Some(secs(0)),
            ..Default::default()
        }
    }
}

/// Route timeout (`MeshTimeout` default `http.requestTimeout`).
pub(crate) const ROUTE_TIMEOUT_MS: u64 = 15_000;
/// Route stream idle timeout (Kuma's `DefaultGatewayStreamIdleTimeout`).
pub(crate) const ROUTE_IDLE_TIMEOUT_MS: u64 = 5_000;
/// Upstream connect timeout.
pub(crate) const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Upstream HTTP connection idle timeout (`MeshTimeout` default).
pub(crate) const UPSTREAM_IDLE_TIMEOUT_MS: u64 = 3_600_000;
/// Downstream (listener) HTTP connection idle timeout.
pub(crate) const DOWNSTREAM_IDLE_TIMEOUT_MS: u64 = 300_000;
/// Downstream HTTP stream idle timeout.
pub(crate) const STREAM_IDLE_TIMEOUT_MS: u64 = 5_000;
/// Time allowed for request headers.
pub(crate) const REQUEST_HEADERS_TIMEOUT_MS: u64 = 500;
/// TCP proxy idle timeout.
pub(crate) const TCP_IDLE_TIMEOUT_MS: u64 = 300_000;
/// TCP connect attempts (`MeshRetry` default `tcp.maxConnectAttempt`).
pub(crate) const TCP_MAX_CONNECT_ATTEMPTS: u32 = 5;
/// Per-connection buffer limit of listeners and clusters.
pub(crate) const BUFFER_LIMIT_BYTES: u32 = 32_768;

/// `MeshRetry` default for HTTP routes.
fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: "gateway-error,connect-failure,refused-stream".into(),
        num_retries: u32v(5),
        per_try_timeout: Some(secs(16)),
        retry_back_off: Some(RetryBackOff { base_interval: Some(millis(25)), max_interval: Some(millis(250)) }),
        ..Default::default()
    }
}

/// `MeshCircuitBreaker` default thresholds.
fn circuit_breakers() -> CircuitBreakers {
    CircuitBreakers {
        thresholds: vec![Thresholds {
            max_connections: u32v(1024),
            max_pending_requests: u32v(1024),
            max_requests: u32v(1024),
            max_retries: u32v(3),
            track_remaining: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}
