//! The old-style connection policies (`sources`/`destinations` + `conf`)
//! that a gateway consults, and Kuma's rules for each: the shared shape and
//! checks here, one file per kind beside it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::datasource::base64_bytes;
use crate::duration::Duration;
use crate::gateway::{is_false, is_zero};
use crate::route::HttpMethod;
use crate::tags::{PROTOCOL_TAG, SERVICE_TAG, Selector, TagRules, Tags, validate_selectors, validate_tags};
use crate::violation::{FieldPath, Violations};

mod circuit_breaker;
mod fault_injection;
mod health_check;
mod proxy_template;
mod rate_limit;
mod retry;
mod timeout;
mod traffic_log;
mod traffic_permission;
mod traffic_route;
mod traffic_trace;
mod virtual_outbound;

pub use circuit_breaker::*;
pub use fault_injection::*;
pub use health_check::*;
pub use proxy_template::*;
pub use rate_limit::*;
pub use retry::*;
pub use timeout::*;
pub use traffic_log::*;
pub use traffic_permission::*;
pub use traffic_route::*;
pub use traffic_trace::*;
pub use virtual_outbound::*;

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

/// The statuses of Envoy's `envoy.type.v3.StatusCode`, the only ones its
/// local rate limit can answer with.
pub(crate) const ENVOY_STATUS_CODES: [u32; 56] = [
    100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403,
    404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500,
    501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
];
