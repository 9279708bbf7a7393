//! Canonical proto3 JSON and YAML of generated config, and static
//! bootstraps that `envoy -c` runs directly.
//!
//! Messages are read from their bytes with schema tables written from the
//! descriptor set `envoy-types` was generated from (`crate::schema`), so
//! nested `Any`s render with `@type` as Envoy expects. Keys are camelCase
//! and sorted, default values are omitted: the same snapshot always renders
//! to the same bytes. Text ([`bootstrap_text`], [`packed_snapshot_text`]) is
//! written straight from the bytes, with no JSON value in between.

use std::cell::RefCell;
use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::bootstrap::v3::{
    Admin, Bootstrap, LayeredRuntime, RuntimeLayer, bootstrap::StaticResources, runtime_layer::LayerSpecifier,
};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster::ClusterDiscoveryType, cluster::DiscoveryType};
use envoy_types::pb::envoy::config::core::v3::{TransportSocket, address, transport_socket};
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint::HostIdentifier};
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};
use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::Value;

use crate::encoded::EncodedSnapshot;
use crate::json::Wire;
use crate::pb;
use crate::schema;
use crate::snapshot::{GatewaySnapshot, ResourceType};

/// Why a message could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The type is not in envoy-types' descriptor set.
    #[error("unknown message type {0}")]
    UnknownType(String),
    /// The message bytes or a nested `Any` did not decode or serialise.
    #[error("cannot render {type_name}: {message}")]
    Transcode {
        /// The message type.
        type_name: String,
        /// The underlying error.
        message: String,
    },
}

/// True when a type URL (`type.googleapis.com/<message>`) names a message
/// of the pool, so Envoy and the renderer can both decode it.
pub fn type_url_resolves(url: &str) -> bool {
    url.strip_prefix("type.googleapis.com/").is_some_and(|name| schema::message(name).is_some())
}

/// Canonical JSON of the message `type_name` encoded in `bytes`.
pub(crate) fn bytes_to_json(type_name: &str, bytes: &[u8]) -> Result<Value, RenderError> {
    let desc = schema::message(type_name).ok_or_else(|| RenderError::UnknownType(type_name.into()))?;
    let transcode = |message: String| RenderError::Transcode { type_name: type_name.into(), message };
    crate::json::message(desc, bytes).map_err(transcode)
}

/// Canonical JSON of a message.
pub fn to_json<M: Message + Name>(message: &M) -> Result<Value, RenderError> {
    bytes_to_json(&M::full_name(), &message.encode_to_vec())
}

/// Canonical JSON of a packed message.
pub fn any_to_json(any: &Any) -> Result<Value, RenderError> {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    bytes_to_json(name, &any.value)
}

/// A text form of rendered config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Text {
    /// YAML in block style (see [`to_yaml`]).
    #[default]
    Yaml,
    /// Pretty JSON, newline-terminated (see [`to_pretty_json`]).
    Json,
}

/// `value` as text. Messages are written straight from their bytes: a
/// large gateway's config never exists as a JSON value.
fn text<T: Serialize + ?Sized>(value: &T, format: Text) -> Result<String, String> {
    match format {
        Text::Yaml => crate::yaml::to_string(value).map_err(|e| e.to_string()),
        Text::Json => {
            let mut text = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
            text.push(b'\n');
            String::from_utf8(text).map_err(|e| e.to_string())
        }
    }
}

/// A snapshot as `{Clusters: {Resources: {name: ...}}, Endpoints: ..., Listeners: ...,
/// Routes: ..., Runtimes: ..., Secrets: ...}`, the layout of Kuma's golden files.
pub fn snapshot_value(snapshot: &GatewaySnapshot) -> Result<Value, RenderError> {
    packed_snapshot_value(&EncodedSnapshot::encode(snapshot))
}

/// [`snapshot_value`] of a packed snapshot ([`crate::translate_packed`]).
pub fn packed_snapshot_value(snapshot: &EncodedSnapshot) -> Result<Value, RenderError> {
    SnapshotView::new(snapshot)?.write(|v| serde_json::to_value(v).map_err(|e| e.to_string()))
}

