//! `MeshFaultInjection` and `MeshRateLimit` on a gateway's HTTP listeners,
//! as Kuma's plugins write them: one fault filter per `http` entry before
//! the router, and a per-route local rate limit (the route's own conf when
//! a policy targets its MeshHTTPRoute, else the listener's).

use envoy_types::pb::envoy::config::route::v3::Route;
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{
    FaultDelay, FaultRateLimit,
    fault_delay::FaultDelaySecifier,
    fault_rate_limit::{FixedLimit, LimitType},
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{FaultAbort, HttpFault, fault_abort::ErrorType};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::r#type::v3::{
    FractionalPercent, HttpStatus, TokenBucket, fractional_percent::DenominatorType,
};
use kuma_model::mesh_fault_injection::{FaultConf, kbps, percentage};
use kuma_model::mesh_rate_limit::RateLimitConf;

use crate::pb::{self, duration, u32v};

/// The fault filters' typed configs for a listener's `MeshFaultInjection`
/// conf, in order.
pub(crate) fn fault_filters(conf: Option<&FaultConf>) -> Vec<HttpFault> {
    conf.and_then(|c| c.http.as_ref())
        .into_iter()
        .flatten()
        .map(|f| HttpFault {
            delay: f.delay.as_ref().map(|d| FaultDelay {
                percentage: fraction(&d.percentage),
                fault_delay_secifier: Some(FaultDelaySecifier::FixedDelay(duration(d.value))),
            }),
            abort: f.abort.as_ref().map(|a| FaultAbort {
                percentage: fraction(&a.percentage),
                error_type: Some(ErrorType::HttpStatus(a.http_status as u32)),
                ..Default::default()
            }),
            response_rate_limit: f.response_bandwidth.as_ref().and_then(|b| {
                Some(FaultRateLimit {
                    percentage: fraction(&b.percentage),
                    limit_type: Some(LimitType::FixedLimit(FixedLimit { limit_kbps: kbps(&b.limit)? })),
                })
            }),
            ..Default::default()
        })
        .collect()
}

/// Kuma's percentage: a whole number over 100, two decimals over 10,000,
/// finer over a million.
fn fraction(v: &serde_json::Value) -> Option<FractionalPercent> {
    let p = percentage(v)?.clamp(0.0, 100.0);
    let decimals = match v {
        serde_json::Value::String(s) => s.trim().split_once('.').map_or(0, |(_, d)| d.len()),
        serde_json::Value::Number(n) if n.is_f64() => 3,
        _ => 0,
    };
    let (numerator, denominator) = match decimals {
        0 => (p.round() as u32, DenominatorType::Hundred),
        1 | 2 => ((p * 100.0).round() as u32, DenominatorType::TenThousand),
        _ => ((p * 10_000.0).round() as u32, DenominatorType::Million),
    };
    Some(FractionalPercent { numerator, denominator: denominator as i32 })
}

/// Sets a route's local rate limit from `conf`, unless a RateLimit policy
/// already set one (as Kuma: the older policy's config stays).
pub(crate) fn rate_limit_route(conf: Option<&RateLimitConf>, route: &mut Route) {
    let Some(http) = conf.and_then(|c| c.local.as_ref()).and_then(|l| l.http.as_ref()) else { return };
    if http.disabled == Some(true) || route.typed_per_filter_config.contains_key(super::rate_limit::FILTER) {
        return;
    }
    let Some(rate) = &http.request_rate else { return };
    let enabled = |key: &str| {
        Some(envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent {
            default_value: Some(FractionalPercent { numerator: 100, denominator: DenominatorType::Hundred as i32 }),
            runtime_key: key.into(),
        })
    };
    let on_limit = http.on_rate_limit.as_ref();
    let headers = on_limit.and_then(|o| o.headers.as_ref());
    let mut response_headers_to_add = Vec::new();
    for h in headers.and_then(|h| h.add.as_ref()).into_iter().flatten() {
        response_headers_to_add.push(pb::header(&h.name, &h.value, false));
    }
    for h in headers.and_then(|h| h.set.as_ref()).into_iter().flatten() {
        for value in h.value.split(',') {
            response_headers_to_add.push(pb::header(&h.name, value.trim(), true));
        }
    }
    let config = LocalRateLimit {
        stat_prefix: "rate_limit".into(),
        status: on_limit.and_then(|o| o.status).filter(|s| *s != 0).map(|code| HttpStatus { code: code as i32 }),
        token_bucket: Some(TokenBucket {
            max_tokens: rate.num,
            tokens_per_fill: u32v(rate.num),
            fill_interval: Some(duration(rate.interval)),
        }),
        filter_enabled: enabled("local_rate_limit_enabled"),
        filter_enforced: enabled("local_rate_limit_enforced"),
        response_headers_to_add,
        ..Default::default()
    };
    route.typed_per_filter_config.insert(super::rate_limit::FILTER.into(), pb::any(&config));
}
