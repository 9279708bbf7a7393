//! `RateLimit`: local rate limits on requests to a destination.

use super::*;

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
