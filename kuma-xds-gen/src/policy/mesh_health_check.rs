//! `MeshHealthCheck` on a gateway's clusters, as Kuma's plugin writes it:
//! an HTTP check for clusters of HTTP listeners, a TCP check for those of
//! TCP listeners (unless that kind is disabled or missing), Kuma's defaults
//! for unset fields, and the panic settings on the cluster.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{CommonLbConfig, common_lb_config};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, HealthCheck, TypedExtensionConfig,
    header_value_option::HeaderAppendAction,
    health_check::{HealthChecker, HttpHealthCheck, Payload, TcpHealthCheck, payload},
};
use envoy_types::pb::envoy::r#type::v3::{Int64Range, Percent};
use kuma_model::Tags;
use kuma_model::mesh_health_check::{HealthCheckConf, header_pairs};

use crate::pb::{self, boolv, duration, secs, u32v};

/// Applies `conf` to a cluster; `http` when its listener speaks HTTP;
/// `source` the gateway's tags (sent as `x-kuma-tags` by HTTP checks).
pub(crate) fn apply(conf: Option<&HealthCheckConf>, http: bool, source: &Tags, cluster: &mut Cluster) {
    let Some(c) = conf else { return };
    if let Some(p) = c.healthy_panic_threshold.as_ref().and_then(kuma_model::mesh_fault_injection::percentage) {
        cluster.common_lb_config.get_or_insert_with(CommonLbConfig::default).healthy_panic_threshold =
            Some(Percent { value: p });
    }
    if let Some(fail) = c.fail_traffic_on_panic {
        let lb = cluster.common_lb_config.get_or_insert_with(CommonLbConfig::default);
        let zone = match &mut lb.locality_config_specifier {
            Some(common_lb_config::LocalityConfigSpecifier::ZoneAwareLbConfig(z)) => z,
            _ => {
                lb.locality_config_specifier = Some(common_lb_config::LocalityConfigSpecifier::ZoneAwareLbConfig(
                    common_lb_config::ZoneAwareLbConfig::default(),
                ));
                match &mut lb.locality_config_specifier {
                    Some(common_lb_config::LocalityConfigSpecifier::ZoneAwareLbConfig(z)) => z,
                    _ => return,
                }
            }
        };
        zone.fail_traffic_on_panic = fail;
    }
    let http_check = c.http.as_ref().filter(|h| h.disabled != Some(true));
    let tcp_check = c.tcp.as_ref().filter(|t| t.disabled != Some(true));
    let checker = match (http, http_check, tcp_check) {
        (true, Some(h), _) => {
            let mut headers = Vec::new();
            if !source.is_empty() {
                let tags: String = source.iter().map(|(k, v)| format!("{k}={v}&")).collect();
                headers.push(header(crate::names::KUMA_TAGS_HEADER, &format!("&{tags}"), None));
            }
            let to_add = h.request_headers_to_add.as_ref();
            for (name, value) in header_pairs(to_add.and_then(|h| h.add.as_ref())) {
                headers.extend(value.split(',').map(|v| header(name, v, None)));
            }
            for (name, value) in header_pairs(to_add.and_then(|h| h.set.as_ref())) {
                headers.extend(
                    value.split(',').map(|v| header(name, v, Some(HeaderAppendAction::OverwriteIfExistsOrAdd))),
                );
            }
            HealthChecker::HttpHealthCheck(HttpHealthCheck {
                path: h.path.clone().unwrap_or_else(|| "/".into()),
                expected_statuses: h
                    .expected_statuses
                    .iter()
                    .flatten()
                    .map(|s| Int64Range { start: i64::from(*s), end: i64::from(*s) + 1 })
                    .collect(),
                request_headers_to_add: headers,
                ..Default::default()
            })
        }
        (_, _, Some(t)) if !http || http_check.is_none() => {
            let hex = |s: &str| Payload {
                payload: Some(payload::Payload::Text(s.bytes().map(|b| format!("{b:02x}")).collect())),
            };
            HealthChecker::TcpHealthCheck(TcpHealthCheck {
                send: t.send.as_deref().map(hex),
                receive: t.receive.iter().flatten().map(|r| hex(r)).collect(),
                ..Default::default()
            })
        }
        _ => return,
    };
    cluster.health_checks.push(HealthCheck {
        timeout: Some(c.timeout.map_or(secs(15), duration)),
        interval: Some(c.interval.map_or(secs(60), duration)),
        unhealthy_threshold: u32v(c.unhealthy_threshold.unwrap_or(5)),
        healthy_threshold: u32v(c.healthy_threshold.unwrap_or(1)),
        initial_jitter: c.initial_jitter.map(duration),
        interval_jitter: c.interval_jitter.map(duration),
        interval_jitter_percent: c.interval_jitter_percent.unwrap_or(0),
        event_logger: c
            .event_log_path
            .iter()
            .map(|path| {
                use envoy_types::pb::envoy::extensions::health_check::event_sinks::file::v3::HealthCheckEventFileSink;
                TypedExtensionConfig {
                    name: "envoy.health_check.event_sinks.file".into(),
                    typed_config: Some(pb::any(&HealthCheckEventFileSink { event_log_path: path.clone() })),
                }
            })
            .collect(),
        always_log_health_check_failures: c.always_log_health_check_failures.unwrap_or(false),
        no_traffic_interval: c.no_traffic_interval.map(duration),
        reuse_connection: c.reuse_connection.and_then(boolv),
        health_checker: Some(checker),
        ..Default::default()
    });
}

fn header(key: &str, value: &str, action: Option<HeaderAppendAction>) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue { key: key.into(), value: value.into(), ..Default::default() }),
        append_action: action.map_or(0, |a| a as i32),
        ..Default::default()
    }
}
