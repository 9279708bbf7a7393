//! Kuma 2.x targetRef policies (`MeshTimeout`, `MeshRetry`,
//! `MeshCircuitBreaker`) as Envoy settings, and the builtin gateway's own
//! constants. A new mesh has these policies from the start (Kuma creates
//! `mesh-gateways-timeout-all-<mesh>`, `mesh-retry-all-<mesh>` and
//! `mesh-circuit-breaker-all-<mesh>`; see `kuma_policy::initial`), so with
//! no policy written the values below are what a Kuma gateway gets.
//! `docs/xds.md` lists them.
//!
//! Without any `MeshTimeout` `to` entry routes carry no timeout and upstream
//! HTTP connections never idle out; without `MeshRetry` routes have no
//! retry policy and TCP proxies Envoy's one connect attempt; without
//! `MeshCircuitBreaker` clusters keep Envoy's thresholds — what Kuma
//! generates when those policies are deleted.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::{CircuitBreakers, OutlierDetection, circuit_breakers::Thresholds};
use envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions as CommonHttpProtocolOptions;
use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher, RetryPolicy, header_matcher::HeaderMatchSpecifier, retry_policy,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher::MatchPattern};
use envoy_types::pb::google::protobuf::Duration;
use kuma_model::mesh_circuit_breaker::CircuitBreakerConf;
use kuma_model::mesh_http_route::{HeaderMatch, HeaderMatchType};
use kuma_model::mesh_retry::{ResetHeaderFormat, RetryHttp};
use kuma_model::{ResourceSet, Tags};
use kuma_policy::cluster_choice::ClusterChoice;
use kuma_policy::mesh_policies::{ListenerPolicies, MeshPolicies};
use kuma_policy::targeting::Gateway;

use crate::pb::{self, millis, secs, u32v};

/// The Kuma 2.x policies of one listener, as Envoy settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Targeted(std::sync::Arc<ListenerPolicies>);

impl Targeted {
    /// The policies a route table host holds.
    pub(crate) fn of(policies: &std::sync::Arc<ListenerPolicies>) -> Self {
        Targeted(policies.clone())
    }

    /// The merged confs.
    pub(crate) fn policies(&self) -> &ListenerPolicies {
        &self.0
    }

    /// TCP proxy connect attempts, if set.
    pub(crate) fn tcp_max_connect_attempts(&self) -> Option<u32> {
        self.0.retry.mesh.as_deref()?.tcp.as_ref()?.max_connect_attempt
    }

    /// Downstream connection idle timeout (`from` `idleTimeout`, 5 min by
    /// default, as Kuma's MeshTimeout plugin sets it even with no policy):
    /// HTTP connections and TCP proxies.
    pub(crate) fn downstream_idle_timeout(&self) -> Duration {
        let idle = self.0.timeout_from.as_ref().and_then(|c| c.idle_timeout);
        idle.map_or(millis(DOWNSTREAM_IDLE_TIMEOUT_MS), pb::duration)
    }

    /// Time allowed for request headers (`from` `http.requestHeadersTimeout`).
    pub(crate) fn request_headers_timeout(&self) -> Duration {
        let t = self.downstream_http().and_then(|h| h.request_headers_timeout);
        t.map_or(millis(REQUEST_HEADERS_TIMEOUT_MS), pb::duration)
    }

    /// Downstream stream idle timeout (`from` `http.streamIdleTimeout`).
    pub(crate) fn stream_idle_timeout(&self) -> Duration {
        let t = self.downstream_http().and_then(|h| h.stream_idle_timeout);
        t.map_or(millis(STREAM_IDLE_TIMEOUT_MS), pb::duration)
    }

    /// Downstream request timeout (`from` `http.requestTimeout`), if set.
    pub(crate) fn request_timeout(&self) -> Option<Duration> {
        self.downstream_http()?.request_timeout.map(pb::duration)
    }

    fn downstream_http(&self) -> Option<&kuma_model::mesh_timeout::TimeoutHttp> {
        self.0.timeout_from.as_ref()?.http.as_ref()
    }
}

/// The route timeout and stream idle timeout a `MeshTimeout` conf gives a route.
pub(crate) fn route_timeouts(conf: &kuma_model::mesh_timeout::TimeoutConf) -> (Duration, Option<Duration>) {
    let http = conf.http.clone().unwrap_or_default();
    let timeout = http.request_timeout.map_or(millis(ROUTE_TIMEOUT_MS), pb::duration);
    (timeout, http.stream_idle_timeout.map(pb::duration))
}

