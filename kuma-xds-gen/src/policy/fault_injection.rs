//! `FaultInjection`: delay, abort and response bandwidth limits on the
//! routes to the policy's destinations. Kuma matches this policy on gateways
//! but never applies it; here it works. The HTTP connection manager carries
//! the fault filter only when the mesh has FaultInjection policies.

use envoy_types::pb::envoy::config::route::v3::Route;
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{
    FaultDelay, FaultRateLimit,
    fault_delay::FaultDelaySecifier,
    fault_rate_limit::{FixedLimit, LimitType},
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{FaultAbort, HttpFault, fault_abort::ErrorType};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent::DenominatorType};
use kuma_model::{Resource, Spec};

use crate::pb::{self, duration};

/// The HTTP filter name the per-route config is keyed by.
pub(crate) const FILTER: &str = "envoy.filters.http.fault";

fn percent(p: Option<f64>) -> Option<FractionalPercent> {
    let p = p.unwrap_or(100.0).clamp(0.0, 100.0);
    Some(FractionalPercent { numerator: (p * 10_000.0).round() as u32, denominator: DenominatorType::Million as i32 })
}

pub(super) fn route(policy: &Resource, route: &mut Route) {
    let Spec::FaultInjection(p) = &policy.spec else { return };
    let Some(c) = &p.conf else { return };
    let config = HttpFault {
        delay: c.delay.as_ref().and_then(|d| {
            Some(FaultDelay {
                percentage: percent(d.percentage),
                fault_delay_secifier: Some(FaultDelaySecifier::FixedDelay(duration(d.value?))),
            })
        }),
        abort: c.abort.as_ref().and_then(|a| {
            Some(FaultAbort {
                percentage: percent(a.percentage),
                error_type: Some(ErrorType::HttpStatus(a.http_status?)),
                ..Default::default()
            })
        }),
        response_rate_limit: c.response_bandwidth.as_ref().and_then(|b| {
            Some(FaultRateLimit {
                percentage: percent(b.percentage),
                limit_type: Some(LimitType::FixedLimit(FixedLimit { limit_kbps: b.limit_kbps()? })),
            })
        }),
        ..Default::default()
    };
    route.typed_per_filter_config.insert(FILTER.into(), pb::any(&config));
}
