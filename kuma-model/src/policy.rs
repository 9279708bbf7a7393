//! The old-style connection policies (`sources`/`destinations` + `conf`)
//! that a gateway consults, and Kuma's rules for each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::datasource::base64_bytes;
use crate::duration::Duration;
use crate::gateway::{is_false, is_zero};
use crate::route::HttpMethod;
use crate::tags::{PROTOCOL_TAG, SERVICE_TAG, Selector, TagRules, Tags, validate_selectors, validate_tags};
use crate::violation::{FieldPath, Violations};

/// `sources` + `destinations` + `conf`: the shape of every connection policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionPolicy<C> {
    /// Matched against the gateway listener tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Selector>,
    /// Matched against each backend's destination tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Selector>,
    /// The policy's settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<C>,
}

/// What sources and destinations must satisfy, per policy.
struct SelectorPolicy {
    sources: TagRules<'static>,
    destinations: Destinations,
}

enum Destinations {
    /// `OnlyServiceTagAllowed`: exactly one `kuma.io/service` tag.
    OnlyService,
    Rules(TagRules<'static>),
    /// FaultInjection: an HTTP-based `kuma.io/protocol` is required.
    HttpProtocol,
}

const AT_LEAST_ONE: TagRules<'static> =
    TagRules { require_at_least_one_selector: true, require_at_least_one_tag: true, ..TagRules::NONE };

const SERVICE_SOURCES: SelectorPolicy =
    SelectorPolicy { sources: TagRules::SELECTORS, destinations: Destinations::OnlyService };

const ANY_TAGS: SelectorPolicy =
    SelectorPolicy { sources: AT_LEAST_ONE, destinations: Destinations::Rules(AT_LEAST_ONE) };

impl<C> ConnectionPolicy<C> {
    fn validate_selectors(&self, rules: &SelectorPolicy, out: &mut Violations) {
        validate_selectors(&FieldPath::root().field("sources"), &self.sources, rules.sources, out);
        let path = FieldPath::root().field("destinations");
        match rules.destinations {
            Destinations::Rules(r) => validate_selectors(&path, &self.destinations, r, out),
            Destinations::OnlyService => {
                if self.destinations.is_empty() {
                    out.add(&path, "must have at least one element");
                }
                for (i, s) in self.destinations.iter().enumerate() {
                    let p = path.index(i).field("match");
                    let tags = &s.match_tags;
                    if tags.len() != 1 || !tags.contains_key(SERVICE_TAG) {
                        out.add(&p, format!("must consist of exactly one tag {SERVICE_TAG:?}"));
                    }
                    for key in tags.keys().filter(|k| *k != SERVICE_TAG) {
                        // Reported in key order, between the charset checks.
                        out.add(p.key(key), format!("tag {key:?} is not allowed"));
                    }
                    validate_tags(&p, tags, TagRules { require_service: true, ..TagRules::default() }, out);
                }
            }
            Destinations::HttpProtocol => {
                if self.destinations.is_empty() {
                    out.add(&path, "must have at least one element");
                }
                for (i, s) in self.destinations.iter().enumerate() {
                    let p = path.index(i).field("match");
                    let tags = &s.match_tags;
                    if tags.is_empty() {
                        out.add(&p, "must have at least one tag");
                    }
                    match tags.get(PROTOCOL_TAG) {
                        None => out.add(&p, "protocol must be specified"),
                        Some(v) if !matches!(v.to_ascii_lowercase().as_str(), "http" | "http2" | "grpc") => {
                            out.add(p.key(PROTOCOL_TAG), "must be one of the [http, http2, grpc]")
                        }
                        Some(_) => {}
                    }
                    validate_tags(&p, tags, TagRules::default(), out);
                }
            }
        }
    }
}

fn percentage(path: &FieldPath, value: Option<f64>, out: &mut Violations) {
    match value {
        None => out.add(path.field("percentage"), "cannot be empty"),
        Some(p) if !(0.0..=100.0).contains(&p) => out.add(path.field("percentage"), "has to be in [0.0 - 100.0] range"),
        Some(_) => {}
    }
}

/// A header Envoy adds (health-check requests, rate-limit answers): the
/// rules of a route's request header filter (no NUL/CR/LF, no pseudo-headers
/// or `host`, `%` only in a known substitution).
pub(crate) fn validate_added_header(
    key_path: &FieldPath,
    value_path: &FieldPath,
    key: &str,
    value: &str,
    out: &mut Violations,
) {
    crate::route::validate_header_text(key_path, key, out);
    crate::route::validate_header_text(value_path, value, out);
    if key.starts_with(':') || crate::route::is_host_header(key) {
        out.add_extra(key_path, "pseudo-headers and host may not be added");
    }
    crate::route::validate_header_value_format(value_path, value, out);
}

fn positive_duration(path: &FieldPath, d: Option<Duration>, out: &mut Violations) {
    match d {
        None => out.add(path, "must have a positive value"),
        Some(d) if !d.is_positive() => out.add(path, "must have a positive value"),
        Some(_) => {}
    }
}

fn positive_when_defined(path: &FieldPath, d: Option<Duration>, out: &mut Violations) {
    match d {
        Some(d) if d.is_zero() => out.add(path, "has to be greater than 0 when defined"),
        // Kuma lets negative durations through to Envoy's NACK.
        Some(d) if !d.is_positive() => out.add_extra(path, "must not be negative"),
        _ => {}
    }
}

// ---------------------------------------------------------------- CircuitBreaker

/// `CircuitBreaker` spec.
pub type CircuitBreakerSpec = ConnectionPolicy<CircuitBreakerConf>;

/// `CircuitBreaker.conf`: outlier detection and thresholds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CircuitBreakerConf {
    /// Time between ejection sweeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Base time a host stays ejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<Duration>,
    /// Maximum share of hosts ejected at once (0-100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
    /// Separate local-origin errors from upstream ones.
    #[serde(skip_serializing_if = "is_false")]
    pub split_external_and_local_errors: bool,
    /// Outlier detectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detectors: Option<Detectors>,
    /// Connection pool thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
}

