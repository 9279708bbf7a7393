//! `Retry`: the HTTP retry policy of routes (it replaces the default one
//! whole, as in Kuma) and the TCP proxy's connect attempts.

use envoy_types::pb::envoy::config::route::v3::{HeaderMatcher, RetryPolicy, RouteAction, retry_policy};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use kuma_model::policy::RetryConf;
use kuma_model::{Resource, Spec};

use crate::pb::{duration, u32v};

fn conf(policy: &Resource) -> Option<&RetryConf> {
    match &policy.spec {
        Spec::Retry(r) => r.conf.as_ref(),
        _ => None,
    }
}

pub(super) fn route(policy: &Resource, action: &mut RouteAction) {
    let Some(http) = conf(policy).and_then(|c| c.http.as_ref()) else { return };
    let mut retry_on: Vec<&str> = http.retry_on.iter().map(|r| r.envoy_name()).collect();
    if retry_on.is_empty() {
        retry_on = vec!["gateway-error", "connect-failure", "refused-stream"];
    }
    if !http.retriable_status_codes.is_empty() && !retry_on.contains(&"retriable-status-codes") {
        retry_on.push("retriable-status-codes");
    }
    let policy = RetryPolicy {
        retry_on: retry_on.join(","),
        num_retries: http.num_retries.and_then(u32v),
        per_try_timeout: http.per_try_timeout.map(duration),
        retry_back_off: http.back_off.as_ref().map(|b| retry_policy::RetryBackOff {
            base_interval: b.base_interval.map(duration),
            max_interval: b.max_interval.map(duration),
        }),
        retriable_status_codes: http.retriable_status_codes.clone(),
        retriable_request_headers: http
            .retriable_methods
            .iter()
            .filter_map(|m| m.as_str())
            .map(|m| HeaderMatcher {
                name: ":method".into(),
                header_match_specifier: Some(
                    envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier::StringMatch(
                        StringMatcher { match_pattern: Some(MatchPattern::Exact(m.into())), ..Default::default() },
                    ),
                ),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    action.retry_policy = Some(policy);
}

pub(super) fn tcp_proxy(policy: &Resource, proxy: &mut TcpProxy) {
    if let Some(tcp) = conf(policy).and_then(|c| c.tcp.as_ref()).filter(|t| t.max_connect_attempts > 0) {
        proxy.max_connect_attempts = u32v(tcp.max_connect_attempts);
    }
}
