//! [`ResourceSetSource`]: snapshots translated from a validated resource
//! set, re-translated per data plane only when its mesh changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use kuma_xds_gen::kuma_model::{Kind, Resource, ResourceKey, ResourceSet, Spec};
use kuma_xds_gen::{GatewaySnapshot, TranslateError};
use tokio::sync::watch;

use crate::source::{NodeId, SnapshotSource};

/// One published set and when each mesh last changed.
#[derive(Debug)]
struct Generation {
    set: Arc<ResourceSet>,
    number: u64,
    /// Per mesh, the generation that last changed what its gateways read.
    mesh_changed_at: BTreeMap<String, u64>,
    /// The generation that last changed what every mesh's gateways read
    /// (a resource outside any mesh, such as a ZoneEgress).
    all_changed_at: u64,
}

/// A [`SnapshotSource`] over a [`ResourceSet`] that you replace as your
/// resources change ([`ResourceSetSource::publish`]): files, a database, a
/// Kubernetes watcher. Each node's snapshot is [`kuma_xds_gen::translate`]d
/// from the current set; a node whose mesh did not change keeps its
/// snapshot.
#[derive(Debug)]
pub struct ResourceSetSource {
    current: RwLock<Generation>,
    changes: watch::Sender<u64>,
}

impl ResourceSetSource {
    /// A source serving `set` as generation 1.
    pub fn new(set: ResourceSet) -> Self {
        let (changes, _) = watch::channel(1);
        ResourceSetSource {
            current: RwLock::new(Generation {
                set: Arc::new(set),
                number: 1,
                mesh_changed_at: BTreeMap::new(),
                all_changed_at: 0,
            }),
            changes,
        }
    }

    /// Replaces the set; streams whose mesh changed are sent the difference.
    /// Returns the new generation number.
    pub fn publish(&self, set: ResourceSet) -> u64 {
        let number = {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            let number = current.number + 1;
            match affected_meshes(&current.set, &set) {
                Affected::All => current.all_changed_at = number,
                Affected::Meshes(meshes) => {
                    for mesh in meshes {
                        current.mesh_changed_at.insert(mesh, number);
                    }
                }
            }
            current.set = Arc::new(set);
            current.number = number;
            number
        };
        self.changes.send_replace(number);
        number
    }

    /// The set being served.
    pub fn set(&self) -> Arc<ResourceSet> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).set.clone()
    }

    /// The current generation number (1 for the first set).
    pub fn generation(&self) -> u64 {
        self.current.read().unwrap_or_else(|e| e.into_inner()).number
    }
}

impl SnapshotSource for ResourceSetSource {
    type Error = TranslateError;

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn snapshot(&self, node: &NodeId, since: Option<u64>) -> Result<Option<Arc<GatewaySnapshot>>, TranslateError> {
        let set = {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            let changed = match since {
                None => true,
                Some(since) => {
                    current.all_changed_at > since
                        || current.mesh_changed_at.get(&node.mesh).is_some_and(|g| *g > since)
                }
            };
            if !changed {
                return Ok(None);
            }
            current.set.clone()
        };
        kuma_xds_gen::translate(&set, &node.mesh, &node.name).map(|s| Some(Arc::new(s)))
    }

    fn allows_log_backend(&self, address: &str) -> bool {
        tcp_log_backends(&self.set()).any(|a| a == address)
    }
}

/// The `tcp` logging backends the meshes of a set name (`host:port`).
fn tcp_log_backends(set: &ResourceSet) -> impl Iterator<Item = &str> {
    set.of_kind(Kind::Mesh)
        .filter_map(|m| match &m.spec {
            Spec::Mesh(spec) => spec.logging.as_ref(),
            _ => None,
        })
        .flat_map(|l| l.backends.iter())
        .filter(|b| b.kind == "tcp")
        .map(|b| b.conf_str("address"))
}

/// Whose gateways a change affects.
#[derive(Debug, PartialEq)]
enum Affected {
    /// Every mesh's.
    All,
    /// These meshes'.
    Meshes(BTreeSet<String>),
}

/// Whose gateways read what changed between two sets: the meshes whose
/// resources changed; and, beyond them, every mesh with a crossMesh
/// listener when any mesh's mTLS material may have changed (a `Mesh` or a
/// `Secret`: such listeners trust every mesh's CA); every mesh when a
/// resource outside meshes changed (a `ZoneEgress`, used by any mesh's
/// ExternalServices).
fn affected_meshes(old: &ResourceSet, new: &ResourceSet) -> Affected {
    let changed = changed_resources(old, new);
    if changed.iter().any(|k| !k.kind.is_mesh_scoped() && k.kind != Kind::Mesh) {
        return Affected::All;
    }
    let mesh_of = |k: &ResourceKey| if k.kind == Kind::Mesh { k.name.clone() } else { k.mesh.clone() };
    let mut meshes: BTreeSet<String> = changed.iter().map(mesh_of).collect();
    if changed.iter().any(|k| matches!(k.kind, Kind::Mesh | Kind::Secret)) {
        meshes.extend(cross_mesh_gateway_meshes(old).chain(cross_mesh_gateway_meshes(new)));
    }
    Affected::Meshes(meshes)
}

