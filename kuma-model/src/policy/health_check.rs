//! `HealthCheck`: active health checks of a destination's endpoints.

use super::*;

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