/// [`snapshot_value`] of a packed snapshot as text, written from the
/// resources' bytes.
pub fn packed_snapshot_text(snapshot: &EncodedSnapshot, format: Text) -> Result<String, RenderError> {
    SnapshotView::new(snapshot)?.write(|v| text(v, format))
}

/// The snapshot as YAML (see [`snapshot_value`]).
pub fn snapshot_yaml(snapshot: &GatewaySnapshot) -> Result<String, RenderError> {
    packed_snapshot_text(&EncodedSnapshot::encode(snapshot), Text::Yaml)
}

/// The snapshot as pretty JSON (see [`snapshot_value`]).
pub fn snapshot_json(snapshot: &GatewaySnapshot) -> Result<String, RenderError> {
    packed_snapshot_text(&EncodedSnapshot::encode(snapshot), Text::Json)
}

/// A packed snapshot in the layout of [`snapshot_value`], serialised from
/// its resources' bytes.
struct SnapshotView<'a> {
    /// Per type, sorted by plural: the resources with their message types.
    types: Vec<(&'static str, Vec<(&'a str, Wire<'a>)>)>,
    /// The type of the resource that failed to serialise.
    failed: RefCell<Option<String>>,
}

impl<'a> SnapshotView<'a> {
    /// The view of `snapshot`; every resource's type must be known.
    fn new(snapshot: &'a EncodedSnapshot) -> Result<Self, RenderError> {
        let mut types: Vec<ResourceType> = ResourceType::ALL.to_vec();
        types.sort_by_key(|t| t.plural());
        let types = types
            .into_iter()
            .map(|t| {
                let items = snapshot.resources(t).items().iter();
                let resources = items
                    .map(|r| {
                        let name = r.any.type_url.rsplit('/').next().unwrap_or_default();
                        let desc = schema::message(name).ok_or_else(|| RenderError::UnknownType(name.into()))?;
                        Ok((r.name.as_str(), Wire::new(desc, &r.any.value)))
                    })
                    .collect::<Result<Vec<_>, RenderError>>()?;
                Ok((t.plural(), resources))
            })
            .collect::<Result<Vec<_>, RenderError>>()?;
        Ok(SnapshotView { types, failed: RefCell::new(None) })
    }

    /// The view written by `write`, its errors named by the failing type.
    fn write<T>(self, write: impl FnOnce(&Self) -> Result<T, String>) -> Result<T, RenderError> {
        write(&self).map_err(|message| RenderError::Transcode {
            type_name: self.failed.take().unwrap_or_else(|| "snapshot".into()),
            message,
        })
    }
}

impl Serialize for SnapshotView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// `{Resources: {name: message, ...}}`.
        struct Resources<'v, 'a>(&'v SnapshotView<'a>, &'v [(&'a str, Wire<'a>)]);
        /// `{name: message, ...}`.
        struct Named<'v, 'a>(&'v SnapshotView<'a>, &'v [(&'a str, Wire<'a>)]);
        impl Serialize for Resources<'_, '_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("Resources", &Named(self.0, self.1))?;
                map.end()
            }
        }
        impl Serialize for Named<'_, '_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.1.len()))?;
                for (name, message) in self.1 {
                    map.serialize_entry(name, message).inspect_err(|_| {
                        self.0.failed.replace(Some(message.type_name().to_string()));
                    })?;
                }
                map.end()
            }
        }
        let mut map = s.serialize_map(Some(self.types.len()))?;
        for (plural, resources) in &self.types {
            map.serialize_entry(plural, &Resources(self, resources))?;
        }
        map.end()
    }
}

/// YAML text of a JSON value, in block style. Strings are quoted unless
/// they are plain in both YAML 1.1 and 1.2, so every reader (Envoy's
/// included) reads `yes`, `on`, `1e3` or `*` back as the strings they are.
///
/// ```
/// let v = serde_json::json!({"a": {"b": ["yes", 1, true]}, "@type": "x:y", "c": []});
/// assert_eq!(kuma_xds_gen::render::to_yaml(&v), "a:\n  b:\n  - 'yes'\n  - 1\n  - true\n'@type': x:y\nc: []\n");
/// ```
pub fn to_yaml(value: &Value) -> String {
    text(value, Text::Yaml).expect("JSON values are written as YAML")
}

