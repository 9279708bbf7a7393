//! Clusters and their endpoints: one per (destination, host tags), EDS for
//! mesh services, `STRICT_DNS` with TLS origination for `ExternalService`s.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    Cluster,
    cluster::{ClusterDiscoveryType, DiscoveryType, DnsLookupFamily, EdsClusterConfig, TransportSocketMatch},
};
use envoy_types::pb::envoy::config::core::v3::{
    DataSource as EnvoyDataSource, Http1ProtocolOptions, Http2ProtocolOptions, Metadata, data_source::Specifier,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, TlsCertificate, UpstreamTlsContext,
    common_tls_context::ValidationContextType,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions,
    http_protocol_options::{ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig},
};
use kuma_model::external_service::ExternalServiceSpec;
use kuma_model::{DataSource, Kind, Resource, ResourceSet, SERVICE_TAG, Spec, Tags};
use kuma_policy::endpoints::{EndpointIndex, PROTOCOL_TAG};

use crate::defaults;
use crate::mtls;
use crate::names;
use crate::pb::{self, u32v};
use crate::policy::HostPolicies;
use crate::snapshot::GatewaySnapshot;
use kuma_policy::cluster_choice::ClusterChoice;

/// The service name Kuma gives backends it could not resolve: routes point at
/// it, and no cluster is made, so Envoy answers 500 (cluster not found).
pub(crate) use kuma_model::mesh_http_route::UNRESOLVED_BACKEND;

/// The service name of a zone egress: its SPIFFE id is `spiffe://<mesh>/zone-egress`.
pub(crate) const ZONE_EGRESS_SERVICE: &str = "zone-egress";

/// The upstream protocol of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum UpstreamProtocol {
    /// HTTP/1.1.
    Http,
    /// HTTP/2 (also gRPC).
    Http2,
    /// Raw TCP.
    Tcp,
}

impl UpstreamProtocol {
    fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "http" => Some(UpstreamProtocol::Http),
            "http2" | "grpc" => Some(UpstreamProtocol::Http2),
            "tcp" | "tls" | "kafka" | "mysql" => Some(UpstreamProtocol::Tcp),
            _ => None,
        }
    }
}

/// A cluster to generate.
#[derive(Debug, Clone)]
pub(crate) struct ClusterPlan<'a> {
    /// The cluster name.
    pub name: String,
    /// The backend destination tags.
    pub destination: Tags,
    /// The tags connection policies' `sources` are matched against (the
    /// host tags for a builtin gateway, the gateway tags for a delegated one).
    pub source_tags: Tags,
    /// The upstream protocol.
    pub protocol: UpstreamProtocol,
    /// `ExternalService`s behind it (empty for a mesh service).
    pub external: Vec<(&'a Resource, &'a ExternalServiceSpec)>,
    /// The `ExternalService`s are reached through the zone egress (mesh
    /// mTLS with `routing.zoneEgress`): an EDS cluster to the ZoneEgress.
    pub via_egress: bool,
}

/// The clusters a translation needs, by name.
#[derive(Debug)]
pub(crate) struct ClusterPlans<'a> {
    /// The plans.
    pub plans: BTreeMap<String, ClusterPlan<'a>>,
    index: EndpointIndex<'a>,
    permissions: kuma_policy::permission::Permissions<'a>,
    targeted: defaults::TargetedCache<'a>,
    /// The policies a route table chose per (destination, listener tags);
    /// clusters it has none for (delegated gateways) are chosen here alike.
    choices: BTreeMap<(Tags, Tags), ClusterChoice<'a>>,
    /// The gateway data plane's tags (HTTP health checks send them).
    dataplane_tags: Tags,
    mtls: bool,
    zone_egress: bool,
    /// While a virtual host is built for [`crate::reuse`]: the
    /// registrations it made, so that a translation reusing that host can
    /// make them again without building it.
    recording: Option<(std::collections::HashSet<String>, Vec<Registration>)>,
    /// The last cluster name made, with the destination and host tags it
    /// was made from: a name costs a SHA-256, and consecutive routes mostly
    /// send to the same backend from the same host.
    last_name: Option<(Tags, Tags, String)>,
}

/// One [`ClusterPlans::register`] call, as recorded for a reused host.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    destination: Tags,
    host_tags: Tags,
    source_tags: Tags,
    fallback: UpstreamProtocol,
}

