//! `RateLimit`: a local token bucket per route (`requests` per `interval`),
//! answering `onRateLimit.status` (429 by default) with its headers. The
//! HTTP connection manager always carries the `local_ratelimit` filter
//! (Kuma's layout); routes configure it per route.

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3::Route;
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::r#type::v3::{
    FractionalPercent, HttpStatus, TokenBucket, fractional_percent::DenominatorType,
};
use kuma_model::{Resource, Spec};

use crate::pb::{self, duration, u32v};

/// The HTTP filter name the per-route config is keyed by.
pub(crate) const FILTER: &str = "envoy.filters.http.local_ratelimit";

fn all() -> Option<RuntimeFractionalPercent> {
    Some(RuntimeFractionalPercent {
        default_value: Some(FractionalPercent { numerator: 100, denominator: DenominatorType::Hundred as i32 }),
        runtime_key: "local_rate_limit_enabled".into(),
    })
}

pub(super) fn route(policy: &Resource, route: &mut Route) {
    let Spec::RateLimit(p) = &policy.spec else { return };
    let Some(http) = p.conf.as_ref().and_then(|c| c.http.as_ref()) else { return };
    let Some(interval) = http.interval else { return };
    let on_limit = http.on_rate_limit.as_ref();
    let config = LocalRateLimit {
        stat_prefix: "rate_limit".into(),
        status: on_limit.and_then(|o| o.status).map(|code| HttpStatus { code: code as i32 }),
        token_bucket: Some(TokenBucket {
            max_tokens: http.requests,
            tokens_per_fill: u32v(http.requests),
            fill_interval: Some(duration(interval)),
        }),
        filter_enabled: all(),
        filter_enforced: all().map(|mut p| {
            p.runtime_key = "local_rate_limit_enforced".into();
            p
        }),
        response_headers_to_add: on_limit
            .map(|o| o.headers.iter().map(|h| pb::header(&h.key, &h.value, !h.append.unwrap_or(false))).collect())
            .unwrap_or_default(),
        ..Default::default()
    };
    route.typed_per_filter_config.insert(FILTER.into(), pb::any(&config));
}