/// Pretty JSON text of a JSON value, newline-terminated.
pub fn to_pretty_json(value: &Value) -> String {
    text(value, Text::Json).expect("JSON values serialise")
}

/// A static bootstrap serving `snapshot` with no control plane: EDS clusters
/// get their endpoints inline, HTTP connection managers their route
/// configurations inline, SDS references point at static secrets, and the
/// runtime layer becomes a static layer. Access logs to `tcp` logging
/// backends are left out: `kuma-gateway serve` delivers them, and a static
/// Envoy has none. With `admin_port`, the admin interface listens on
/// `127.0.0.1:<port>`.
pub fn static_bootstrap(snapshot: &GatewaySnapshot, admin_port: Option<u16>) -> Bootstrap {
    packed_static_bootstrap(&EncodedSnapshot::encode(snapshot), admin_port).expect("a snapshot packed here unpacks")
}

/// [`static_bootstrap`] of a packed snapshot ([`crate::translate_packed`]).
/// Route configurations go into their connection managers as the bytes they
/// are packed in, never unpacked: on a large gateway they are most of it.
pub fn packed_static_bootstrap(snapshot: &EncodedSnapshot, admin_port: Option<u16>) -> Result<Bootstrap, RenderError> {
    fn unpack<M: Message + Default>(
        t: ResourceType,
        snapshot: &EncodedSnapshot,
    ) -> Result<BTreeMap<String, M>, RenderError> {
        let items = snapshot.resources(t).items().iter();
        items
            .map(|r| {
                let message = M::decode(r.any.value.as_slice()).map_err(|e| RenderError::Transcode {
                    type_name: r.any.type_url.clone(),
                    message: e.to_string(),
                })?;
                Ok((r.name.clone(), message))
            })
            .collect()
    }
    let others = GatewaySnapshot {
        listeners: unpack(ResourceType::Listener, snapshot)?,
        clusters: unpack(ResourceType::Cluster, snapshot)?,
        endpoints: unpack(ResourceType::Endpoint, snapshot)?,
        secrets: unpack(ResourceType::Secret, snapshot)?,
        runtimes: unpack(ResourceType::Runtime, snapshot)?,
        ..GatewaySnapshot::default()
    };
    let routes = snapshot.resources(ResourceType::Route);
    let route_bytes = |name: &str| routes.get(name).map(|r| r.any.value.as_slice());
    let clusters = others.clusters.values().map(|c| static_cluster(c, &others)).collect();
    let listeners = others.listeners.values().map(|l| static_listener(l, &route_bytes)).collect();
    let layers = others
        .runtimes
        .into_values()
        .map(|r| RuntimeLayer {
            name: r.name,
            layer_specifier: Some(LayerSpecifier::StaticLayer(r.layer.unwrap_or_default())),
        })
        .collect();
    Ok(Bootstrap {
        static_resources: Some(StaticResources {
            listeners,
            clusters,
            secrets: others.secrets.into_values().collect(),
        }),
        admin: admin_port
            .map(|port| Admin { address: Some(pb::socket_address("127.0.0.1", port.into())), ..Default::default() }),
        layered_runtime: Some(LayeredRuntime { layers }),
        ..Default::default()
    })
}

fn static_cluster(cluster: &Cluster, snapshot: &GatewaySnapshot) -> Cluster {
    let mut c = cluster.clone();
    if c.eds_cluster_config.take().is_some() {
        let cla = snapshot
            .endpoints
            .get(&c.name)
            .cloned()
            .unwrap_or_else(|| ClusterLoadAssignment { cluster_name: c.name.clone(), ..Default::default() });
        let all_ips = cla.endpoints.iter().flat_map(|l| l.lb_endpoints.iter()).all(|e| match &e.host_identifier {
            Some(HostIdentifier::Endpoint(ep)) => match ep.address.as_ref().and_then(|a| a.address.as_ref()) {
                Some(address::Address::SocketAddress(s)) => s.address.parse::<std::net::IpAddr>().is_ok(),
                _ => true,
            },
            _ => true,
        });
        let discovery = if all_ips { DiscoveryType::Static } else { DiscoveryType::StrictDns };
        c.cluster_discovery_type = Some(ClusterDiscoveryType::Type(discovery as i32));
        c.load_assignment = Some(cla);
    }
    if let Some(socket) = &mut c.transport_socket {
        static_secrets(socket);
    }
    c
}

