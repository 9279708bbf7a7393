//! `TrafficTrace`: spans from the gateway's HTTP connection managers to the
//! mesh's tracing backend (`zipkin` or `datadog`), through a `tracing:<backend>`
//! cluster, as Kuma configures them.

use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster,
    circuit_breakers::Thresholds,
    cluster::{ClusterDiscoveryType, DiscoveryType, DnsLookupFamily},
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
};
use envoy_types::pb::envoy::config::trace::v3::{
    DatadogConfig, ZipkinConfig,
    tracing::{Http, http::ConfigType},
    zipkin_config::CollectorEndpointVersion,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::Tracing;
use envoy_types::pb::envoy::r#type::v3::Percent;
use kuma_model::{Kind, ResourceSet, Spec, Tags};

use crate::pb;

/// The tracing settings of a gateway and the collector cluster they use.
#[derive(Debug, Clone)]
pub(crate) struct GatewayTracing {
    /// For the HTTP connection managers.
    pub tracing: Tracing,
    /// The collector cluster.
    pub cluster: Cluster,
}

/// `http://host:port/path` → (host, port, path).
fn split_url(url: &str) -> Option<(&str, u32, &str)> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"))?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/"), |(a, _)| (a, &rest[a.len()..]));
    let (host, port) = authority.rsplit_once(':').map_or((authority, 80), |(h, p)| (h, p.parse().unwrap_or(80)));
    Some((host, port, path))
}

/// The TrafficTrace selecting a data plane with gateway `tags` (best rank,
/// newest on a tie), resolved against the mesh's tracing backends.
pub(crate) fn for_gateway(set: &ResourceSet, mesh: &str, tags: &Tags) -> Option<GatewayTracing> {
    let traces = set.in_mesh(Kind::TrafficTrace, mesh).filter_map(|r| match &r.spec {
        Spec::TrafficTrace(t) => Some((r, &t.selectors[..], t)),
        _ => None,
    });
    let (_, trace) = kuma_policy::selector::best_match(traces, tags)?;
    let tracing = set.mesh(mesh)?.tracing.as_ref()?;
    let name = trace.conf.as_ref().map_or("", |c| c.backend.as_str());
    let name = if name.is_empty() { tracing.default_backend.as_str() } else { name };
    let backend = tracing.backends.iter().find(|b| b.name == name)?;
    let cluster_name = format!("tracing:{}", backend.name);
    let (host, port, provider) = match backend.kind.as_str() {
        "zipkin" => {
            let (host, port, path) = split_url(backend.conf_str("url"))?;
            let version = if backend.conf_str("apiVersion") == "httpProto" {
                CollectorEndpointVersion::HttpProto
            } else {
                CollectorEndpointVersion::HttpJson
            };
            let bool_conf = |k: &str| backend.conf.as_ref().and_then(|c| c.get(k)).and_then(|v| v.as_bool());
            let config = ZipkinConfig {
                collector_cluster: cluster_name.clone(),
                collector_endpoint: path.to_string(),
                collector_endpoint_version: version as i32,
                collector_hostname: format!("{host}:{port}"),
                trace_id_128bit: bool_conf("traceId128bit").unwrap_or(false),
                shared_span_context: bool_conf("sharedSpanContext").and_then(pb::boolv),
                ..Default::default()
            };
            (
                host.to_string(),
                port,
                Http {
                    name: "envoy.tracers.zipkin".into(),
                    config_type: Some(ConfigType::TypedConfig(pb::any(&config))),
                },
            )
        }
        "datadog" => {
            let host = backend.conf_str("address").to_string();
            let port =
                backend.conf.as_ref().and_then(|c| c.get("port")).and_then(|v| v.as_u64()).unwrap_or(8126) as u32;
            let config = DatadogConfig {
                collector_cluster: cluster_name.clone(),
                service_name: tags.get(kuma_model::SERVICE_TAG).cloned().unwrap_or_default(),
                ..Default::default()
            };
            (
                host,
                port,
                Http {
                    name: "envoy.tracers.datadog".into(),
                    config_type: Some(ConfigType::TypedConfig(pb::any(&config))),
                },
            )
        }
        _ => return None,
    };
    let cluster = collector_cluster(&cluster_name, &host, port);
    let tracing = Tracing {
        overall_sampling: Some(Percent { value: backend.sampling.unwrap_or(100.0) }),
        provider: Some(provider),
        spawn_upstream_span: pb::boolv(true),
        ..Default::default()
    };
    Some(GatewayTracing { tracing, cluster })
}

/// A tracing collector's cluster: `host:port` resolved by DNS.
pub(crate) fn collector_cluster(name: &str, host: &str, port: u32) -> Cluster {
    Cluster {
        name: name.into(),
        alt_stat_name: name.replace(':', "_"),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::StrictDns as i32)),
        connect_timeout: Some(pb::secs(5)),
        dns_lookup_family: DnsLookupFamily::V4Only as i32,
        circuit_breakers: Some(CircuitBreakers {
            thresholds: vec![Thresholds { track_remaining: true, ..Default::default() }],
            ..Default::default()
        }),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                        address: Some(pb::socket_address(host, port)),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}