impl<'a> ClusterPlans<'a> {
    /// No clusters yet, with the endpoints of `mesh` indexed, for the
    /// gateway named `gateway` (`""` for a delegated one) whose data plane
    /// has `dataplane_tags`.
    pub(crate) fn new(set: &'a ResourceSet, mesh: &str, gateway: &str, dataplane_tags: &Tags) -> Self {
        let permissions = kuma_policy::permission::Permissions::new(set, mesh);
        ClusterPlans {
            plans: BTreeMap::new(),
            index: EndpointIndex::new(set, mesh),
            permissions,
            targeted: defaults::TargetedCache::new(set, mesh, gateway),
            choices: BTreeMap::new(),
            dataplane_tags: dataplane_tags.clone(),
            mtls: mtls::enabled(set, mesh),
            zone_egress: mtls::enabled(set, mesh)
                && set.mesh(mesh).and_then(|m| m.routing.as_ref()).is_some_and(|r| r.zone_egress),
            recording: None,
            last_name: None,
        }
    }

    /// Starts recording the registrations made (see [`Self::recorded`]).
    pub(crate) fn record(&mut self) {
        self.recording = Some(Default::default());
    }

    /// The registrations made since [`Self::record`], each cluster once,
    /// in the order first made; recording stops.
    pub(crate) fn recorded(&mut self) -> Vec<Registration> {
        self.recording.take().map(|(_, made)| made).unwrap_or_default()
    }

    /// Makes `registrations` again, in order: what building the host that
    /// recorded them would have registered.
    pub(crate) fn replay(&mut self, registrations: &[Registration]) {
        for r in registrations {
            self.register(&r.destination, &r.host_tags, &r.source_tags, r.fallback);
        }
    }

    /// Kuma's rule for `ExternalService`s behind a gateway: with no
    /// TrafficPermission in the mesh every one is reachable; otherwise only
    /// those a permission allows from the gateway (sources matching
    /// `source_tags`, destinations matching the service's tags). One that is
    /// not allowed becomes a mesh cluster with no endpoints (503).
    fn permitted(&self, source_tags: &Tags, external: &ExternalServiceSpec) -> bool {
        self.permissions.is_empty() || self.permissions.allows(source_tags, &external.tags)
    }

    /// Registers the cluster for `destination` reached from a host with
    /// `host_tags` (policies matched by `source_tags`) and returns its name.
    /// `fallback` is the protocol when neither the destination nor an
    /// ExternalService names one (http for HTTP routes, tcp for TCP routes, as Kuma).
    pub(crate) fn register(
        &mut self,
        destination: &Tags,
        host_tags: &Tags,
        source_tags: &Tags,
        fallback: UpstreamProtocol,
    ) -> String {
        let service = destination.get(SERVICE_TAG).map_or("", String::as_str);
        if service == UNRESOLVED_BACKEND {
            return UNRESOLVED_BACKEND.to_string();
        }
        let name = self.cluster_name(destination, host_tags);
        if let Some((seen, made)) = &mut self.recording {
            // A later call for the same cluster does nothing (the first
            // one's plan stays), so replaying the first is enough.
            if seen.insert(name.clone()) {
                made.push(Registration {
                    destination: destination.clone(),
                    host_tags: host_tags.clone(),
                    source_tags: source_tags.clone(),
                    fallback,
                });
            }
        }
        if !self.plans.contains_key(&name) {
            let external = if self.index.is_external_service(service) {
                let mut es = self.index.external_services(destination);
                es.retain(|(_, spec)| self.permitted(source_tags, spec));
                es
            } else {
                Vec::new()
            };
            let via_egress = self.zone_egress && !external.is_empty();
            let protocol = destination
                .get(PROTOCOL_TAG)
                .map(String::as_str)
                .or_else(|| {
                    // Kuma reads the protocol from the destination, or from
                    // the ExternalService; mesh endpoints do not decide it.
                    // Through the egress, the hop to it is plain mesh traffic
                    // and the egress speaks the ExternalService's protocol.
                    if via_egress {
                        return None;
                    }
                    self.index
                        .external_services(destination)
                        .first()
                        .map(|(_, es)| es.tags.get(PROTOCOL_TAG).map_or("tcp", String::as_str))
                })
                // A MeshService port's appProtocol.
                .or_else(|| self.index.real_service(service).and_then(|r| r.port.app_protocol.as_deref()))
                .and_then(UpstreamProtocol::from_tag)
                .unwrap_or(fallback);
            let plan = ClusterPlan {
                name: name.clone(),
                destination: destination.clone(),
                source_tags: source_tags.clone(),
                via_egress,
                protocol,
                external,
            };
            self.plans.insert(name.clone(), plan);
        }
        name
    }