/// Outlier detectors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Detectors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_errors: Option<ErrorsDetector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_errors: Option<ErrorsDetector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_errors: Option<ErrorsDetector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_deviation: Option<StandardDeviationDetector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDetector>,
}

/// Consecutive errors before ejection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorsDetector {
    /// Number of consecutive errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive: Option<u32>,
}

/// Success-rate detection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct StandardDeviationDetector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_volume: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_hosts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
}

/// Failure-percentage detection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct FailureDetector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_volume: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_hosts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
}

/// Connection pool thresholds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Thresholds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
}

impl CircuitBreakerSpec {
    /// Kuma's `CircuitBreaker` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(&SERVICE_SOURCES, &mut out);
        let path = FieldPath::root().field("conf");
        let conf = self.conf.clone().unwrap_or_default();
        let has_detectors = conf.detectors.as_ref().is_some_and(|d| {
            d.total_errors.is_some()
                || d.gateway_errors.is_some()
                || d.local_errors.is_some()
                || d.standard_deviation.is_some()
                || d.failure.is_some()
        });
        let has_thresholds = conf.thresholds.as_ref().is_some_and(|t| {
            t.max_connections.is_some()
                || t.max_pending_requests.is_some()
                || t.max_retries.is_some()
                || t.max_requests.is_some()
        });
        if !has_detectors && !has_thresholds {
            out.add(&path, "must have at least one of the detector or threshold configured");
            return out;
        }
        if conf.detectors.is_some() && !has_detectors {
            out.add(path.field("detectors"), "can't be empty");
        }
        // Envoy's outlier detection needs both to be above zero.
        for (name, d) in [("interval", conf.interval), ("baseEjectionTime", conf.base_ejection_time)] {
            if d.is_some_and(|d| !d.is_positive()) {
                out.add_extra(path.field(name), "must be greater than 0s");
            }
        }
        if conf.max_ejection_percent.unwrap_or(0) > 100 {
            out.add(path.field("maxEjectionPercent"), "has to be in [0.0 - 100.0] range");
        }
        let failure_threshold = conf.detectors.as_ref().and_then(|d| d.failure.as_ref()).and_then(|f| f.threshold);
        if failure_threshold.unwrap_or(0) > 100 {
            out.add(path.field("detectors").field("failure").field("threshold"), "has to be in [0.0 - 100.0] range");
        }
        if conf.thresholds.is_some() && !has_thresholds {
            out.add(path.field("thresholds"), "can't be empty");
        }
        out
    }
}

// ---------------------------------------------------------------- FaultInjection

/// `FaultInjection` spec.
pub type FaultInjectionSpec = ConnectionPolicy<FaultInjectionConf>;

/// `FaultInjection.conf`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultInjectionConf {
    /// Delay a share of requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultDelay>,
    /// Abort a share of requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbort>,
    /// Limit response bandwidth for a share of requests.
    #[serde(alias = "response_bandwidth", skip_serializing_if = "Option::is_none")]
    pub response_bandwidth: Option<FaultBandwidth>,
}

/// A fixed delay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultDelay {
    /// Share of requests, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// How long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Duration>,
}

/// An abort with a status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultAbort {
    /// Share of requests, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// The HTTP status to answer with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u32>,
}

/// A bandwidth limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultBandwidth {
    /// Share of requests, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// `<n>kbps`, `<n>mbps` or `<n>gbps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

impl FaultBandwidth {
    /// The limit in kilobits per second, if it parses.
    pub fn limit_kbps(&self) -> Option<u64> {
        let text = self.limit.as_deref()?.trim();
        let (number, scale) = if let Some(n) = text.strip_suffix("gbps") {
            (n, 1_000_000)
        } else if let Some(n) = text.strip_suffix("mbps") {
            (n, 1_000)
        } else {
            (text.strip_suffix("kbps")?, 1)
        };
        number.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(scale))
    }
}

/// The statuses of Envoy's `envoy.type.v3.StatusCode`, the only ones its
/// local rate limit can answer with.
pub(crate) const ENVOY_STATUS_CODES: [u32; 56] = [
    100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403,
    404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500,
    501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
];

/// Status codes Go's `http.StatusText` knows, which Kuma accepts for aborts.
fn is_known_status(code: u32) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429 | 431 | 451
        | 500..=508 | 510 | 511)
}

