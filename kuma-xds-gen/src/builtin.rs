//! A BUILTIN gateway: one Envoy listener per port of the selected
//! `MeshGateway`, with its filter chains, route configurations, clusters
//! and certificates.

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::core::v3::{
    Http2ProtocolOptions, HttpProtocolOptions as CommonHttpProtocolOptions, TypedExtensionConfig,
    http_protocol_options::HeadersWithUnderscoresAction,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::compression::gzip::compressor::v3::Gzip;
use envoy_types::pb::envoy::extensions::filters::http::compressor::v3::{
    Compressor, compressor::ResponseDirectionConfig,
};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, TlsParameters, tls_parameters::TlsProtocol,
};
use envoy_types::pb::envoy::service::runtime::v3::Runtime;
use kuma_model::gateway::{MeshGatewaySpec, Protocol, TlsMode};
use kuma_model::{Resource, ResourceSet, SERVICE_TAG, Tags};
use kuma_policy::route_table::{RouteTable, TableChain, TablePort};

use crate::clusters::{ClusterPlans, UpstreamProtocol};
use crate::defaults;
use crate::names;
use crate::pb::{self, boolv, u32v};
use crate::policy::traffic_log::{LogContext, access_logs, mesh_access_logs};
use crate::policy::traffic_trace;
use crate::routes::{HostContext, virtual_host};
use crate::snapshot::GatewaySnapshot;
use crate::{TranslateError, tls};

/// The RTDS layer that carries listener connection limits.
pub const LISTENER_RUNTIME: &str = "gateway.listeners";

pub(crate) struct Builtin<'a, 's> {
    pub set: &'a ResourceSet,
    pub mesh: &'s str,
    pub dataplane: &'a Resource,
    pub address: &'a str,
    pub tags: &'a Tags,
    pub gateway: &'a Resource,
    pub spec: &'a MeshGatewaySpec,
    /// The instant identity certificates are issued at (`None`: the start
    /// of the CA's validity).
    pub at: Option<std::time::SystemTime>,
    /// What becomes of the virtual hosts built.
    pub hosts: VirtualHosts<'s>,
}

/// What a translation does with the virtual hosts it builds.
#[derive(Clone, Copy)]
pub(crate) enum VirtualHosts<'s> {
    /// Kept in their route configurations.
    Keep,
    /// Reused from, and encoded for, the pass ([`crate::reuse`]): route
    /// configurations are then left without their virtual hosts, which the
    /// pass holds encoded.
    Reuse(&'s std::cell::RefCell<crate::reuse::Pass>),
    /// Not built: only the clusters their routes send to are registered,
    /// which is what a check that only wants translation's errors needs
    /// (`crate::check`).
    Drop,
}

