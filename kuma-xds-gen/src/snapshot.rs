//! The generated Envoy resources of one data plane, by type and name.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::envoy::service::runtime::v3::Runtime;
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};
use sha2::{Digest, Sha256};

/// The xDS resource types a gateway snapshot holds, in the order an update
/// must be applied so that nothing refers to what is not there yet
/// (clusters and endpoints before the listeners and routes that use them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ResourceType {
    /// `envoy.config.cluster.v3.Cluster` (CDS).
    Cluster,
    /// `envoy.config.endpoint.v3.ClusterLoadAssignment` (EDS).
    Endpoint,
    /// `envoy.extensions.transport_sockets.tls.v3.Secret` (SDS).
    Secret,
    /// `envoy.service.runtime.v3.Runtime` (RTDS).
    Runtime,
    /// `envoy.config.listener.v3.Listener` (LDS).
    Listener,
    /// `envoy.config.route.v3.RouteConfiguration` (RDS).
    Route,
}

impl ResourceType {
    /// Every type, in update order.
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Cluster,
        ResourceType::Endpoint,
        ResourceType::Secret,
        ResourceType::Runtime,
        ResourceType::Listener,
        ResourceType::Route,
    ];

    /// The xDS type URL.
    pub fn type_url(self) -> String {
        match self {
            ResourceType::Cluster => Cluster::type_url(),
            ResourceType::Endpoint => ClusterLoadAssignment::type_url(),
            ResourceType::Secret => Secret::type_url(),
            ResourceType::Runtime => Runtime::type_url(),
            ResourceType::Listener => Listener::type_url(),
            ResourceType::Route => RouteConfiguration::type_url(),
        }
    }

    /// The type with this URL.
    pub fn from_type_url(url: &str) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|t| t.type_url() == url)
    }

    /// The key Kuma's golden files use for the type (`Clusters`, ...).
    pub fn plural(self) -> &'static str {
        match self {
            ResourceType::Cluster => "Clusters",
            ResourceType::Endpoint => "Endpoints",
            ResourceType::Secret => "Secrets",
            ResourceType::Runtime => "Runtimes",
            ResourceType::Listener => "Listeners",
            ResourceType::Route => "Routes",
        }
    }
}

/// Everything Envoy needs for one data plane. Maps are keyed by resource
/// name, so iteration (and rendering) order never depends on input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewaySnapshot {
    /// Listeners by name.
    pub listeners: BTreeMap<String, Listener>,
    /// Route configurations by name.
    pub routes: BTreeMap<String, RouteConfiguration>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// Endpoint assignments by cluster name.
    pub endpoints: BTreeMap<String, ClusterLoadAssignment>,
    /// TLS secrets by name.
    pub secrets: BTreeMap<String, Secret>,
    /// Runtime layers by name.
    pub runtimes: BTreeMap<String, Runtime>,
    /// When to translate again even if no resource changes: the time the
    /// mesh identity certificate in it is issued anew (see
    /// [`crate::translate_at`]).
    pub refresh_at: Option<std::time::SystemTime>,
}

/// The version of a list of packed resources: 16 hex digits of a SHA-256
/// over names and bytes, so equal content always gets the same version.
pub fn version_of(resources: &[(String, Any)]) -> String {
    list_version(resources.iter().map(|(name, any)| (name.as_str(), any.value.as_slice())))
}

/// [`version_of`] over (name, packed bytes) pairs, in list order.
pub(crate) fn list_version<'a>(items: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut hash = Sha256::new();
    for (name, bytes) in items {
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hex16(&hash.finalize())
}

/// The first 8 bytes of a digest as 16 hex digits.
pub(crate) fn hex16(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    digest[..8].iter().fold(String::with_capacity(16), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn pack<T: Message + Name>(map: &BTreeMap<String, T>) -> Vec<(String, Any)> {
    map.iter().map(|(n, m)| (n.clone(), crate::canonical::any(m))).collect()
}

impl GatewaySnapshot {
    /// The resources of one type, packed, in name order.
    pub fn resources(&self, t: ResourceType) -> Vec<(String, Any)> {
        match t {
            ResourceType::Cluster => pack(&self.clusters),
            ResourceType::Endpoint => pack(&self.endpoints),
            ResourceType::Secret => pack(&self.secrets),
            ResourceType::Runtime => pack(&self.runtimes),
            ResourceType::Listener => pack(&self.listeners),
            ResourceType::Route => pack(&self.routes),
        }
    }

    /// A content hash of one type's resources ([`version_of`]).
    pub fn version(&self, t: ResourceType) -> String {
        version_of(&self.resources(t))
    }

    /// Number of resources of every type.
    pub fn len(&self) -> usize {
        self.listeners.len()
            + self.routes.len()
            + self.clusters.len()
            + self.endpoints.len()
            + self.secrets.len()
            + self.runtimes.len()
    }

    /// True when there is nothing to serve.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