    /// [`names::cluster`], made again only when the tags differ from the
    /// last call's.
    fn cluster_name(&mut self, destination: &Tags, host_tags: &Tags) -> String {
        if let Some((d, h, name)) = &self.last_name
            && d == destination
            && h == host_tags
        {
            return name.clone();
        }
        let name = names::cluster(destination, host_tags);
        self.last_name = Some((destination.clone(), host_tags.clone(), name.clone()));
        name
    }

    /// Uses the policies a route table chose for its clusters.
    pub(crate) fn with_choices(&mut self, choices: BTreeMap<(Tags, Tags), ClusterChoice<'a>>) {
        self.choices = choices;
    }

    /// Writes every planned cluster (and its endpoints) into the snapshot;
    /// true when one of them uses the gateway's mesh identity (mTLS).
    pub(crate) fn generate(&self, set: &'a ResourceSet, mesh: &str, out: &mut GatewaySnapshot) -> Result<bool, String> {
        let mut policies: BTreeMap<&Tags, HostPolicies<'a>> = BTreeMap::new();
        let mut uses_identity = false;
        for plan in self.plans.values() {
            let targeted = self.targeted.get(&plan.source_tags);
            let key = (plan.destination.clone(), plan.source_tags.clone());
            // A builtin gateway's route table chose every cluster's policies.
            debug_assert!(self.choices.is_empty() || self.choices.contains_key(&key), "no table choice for {key:?}");
            let choice = match self.choices.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let legacy = policies
                        .entry(&plan.source_tags)
                        .or_insert_with(|| HostPolicies::new(set, mesh, &plan.source_tags));
                    let service = plan.destination.get(SERVICE_TAG).map_or("", String::as_str);
                    ClusterChoice::new(targeted.policies(), legacy, &plan.destination, self.index.real_service(service))
                }
            };
            let settings = defaults::ClusterSettings(&choice);
            let mut cluster = if plan.external.is_empty() || plan.via_egress {
                let endpoints = self.load_assignment(set, plan);
                let mut cluster = mesh_cluster(plan, settings);
                if self.mtls {
                    // Through the egress the peer is the ZoneEgress, and the
                    // SNI tells it which ExternalService is meant. With no
                    // egress instance there is no peer at all; Kuma then names
                    // the service, and so does this.
                    let service = plan.destination.get(SERVICE_TAG).map_or("", String::as_str);
                    let peer =
                        if plan.via_egress && !endpoints.endpoints.is_empty() { ZONE_EGRESS_SERVICE } else { service };
                    // MeshTLS versions and ciphers, for mesh services only (as Kuma).
                    let params = targeted
                        .policies()
                        .tls
                        .as_ref()
                        .filter(|_| !plan.via_egress)
                        .and_then(crate::policy::mesh_tls::tls_params);
                    // A MeshService port: its identities and Kuma's SNI for it.
                    let (sans, sni) = match self.index.real_service(service) {
                        Some(real) => {
                            let sni = kuma_policy::mesh_services::sni(real.service_name(), mesh, real.port.port);
                            (real.identities(mesh), sni)
                        }
                        None => (vec![format!("spiffe://{mesh}/{peer}")], mtls::sni(&plan.destination, mesh)),
                    };
                    cluster.transport_socket = Some(mtls::upstream(mesh, sans, sni, params));
                    uses_identity = true;
                }
                out.endpoints.insert(plan.name.clone(), endpoints);
                cluster
            } else {
                external_cluster(set, mesh, plan, settings)?
            };
            crate::policy::apply_cluster(&choice, &mut cluster);
            // Kuma 2.x policies after the legacy ones: MeshHealthCheck, then
            // MeshCircuitBreaker's panic threshold (Kuma's plugin order).
            let http = plan.protocol != UpstreamProtocol::Tcp;
            crate::policy::mesh_health_check::apply(
                choice.health_check.as_deref(),
                http,
                &self.dataplane_tags,
                &mut cluster,
            );
            crate::policy::mesh_load_balancing::cluster(choice.load_balancing.as_deref(), &mut cluster);
            if let Some(p) = settings.healthy_panic_threshold() {
                cluster.common_lb_config.get_or_insert_with(Default::default).healthy_panic_threshold =
                    Some(envoy_types::pb::envoy::r#type::v3::Percent { value: p });
            }
            out.clusters.insert(plan.name.clone(), cluster);
        }
        Ok(uses_identity)
    }
}