impl FaultInjectionSpec {
    /// Kuma's `FaultInjection` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(
            &SelectorPolicy { sources: AT_LEAST_ONE, destinations: Destinations::HttpProtocol },
            &mut out,
        );
        let path = FieldPath::root().field("conf");
        let conf = self.conf.clone().unwrap_or_default();
        // Kuma treats an empty message (`delay: {}`) as absent here.
        let delay = conf.delay.filter(|d| *d != FaultDelay::default());
        let abort = conf.abort.filter(|a| *a != FaultAbort::default());
        let bandwidth = conf.response_bandwidth.filter(|b| *b != FaultBandwidth::default());
        if delay.is_none() && abort.is_none() && bandwidth.is_none() {
            out.add(&path, "must have at least one of the faults configured");
        }
        if let Some(d) = delay {
            let p = path.field("delay");
            percentage(&p, d.percentage, &mut out);
            match d.value {
                None => out.add(p.field("value"), "cannot be empty"),
                Some(v) if !v.is_positive() => out.add_extra(p.field("value"), "must be greater than 0s"),
                Some(_) => {}
            }
        }
        if let Some(a) = abort {
            let p = path.field("abort");
            percentage(&p, a.percentage, &mut out);
            match a.http_status {
                None => out.add(p.field("httpStatus"), "cannot be empty"),
                Some(code) if !is_known_status(code) => out.add(p.field("httpStatus"), "http status code is incorrect"),
                // Envoy aborts only with 200-599.
                Some(code) if code < 200 => out
                    .add_extra(p.field("httpStatus"), "must be in the range [200, 600) (Envoy cannot abort with 1xx)"),
                Some(_) => {}
            }
        }
        if let Some(b) = bandwidth {
            let p = path.field("responseBandwidth");
            percentage(&p, b.percentage, &mut out);
            match &b.limit {
                None => out.add(p.field("limit"), "cannot be empty"),
                Some(_) => match b.limit_kbps() {
                    None => out.add(p.field("limit"), "has to be in kbps/mbps/gbps units"),
                    Some(0) => out.add_extra(p.field("limit"), "must be at least 1kbps"),
                    Some(_) => {}
                },
            }
        }
        out
    }
}

// ---------------------------------------------------------------- HealthCheck

/// `HealthCheck` spec.
pub type HealthCheckSpec = ConnectionPolicy<HealthCheckConf>;

/// `HealthCheck.conf`: active health checking of every endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct HealthCheckConf {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(alias = "unhealthy_threshold", skip_serializing_if = "is_zero")]
    pub unhealthy_threshold: u32,
    #[serde(alias = "healthy_threshold", skip_serializing_if = "is_zero")]
    pub healthy_threshold: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<HealthCheckTcp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HealthCheckHttp>,
    #[serde(alias = "initial_jitter", skip_serializing_if = "Option::is_none")]
    pub initial_jitter: Option<Duration>,
    #[serde(alias = "interval_jitter", skip_serializing_if = "Option::is_none")]
    pub interval_jitter: Option<Duration>,
    #[serde(alias = "interval_jitter_percent", skip_serializing_if = "is_zero")]
    pub interval_jitter_percent: u32,
    #[serde(alias = "healthy_panic_threshold", skip_serializing_if = "Option::is_none")]
    pub healthy_panic_threshold: Option<f64>,
    #[serde(alias = "fail_traffic_on_panic", skip_serializing_if = "Option::is_none")]
    pub fail_traffic_on_panic: Option<bool>,
    #[serde(alias = "event_log_path", skip_serializing_if = "String::is_empty")]
    pub event_log_path: String,
    #[serde(alias = "always_log_health_check_failures", skip_serializing_if = "Option::is_none")]
    pub always_log_health_check_failures: Option<bool>,
    #[serde(alias = "no_traffic_interval", skip_serializing_if = "Option::is_none")]
    pub no_traffic_interval: Option<Duration>,
    #[serde(alias = "reuse_connection", skip_serializing_if = "Option::is_none")]
    pub reuse_connection: Option<bool>,
}

/// A TCP health check: optional payload to send and bytes to expect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckTcp {
    /// Bytes to send (base64).
    #[serde(with = "option_base64", skip_serializing_if = "Option::is_none")]
    pub send: Option<Vec<u8>>,
    /// Byte blocks expected in the response (base64 each).
    #[serde(with = "vec_base64", skip_serializing_if = "Vec::is_empty")]
    pub receive: Vec<Vec<u8>>,
}

/// An HTTP health check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckHttp {
    /// Path to request.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Headers to add to the check request.
    #[serde(alias = "request_headers_to_add", skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_add: Vec<HealthCheckHeaderOption>,
    /// Statuses that count as healthy (default 200).
    #[serde(alias = "expected_statuses", skip_serializing_if = "Vec::is_empty")]
    pub expected_statuses: Vec<u32>,
}

/// A header to add, and whether to append.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckHeaderOption {
    /// The header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<HealthCheckHeader>,
    /// Append instead of replacing (Envoy's default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

/// A header key and value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct HealthCheckHeader {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

mod option_base64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => super::base64_bytes::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = String::deserialize(d)?;
        super::base64_bytes::decode(&text).map(Some).map_err(serde::de::Error::custom)
    }
}

