//! A snapshot encoded once, for every stream that serves it.
//!
//! An ADS server sends the same bytes to every Envoy of a data plane, and to
//! every data plane whose config is equal. [`EncodedSnapshot`] holds each
//! resource packed as an `Any`, with its version, and each type's list
//! behind an [`Arc`]: streams keep a reference, not a copy, and a type that
//! did not change between two snapshots can be shared by both.

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::snapshot::{GatewaySnapshot, ResourceType, hex16, list_version};

/// One packed resource.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedResource {
    /// The resource name.
    pub name: String,
    /// 16 hex digits of a SHA-256 of the packed bytes: the resource's
    /// version in incremental (delta) xDS.
    pub version: String,
    /// The resource, packed.
    pub any: Any,
}

impl EncodedResource {
    /// Packs `name` and `any`, computing the version.
    pub fn new(name: String, any: Any) -> Self {
        EncodedResource { version: hex16(&Sha256::digest(&any.value)), name, any }
    }
}

/// The resources of one type, in name order, with the version of the whole
/// list ([`crate::version_of`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EncodedResources {
    version: String,
    items: Vec<EncodedResource>,
}

impl EncodedResources {
    /// The list of `items`, sorted by name (the last of equal names wins).
    pub fn new(mut items: Vec<EncodedResource>) -> Self {
        items.sort_by(|a, b| a.name.cmp(&b.name));
        items.dedup_by(|later, earlier| {
            let same = later.name == earlier.name;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        let version = list_version(items.iter().map(|r| (r.name.as_str(), r.any.value.as_slice())));
        EncodedResources { version, items }
    }

    /// The content hash of the whole list: the version a State of the
    /// World response carries.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The resources, in name order.
    pub fn items(&self) -> &[EncodedResource] {
        &self.items
    }

    /// The resource named `name`.
    pub fn get(&self, name: &str) -> Option<&EncodedResource> {
        self.items.binary_search_by(|r| r.name.as_str().cmp(name)).ok().map(|i| &self.items[i])
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Everything Envoy needs for one data plane, packed once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EncodedSnapshot {
    /// By [`ResourceType`], in [`ResourceType::ALL`] order.
    types: [Arc<EncodedResources>; 6],
    /// [`GatewaySnapshot::refresh_at`] of the snapshot it was packed from.
    pub refresh_at: Option<std::time::SystemTime>,
}

impl EncodedSnapshot {
    /// Packs every resource of `snapshot` (deterministic bytes: equal
    /// resources get equal versions).
    pub fn encode(snapshot: &GatewaySnapshot) -> Self {
        Self::encode_with_hosts(snapshot, &HashMap::new())
    }

    /// [`Self::encode`], where the route configurations named in `hosts`
    /// get those encoded virtual hosts after their own ([`crate::reuse`]).
    pub(crate) fn encode_with_hosts(snapshot: &GatewaySnapshot, hosts: &HashMap<String, Vec<Arc<[u8]>>>) -> Self {
        let types = ResourceType::ALL.map(|t| {
            let items = if t == ResourceType::Route && !hosts.is_empty() {
                let pack = |(name, config): (&String, _)| match hosts.get(name) {
                    Some(hosts) => (name.clone(), crate::reuse::route_configuration(config, hosts)),
                    None => (name.clone(), crate::canonical::any(config)),
                };
                snapshot.routes.iter().map(pack).map(|(n, a)| EncodedResource::new(n, a)).collect()
            } else {
                snapshot.resources(t).into_iter().map(|(n, a)| EncodedResource::new(n, a)).collect()
            };
            Arc::new(EncodedResources::new(items))
        });
        EncodedSnapshot { types, refresh_at: snapshot.refresh_at }
    }

    /// The resources of type `t`.
    pub fn resources(&self, t: ResourceType) -> &Arc<EncodedResources> {
        &self.types[index(t)]
    }

    /// Replaces the resources of type `t` (to share an equal list another
    /// snapshot holds).
    pub fn set_resources(&mut self, t: ResourceType, resources: Arc<EncodedResources>) {
        self.types[index(t)] = resources;
    }

    /// Number of resources of every type.
    pub fn len(&self) -> usize {
        self.types.iter().map(|r| r.len()).sum()
    }

    /// True when there is nothing to serve.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This snapshot with `token` added, as gRPC metadata `authorization`,
    /// to every access logger that sends to `kuma-gateway serve`'s log sink,
    /// so that the sink can authenticate the records as ADS authenticates
    /// the stream; `None` when it has no such logger. The server applies it
    /// to what it sends one Envoy; translation itself never sees a token.
    /// Only the listeners that have such a logger are decoded, and only the
    /// listener list is copied.
    pub fn with_log_credentials(&self, token: &str) -> Option<EncodedSnapshot> {
        let listeners = self.resources(ResourceType::Listener);
        let mut changed = false;
        let mut items = Vec::with_capacity(listeners.len());
        for r in listeners.items() {
            if crate::policy::traffic_log::may_log_to_sink(&r.any.value)
                && let Ok(mut listener) = Listener::decode(r.any.value.as_slice())
                && crate::policy::traffic_log::add_log_credentials(&mut listener, token)
            {
                items.push(EncodedResource::new(r.name.clone(), crate::canonical::any(&listener)));
                changed = true;
            } else {
                items.push(r.clone());
            }
        }
        if !changed {
            return None;
        }
        let mut out = self.clone();
        out.set_resources(ResourceType::Listener, Arc::new(EncodedResources::new(items)));
        Some(out)
    }
}

fn index(t: ResourceType) -> usize {
    ResourceType::ALL.iter().position(|x| *x == t).expect("every type is in ALL")
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;

    #[test]
    fn list_versions_are_those_of_version_of() {
        let mut s = GatewaySnapshot::default();
        for n in ["b", "a"] {
            s.clusters.insert(n.into(), Cluster { name: n.into(), ..Default::default() });
        }
        let e = EncodedSnapshot::encode(&s);
        let clusters = e.resources(ResourceType::Cluster);
        assert_eq!(clusters.version(), crate::version_of(&s.resources(ResourceType::Cluster)));
        assert_eq!(clusters.items().iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_ne!(clusters.get("a").unwrap().version, clusters.get("b").unwrap().version);
        assert!(e.with_log_credentials("t").is_none(), "no logger to the sink");
    }
}