/// The route retry policy a `MeshRetry` conf gives, if any.
pub(crate) fn retry_policy(conf: &kuma_model::mesh_retry::RetryConf) -> Option<RetryPolicy> {
    http_retry_policy(conf.http.as_ref()?)
}

/// The Kuma 2.x settings of one cluster, from the policies chosen for it
/// (kuma-policy's [`ClusterChoice`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClusterSettings<'c, 'a>(pub(crate) &'c ClusterChoice<'a>);

impl ClusterSettings<'_, '_> {
    /// Circuit breakers: Kuma tracks remaining capacity on every cluster,
    /// with the thresholds a `MeshCircuitBreaker` sets.
    pub(crate) fn circuit_breakers(&self) -> CircuitBreakers {
        let limits = self.0.circuit_breaker.as_ref().and_then(|c| c.connection_limits.clone());
        let limits = limits.unwrap_or_default();
        CircuitBreakers {
            thresholds: vec![Thresholds {
                max_connections: limits.max_connections.and_then(u32v),
                max_pending_requests: limits.max_pending_requests.and_then(u32v),
                max_requests: limits.max_requests.and_then(u32v),
                max_retries: limits.max_retries.and_then(u32v),
                max_connection_pools: limits.max_connection_pools.and_then(u32v),
                track_remaining: true,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Outlier detection, if a `MeshCircuitBreaker` enables it.
    pub(crate) fn outlier_detection(&self) -> Option<OutlierDetection> {
        outlier_detection(self.0.circuit_breaker.as_deref()?)
    }

    /// The healthy panic threshold a `MeshCircuitBreaker` sets, in percent.
    pub(crate) fn healthy_panic_threshold(&self) -> Option<f64> {
        let od = self.0.circuit_breaker.as_deref()?.outlier_detection.as_ref()?;
        kuma_model::mesh_fault_injection::percentage(od.healthy_panic_threshold.as_ref()?)
    }

    /// The upstream connect timeout; `None` for a `MeshService` port no
    /// `MeshTimeout` configures (Kuma leaves Envoy's default).
    pub(crate) fn connect_timeout(&self) -> Option<Duration> {
        let conf = self.0.timeout.as_ref().and_then(|c| c.connection_timeout);
        self.timeouts().then(|| conf.map_or(millis(CONNECT_TIMEOUT_MS), pb::duration))
    }

    /// Upstream HTTP connection options: with any `MeshTimeout` `to` entry
    /// on the listener, its idle timeout (1 h by default) and durations;
    /// without, connections never idle out (a `MeshService` port: Envoy's
    /// defaults, as in Kuma).
    pub(crate) fn upstream_common_http(&self) -> Option<CommonHttpProtocolOptions> {
        if !self.timeouts() {
            return None;
        }
        let conf = self.0.timeouts_configured.then(|| self.0.timeout.as_deref().cloned().unwrap_or_default());
        let http = conf.as_ref().and_then(|c| c.http.clone()).unwrap_or_default();
        Some(CommonHttpProtocolOptions {
            idle_timeout: Some(match &conf {
                Some(c) => c.idle_timeout.map_or(millis(UPSTREAM_IDLE_TIMEOUT_MS), pb::duration),
                None => millis(0),
            }),
            max_connection_duration: Some(http.max_connection_duration.map_or(secs(0), pb::duration)),
            max_stream_duration: Some(http.max_stream_duration.map_or(secs(0), pb::duration)),
            ..Default::default()
        })
    }

    fn timeouts(&self) -> bool {
        !self.0.real || self.0.timeouts_configured
    }
}

/// Kuma 2.x policies by listener tags, computed once per tag set.
#[derive(Debug)]
pub(crate) struct TargetedCache<'a> {
    policies: MeshPolicies<'a>,
    gateway: String,
    mesh: String,
    by_tags: std::cell::RefCell<BTreeMap<Tags, Targeted>>,
}

impl<'a> TargetedCache<'a> {
    /// For the gateway named `gateway` (`""` for a delegated one) in `mesh`.
    pub(crate) fn new(set: &'a ResourceSet, mesh: &str, gateway: &str) -> Self {
        TargetedCache {
            policies: MeshPolicies::new(set, mesh),
            gateway: gateway.to_string(),
            mesh: mesh.to_string(),
            by_tags: std::cell::RefCell::new(BTreeMap::new()),
        }
    }

    /// The policies of a listener whose merged tags are `tags`.
    pub(crate) fn get(&self, tags: &Tags) -> Targeted {
        if let Some(t) = self.by_tags.borrow().get(tags) {
            return t.clone();
        }
        let gateway = Gateway { mesh: &self.mesh, name: &self.gateway };
        let t = Targeted(std::sync::Arc::new(self.policies.for_listener(gateway, tags)));
        self.by_tags.borrow_mut().insert(tags.clone(), t.clone());
        t
    }
}

/// Route timeout when a `MeshTimeout` sets none (Kuma's default `http.requestTimeout`).
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
/// Per-connection buffer limit of listeners and clusters.
pub(crate) const BUFFER_LIMIT_BYTES: u32 = 32_768;

/// `retryOn` when a `MeshRetry` names none.
const RETRY_ON_DEFAULT: &str = "gateway-error,connect-failure,refused-stream";

/// A `MeshRetry` `http` conf as an Envoy retry policy, as Kuma's configurer
/// builds it; `numRetries: 0` means no retries at all.
fn http_retry_policy(conf: &RetryHttp) -> Option<RetryPolicy> {
    if conf.num_retries == Some(0) {
        return None;
    }
    let mut policy = RetryPolicy {
        retry_on: RETRY_ON_DEFAULT.into(),
        num_retries: conf.num_retries.and_then(u32v),
        per_try_timeout: conf.per_try_timeout.map(pb::duration),
        ..Default::default()
    };
    if let Some(b) = &conf.back_off {
        policy.retry_back_off = Some(retry_policy::RetryBackOff {
            // Envoy needs a base; without one Kuma's 25 ms (Envoy's default).
            base_interval: Some(b.base_interval.map_or(millis(25), pb::duration)),
            max_interval: b.max_interval.map(pb::duration),
        });
    }
    if let Some(r) = &conf.rate_limited_back_off {
        policy.rate_limited_retry_back_off = Some(retry_policy::RateLimitedRetryBackOff {
            reset_headers: r
                .reset_headers
                .iter()
                .flatten()
                .map(|h| retry_policy::ResetHeader {
                    name: h.name.clone(),
                    format: match h.format {
                        ResetHeaderFormat::Seconds => retry_policy::ResetHeaderFormat::Seconds as i32,
                        ResetHeaderFormat::UnixTimestamp => retry_policy::ResetHeaderFormat::UnixTimestamp as i32,
                    },
                })
                .collect(),
            max_interval: r.max_interval.map(pb::duration),
        });
    }
    let (mut on, mut codes, mut methods) = (Vec::new(), Vec::new(), Vec::new());
    for item in conf.retry_on.iter().flatten() {
        match item.parse::<u32>() {
            Ok(code) => codes.push(code),
            Err(_) => match item.strip_prefix("HttpMethod") {
                Some(method) => methods.push(method.to_ascii_uppercase()),
                None => on.push(retry_on_value(item)),
            },
        }
    }
    if !on.is_empty() {
        policy.retry_on = on.join(",");
    }
    if !codes.is_empty() {
        policy.retriable_status_codes = codes;
        if !policy.retry_on.split(',').any(|s| s == "retriable-status-codes") {
            policy.retry_on.push_str(",retriable-status-codes");
        }
    }
    for m in methods {
        policy.retriable_request_headers.push(HeaderMatcher {
            name: ":method".into(),
            header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(exact(&m))),
            ..Default::default()
        });
    }
    policy.retriable_request_headers.extend(conf.retriable_request_headers.iter().flatten().map(header_matcher));
    policy.retriable_headers = conf.retriable_response_headers.iter().flatten().map(header_matcher).collect();
    if let Some(predicates) = &conf.host_selection {
        for p in predicates {
            match p.predicate.as_str() {
                "OmitPreviousHosts" => policy.retry_host_predicate.push(retry_policy::RetryHostPredicate {
                    name: "envoy.retry_host_predicates.previous_hosts".into(),
                    config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(pb::any(
                        &envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate {},
                    ))),
                }),
                "OmitHostsWithTags" => {
                    use envoy_types::pb::envoy::extensions::retry::host::omit_host_metadata::v3::OmitHostMetadataConfig;
                    let tags = p.tags.clone().unwrap_or_default();
                    let s = pb::string_struct(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    let metadata = envoy_types::pb::envoy::config::core::v3::Metadata {
                        filter_metadata: [("envoy.lb".to_string(), s)].into(),
                        ..Default::default()
                    };
                    policy.retry_host_predicate.push(retry_policy::RetryHostPredicate {
                        name: "envoy.retry_host_predicates.omit_host_metadata".into(),
                        config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(pb::any(
                            &OmitHostMetadataConfig { metadata_match: Some(metadata) },
                        ))),
                    });
                }
                "OmitPreviousPriorities" => {
                    use envoy_types::pb::envoy::extensions::retry::priority::previous_priorities::v3::PreviousPrioritiesConfig;
                    policy.retry_priority = Some(retry_policy::RetryPriority {
                        name: "envoy.retry_priorities.previous_priorities".into(),
                        config_type: Some(retry_policy::retry_priority::ConfigType::TypedConfig(pb::any(
                            &PreviousPrioritiesConfig { update_frequency: p.update_frequency },
                        ))),
                    });
                }
                _ => {}
            }
        }
    }
    if let Some(n) = conf.host_selection_max_attempts {
        policy.host_selection_retry_max_attempts = n;
    }
    Some(policy)
}

/// Kuma's `retryOn` names as Envoy's (`GatewayError` -> `gateway-error`).
fn retry_on_value(item: &str) -> String {
    match item {
        "5xx" => "5xx".into(),
        "Retriable4xx" => "retriable-4xx".into(),
        "Http3PostConnectFailure" => "http3-post-connect-failure".into(),
        other => {
            let mut out = String::new();
            for (i, c) in other.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('-');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        }
    }
}

fn exact(value: &str) -> StringMatcher {
    StringMatcher { match_pattern: Some(MatchPattern::Exact(value.into())), ..Default::default() }
}

fn header_matcher(h: &HeaderMatch) -> HeaderMatcher {
    let spec = match h.kind {
        HeaderMatchType::Exact => HeaderMatchSpecifier::StringMatch(exact(&h.value)),
        HeaderMatchType::Prefix => HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(MatchPattern::Prefix(h.value.clone())),
            ..Default::default()
        }),
        HeaderMatchType::RegularExpression => HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher { regex: h.value.clone(), ..Default::default() })),
            ..Default::default()
        }),
        HeaderMatchType::Present => HeaderMatchSpecifier::PresentMatch(true),
        HeaderMatchType::Absent => HeaderMatchSpecifier::PresentMatch(false),
    };
    HeaderMatcher { name: h.name.clone(), header_match_specifier: Some(spec), ..Default::default() }
}