mod vec_base64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| base64::engine::general_purpose::STANDARD.encode(b)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| super::base64_bytes::decode(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

impl HealthCheckSpec {
    /// Kuma's `HealthCheck` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(&SERVICE_SOURCES, &mut out);
        let path = FieldPath::root().field("conf");
        let Some(conf) = &self.conf else {
            out.add(&path, "has to be defined");
            return out;
        };
        positive_duration(&path.field("interval"), conf.interval, &mut out);
        positive_duration(&path.field("timeout"), conf.timeout, &mut out);
        if conf.unhealthy_threshold == 0 {
            out.add(path.field("unhealthyThreshold"), "must have a positive value");
        }
        if conf.healthy_threshold == 0 {
            out.add(path.field("healthyThreshold"), "must have a positive value");
        }
        for (name, d) in [
            ("initialJitter", conf.initial_jitter),
            ("intervalJitter", conf.interval_jitter),
            ("noTrafficInterval", conf.no_traffic_interval),
        ] {
            if d.is_some() {
                positive_duration(&path.field(name), d, &mut out);
            }
        }
        let panic = conf.healthy_panic_threshold.unwrap_or(0.0);
        if !(0.0..=100.0).contains(&panic) {
            out.add(path.field("healthyPanicThreshold"), "must be in range [0.0 - 100.0]");
        }
        if let Some(http) = &conf.http {
            let p = path.field("http");
            if http.path.is_empty() {
                out.add(p.field("path"), "has to be defined and cannot be empty");
            } else if http.path.chars().any(|c| c.is_ascii_control() && c != '\t') {
                out.add_extra(p.field("path"), "must not contain control characters");
            }
            for (i, status) in http.expected_statuses.iter().enumerate() {
                if !(100..600).contains(status) {
                    out.add(p.field("expectedStatuses").index(i), "must be in range [100, 600)");
                }
            }
            for (i, h) in http.request_headers_to_add.iter().enumerate() {
                let hp = p.field("requestHeadersToAdd").index(i).field("header");
                match &h.header {
                    None => out.add(hp, "has to be defined"),
                    Some(header) if header.key.is_empty() => out.add(hp.field("key"), "cannot be empty"),
                    Some(header) => validate_added_header(
                        &hp.field("key"),
                        &hp.field("value"),
                        &header.key,
                        &header.value,
                        &mut out,
                    ),
                }
            }
        }
        if conf.tcp.is_some() && conf.http.is_some() {
            out.add(&path, "http and tcp cannot be defined at the same time");
        }
        out
    }
}

// ---------------------------------------------------------------- ProxyTemplate

/// `ProxyTemplate` spec: `selectors` + `conf`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyTemplateSpec {
    /// Data planes (matched by their tags) the template applies to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<Selector>,
    /// Imports, raw resources and modifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<ProxyTemplateConf>,
}

/// `ProxyTemplate.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyTemplateConf {
    /// Profiles to start from (`gateway-proxy` for gateways).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
    /// Extra raw Envoy resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<RawResource>,
    /// Changes to the generated resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modifications: Vec<Modification>,
}

/// A raw Envoy resource (YAML with `@type`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawResource {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
}

/// One modification: a oneof of the five kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Modification {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ModificationOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<ModificationOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_filter: Option<ModificationOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_filter: Option<ModificationOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_host: Option<ModificationOp>,
}

/// `match`, `operation` and `value` of a modification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModificationOp {
    /// Which generated resources to change.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<ModificationMatch>,
    /// `add`, `patch`, `remove` (filters also `addFirst`, `addLast`,
    /// `addBefore`, `addAfter`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub operation: String,
    /// YAML of the Envoy resource to add or merge.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// Every match field any modification kind has; the validator checks that
/// each kind only uses its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ModificationMatch {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub origin: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub listener_name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub listener_tags: Tags,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub route_configuration_name: String,
}

/// Profiles a ProxyTemplate may import.
pub const PROXY_TEMPLATE_PROFILES: [&str; 4] = ["default-proxy", "egress-proxy", "gateway-proxy", "ingress-proxy"];

impl ProxyTemplateSpec {
    /// Kuma's `ProxyTemplate` validation (Envoy resource bodies are checked
    /// when they are applied, by the translator).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        validate_selectors(
            &FieldPath::root().field("selectors"),
            &self.selectors,
            TagRules { require_at_least_one_selector: false, ..TagRules::SELECTORS },
            &mut out,
        );
        let Some(conf) = &self.conf else { return out };
        let path = FieldPath::root().field("conf");
        for (i, import) in conf.imports.iter().enumerate() {
            if import.is_empty() {
                out.add(path.field("imports").index(i), "cannot be empty");
            } else if !PROXY_TEMPLATE_PROFILES.contains(&import.as_str()) {
                out.add(
                    path.field("imports").index(i),
                    format!("profile not found. Available profiles: {}", PROXY_TEMPLATE_PROFILES.join(",")),
                );
            }
        }
        for (i, r) in conf.resources.iter().enumerate() {
            let p = path.field("resources").index(i);
            for (field, value) in [("name", &r.name), ("version", &r.version), ("resource", &r.resource)] {
                if value.is_empty() {
                    out.add(p.field(field), "cannot be empty");
                }
            }
        }
        for (i, m) in conf.modifications.iter().enumerate() {
            let p = path.field("modifications").index(i);
            let kinds = [
                ("cluster", &m.cluster),
                ("listener", &m.listener),
                ("networkFilter", &m.network_filter),
                ("httpFilter", &m.http_filter),
                ("virtualHost", &m.virtual_host),
            ];
            if kinds.iter().filter(|(_, op)| op.is_some()).count() > 1 {
                out.add_extra(&p, "only one of cluster, listener, networkFilter, httpFilter or virtualHost can be set");
            }
            for (kind, op) in kinds {
                if let Some(op) = op {
                    validate_modification(&p.field(kind), kind, op, &mut out);
                }
            }
        }
        out
    }
}

