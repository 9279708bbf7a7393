//! `MeshTrace`: the tracing of a gateway's HTTP connection managers and the
//! collector cluster its spans go to (`meshtrace:<zipkin|datadog|opentelemetry>`),
//! as Kuma's MeshTrace plugin writes them for a builtin gateway (upstream
//! spans, Zipkin spans split per request, `kuma.mesh` tagged). It applies
//! after the legacy `TrafficTrace` and replaces its tracing.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{GrpcService, grpc_service};
use envoy_types::pb::envoy::config::trace::v3::{
    DatadogConfig, OpenTelemetryConfig, ZipkinConfig,
    tracing::{Http, http::ConfigType},
    zipkin_config::CollectorEndpointVersion,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::Tracing;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
use envoy_types::pb::envoy::r#type::tracing::v3::{CustomTag, custom_tag};
use envoy_types::pb::envoy::r#type::v3::Percent;
use kuma_model::mesh_fault_injection::percentage;
use kuma_model::mesh_trace::{CollectorUrl, TraceBackend, TraceBackendKind, TraceConf};

use crate::pb;

/// The collector a backend reports to: cluster name, URL, HTTP/2.
fn collector(backend: &TraceBackend) -> Option<(&'static str, CollectorUrl, bool)> {
    match backend.kind {
        TraceBackendKind::Zipkin => {
            Some(("meshtrace:zipkin", CollectorUrl::parse(&backend.zipkin.as_ref()?.url)?, false))
        }
        TraceBackendKind::Datadog => {
            Some(("meshtrace:datadog", CollectorUrl::parse(&backend.datadog.as_ref()?.url)?, false))
        }
        TraceBackendKind::OpenTelemetry => {
            let endpoint = backend.open_telemetry.as_ref()?.endpoint.as_deref()?;
            Some(("meshtrace:opentelemetry", CollectorUrl::parse(&format!("http://{endpoint}"))?, true))
        }
    }
}

fn backend(conf: &TraceConf) -> Option<&TraceBackend> {
    conf.backends.as_deref()?.first()
}

/// The tracing of a gateway HTTP connection manager (`service`: the
/// gateway's `kuma.io/service`), when the conf names a backend.
pub(crate) fn tracing(conf: &TraceConf, mesh: &str, service: &str) -> Option<Tracing> {
    let backend = backend(conf)?;
    let (cluster, url, _) = collector(backend)?;
    let provider = match backend.kind {
        TraceBackendKind::Zipkin => {
            let z = backend.zipkin.as_ref()?;
            let version = if z.api_version.as_deref() == Some("httpProto") {
                CollectorEndpointVersion::HttpProto
            } else {
                CollectorEndpointVersion::HttpJson
            };
            // Kuma sets `split_spans_for_request` on gateways; deprecated in
            // Envoy's API, still read by Envoy 1.40 (envoy_validate runs it).
            #[allow(deprecated)]
            let config = ZipkinConfig {
                collector_cluster: cluster.into(),
                collector_endpoint: url.path.clone(),
                trace_id_128bit: z.trace_id_128bit.unwrap_or(false),
                collector_endpoint_version: version as i32,
                shared_span_context: pb::boolv(z.shared_span_context.unwrap_or(true)),
                // As written: Envoy sends it as the collector's Host header.
                collector_hostname: url.authority.clone(),
                split_spans_for_request: true,
                ..Default::default()
            };
            Http { name: "envoy.tracers.zipkin".into(), config_type: Some(ConfigType::TypedConfig(pb::any(&config))) }
        }
        TraceBackendKind::Datadog => {
            let split = backend.datadog.as_ref().and_then(|d| d.split_service).unwrap_or(false);
            let config = DatadogConfig {
                collector_cluster: cluster.into(),
                // A gateway listener receives: Kuma's inbound name when split.
                service_name: if split { format!("{service}_INBOUND") } else { service.into() },
                ..Default::default()
            };
            Http { name: "envoy.tracers.datadog".into(), config_type: Some(ConfigType::TypedConfig(pb::any(&config))) }
        }
        TraceBackendKind::OpenTelemetry => {
            let config = OpenTelemetryConfig {
                service_name: service.into(),
                grpc_service: Some(GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(grpc_service::EnvoyGrpc {
                        cluster_name: cluster.into(),
                        ..Default::default()
                    })),
                    ..Default::default()
                }),
                ..Default::default()
            };
            Http {
                name: "envoy.tracers.opentelemetry".into(),
                config_type: Some(ConfigType::TypedConfig(pb::any(&config))),
            }
        }
    };
    let percent = |v: &Option<serde_json::Value>| v.as_ref().and_then(percentage).map(|value| Percent { value });
    let sampling = conf.sampling.clone().unwrap_or_default();
    let mut custom_tags: Vec<CustomTag> = conf
        .tags
        .iter()
        .flatten()
        .map(|t| CustomTag {
            tag: t.name.clone(),
            r#type: Some(match &t.header {
                Some(h) => custom_tag::Type::RequestHeader(custom_tag::Header {
                    name: h.name.clone(),
                    default_value: h.default.clone().unwrap_or_default(),
                }),
                None => custom_tag::Type::Literal(custom_tag::Literal { value: t.literal.clone().unwrap_or_default() }),
            }),
        })
        .collect();
    // Kuma tags spans with the mesh (and its zone; one zone here, unnamed).
    if !custom_tags.iter().any(|t| t.tag == "kuma.mesh") {
        custom_tags.push(CustomTag {
            tag: "kuma.mesh".into(),
            r#type: Some(custom_tag::Type::Literal(custom_tag::Literal { value: mesh.into() })),
        });
    }
    Some(Tracing {
        overall_sampling: percent(&sampling.overall),
        client_sampling: percent(&sampling.client),
        random_sampling: percent(&sampling.random),
        custom_tags,
        provider: Some(provider),
        spawn_upstream_span: pb::boolv(true),
        ..Default::default()
    })
}

/// The collector cluster of a conf that names a backend.
pub(crate) fn cluster(conf: &TraceConf) -> Option<Cluster> {
    let (name, url, http2) = collector(backend(conf)?)?;
    let mut cluster = super::traffic_trace::collector_cluster(name, &url.host, u32::from(url.port));
    if url.tls {
        let tls = UpstreamTlsContext { sni: url.host.clone(), allow_renegotiation: true, ..Default::default() };
        cluster.transport_socket = Some(pb::transport_socket("envoy.transport_sockets.tls", &tls));
    }
    if http2 {
        cluster.typed_extension_protocol_options = crate::clusters::http2_options().into_iter().collect();
    }
    Some(cluster)
}