impl<'a> Builtin<'a, '_> {
    fn service(&self) -> &str {
        self.tags.get(SERVICE_TAG).map_or("", String::as_str)
    }

    pub(crate) fn generate(&self) -> Result<GatewaySnapshot, TranslateError> {
        let mut out = GatewaySnapshot::default();
        let mut clusters = ClusterPlans::new(self.set, self.mesh, &self.gateway.meta.name, self.tags);
        let mut limits = Vec::new();
        let mut any_cross_mesh = false;
        let mut table = RouteTable::build(self.set, self.mesh, self.tags, &self.gateway.meta.name, self.spec);
        clusters.with_choices(std::mem::take(&mut table.clusters));
        for port in &table.ports {
            let name = names::listener(&self.gateway.meta.name, port.protocol.as_str(), port.port);
            let cross_mesh = port.cross_mesh();
            any_cross_mesh |= cross_mesh;
            let ctx = HostContext { port: port.port, https: port.protocol == Protocol::Https || cross_mesh };
            let filter_chains = match port.protocol {
                Protocol::Http | Protocol::Https => self.http_chains(&ctx, &name, port, &mut clusters, &mut out)?,
                Protocol::Tcp | Protocol::Tls => self.tcp_chains(port, &mut clusters, &mut out)?,
                // `NONE`, and any protocol newer than this translator: no listener.
                _ => continue,
            };
            let limit = port
                .listeners
                .iter()
                .filter_map(|l| l.listener.resources.as_ref().map(|r| r.connection_limit))
                .find(|l| *l > 0);
            if let Some(limit) = limit {
                limits.push((format!("envoy.resource_limits.listener.{name}.connection_limit"), f64::from(limit)));
            }
            out.listeners.insert(
                name.clone(),
                Listener {
                    name,
                    address: Some(pb::socket_address(self.address, port.port)),
                    filter_chains,
                    listener_filters: vec![ListenerFilter {
                        name: "envoy.filters.listener.tls_inspector".into(),
                        config_type: Some(listener_filter::ConfigType::TypedConfig(pb::any(&TlsInspector::default()))),
                        ..Default::default()
                    }],
                    per_connection_buffer_limit_bytes: u32v(defaults::BUFFER_LIMIT_BYTES),
                    traffic_direction: TrafficDirection::Inbound as i32,
                    enable_reuse_port: boolv(true),
                    ..Default::default()
                },
            );
        }
        if let Some(t) = traffic_trace::for_gateway(self.set, self.mesh, self.tags)
            && out.listeners.values().any(|l| l.name.contains(":HTTP"))
        {
            out.clusters.insert(t.cluster.name.clone(), t.cluster);
        }
        // The MeshTrace collectors of the HTTP chains.
        let http_ports = table.ports.iter().filter(|p| matches!(p.protocol, Protocol::Http | Protocol::Https));
        for chain in http_ports.flat_map(|p| p.chains.iter()) {
            if let Some(c) = chain.own_host().policies.trace.as_ref().and_then(crate::policy::mesh_trace::cluster) {
                out.clusters.insert(c.name.clone(), c);
            }
        }
        let uses_identity = clusters
            .generate(self.set, self.mesh, &mut out)
            .map_err(|message| TranslateError::Backend { resource: self.dataplane.key(), message })?;
        crate::mtls::add_secrets(self.set, self.mesh, self.tags, (uses_identity, any_cross_mesh), self.at, &mut out)
            .map_err(|message| TranslateError::Mtls { mesh: crate::mesh_key(self.mesh), message })?;
        out.runtimes.insert(
            LISTENER_RUNTIME.into(),
            Runtime {
                name: LISTENER_RUNTIME.into(),
                layer: Some(pb::number_struct(limits.iter().map(|(k, v)| (k.as_str(), *v)))),
            },
        );
        Ok(out)
    }

    fn http_chains(
        &self,
        ctx: &HostContext,
        listener: &str,
        port: &TablePort<'a>,
        clusters: &mut ClusterPlans<'a>,
        out: &mut GatewaySnapshot,
    ) -> Result<Vec<FilterChain>, TranslateError> {
        let mut chains = Vec::new();
        for chain in &port.chains {
            let route_name = names::route_configuration(listener, &chain.key);
            let mut virtual_hosts: Vec<VirtualHost> = match self.hosts {
                VirtualHosts::Keep => chain.hosts.iter().map(|h| virtual_host(ctx, h, clusters)).collect(),
                VirtualHosts::Reuse(pass) => {
                    let mut pass = pass.borrow_mut();
                    for h in &chain.hosts {
                        reuse_or_build(&mut pass, &route_name, ctx, h, clusters);
                    }
                    Vec::new()
                }
                VirtualHosts::Drop => {
                    for h in &chain.hosts {
                        crate::routes::register_host_clusters(h, clusters);
                    }
                    Vec::new()
                }
            };
            if !chain.misdirected.is_empty() {
                // Other listener hostnames of this port have filter chains of
                // their own: requests for them here are misdirected.
                let host = crate::routes::misdirected(chain.misdirected.clone());
                match self.hosts {
                    VirtualHosts::Keep => virtual_hosts.push(host),
                    VirtualHosts::Reuse(pass) => pass.borrow_mut().push_unkept(&route_name, &host),
                    VirtualHosts::Drop => {}
                }
            }
            out.routes.insert(
                route_name.clone(),
                RouteConfiguration {
                    name: route_name.clone(),
                    virtual_hosts,
                    validate_clusters: boolv(false),
                    request_headers_to_remove: vec![names::KUMA_TAGS_HEADER.into()],
                    ignore_port_in_host_matching: true,
                    ..Default::default()
                },
            );
            let own = chain.own_host();
            let filter = self.http_connection_manager(&route_name, own.tags(), &defaults::Targeted::of(&own.policies));
            let mut filter_chain = FilterChain { filters: vec![filter], ..Default::default() };
            if port.protocol == Protocol::Https {
                filter_chain.filter_chain_match = Some(sni_match(&chain.key));
                filter_chain.transport_socket = Some(self.downstream_tls(chain, true, out)?);
            } else if port.cross_mesh() {
                // Other meshes' proxies connect with mesh mTLS.
                filter_chain.filter_chain_match = Some(FilterChainMatch {
                    transport_protocol: "tls".into(),
                    application_protocols: vec!["kuma".into()],
                    ..Default::default()
                });
                filter_chain.transport_socket = Some(crate::mtls::cross_mesh_downstream(self.mesh));
            }
            chains.push(filter_chain);
        }
        Ok(chains)
    }

    fn log_context(&self, http: bool) -> LogContext<'_> {
        LogContext {
            mesh: self.mesh,
            dataplane: &self.dataplane.meta.name,
            service: self.service(),
            address: self.address,
            http,
        }
    }

    fn http_connection_manager(&self, route_name: &str, host_tags: &Tags, targeted: &defaults::Targeted) -> Filter {
        use http_connection_manager::{PathWithEscapedSlashesAction, RouteSpecifier};
        let typed = |name: &str, any| HttpFilter {
            name: name.into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(any)),
            ..Default::default()
        };
        let compressor = Compressor {
            compressor_library: Some(TypedExtensionConfig {
                name: "gzip".into(),
                typed_config: Some(pb::any(&Gzip::default())),
            }),
            response_direction_config: Some(ResponseDirectionConfig {
                disable_on_etag_header: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut http_filters = vec![
            typed(
                "envoy.filters.http.local_ratelimit",
                pb::any(&LocalRateLimit { stat_prefix: "rate_limit".into(), ..Default::default() }),
            ),
            typed("gzip-compress", pb::any(&compressor)),
        ];
        // MeshFaultInjection: one fault filter per entry, before the router.
        let faults =
            crate::policy::mesh_http_policies::fault_filters(targeted.policies().fault_injection.mesh.as_deref());
        http_filters.extend(faults.iter().map(|f| typed(crate::policy::fault_injection::FILTER, pb::any(f))));
        http_filters.push(typed("envoy.filters.http.router", pb::any(&Router::default())));
        // The fault filter only when some FaultInjection could configure it,
        // so meshes without them get Kuma's filter chain exactly.
        if self.set.in_mesh(kuma_model::Kind::FaultInjection, self.mesh).next().is_some() {
            use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
            http_filters.insert(1, typed(crate::policy::fault_injection::FILTER, pb::any(&HttpFault::default())));
        }
        let hcm = HttpConnectionManager {
            stat_prefix: self.service().into(),
            route_specifier: Some(RouteSpecifier::Rds(Rds {
                config_source: Some(pb::ads()),
                route_config_name: route_name.into(),
            })),
            http_filters,
            access_log: access_logs(self.set, host_tags, self.log_context(true))
                .into_iter()
                .chain(mesh_access_logs(targeted.policies(), self.log_context(true)))
                .collect(),
            // MeshTrace applies after the legacy TrafficTrace and replaces it.
            tracing: targeted
                .policies()
                .trace
                .as_ref()
                .and_then(|t| crate::policy::mesh_trace::tracing(t, self.mesh, self.service()))
                .or_else(|| traffic_trace::for_gateway(self.set, self.mesh, self.tags).map(|t| t.tracing)),
            common_http_protocol_options: Some(CommonHttpProtocolOptions {
                idle_timeout: Some(targeted.downstream_idle_timeout()),
                headers_with_underscores_action: HeadersWithUnderscoresAction::RejectRequest as i32,
                ..Default::default()
            }),
            http2_protocol_options: Some(Http2ProtocolOptions {
                max_concurrent_streams: u32v(100),
                initial_stream_window_size: u32v(65_536),
                initial_connection_window_size: u32v(1_048_576),
                allow_connect: true,
                ..Default::default()
            }),
            internal_address_config: Some(http_connection_manager::InternalAddressConfig {
                cidr_ranges: vec![
                    CidrRange { address_prefix: "127.0.0.1".into(), prefix_len: u32v(32) },
                    CidrRange { address_prefix: "::1".into(), prefix_len: u32v(128) },
                ],
                ..Default::default()
            }),
            normalize_path: boolv(true),
            merge_slashes: true,
            path_with_escaped_slashes_action: PathWithEscapedSlashesAction::UnescapeAndRedirect as i32,
            request_headers_timeout: Some(targeted.request_headers_timeout()),
            stream_idle_timeout: Some(targeted.stream_idle_timeout()),
            request_timeout: targeted.request_timeout(),
            server_name: "Kuma Gateway".into(),
            use_remote_address: boolv(true),
            ..Default::default()
        };
        Filter {
            name: "envoy.filters.network.http_connection_manager".into(),
            config_type: Some(filter::ConfigType::TypedConfig(pb::any(&hcm))),
        }
    }

    /// TLS termination for a host group, with its certificates as SDS secrets.
    fn downstream_tls(
        &self,
        chain: &TableChain<'a>,
        alpn: bool,
        out: &mut GatewaySnapshot,
    ) -> Result<envoy_types::pb::envoy::config::core::v3::TransportSocket, TranslateError> {
        // The group's own (non-implicit) listener carries the certificates.
        let host = chain.own_host();
        let listener = host.listener.listener;
        let hostnames: Vec<&str> = if chain.mesh_routes {
            vec![chain.key.as_str()]
        } else {
            chain.hosts.iter().map(|h| h.hostname.as_str()).collect()
        };
        let mut configs = Vec::new();
        for (i, source) in listener.tls.iter().flat_map(|t| t.certificates.iter()).enumerate() {
            let (name, secret) = tls::server_secret(self.set, self.mesh, source, &hostnames).map_err(|message| {
                TranslateError::Certificate {
                    gateway: self.gateway.key(),
                    field: format!("conf.listeners[{}].tls.certificates[{i}]", host.listener.index),
                    message,
                }
            })?;
            if configs.iter().any(|c: &SdsSecretConfig| c.name == name) {
                return Err(TranslateError::Certificate {
                    gateway: self.gateway.key(),
                    field: format!("conf.listeners[{}].tls.certificates[{i}]", host.listener.index),
                    message: format!("duplicate TLS certificate {name:?}"),
                });
            }
            configs.push(SdsSecretConfig { name: name.clone(), sds_config: Some(pb::ads()) });
            out.secrets.insert(name, secret);
        }
        let context = DownstreamTlsContext {
            common_tls_context: Some(CommonTlsContext {
                tls_params: Some(TlsParameters {
                    tls_minimum_protocol_version: TlsProtocol::TlSv12 as i32,
                    ..Default::default()
                }),
                tls_certificate_sds_secret_configs: configs,
                alpn_protocols: if alpn { vec!["h2".into(), "http/1.1".into()] } else { Vec::new() },
                ..Default::default()
            }),
            require_client_certificate: boolv(false),
            ..Default::default()
        };
        Ok(pb::transport_socket("envoy.transport_sockets.tls", &context))
    }

    fn tcp_chains(
        &self,
        port: &TablePort<'a>,
        clusters: &mut ClusterPlans<'a>,
        out: &mut GatewaySnapshot,
    ) -> Result<Vec<FilterChain>, TranslateError> {
        let mut chains = Vec::new();
        for chain in &port.chains {
            let mut filter_chain = FilterChain::default();
            // Backends no TrafficPermission allows get no connections (the
            // destination's sidecar would close them); with none left the
            // chain has no filter and closes the connection itself.
            let permitted = || chain.tcp.backends.iter().filter(|(_, b)| b.permitted);
            if permitted().next().is_some() {
                let backends: Vec<(String, u32)> = permitted()
                    .map(|(i, b)| {
                        let tags = chain.hosts[*i].tags();
                        (clusters.register(&b.destination, tags, tags, UpstreamProtocol::Tcp), b.weight)
                    })
                    .collect();
                let own = chain.own_host();
                let targeted = defaults::Targeted::of(&own.policies);
                let mut filter = self.tcp_proxy(&targeted, backends, chain);
                let mut logs = access_logs(self.set, own.tags(), self.log_context(false));
                logs.extend(mesh_access_logs(targeted.policies(), self.log_context(false)));
                if !logs.is_empty()
                    && let Some(filter::ConfigType::TypedConfig(any)) = &mut filter.config_type
                    && let Ok(mut proxy) = <TcpProxy as prost::Message>::decode(any.value.as_slice())
                {
                    proxy.access_log = logs;
                    *any = pb::any(&proxy);
                }
                filter_chain.filters = vec![filter];
            }
            if port.protocol == Protocol::Tls {
                filter_chain.filter_chain_match = Some(sni_match(&chain.key));
                let terminate =
                    chain.own_host().listener.listener.tls.as_ref().is_some_and(|t| t.mode == TlsMode::Terminate);
                if terminate {
                    filter_chain.transport_socket = Some(self.downstream_tls(chain, false, out)?);
                }
            }
            chains.push(filter_chain);
        }
        Ok(chains)
    }

    fn tcp_proxy(&self, targeted: &defaults::Targeted, backends: Vec<(String, u32)>, chain: &TableChain<'_>) -> Filter {
        let mut by_name: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
        for (name, weight) in backends {
            by_name.insert(name, weight);
        }
        // Kuma writes weight 0 for backends without a weight, and Envoy then
        // never picks them; unweighted backends share equally instead.
        let all_zero = by_name.values().all(|w| *w == 0);
        let specifier = if by_name.len() == 1 {
            tcp_proxy::ClusterSpecifier::Cluster(by_name.into_keys().next().expect("one"))
        } else {
            tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
                clusters: by_name
                    .into_iter()
                    .filter(|(_, w)| all_zero || *w > 0)
                    .map(|(name, weight)| tcp_proxy::weighted_cluster::ClusterWeight {
                        name,
                        weight: if all_zero { 1 } else { weight },
                        ..Default::default()
                    })
                    .collect(),
            })
        };
        let mut proxy = TcpProxy {
            stat_prefix: self.service().into(),
            cluster_specifier: Some(specifier),
            idle_timeout: Some(targeted.downstream_idle_timeout()),
            ..Default::default()
        };
        crate::policy::apply_tcp_proxy(&chain.tcp.legacy, &mut proxy);
        // MeshRetry (applied after the legacy policies, as in Kuma).
        if let Some(n) = chain.tcp.max_connect_attempts {
            proxy.max_connect_attempts = pb::u32v(n);
        }
        Filter {
            name: "envoy.filters.network.tcp_proxy".into(),
            config_type: Some(filter::ConfigType::TypedConfig(pb::any(&proxy))),
        }
    }
}