/// A `MeshCircuitBreaker`'s outlier detection, as Kuma's configurer maps it.
fn outlier_detection(conf: &CircuitBreakerConf) -> Option<OutlierDetection> {
    let od = conf.outlier_detection.as_ref()?;
    if od.disabled == Some(true) {
        return None;
    }
    let enforcing = |set: bool| u32v(if set { 100 } else { 0 });
    let d = od.detectors.clone().unwrap_or_default();
    let mut out = OutlierDetection {
        interval: od.interval.map(pb::duration),
        base_ejection_time: od.base_ejection_time.map(pb::duration),
        max_ejection_percent: od.max_ejection_percent.and_then(u32v),
        split_external_local_origin_errors: od.split_external_and_local_errors.unwrap_or(false),
        ..Default::default()
    };
    out.enforcing_consecutive_5xx = enforcing(d.total_failures.is_some());
    out.consecutive_5xx = d.total_failures.as_ref().and_then(|c| c.consecutive).and_then(u32v);
    out.enforcing_consecutive_gateway_failure = enforcing(d.gateway_failures.is_some());
    out.consecutive_gateway_failure = d.gateway_failures.as_ref().and_then(|c| c.consecutive).and_then(u32v);
    out.enforcing_consecutive_local_origin_failure = enforcing(d.local_origin_failures.is_some());
    out.consecutive_local_origin_failure = d.local_origin_failures.as_ref().and_then(|c| c.consecutive).and_then(u32v);
    out.enforcing_success_rate = enforcing(d.success_rate.is_some());
    if let Some(s) = &d.success_rate {
        out.success_rate_minimum_hosts = s.minimum_hosts.and_then(u32v);
        out.success_rate_request_volume = s.request_volume.and_then(u32v);
        out.success_rate_stdev_factor = s
            .standard_deviation_factor
            .as_ref()
            .and_then(kuma_model::mesh_fault_injection::percentage)
            .and_then(|f| u32v((f * 1000.0) as u32));
    }
    out.enforcing_failure_percentage = enforcing(d.failure_percentage.is_some());
    if let Some(f) = &d.failure_percentage {
        out.failure_percentage_minimum_hosts = f.minimum_hosts.and_then(u32v);
        out.failure_percentage_request_volume = f.request_volume.and_then(u32v);
        out.failure_percentage_threshold = f.threshold.and_then(u32v);
    }
    Some(out)
}