/// `listener` with its route configurations inline; `route_bytes` gives
/// one's encoding by name.
fn static_listener<'r>(listener: &Listener, route_bytes: &dyn Fn(&str) -> Option<&'r [u8]>) -> Listener {
    let mut l = listener.clone();
    for chain in &mut l.filter_chains {
        for f in &mut chain.filters {
            let Some(filter::ConfigType::TypedConfig(any)) = &mut f.config_type else { continue };
            // Logs to `tcp` backends go through `kuma-gateway serve`, which a
            // static bootstrap does not have.
            let served_logs = |l: &envoy_types::pb::envoy::config::accesslog::v3::AccessLog| {
                l.name != crate::policy::traffic_log::TCP_LOGGER
            };
            if any.type_url == TcpProxy::type_url()
                && let Ok(mut proxy) = TcpProxy::decode(any.value.as_slice())
            {
                proxy.access_log.retain(served_logs);
                *any = pb::any(&proxy);
                continue;
            }
            if any.type_url != HttpConnectionManager::type_url() {
                continue;
            }
            let Ok(mut hcm) = HttpConnectionManager::decode(any.value.as_slice()) else { continue };
            hcm.access_log.retain(served_logs);
            // Only an RDS reference is replaced; any other specifier stays.
            let Some(RouteSpecifier::Rds(rds)) = &hcm.route_specifier else {
                *any = pb::any(&hcm);
                continue;
            };
            let name = rds.route_config_name.clone();
            hcm.route_specifier = None;
            // The route configuration's bytes go in after the manager's
            // other fields (fields may come in any order), rather than the
            // route configuration decoded into it first: on a large gateway
            // it is most of what `render --bootstrap` would hold.
            let mut value = hcm.encode_to_vec();
            let missing;
            let routes = match route_bytes(&name) {
                Some(bytes) => bytes,
                None => {
                    missing = RouteConfiguration { name, ..Default::default() }.encode_to_vec();
                    &missing
                }
            };
            prost::encoding::encode_key(HCM_ROUTE_CONFIG_FIELD, prost::encoding::WireType::LengthDelimited, &mut value);
            prost::encoding::encode_varint(routes.len() as u64, &mut value);
            value.extend_from_slice(routes);
            *any = Any { type_url: HttpConnectionManager::type_url(), value };
        }
        if let Some(socket) = &mut chain.transport_socket {
            static_secrets(socket);
        }
    }
    l
}

/// `HttpConnectionManager.route_config`'s field number.
const HCM_ROUTE_CONFIG_FIELD: u32 = 4;

/// Points a TLS transport socket's SDS references at static secrets.
fn static_secrets(socket: &mut TransportSocket) {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        CommonTlsContext, UpstreamTlsContext, common_tls_context::ValidationContextType,
    };
    fn common(c: &mut CommonTlsContext) {
        for sds in &mut c.tls_certificate_sds_secret_configs {
            sds.sds_config = None;
        }
        if let Some(ValidationContextType::CombinedValidationContext(v)) = &mut c.validation_context_type
            && let Some(sds) = &mut v.validation_context_sds_secret_config
        {
            sds.sds_config = None;
        }
    }
    let Some(transport_socket::ConfigType::TypedConfig(any)) = &mut socket.config_type else { return };
    if any.type_url == DownstreamTlsContext::type_url()
        && let Ok(mut tls) = DownstreamTlsContext::decode(any.value.as_slice())
    {
        tls.common_tls_context.as_mut().map(common);
        *any = pb::any(&tls);
    } else if any.type_url == UpstreamTlsContext::type_url()
        && let Ok(mut tls) = UpstreamTlsContext::decode(any.value.as_slice())
    {
        tls.common_tls_context.as_mut().map(common);
        *any = pb::any(&tls);
    }
}

