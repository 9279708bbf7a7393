//! `HealthCheck`: active health checks on the policy's clusters, HTTP when
//! `http` is set, TCP otherwise, with Kuma's defaults for what is unset.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster::CommonLbConfig};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, HealthCheck,
    health_check::{HealthChecker, HttpHealthCheck, Payload, TcpHealthCheck, payload},
};
use envoy_types::pb::envoy::r#type::v3::{Int64Range, Percent};
use kuma_model::{Resource, Spec};

use crate::pb::{boolv, duration, secs, u32v};

pub(super) fn cluster(policy: &Resource, cluster: &mut Cluster) {
    let Spec::HealthCheck(p) = &policy.spec else { return };
    let Some(c) = &p.conf else { return };
    let checker = match &c.http {
        Some(http) => HealthChecker::HttpHealthCheck(HttpHealthCheck {
            path: if http.path.is_empty() { "/".into() } else { http.path.clone() },
            expected_statuses: http
                .expected_statuses
                .iter()
                .map(|s| Int64Range { start: i64::from(*s), end: i64::from(*s) + 1 })
                .collect(),
            request_headers_to_add: http
                .request_headers_to_add
                .iter()
                .filter_map(|h| {
                    let header = h.header.as_ref()?;
                    Some(HeaderValueOption {
                        header: Some(HeaderValue {
                            key: header.key.clone(),
                            value: header.value.clone(),
                            ..Default::default()
                        }),
                        append_action: if h.append.unwrap_or(true) { 0 } else { 2 },
                        ..Default::default()
                    })
                })
                .collect(),
            ..Default::default()
        }),
        None => {
            let tcp = c.tcp.clone().unwrap_or_default();
            let text = |bytes: &[u8]| Payload {
                payload: Some(payload::Payload::Text(bytes.iter().map(|b| format!("{b:02x}")).collect())),
            };
            HealthChecker::TcpHealthCheck(TcpHealthCheck {
                send: tcp.send.as_deref().map(text),
                receive: tcp.receive.iter().map(|r| text(r)).collect(),
                ..Default::default()
            })
        }
    };
    let check = HealthCheck {
        timeout: Some(c.timeout.map_or(secs(15), duration)),
        interval: Some(c.interval.map_or(secs(60), duration)),
        unhealthy_threshold: u32v(if c.unhealthy_threshold == 0 { 5 } else { c.unhealthy_threshold }),
        healthy_threshold: u32v(if c.healthy_threshold == 0 { 1 } else { c.healthy_threshold }),
        initial_jitter: c.initial_jitter.map(duration),
        interval_jitter: c.interval_jitter.map(duration),
        interval_jitter_percent: c.interval_jitter_percent,
        event_logger: if c.event_log_path.is_empty() {
            Vec::new()
        } else {
            use envoy_types::pb::envoy::extensions::health_check::event_sinks::file::v3::HealthCheckEventFileSink;
            vec![envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig {
                name: "envoy.health_check.event_sinks.file".into(),
                typed_config: Some(crate::pb::any(&HealthCheckEventFileSink {
                    event_log_path: c.event_log_path.clone(),
                })),
            }]
        },
        always_log_health_check_failures: c.always_log_health_check_failures.unwrap_or(false),
        no_traffic_interval: c.no_traffic_interval.map(duration),
        reuse_connection: c.reuse_connection.and_then(boolv),
        health_checker: Some(checker),
        ..Default::default()
    };
    cluster.health_checks = vec![check];
    if let Some(t) = c.healthy_panic_threshold {
        cluster.common_lb_config.get_or_insert_with(CommonLbConfig::default).healthy_panic_threshold =
            Some(Percent { value: t });
    }
}
