//! `Retry`: HTTP, gRPC and TCP retries towards a destination.

use super::*;

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