/// A bootstrap as canonical JSON.
pub fn bootstrap_value(bootstrap: &Bootstrap) -> Result<Value, RenderError> {
    to_json(bootstrap)
}

/// A bootstrap as text, written from its bytes: a large gateway's bootstrap
/// never exists as a JSON value.
pub fn bootstrap_text(bootstrap: &Bootstrap, format: Text) -> Result<String, RenderError> {
    let desc =
        schema::message(&Bootstrap::full_name()).ok_or_else(|| RenderError::UnknownType(Bootstrap::full_name()))?;
    let bytes = bootstrap.encode_to_vec();
    text(&Wire::new(desc, &bytes), format)
        .map_err(|message| RenderError::Transcode { type_name: Bootstrap::full_name(), message })
}

/// Where an Envoy finds its control plane and who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdsBootstrap<'a> {
    /// The data plane name: Envoy's node id.
    pub dataplane: &'a str,
    /// The mesh: node metadata `mesh`.
    pub mesh: &'a str,
    /// The ADS servers: host (an IP address or a DNS name) and port of each
    /// control-plane replica. Envoy connects to one; when it goes away,
    /// Envoy connects to another and keeps serving what it has meanwhile.
    pub xds_addresses: &'a [(&'a str, u16)],
    /// The admin interface port on 127.0.0.1, if any.
    pub admin_port: Option<u16>,
    /// A dataplane token, sent as gRPC metadata `authorization` on the ADS
    /// stream (as kuma-dp sends it).
    pub token: Option<&'a str>,
    /// PEM CA certificates: the ADS server is reached over TLS and its
    /// certificate must chain to them and name one of the `xds_addresses`
    /// hosts (SAN; the first host name is sent as SNI).
    pub xds_ca_pem: Option<&'a str>,
    /// The variant of ADS Envoy speaks.
    pub protocol: XdsProtocol,
}

/// The variant of the ADS protocol an Envoy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum XdsProtocol {
    /// Incremental xDS (`DELTA_GRPC`): each response carries only the
    /// resources that changed and the names of those removed. The default,
    /// as in Kuma 2.x's later releases and Kuma 3.0.
    #[default]
    Delta,
    /// State of the World (`GRPC`): each response carries every resource of
    /// its type.
    StateOfTheWorld,
}

/// The gRPC metadata key that carries a dataplane token.
pub const AUTHORIZATION: &str = "authorization";

/// The static cluster of the dynamic bootstrap that reaches `kuma-gateway
/// serve`: ADS, and the sink of access logs to `tcp` logging backends.
pub const ADS_CLUSTER: &str = "ads_cluster";