/// HTTP/2 to the upstream with default connection options (gRPC collectors).
pub(crate) fn http2_options() -> BTreeMap<String, envoy_types::pb::google::protobuf::Any> {
    protocol_options(UpstreamProtocol::Http2, Some(Default::default()))
}

fn protocol_options(
    protocol: UpstreamProtocol,
    common: Option<envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions>,
) -> BTreeMap<String, envoy_types::pb::google::protobuf::Any> {
    let config = match protocol {
        UpstreamProtocol::Tcp => return BTreeMap::new(),
        UpstreamProtocol::Http => ProtocolConfig::HttpProtocolOptions(Http1ProtocolOptions::default()),
        UpstreamProtocol::Http2 => ProtocolConfig::Http2ProtocolOptions(Http2ProtocolOptions {
            initial_stream_window_size: u32v(65_536),
            initial_connection_window_size: u32v(1_048_576),
            ..Default::default()
        }),
    };
    let options = HttpProtocolOptions {
        common_http_protocol_options: common,
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config: Some(config),
        })),
        ..Default::default()
    };
    [("envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(), pb::any(&options))].into()
}

/// A cluster with the Kuma 2.x policies of its service (`MeshTimeout`,
/// `MeshCircuitBreaker`) set; legacy policies apply after.
fn base_cluster(
    plan: &ClusterPlan<'_>,
    discovery: DiscoveryType,
    settings: defaults::ClusterSettings<'_, '_>,
) -> Cluster {
    let common_lb_config = settings.healthy_panic_threshold().map(|p| {
        envoy_types::pb::envoy::config::cluster::v3::cluster::CommonLbConfig {
            healthy_panic_threshold: Some(envoy_types::pb::envoy::r#type::v3::Percent { value: p }),
            ..Default::default()
        }
    });
    Cluster {
        name: plan.name.clone(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(discovery as i32)),
        connect_timeout: settings.connect_timeout(),
        per_connection_buffer_limit_bytes: u32v(defaults::BUFFER_LIMIT_BYTES),
        circuit_breakers: Some(settings.circuit_breakers()),
        outlier_detection: settings.outlier_detection(),
        common_lb_config,
        typed_extension_protocol_options: protocol_options(plan.protocol, settings.upstream_common_http())
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

fn mesh_cluster(plan: &ClusterPlan<'_>, settings: defaults::ClusterSettings<'_, '_>) -> Cluster {
    Cluster {
        eds_cluster_config: Some(EdsClusterConfig { eds_config: Some(pb::ads()), service_name: String::new() }),
        ..base_cluster(plan, DiscoveryType::Eds, settings)
    }
}

fn metadata(key: &str, value: &str) -> Metadata {
    metadata_of(pb::string_struct([(key, value)]))
}

/// A mesh endpoint's tags but `kuma.io/service` (Kuma's endpoint metadata,
/// which subset load balancing reads), with its protocol.
fn endpoint_metadata(e: &kuma_policy::endpoints::Endpoint<'_>) -> Metadata {
    let tags = e.tags.iter().filter(|(k, _)| *k != SERVICE_TAG && *k != PROTOCOL_TAG);
    let tags = tags.map(|(k, v)| (k.as_str(), v.as_str())).chain([(PROTOCOL_TAG, e.protocol())]);
    metadata_of(pb::string_struct(tags))
}

fn metadata_of(s: envoy_types::pb::google::protobuf::Struct) -> Metadata {
    Metadata {
        filter_metadata: [("envoy.lb".to_string(), s.clone()), ("envoy.transport_socket_match".to_string(), s)].into(),
        ..Default::default()
    }
}

fn lb_endpoint(address: &str, port: u32, metadata: Metadata) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
            address: Some(pb::socket_address(address, port)),
            ..Default::default()
        })),
        load_balancing_weight: u32v(1),
        metadata: Some(metadata),
        ..Default::default()
    }
}

impl ClusterPlans<'_> {
    fn load_assignment(&self, set: &ResourceSet, plan: &ClusterPlan<'_>) -> ClusterLoadAssignment {
        let lb_endpoints: Vec<LbEndpoint> = if plan.via_egress {
            let protocol =
                plan.external.iter().find_map(|(_, es)| es.tags.get(PROTOCOL_TAG)).map_or("tcp", String::as_str);
            kuma_policy::endpoints::zone_egresses(set)
                .into_iter()
                .map(|(address, port)| lb_endpoint(address, port, metadata(PROTOCOL_TAG, protocol)))
                .collect()
        } else {
            self.index
                .endpoints(&plan.destination)
                .into_iter()
                .map(|e| lb_endpoint(e.address, e.port, endpoint_metadata(&e)))
                .collect()
        };
        ClusterLoadAssignment {
            cluster_name: plan.name.clone(),
            endpoints: if lb_endpoints.is_empty() {
                Vec::new()
            } else {
                vec![LocalityLbEndpoints { lb_endpoints, ..Default::default() }]
            },
            ..Default::default()
        }
    }
}

