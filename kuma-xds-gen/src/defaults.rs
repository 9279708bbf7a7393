//! What a gateway gets when no policy says otherwise: the effect of the four
//! policies a new Kuma mesh creates (`mesh-gateways-timeout-all-default`,
//! `mesh-timeout-all-default`, `mesh-retry-all-default`,
//! `mesh-circuit-breaker-all-default`) plus the builtin gateway's own
//! constants. `docs/xds.md` lists them.

use envoy_types::pb::envoy::config::cluster::v3::{CircuitBreakers, circuit_breakers::Thresholds};
use envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions as CommonHttpProtocolOptions;
use envoy_types::pb::envoy::config::route::v3::{RetryPolicy, retry_policy::RetryBackOff};

use crate::pb::{millis, secs, u32v};

/// Route timeout (`MeshTimeout` default `http.requestTimeout`).
pub const ROUTE_TIMEOUT_MS: u64 = 15_000;
/// Route stream idle timeout (Kuma's `DefaultGatewayStreamIdleTimeout`).
pub const ROUTE_IDLE_TIMEOUT_MS: u64 = 5_000;
/// Upstream connect timeout.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Upstream HTTP connection idle timeout (`MeshTimeout` default).
pub const UPSTREAM_IDLE_TIMEOUT_MS: u64 = 3_600_000;
/// Downstream (listener) HTTP connection idle timeout.
pub const DOWNSTREAM_IDLE_TIMEOUT_MS: u64 = 300_000;
/// Downstream HTTP stream idle timeout.
pub const STREAM_IDLE_TIMEOUT_MS: u64 = 5_000;
/// Time allowed for request headers.
pub const REQUEST_HEADERS_TIMEOUT_MS: u64 = 500;
/// TCP proxy idle timeout.
pub const TCP_IDLE_TIMEOUT_MS: u64 = 300_000;
/// TCP connect attempts (`MeshRetry` default `tcp.maxConnectAttempt`).
pub const TCP_MAX_CONNECT_ATTEMPTS: u32 = 5;
/// Per-connection buffer limit of listeners and clusters.
pub const BUFFER_LIMIT_BYTES: u32 = 32_768;

/// `MeshRetry` default for HTTP routes.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: "gateway-error,connect-failure,refused-stream".into(),
        num_retries: u32v(5),
        per_try_timeout: Some(secs(16)),
        retry_back_off: Some(RetryBackOff { base_interval: Some(millis(25)), max_interval: Some(millis(250)) }),
        ..Default::default()
    }
}

/// `MeshCircuitBreaker` default thresholds.
pub fn circuit_breakers() -> CircuitBreakers {
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

/// Upstream HTTP connection options (`MeshTimeout` default).
pub fn upstream_common_http() -> CommonHttpProtocolOptions {
    CommonHttpProtocolOptions {
        idle_timeout: Some(millis(UPSTREAM_IDLE_TIMEOUT_MS)),
        max_connection_duration: Some(secs(0)),
        max_stream_duration: Some(secs(0)),
        ..Default::default()
    }
}