/// The dynamic bootstrap an Envoy needs to get everything else from the
/// ADS server (`kuma-gateway serve`): node id = data plane name, node
/// metadata `mesh`, listeners and clusters over ADS, the `gateway.listeners`
/// runtime layer over RTDS, and a static `ads_cluster` speaking HTTP/2.
pub fn ads_bootstrap(b: &AdsBootstrap<'_>) -> Bootstrap {
    use envoy_types::pb::envoy::config::bootstrap::v3::bootstrap::DynamicResources;
    use envoy_types::pb::envoy::config::bootstrap::v3::runtime_layer::RtdsLayer;
    use envoy_types::pb::envoy::config::core::v3::{
        ApiConfigSource, ApiVersion, GrpcService, Http2ProtocolOptions, Node,
        api_config_source::ApiType,
        grpc_service::{EnvoyGrpc, TargetSpecifier},
    };
    use envoy_types::pb::envoy::config::endpoint::v3::{Endpoint, LbEndpoint, LocalityLbEndpoints};
    use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
        HttpProtocolOptions,
        http_protocol_options::{ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig},
    };
    let is_ip = |host: &str| host.parse::<std::net::IpAddr>().is_ok();
    let all_ips = b.xds_addresses.iter().all(|(host, _)| is_ip(host));
    let mut hosts: Vec<&str> = b.xds_addresses.iter().map(|(host, _)| *host).collect();
    hosts.dedup();
    let http2 = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(Http2ProtocolOptions::default())),
        })),
        ..Default::default()
    };
    let transport_socket = b.xds_ca_pem.map(|ca| {
        use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
        use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
            CertificateValidationContext, CommonTlsContext, SubjectAltNameMatcher, UpstreamTlsContext,
            common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
        };
        use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
        let validation = CertificateValidationContext {
            trusted_ca: Some(DataSource { specifier: Some(Specifier::InlineString(ca.into())), ..Default::default() }),
            match_typed_subject_alt_names: hosts
                .iter()
                .map(|host| SubjectAltNameMatcher {
                    san_type: if is_ip(host) { SanType::IpAddress } else { SanType::Dns } as i32,
                    r#matcher: Some(StringMatcher {
                        match_pattern: Some(MatchPattern::Exact((*host).into())),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let context = UpstreamTlsContext {
            common_tls_context: Some(CommonTlsContext {
                alpn_protocols: vec!["h2".into()],
                validation_context_type: Some(ValidationContextType::ValidationContext(validation)),
                ..Default::default()
            }),
            // SNI must be a host name; an IP address is matched by SAN only.
            sni: hosts.iter().find(|h| !is_ip(h)).map(|h| h.to_string()).unwrap_or_default(),
            ..Default::default()
        };
        pb::transport_socket("envoy.transport_sockets.tls", &context)
    });
    let ads_cluster = Cluster {
        name: ADS_CLUSTER.into(),
        transport_socket,
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(if all_ips {
            DiscoveryType::Static
        } else {
            DiscoveryType::StrictDns
        } as i32)),
        connect_timeout: Some(pb::secs(1)),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: ADS_CLUSTER.into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: b
                    .xds_addresses
                    .iter()
                    .map(|(host, port)| LbEndpoint {
                        host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                            address: Some(pb::socket_address(host, (*port).into())),
                            ..Default::default()
                        })),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        typed_extension_protocol_options: [(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(),
            pb::any(&http2),
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    Bootstrap {
        node: Some(Node {
            id: b.dataplane.into(),
            cluster: b.dataplane.into(),
            metadata: Some(pb::string_struct([("mesh", b.mesh)])),
            ..Default::default()
        }),
        dynamic_resources: Some(DynamicResources {
            ads_config: Some(ApiConfigSource {
                api_type: match b.protocol {
                    XdsProtocol::Delta => ApiType::DeltaGrpc as i32,
                    XdsProtocol::StateOfTheWorld => ApiType::Grpc as i32,
                },
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                        cluster_name: ADS_CLUSTER.into(),
                        ..Default::default()
                    })),
                    initial_metadata: b
                        .token
                        .map(|t| {
                            vec![envoy_types::pb::envoy::config::core::v3::HeaderValue {
                                key: AUTHORIZATION.into(),
                                value: t.into(),
                                ..Default::default()
                            }]
                        })
                        .unwrap_or_default(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            cds_config: Some(pb::ads()),
            lds_config: Some(pb::ads()),
            ..Default::default()
        }),
        static_resources: Some(StaticResources { clusters: vec![ads_cluster], ..Default::default() }),
        layered_runtime: Some(LayeredRuntime {
            layers: vec![RuntimeLayer {
                name: crate::LISTENER_RUNTIME.into(),
                layer_specifier: Some(LayerSpecifier::RtdsLayer(RtdsLayer {
                    name: crate::LISTENER_RUNTIME.into(),
                    rtds_config: Some(pb::ads()),
                })),
            }],
        }),
        admin: b
            .admin_port
            .map(|port| Admin { address: Some(pb::socket_address("127.0.0.1", port.into())), ..Default::default() }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain};
    use envoy_types::pb::envoy::config::route::v3::VirtualHost;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::Rds;

    use super::*;

    /// The manager a static listener gets, decoded: its route configuration
    /// inline, everything else as it was.
    fn inlined(snapshot: &GatewaySnapshot) -> HttpConnectionManager {
        let b = static_bootstrap(snapshot, None);
        let listener = &b.static_resources.unwrap().listeners[0];
        let Some(filter::ConfigType::TypedConfig(any)) = &listener.filter_chains[0].filters[0].config_type else {
            panic!("no typed config")
        };
        assert_eq!(any.type_url, HttpConnectionManager::type_url());
        HttpConnectionManager::decode(any.value.as_slice()).unwrap()
    }

    /// A snapshot holding one cluster, packed as `any`.
    fn with_cluster(any: Any) -> EncodedSnapshot {
        let mut snapshot = EncodedSnapshot::default();
        let resources = crate::EncodedResources::new(vec![crate::EncodedResource::new("c".into(), any)]);
        snapshot.set_resources(ResourceType::Cluster, std::sync::Arc::new(resources));
        snapshot
    }

    #[test]
    fn rendering_errors_name_the_type_that_failed() {
        // Bytes that end inside a field, of a known type.
        let truncated = Any { type_url: Cluster::type_url(), value: vec![0x0a, 0x05, b'a'] };
        for text in [Text::Yaml, Text::Json] {
            match packed_snapshot_text(&with_cluster(truncated.clone()), text) {
                Err(RenderError::Transcode { type_name, message }) => {
                    assert_eq!(type_name, "envoy.config.cluster.v3.Cluster");
                    assert_eq!(message, "malformed message bytes");
                }
                other => panic!("{other:?}"),
            }
        }
        // A type the renderer does not know, found before anything is written.
        let unknown = Any { type_url: "type.googleapis.com/no.such.Type".into(), value: Vec::new() };
        assert_eq!(
            packed_snapshot_text(&with_cluster(unknown), Text::Yaml),
            Err(RenderError::UnknownType("no.such.Type".into()))
        );
        // And the value agrees with the text on a good one.
        let good = pb::any(&Cluster { name: "c".into(), ..Default::default() });
        let value = packed_snapshot_value(&with_cluster(good.clone())).unwrap();
        assert_eq!(packed_snapshot_text(&with_cluster(good), Text::Yaml).unwrap(), to_yaml(&value));
    }

    #[test]
    fn route_configurations_are_inlined_into_their_managers() {
        let hcm = HttpConnectionManager {
            stat_prefix: "gw".into(),
            route_specifier: Some(RouteSpecifier::Rds(Rds { route_config_name: "rc".into(), config_source: None })),
            ..Default::default()
        };
        let listener = Listener {
            name: "l".into(),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "envoy.filters.network.http_connection_manager".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(pb::any(&hcm))),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let rc = RouteConfiguration {
            name: "rc".into(),
            virtual_hosts: vec![VirtualHost { name: "h".into(), domains: vec!["*".into()], ..Default::default() }],
            ..Default::default()
        };
        let mut snapshot = GatewaySnapshot::default();
        snapshot.listeners.insert("l".into(), listener);
        snapshot.routes.insert("rc".into(), rc.clone());
        let expected = HttpConnectionManager { route_specifier: Some(RouteSpecifier::RouteConfig(rc)), ..hcm.clone() };
        assert_eq!(inlined(&snapshot), expected);
        // A route configuration the snapshot lacks is inlined empty.
        snapshot.routes.clear();
        let empty = RouteConfiguration { name: "rc".into(), ..Default::default() };
        assert_eq!(inlined(&snapshot).route_specifier, Some(RouteSpecifier::RouteConfig(empty.clone())));
        // A manager whose routes are inline already keeps them.
        let inline = HttpConnectionManager { route_specifier: Some(RouteSpecifier::RouteConfig(empty)), ..hcm };
        let chain = &mut snapshot.listeners.get_mut("l").unwrap().filter_chains[0];
        chain.filters[0].config_type = Some(filter::ConfigType::TypedConfig(pb::any(&inline)));
        assert_eq!(inlined(&snapshot), inline);
    }
}