fn validate_modification(path: &FieldPath, kind: &str, op: &ModificationOp, out: &mut Violations) {
    let name = op.match_.as_ref().map_or("", |m| m.name.as_str());
    match kind {
        "cluster" | "listener" | "virtualHost" => match op.operation.as_str() {
            "add" => {
                if kind == "virtualHost" {
                    if !name.is_empty() {
                        out.add(path.field("match").field("name"), "cannot be defined");
                    }
                } else if op.match_.is_some() {
                    out.add(path.field("match"), "cannot be defined");
                }
            }
            "patch" | "remove" => {}
            _ => out.add(
                path.field("operation"),
                "invalid operation. Available operations: \"add\", \"patch\", \"remove\"",
            ),
        },
        _ => match op.operation.as_str() {
            "addFirst" | "addLast" | "remove" => {}
            "addBefore" if name.is_empty() => out.add(
                path.field("match").field("name"),
                "cannot be empty. You need to pick a filter before which this one will be added",
            ),
            "addAfter" if name.is_empty() => out.add(
                path.field("match").field("name"),
                "cannot be empty. You need to pick a filter after which this one will be added",
            ),
            "patch" if name.is_empty() => out.add(path.field("match").field("name"), "cannot be empty"),
            "addBefore" | "addAfter" | "patch" => {}
            _ => out.add(
                path.field("operation"),
                "invalid operation. Available operations: \"addFirst\", \"addLast\", \"addBefore\", \"addAfter\", \"patch\", \"remove\"",
            ),
        },
    }
    if matches!(op.operation.as_str(), "add" | "addFirst" | "addLast" | "addBefore" | "addAfter" | "patch")
        && op.value.trim().is_empty()
    {
        out.add(path.field("value"), "native Envoy resource is not valid: unexpected EOF");
    }
}

// ---------------------------------------------------------------- RateLimit

/// `RateLimit` spec.
pub type RateLimitSpec = ConnectionPolicy<RateLimitConf>;

/// `RateLimit.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConf {
    /// The HTTP local rate limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<RateLimitHttp>,
}

/// `requests` per `interval`, and what to answer past the limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitHttp {
    /// Tokens per interval.
    #[serde(skip_serializing_if = "is_zero")]
    pub requests: u32,
    /// The refill interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Status and headers of limited responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_rate_limit: Option<OnRateLimit>,
}

/// The response to a limited request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnRateLimit {
    /// Status (Envoy's default: 429).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
    /// Headers to add.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<RateLimitHeader>,
}

/// A response header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RateLimitHeader {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

impl RateLimitSpec {
    /// Kuma's `RateLimit` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(&ANY_TAGS, &mut out);
        let path = FieldPath::root().field("conf");
        let Some(conf) = &self.conf else {
            out.add(&path, "must have conf");
            return out;
        };
        if let Some(http) = &conf.http {
            let p = path.field("http");
            if http.requests == 0 {
                out.add(p.field("requests"), "requests must be set");
            }
            match http.interval {
                None => out.add(p.field("interval"), "interval must be set"),
                // Envoy's token bucket refills at most every 50 ms.
                Some(d) if d < Duration::from_millis(50) => out.add_extra(p.field("interval"), "must be at least 50ms"),
                Some(_) => {}
            }
            if let Some(status) = http.on_rate_limit.as_ref().and_then(|o| o.status)
                && !ENVOY_STATUS_CODES.contains(&status)
            {
                out.add_extra(
                    p.field("onRateLimit").field("status"),
                    "must be an HTTP status Envoy knows (its StatusCode list: 100, 200-208, 226, 300-305, 307, 308, 400-417, 421-424, 426, 428, 429, 431, 500-508, 510, 511)",
                );
            }
            for (i, h) in http.on_rate_limit.iter().flat_map(|o| o.headers.iter()).enumerate() {
                // Kuma's path really is `.header["<i>"]`.
                let hp = p.field("onRateLimit").field("header").key(&i.to_string());
                if h.key.is_empty() {
                    out.add(&hp, "key must be set");
                }
                if h.value.is_empty() {
                    out.add(&hp, "value must be set");
                }
                if !h.key.is_empty() {
                    validate_added_header(&hp.field("key"), &hp.field("value"), &h.key, &h.value, &mut out);
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------- Retry

/// `Retry` spec.
pub type RetrySpec = ConnectionPolicy<RetryConf>;

/// `Retry.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConf {
    /// HTTP retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<RetryHttp>,
    /// TCP connect attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<RetryTcp>,
    /// gRPC retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<RetryGrpc>,
}

/// Exponential back-off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct BackOff {
    #[serde(alias = "base_interval", skip_serializing_if = "Option::is_none")]
    pub base_interval: Option<Duration>,
    #[serde(alias = "max_interval", skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<Duration>,
}

/// HTTP retry settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RetryHttp {
    #[serde(alias = "num_retries", skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    #[serde(alias = "per_try_timeout", skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    #[serde(alias = "back_off", skip_serializing_if = "Option::is_none")]
    pub back_off: Option<BackOff>,
    #[serde(alias = "retriable_status_codes", skip_serializing_if = "Vec::is_empty")]
    pub retriable_status_codes: Vec<u32>,
    #[serde(alias = "retriable_methods", skip_serializing_if = "Vec::is_empty")]
    pub retriable_methods: Vec<HttpMethod>,
    #[serde(alias = "retry_on", skip_serializing_if = "Vec::is_empty")]
    pub retry_on: Vec<HttpRetryOn>,
}

/// Conditions that trigger an HTTP retry (Envoy's `retry_on` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum HttpRetryOn {
    #[serde(rename = "all_5xx")]
    All5xx,
    GatewayError,
    Reset,
    ConnectFailure,
    EnvoyRatelimited,
    #[serde(rename = "retriable_4xx")]
    Retriable4xx,
    RefusedStream,
    RetriableStatusCodes,
    RetriableHeaders,
    Http3PostConnectFailure,
}