/// The meshes with a MeshGateway that has a crossMesh listener.
fn cross_mesh_gateway_meshes(set: &ResourceSet) -> impl Iterator<Item = String> + '_ {
    set.of_kind(Kind::MeshGateway)
        .filter(|r| match &r.spec {
            Spec::MeshGateway(gw) => gw.conf.iter().flat_map(|c| c.listeners.iter()).any(|l| l.cross_mesh),
            _ => false,
        })
        .map(|r| r.meta.mesh.clone())
}

/// The keys of resources added, removed or changed between two sets.
fn changed_resources(old: &ResourceSet, new: &ResourceSet) -> Vec<ResourceKey> {
    let mut out = Vec::new();
    for r in new.iter() {
        let key = r.key();
        let same = old
            .get(key.kind, &key.mesh, &key.name)
            .is_some_and(|o| o.spec == r.spec && o.meta.creation_time == r.meta.creation_time);
        if !same {
            out.push(key);
        }
    }
    out.extend(old.iter().map(Resource::key).filter(|k| new.get(k.kind, &k.mesh, &k.name).is_none()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuma_xds_gen::kuma_model::UnknownFields;

    fn set(yaml: &str) -> ResourceSet {
        ResourceSet::load([("t.yaml", yaml)], UnknownFields::Reject).unwrap().0
    }

    const A: &str = "type: Mesh\nname: a\n---\ntype: Mesh\nname: b\n---\ntype: Secret\nmesh: a\nname: s\ndata: aGk=\n---\ntype: Secret\nmesh: b\nname: s\ndata: aGk=\n";

    fn changed(source: &ResourceSetSource, mesh: &str, since: u64) -> bool {
        let node = NodeId { mesh: mesh.into(), name: "missing".into() };
        // A missing data plane is an error, which still says "changed".
        !matches!(source.snapshot(&node, Some(since)), Ok(None))
    }

    #[test]
    fn only_meshes_whose_resources_changed_are_retranslated() {
        let source = ResourceSetSource::new(set(A));
        // Same content, another generation: nothing changed.
        assert_eq!(source.publish(set(A)), 2);
        assert!(!changed(&source, "a", 1) && !changed(&source, "b", 1));
        // A secret of mesh b changes.
        source.publish(set(&A.replace("mesh: b\nname: s\ndata: aGk=", "mesh: b\nname: s\ndata: aG8=")));
        assert!(!changed(&source, "a", 1));
        assert!(changed(&source, "b", 2));
        assert!(!changed(&source, "b", 3), "translated at generation 3 already");
        // A removal counts, and so does a Mesh resource for its own mesh.
        source.publish(set(
            "type: Mesh\nname: a\n---\ntype: Mesh\nname: b\n---\ntype: Secret\nmesh: b\nname: s\ndata: aG8=\n",
        ));
        assert!(changed(&source, "a", 3));
        assert_eq!(
            affected_meshes(
                &set("type: Mesh\nname: c\n"),
                &set("type: Mesh\nname: c\nmtls: {enabledBackend: x, backends: [{name: x, type: builtin}]}\n")
            ),
            Affected::Meshes(BTreeSet::from(["c".to_string()]))
        );
    }

    #[test]
    fn zone_egress_and_other_meshes_cas_reach_the_gateways_that_read_them() {
        let base = "type: Mesh\nname: a\n---\ntype: Mesh\nname: b\nmtls: {enabledBackend: ca, backends: [{name: ca, type: builtin}]}\n";
        let egress = "---\ntype: ZoneEgress\nname: egress\nnetworking: {address: 127.0.0.1, port: 10002}\n";
        let with_egress = format!("{base}{egress}");
        let moved = with_egress.replace("port: 10002", "port: 10003");
        assert_eq!(affected_meshes(&set(&with_egress), &set(&moved)), Affected::All);
        // A crossMesh gateway in mesh b reads every mesh's CA: a change to
        // mesh a's Mesh reaches it.
        let gateway = "---\ntype: MeshGateway\nmesh: b\nname: gw\nselectors: [{match: {kuma.io/service: gw}}]\nconf: {listeners: [{port: 80, protocol: HTTP, crossMesh: true, hostname: x.example.com}]}\n";
        let before = set(&format!("{base}{gateway}"));
        let after = set(&format!(
            "{}{gateway}",
            base.replace("name: a\n", "name: a\nmtls: {enabledBackend: ca, backends: [{name: ca, type: builtin}]}\n")
        ));
        assert_eq!(
            affected_meshes(&before, &after),
            Affected::Meshes(BTreeSet::from(["a".to_string(), "b".to_string()]))
        );
        let source = ResourceSetSource::new(before);
        source.publish(after);
        assert!(changed(&source, "b", 1), "mesh b's gateway is translated again");
    }

    #[test]
    fn a_first_request_always_gets_an_answer() {
        let source = ResourceSetSource::new(set(A));
        let node = NodeId { mesh: "a".into(), name: "gw".into() };
        assert!(matches!(source.snapshot(&node, None), Err(TranslateError::NoDataplane { .. })));
    }
}
