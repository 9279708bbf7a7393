//! A DELEGATED gateway (for example Kong with a Kuma sidecar): no inbound
//! listeners; one outbound listener per `networking.outbound`, routing to
//! the service's cluster.

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action, route_match,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use kuma_model::dataplane::DataplaneSpec;
use kuma_model::{Resource, ResourceSet, SERVICE_TAG, Tags};
use kuma_policy::delegated::outbounds;

use crate::TranslateError;
use crate::clusters::{ClusterPlans, UpstreamProtocol};
use crate::defaults;
use crate::pb::{self, millis};
use crate::snapshot::GatewaySnapshot;

pub(crate) fn generate(
    set: &ResourceSet,
    mesh: &str,
    dataplane: &Resource,
    spec: &DataplaneSpec,
    at: Option<std::time::SystemTime>,
) -> Result<GatewaySnapshot, TranslateError> {
    let mut out = GatewaySnapshot::default();
    let gateway_service = spec.gateway().and_then(|g| g.tags.get(SERVICE_TAG)).map_or("", String::as_str);
    let gateway_tags = spec.gateway().map(|g| g.tags.clone()).unwrap_or_default();
    let mut clusters = ClusterPlans::new(set, mesh, "", &gateway_tags);
    // A delegated gateway has no MeshGateway: policies select it by its tags.
    let targeted = defaults::TargetedCache::new(set, mesh, "").get(&gateway_tags);
    for o in outbounds(set, mesh, spec) {
        // Outbound clusters are named by the service alone (Kuma's outbound
        // naming); no host tags take part.
        let destination: Tags = o.outbound.tags.clone();
        let http = matches!(o.protocol, "http" | "http2" | "grpc");
        let fallback = if http { UpstreamProtocol::Http } else { UpstreamProtocol::Tcp };
        let sources = spec.gateway().map(|g| g.tags.clone()).unwrap_or_default();
        let cluster = clusters.register(&destination, &Tags::new(), &sources, fallback);
        let name = format!("outbound:{}:{}", o.outbound.local_address(), o.outbound.port);
        let filter = if http {
            let route_name = format!("outbound:{}", o.service);
            out.routes.insert(route_name.clone(), route_configuration(&route_name, o.service, &cluster, &targeted));
            http_connection_manager(gateway_service, &route_name)
        } else {
            tcp_proxy(o.service, &cluster, &targeted)
        };
        out.listeners.insert(
            name.clone(),
            Listener {
                name,
                address: Some(pb::socket_address(o.outbound.local_address(), o.outbound.port)),
                filter_chains: vec![FilterChain { filters: vec![filter], ..Default::default() }],
                traffic_direction: TrafficDirection::Outbound as i32,
                ..Default::default()
            },
        );
    }
    // The runtime layer every gateway bootstrap subscribes to (empty here),
    // so Envoy's initialisation does not wait for it.
    out.runtimes.insert(
        crate::LISTENER_RUNTIME.into(),
        envoy_types::pb::envoy::service::runtime::v3::Runtime {
            name: crate::LISTENER_RUNTIME.into(),
            layer: Some(Default::default()),
        },
    );
    let uses_identity = clusters
        .generate(set, mesh, &mut out)
        .map_err(|message| TranslateError::Backend { resource: dataplane.key(), message })?;
    crate::mtls::add_secrets(set, mesh, &gateway_tags, (uses_identity, false), at, &mut out)
        .map_err(|message| TranslateError::Mtls { mesh: crate::mesh_key(mesh), message })?;
    Ok(out)
}

fn route_configuration(name: &str, service: &str, cluster: &str, targeted: &defaults::Targeted) -> RouteConfiguration {
    RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: service.into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
                    timeout: targeted.policies().timeout.mesh.as_deref().map(|c| defaults::route_timeouts(c).0),
                    retry_policy: targeted.policies().retry.mesh.as_deref().and_then(defaults::retry_policy),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        validate_clusters: pb::boolv(false),
        ..Default::default()
    }
}

fn http_connection_manager(stat_prefix: &str, route_name: &str) -> Filter {
    let hcm = HttpConnectionManager {
        stat_prefix: stat_prefix.into(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(pb::ads()),
            route_config_name: route_name.into(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pb::any(&Router::default()))),
            ..Default::default()
        }],
        stream_idle_timeout: Some(millis(defaults::STREAM_IDLE_TIMEOUT_MS)),
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pb::any(&hcm))),
    }
}

fn tcp_proxy(service: &str, cluster: &str, targeted: &defaults::Targeted) -> Filter {
    let proxy = TcpProxy {
        stat_prefix: service.into(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.into())),
        idle_timeout: Some(targeted.downstream_idle_timeout()),
        max_connect_attempts: targeted.tcp_max_connect_attempts().and_then(pb::u32v),
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pb::any(&proxy))),
    }
}
