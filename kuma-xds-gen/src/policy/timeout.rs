//! `Timeout`: connect, idle and maximum stream duration on clusters, request and stream idle
//! timeouts on routes (Kuma hard-codes the route stream idle timeout to 5 s;
//! here the policy decides), idle timeout on TCP proxies.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::route::v3::RouteAction;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use kuma_model::policy::TimeoutConf;
use kuma_model::{Resource, Spec};
use prost::Message;

use crate::pb::{self, duration};

fn conf(policy: &Resource) -> Option<&TimeoutConf> {
    match &policy.spec {
        Spec::Timeout(t) => t.conf.as_ref(),
        _ => None,
    }
}

pub(super) fn route(policy: &Resource, action: &mut RouteAction) {
    let Some(http) = conf(policy).and_then(|c| c.http.as_ref()) else { return };
    if let Some(d) = http.request_timeout {
        action.timeout = Some(duration(d));
    }
    if let Some(d) = http.stream_idle_timeout {
        action.idle_timeout = Some(duration(d));
    }
}

pub(super) fn cluster(policy: &Resource, cluster: &mut Cluster) {
    let Some(c) = conf(policy) else { return };
    if let Some(d) = c.connect_timeout {
        cluster.connect_timeout = Some(duration(d));
    }
    let Some(http) = &c.http else { return };
    if http.idle_timeout.is_none() && http.max_stream_duration.is_none() {
        return;
    }
    for any in cluster.typed_extension_protocol_options.values_mut() {
        if let Ok(mut options) = HttpProtocolOptions::decode(any.value.as_slice()) {
            let common = options.common_http_protocol_options.get_or_insert_with(Default::default);
            if let Some(d) = http.idle_timeout {
                common.idle_timeout = Some(duration(d));
            }
            if let Some(d) = http.max_stream_duration {
                common.max_stream_duration = Some(duration(d));
            }
            *any = pb::any(&options);
        }
    }
}

pub(super) fn tcp_proxy(policy: &Resource, proxy: &mut TcpProxy) {
    if let Some(d) = conf(policy).and_then(|c| c.tcp.as_ref()).and_then(|t| t.idle_timeout) {
        proxy.idle_timeout = Some(duration(d));
    }
}