impl HttpRetryOn {
    /// Envoy's spelling (`5xx`, `gateway-error`, ...).
    pub fn envoy_name(self) -> &'static str {
        match self {
            HttpRetryOn::All5xx => "5xx",
            HttpRetryOn::GatewayError => "gateway-error",
            HttpRetryOn::Reset => "reset",
            HttpRetryOn::ConnectFailure => "connect-failure",
            HttpRetryOn::EnvoyRatelimited => "envoy-ratelimited",
            HttpRetryOn::Retriable4xx => "retriable-4xx",
            HttpRetryOn::RefusedStream => "refused-stream",
            HttpRetryOn::RetriableStatusCodes => "retriable-status-codes",
            HttpRetryOn::RetriableHeaders => "retriable-headers",
            HttpRetryOn::Http3PostConnectFailure => "http3-post-connect-failure",
        }
    }
}

/// TCP retry settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryTcp {
    /// Connection attempts before giving up.
    #[serde(alias = "max_connect_attempts", skip_serializing_if = "is_zero")]
    pub max_connect_attempts: u32,
}

/// gRPC retry settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RetryGrpc {
    #[serde(alias = "retry_on", skip_serializing_if = "Vec::is_empty")]
    pub retry_on: Vec<GrpcRetryOn>,
    #[serde(alias = "num_retries", skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    #[serde(alias = "per_try_timeout", skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    #[serde(alias = "back_off", skip_serializing_if = "Option::is_none")]
    pub back_off: Option<BackOff>,
}

/// gRPC statuses that trigger a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum GrpcRetryOn {
    Cancelled,
    DeadlineExceeded,
    Internal,
    ResourceExhausted,
    Unavailable,
}

fn validate_retry_common(
    path: &FieldPath,
    num_retries: Option<u32>,
    per_try_timeout: Option<Duration>,
    back_off: Option<&BackOff>,
    out: &mut Violations,
) {
    if num_retries == Some(0) {
        out.add(path.field("numRetries"), "has to be greater than 0 when defined");
    }
    positive_when_defined(&path.field("perTryTimeout"), per_try_timeout, out);
    if let Some(b) = back_off {
        let bp = path.field("backOff");
        match b.base_interval {
            None => out.add(bp.field("baseInterval"), "has to be defined"),
            Some(d) if !d.is_positive() => out.add(bp.field("baseInterval"), "has to be greater than 0"),
            Some(_) => positive_when_defined(&bp.field("maxInterval"), b.max_interval, out),
        }
        // Envoy refuses a maximum below the base interval.
        if let (Some(base), Some(max)) = (b.base_interval, b.max_interval)
            && max < base
            && !max.is_zero()
        {
            out.add_extra(bp.field("maxInterval"), "cannot be less than baseInterval");
        }
    }
}

impl RetrySpec {
    /// Kuma's `Retry` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(&SERVICE_SOURCES, &mut out);
        let path = FieldPath::root().field("conf");
        let Some(conf) = &self.conf else {
            out.add(&path, "has to be defined");
            return out;
        };
        if conf.http.is_none() && conf.grpc.is_none() && conf.tcp.is_none() {
            out.add(&path, "missing protocol [grpc|http|tcp] configuration");
            return out;
        }
        if let Some(http) = &conf.http {
            let p = path.field("http");
            if *http == RetryHttp::default() {
                out.add(&p, "field cannot be empty");
            }
            validate_retry_common(&p, http.num_retries, http.per_try_timeout, http.back_off.as_ref(), &mut out);
            for (i, m) in http.retriable_methods.iter().enumerate() {
                if *m == HttpMethod::None {
                    out.add(p.field("retriableMethods").index(i), "field cannot be empty");
                }
            }
            for (i, r) in http.retry_on.iter().enumerate() {
                if *r == HttpRetryOn::RetriableStatusCodes && http.retriable_status_codes.is_empty() {
                    out.add(
                        p.field("retryOn").index(i),
                        "retriableStatusCodes cannot be empty when this option is specified",
                    );
                }
            }
        }
        if let Some(grpc) = &conf.grpc {
            let p = path.field("grpc");
            if *grpc == RetryGrpc::default() {
                out.add(&p, "field cannot be empty");
            }
            let mut seen: BTreeMap<GrpcRetryOn, Vec<usize>> = BTreeMap::new();
            for (i, r) in grpc.retry_on.iter().enumerate() {
                seen.entry(*r).or_default().push(i);
            }
            let mut repeated: Vec<String> = seen
                .iter()
                .filter(|(_, ix)| ix.len() > 1)
                .map(|(value, ix)| {
                    let name = serde_json::to_value(value)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let list: Vec<String> = ix.iter().map(ToString::to_string).collect();
                    format!("repeated value {name:?} at indexes [{}]", list.join(", "))
                })
                .collect();
            repeated.sort();
            for message in repeated {
                out.add(p.field("retryOn"), message);
            }
            validate_retry_common(&p, grpc.num_retries, grpc.per_try_timeout, grpc.back_off.as_ref(), &mut out);
        }
        if let Some(tcp) = &conf.tcp
            && tcp.max_connect_attempts == 0
        {
            out.add(path.field("tcp").field("maxConnectAttempts"), "has to be greater than 0");
        }
        out
    }
}

