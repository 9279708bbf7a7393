//! [`ResourceSetSource`]: snapshots translated from a validated resource
//! set, re-translated per data plane only when its mesh changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use kuma_xds_gen::kuma_model::{Kind, Resource, ResourceSet, Spec};
use kuma_xds_gen::{GatewaySnapshot, TranslateError};
use tokio::sync::watch;

use crate::source::{NodeId, SnapshotSource};

/// One published set and when each mesh last changed.
#[derive(Debug)]
struct Generation {
    set: Arc<ResourceSet>,
    number: u64,
    /// Per mesh, the generation that last changed it.
    mesh_changed_at: BTreeMap<String, u64>,
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
            current: RwLock::new(Generation { set: Arc::new(set), number: 1, mesh_changed_at: BTreeMap::new() }),
            changes,
        }
    }

    /// Replaces the set; streams whose mesh changed are sent the difference.
    /// Returns the new generation number.
    pub fn publish(&self, set: ResourceSet) -> u64 {
        let number = {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            let number = current.number + 1;
            for mesh in changed_meshes(&current.set, &set) {
                current.mesh_changed_at.insert(mesh, number);
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
                Some(since) => current.mesh_changed_at.get(&node.mesh).is_some_and(|g| *g > since),
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

/// The meshes whose resources differ between two sets (a `Mesh` counts for
/// the mesh it is).
fn changed_meshes(old: &ResourceSet, new: &ResourceSet) -> BTreeSet<String> {
    let mesh_of = |r: &Resource| if r.spec.kind() == Kind::Mesh { r.meta.name.clone() } else { r.meta.mesh.clone() };
    let mut out = BTreeSet::new();
    for r in new.iter() {
        let key = r.key();
        let same = old
            .get(key.kind, &key.mesh, &key.name)
            .is_some_and(|o| o.spec == r.spec && o.meta.creation_time == r.meta.creation_time);
        if !same {
            out.insert(mesh_of(r));
        }
    }
    for r in old.iter() {
        let key = r.key();
        if new.get(key.kind, &key.mesh, &key.name).is_none() {
            out.insert(mesh_of(r));
        }
    }
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
            changed_meshes(
                &set("type: Mesh\nname: c\n"),
                &set("type: Mesh\nname: c\nmtls: {enabledBackend: x, backends: [{name: x, type: builtin}]}\n")
            ),
            BTreeSet::from(["c".to_string()])
        );
    }

    #[test]
    fn a_first_request_always_gets_an_answer() {
        let source = ResourceSetSource::new(set(A));
        let node = NodeId { mesh: "a".into(), name: "gw".into() };
        assert!(matches!(source.snapshot(&node, None), Err(TranslateError::NoDataplane { .. })));
    }
}