/// Resolves a `DataSource` of an `ExternalService` to an Envoy data source.
fn data_source(set: &ResourceSet, mesh: &str, source: &DataSource) -> Result<EnvoyDataSource, String> {
    let specifier = match source {
        DataSource::File(path) => Specifier::Filename(path.clone()),
        DataSource::Inline(bytes) => Specifier::InlineBytes(bytes.clone()),
        DataSource::InlineString(text) => Specifier::InlineString(text.clone()),
        DataSource::Secret(name) => match set.get(Kind::Secret, mesh, name).map(|r| &r.spec) {
            Some(Spec::Secret(s)) => Specifier::InlineBytes(s.data.clone()),
            _ => return Err(format!("secret {name:?} not found in mesh {mesh:?}")),
        },
        _ => return Err("a kind of data source this translator does not know".into()),
    };
    Ok(EnvoyDataSource { specifier: Some(specifier), ..Default::default() })
}

fn external_cluster(
    set: &ResourceSet,
    mesh: &str,
    plan: &ClusterPlan<'_>,
    settings: defaults::ClusterSettings<'_, '_>,
) -> Result<Cluster, String> {
    let service = plan.destination.get(SERVICE_TAG).cloned().unwrap_or_default();
    let mut lb_endpoints = Vec::new();
    let mut matches = Vec::new();
    for (res, es) in &plan.external {
        let Some((host, port)) = es.host_port() else { continue };
        // Kuma's endpoint metadata: the service name when TLS needs a
        // per-endpoint transport socket, and the ExternalService's protocol.
        let tls = es.networking.as_ref().and_then(|n| n.tls.as_ref()).filter(|t| t.enabled);
        let mut labels: Vec<(&str, &str)> = Vec::new();
        if tls.is_some() {
            labels.push(("kuma.io/external-service-name", res.meta.name.as_str()));
        }
        if let Some(p) = es.tags.get(PROTOCOL_TAG) {
            labels.push((PROTOCOL_TAG, p.as_str()));
        }
        let labels = pb::string_struct(labels);
        lb_endpoints.push(lb_endpoint(host, port.into(), metadata_of(labels.clone())));
        let Some(tls) = tls else { continue };
        let sni = tls.server_name.clone().unwrap_or_else(|| host.to_string());
        let mut common = CommonTlsContext::default();
        if let Some(ca) = &tls.ca_cert {
            let mut validation =
                CertificateValidationContext { trusted_ca: Some(data_source(set, mesh, ca)?), ..Default::default() };
            if !tls.skip_hostname_verification.unwrap_or(false) {
                use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
                    SubjectAltNameMatcher, subject_alt_name_matcher::SanType,
                };
                use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
                validation.match_typed_subject_alt_names = vec![SubjectAltNameMatcher {
                    san_type: SanType::Dns as i32,
                    r#matcher: Some(StringMatcher {
                        match_pattern: Some(MatchPattern::Exact(sni.clone())),
                        ..Default::default()
                    }),
                    ..Default::default()
                }];
            }
            common.validation_context_type = Some(ValidationContextType::ValidationContext(validation));
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            common.tls_certificates = vec![TlsCertificate {
                certificate_chain: Some(data_source(set, mesh, cert)?),
                private_key: Some(data_source(set, mesh, key)?),
                ..Default::default()
            }];
        }
        let context = UpstreamTlsContext {
            common_tls_context: (common != CommonTlsContext::default()).then_some(common),
            sni,
            allow_renegotiation: tls.allow_renegotiation.unwrap_or(false),
            ..Default::default()
        };
        matches.push(TransportSocketMatch {
            name: host.to_string(),
            r#match: Some(labels),
            transport_socket: Some(pb::transport_socket("envoy.transport_sockets.tls", &context)),
        });
    }
    Ok(Cluster {
        dns_lookup_family: DnsLookupFamily::V4Only as i32,
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: service,
            endpoints: vec![LocalityLbEndpoints { lb_endpoints, ..Default::default() }],
            ..Default::default()
        }),
        transport_socket_matches: matches,
        ..base_cluster(plan, DiscoveryType::StrictDns, settings)
    })
}