// ---------------------------------------------------------------- Timeout

/// `Timeout` spec.
pub type TimeoutSpec = ConnectionPolicy<TimeoutConf>;

/// `Timeout.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutConf {
    /// Upstream connect timeout (Kuma's default: 5 s).
    #[serde(alias = "connect_timeout", skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// TCP timeouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TimeoutTcp>,
    /// HTTP timeouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<TimeoutHttp>,
    /// gRPC timeouts (deprecated by Kuma in favour of `http`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<TimeoutGrpc>,
}

/// TCP timeouts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutTcp {
    /// Idle connection timeout.
    #[serde(alias = "idle_timeout", skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
}

/// HTTP timeouts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TimeoutHttp {
    #[serde(alias = "request_timeout", skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    #[serde(alias = "idle_timeout", skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    #[serde(alias = "stream_idle_timeout", skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<Duration>,
    #[serde(alias = "max_stream_duration", skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<Duration>,
}

/// gRPC timeouts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TimeoutGrpc {
    #[serde(alias = "stream_idle_timeout", skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<Duration>,
    #[serde(alias = "max_stream_duration", skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<Duration>,
}

impl TimeoutSpec {
    /// Kuma's `Timeout` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(&SERVICE_SOURCES, &mut out);
        let path = FieldPath::root().field("conf");
        let Some(conf) = &self.conf else {
            out.add(&path, "has to be defined");
            return out;
        };
        const NONE_SET: &str = "at least one timeout in section has to be defined";
        // Envoy refuses negative durations everywhere, and a zero connect
        // timeout; Kuma lets both through to Envoy's NACK.
        let durations = [
            (path.field("connectTimeout"), conf.connect_timeout),
            (path.field("tcp").field("idleTimeout"), conf.tcp.as_ref().and_then(|t| t.idle_timeout)),
            (path.field("http").field("streamIdleTimeout"), conf.http.as_ref().and_then(|h| h.stream_idle_timeout)),
            (path.field("http").field("maxStreamDuration"), conf.http.as_ref().and_then(|h| h.max_stream_duration)),
            // http.requestTimeout/idleTimeout and the grpc ones: below.
        ];
        for (field, d) in durations {
            if d.is_some_and(|d| d.as_nanos() < 0) {
                out.add_extra(field, "must not be negative");
            }
        }
        if conf.connect_timeout.is_some_and(Duration::is_zero) {
            out.add_extra(path.field("connectTimeout"), "has to be greater than 0");
        }
        if let Some(tcp) = &conf.tcp {
            match tcp.idle_timeout {
                None => out.add(path.field("tcp"), NONE_SET),
                Some(d) if d.is_zero() => out.add(path.field("tcp").field("idleTimeout"), "has to be greater than 0"),
                Some(_) => {}
            }
        }
        if let Some(http) = &conf.http {
            let p = path.field("http");
            if http.request_timeout.is_none() && http.idle_timeout.is_none() {
                out.add(&p, NONE_SET);
            } else {
                positive_when_defined(&p.field("requestTimeout"), http.request_timeout, &mut out);
                positive_when_defined(&p.field("idleTimeout"), http.idle_timeout, &mut out);
            }
        }
        if let Some(grpc) = &conf.grpc {
            let p = path.field("grpc");
            if grpc.stream_idle_timeout.is_none() && grpc.max_stream_duration.is_none() {
                out.add(&p, NONE_SET);
            } else {
                positive_when_defined(&p.field("streamIdleTimeout"), grpc.stream_idle_timeout, &mut out);
                positive_when_defined(&p.field("maxStreamDuration"), grpc.max_stream_duration, &mut out);
            }
        }
        out
    }
}

// ---------------------------------------------------------------- TrafficLog

/// `TrafficLog` spec.
pub type TrafficLogSpec = ConnectionPolicy<TrafficLogConf>;

/// `TrafficLog.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficLogConf {
    /// A logging backend of the mesh; empty means the mesh's default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub backend: String,
}

impl TrafficLogSpec {
    /// Kuma's `TrafficLog` validation (selectors only).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(&SERVICE_SOURCES, &mut out);
        out
    }
}

// ---------------------------------------------------------------- TrafficTrace

/// `TrafficTrace` spec: data planes (by their tags) and the mesh tracing
/// backend their spans go to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficTraceSpec {
    /// Data planes the policy applies to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<Selector>,
    /// The backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<TrafficTraceConf>,
}

