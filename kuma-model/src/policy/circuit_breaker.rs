//! `CircuitBreaker`: outlier detection and connection-pool thresholds per destination.

use super::*;

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