/// Matches TLS connections for one SNI name; `*` matches any (Envoy refuses
/// a bare `*` in `server_names`).
fn sni_match(hostname: &str) -> FilterChainMatch {
    FilterChainMatch {
        transport_protocol: "tls".into(),
        server_names: if hostname == "*" { Vec::new() } else { vec![hostname.into()] },
        ..Default::default()
    }
}

/// Host `h` of route configuration `route_name`, from `pass`: reused when
/// its inputs are those of the last translation (its clusters registered
/// again), built and encoded otherwise.
fn reuse_or_build<'a>(
    pass: &mut crate::reuse::Pass,
    route_name: &str,
    ctx: &HostContext,
    h: &kuma_policy::route_table::TableHost<'a>,
    clusters: &mut ClusterPlans<'a>,
) {
    let key = crate::reuse::HostKey::of(route_name, ctx, h);
    if let Some(built) = pass.reusable(&key) {
        clusters.replay(&built.registrations);
        pass.keep(route_name, key, built, true);
        return;
    }
    clusters.record();
    let host = virtual_host(ctx, h, clusters);
    let built =
        crate::reuse::BuiltHost { bytes: crate::reuse::encode_host(&host), registrations: clusters.recorded().into() };
    pass.keep(route_name, key, built, false);
}