/// `TrafficTrace.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficTraceConf {
    /// A tracing backend of the mesh; empty for its default backend.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub backend: String,
}

impl TrafficTraceSpec {
    /// Kuma's `TrafficTrace` validation: at least one selector, tags as usual.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        validate_selectors(&FieldPath::root().field("selectors"), &self.selectors, AT_LEAST_ONE, &mut out);
        out
    }
}

// ---------------------------------------------------------------- TrafficPermission

/// `TrafficPermission` spec: who may reach whom. It has no `conf`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficPermissionSpec {
    /// Allowed clients.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Selector>,
    /// Services they may reach.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Selector>,
}

impl TrafficPermissionSpec {
    /// Kuma's `TrafficPermission` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        validate_selectors(&FieldPath::root().field("sources"), &self.sources, AT_LEAST_ONE, &mut out);
        validate_selectors(&FieldPath::root().field("destinations"), &self.destinations, AT_LEAST_ONE, &mut out);
        out
    }
}

// ---------------------------------------------------------------- TrafficRoute

/// `TrafficRoute` spec (accepted, ignored by gateways).
pub type TrafficRouteSpec = ConnectionPolicy<TrafficRouteConf>;

/// `TrafficRoute.conf`, kept as written: gateways do not use it, so only
/// its outline is checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficRouteConf {
    /// Weighted destinations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<TrafficRouteSplit>,
    /// Load balancer settings (a oneof, kept as JSON).
    #[serde(alias = "load_balancer", skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<serde_json::Value>,
    /// A single destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Tags>,
    /// HTTP rules (kept as JSON).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<serde_json::Value>,
}

/// A weighted destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficRouteSplit {
    /// The weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// The destination tags.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub destination: Tags,
}

impl TrafficRouteSpec {
    /// Kuma's `TrafficRoute` validation of selectors, split and destination.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(&SERVICE_SOURCES, &mut out);
        let path = FieldPath::root().field("conf");
        let Some(conf) = &self.conf else {
            out.add(&path, "cannot be empty");
            return out;
        };
        let dest_rules = TagRules { require_at_least_one_tag: true, require_service: true, ..TagRules::default() };
        match (conf.split.is_empty(), &conf.destination) {
            (true, None) => out.add(&path, "requires either \"destination\" or \"split\""),
            (false, Some(_)) => out.add(&path, "\"split\" cannot be defined at the same time as \"destination\""),
            (false, None) => {
                let mut total: u32 = 0;
                for (i, s) in conf.split.iter().enumerate() {
                    let p = path.field("split").index(i);
                    match s.weight {
                        None => out.add(p.field("weight"), "needs to be defined"),
                        Some(w) => total = total.wrapping_add(w),
                    }
                    validate_tags(&p.field("destination"), &s.destination, dest_rules, &mut out);
                }
                if total == 0 {
                    out.add(path.field("split"), "there must be at least one split entry with weight above 0");
                }
            }
            (true, Some(d)) => validate_tags(&path.field("destination"), d, dest_rules, &mut out),
        }
        out
    }
}

// ---------------------------------------------------------------- VirtualOutbound

/// `VirtualOutbound` spec (accepted, ignored by gateways).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VirtualOutboundSpec {
    /// Data planes the virtual outbounds are for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<Selector>,
    /// Host and port templates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<VirtualOutboundConf>,
}

/// `VirtualOutbound.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VirtualOutboundConf {
    /// Go template of the host name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Go template of the port.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub port: String,
    /// Template parameters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<TemplateParameter>,
}

/// A template parameter bound to a tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateParameter {
    /// Name used in the template.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The tag it reads (default: `name`).
    #[serde(alias = "tag_key", skip_serializing_if = "String::is_empty")]
    pub tag_key: String,
}

impl VirtualOutboundSpec {
    /// Kuma's `VirtualOutbound` validation, without evaluating the Go
    /// templates (gateways ignore this policy).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        validate_selectors(&FieldPath::root().field("selectors"), &self.selectors, AT_LEAST_ONE, &mut out);
        let path = FieldPath::root().field("conf");
        let Some(conf) = &self.conf else {
            out.add(&path, "has to be defined");
            return out;
        };
        let is_tag_name = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:/".contains(c));
        let mut names = std::collections::BTreeSet::new();
        let mut has_service = false;
        for (i, p) in conf.parameters.iter().enumerate() {
            let pp = path.field("parameters").index(i);
            if !names.insert(p.name.as_str()) {
                out.add(pp.field("name"), "name is already used");
            }
            if !p.tag_key.is_empty() {
                has_service |= p.tag_key == SERVICE_TAG;
                if !is_tag_name(&p.tag_key) {
                    out.add(pp.field("tagKey"), "must be a valid tag name");
                }
            } else if !is_tag_name(&p.name) {
                out.add(pp.field("name"), "must be a valid tag name if you are not setting tagKey");
            }
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric()) {
                out.add(pp.field("name"), "must consist of alphanumeric characters to be used as a gotemplate key");
            }
        }
        if !has_service {
            out.add(path.field("parameters"), "must contain a parameter with kuma.io/service as a tagKey");
        }
        if conf.host.is_empty() {
            out.add(path.field("host"), "has to be defined");
        }
        if conf.port.is_empty() {
            out.add(path.field("port"), "has to be defined");
        }
        out
    }
}
