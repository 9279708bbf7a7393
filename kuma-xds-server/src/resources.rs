//! [`ResourceSetSource`]: snapshots translated from a validated resource
//! set, re-translated per data plane only when a resource its last
//! snapshot read has changed.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::SystemTime;

use kuma_xds_gen::kuma_model::reads::Reads;
use kuma_xds_gen::kuma_model::{Kind, Resource, ResourceKey, ResourceSet, Spec};
use kuma_xds_gen::{EncodedResources, EncodedSnapshot, HostReuse, ResourceType, SharedHosts, TranslateError};
use tokio::sync::watch;
use tracing::debug;

use crate::source::{AuthError, NodeId, SnapshotSource};
use crate::tokens::{self, SigningKey};

/// How many generations of changed keys are kept. A node that last asked
/// before the oldest kept is translated again.
const HISTORY: usize = 256;

/// One published set, and the keys the recent generations changed.
#[derive(Debug)]
struct Generation {
    set: Arc<ResourceSet>,
    number: u64,
    /// `(generation, keys added, changed or removed by it)`, oldest first.
    changed: VecDeque<(u64, Vec<ResourceKey>)>,
}

impl Generation {
    /// True when a generation after `after` changed something `reads`
    /// covers, or when the history no longer reaches back to `after`.
    fn changed_since(&self, after: u64, reads: &Reads) -> bool {
        if after >= self.number {
            return false;
        }
        if self.changed.front().is_none_or(|(oldest, _)| *oldest > after + 1) {
            return true;
        }
        self.changed
            .iter()
            .filter(|(number, _)| *number > after)
            .any(|(_, keys)| keys.iter().any(|k| reads.affected_by(k)))
    }
}

/// A node's last translation, and the virtual hosts the next one may reuse.
#[derive(Debug)]
struct NodeSlot {
    last: Option<NodeReads>,
    reuse: HostReuse,
}

/// What a node's last snapshot read, and the generations it is current for.
#[derive(Debug)]
struct NodeReads {
    /// The snapshot, while a stream holds it: every stream of the node
    /// gets this one, and it is freed with the last of them.
    snapshot: Weak<EncodedSnapshot>,
    reads: Reads,
    /// When its identity certificate is due to be issued anew.
    refresh_at: Option<SystemTime>,
    /// The generation it was translated from.
    translated_at: u64,
    /// The newest generation known to give the same snapshot.
    current_through: u64,
}

/// A [`SnapshotSource`] over a [`ResourceSet`] that you replace as your
/// resources change ([`ResourceSetSource::publish`]): files, a database, a
/// Kubernetes watcher. Each node's snapshot is [`kuma_xds_gen::translate`]d
/// from the current set, recording every resource translation read; the
/// node is translated again only when one of those resources is added,
/// changed or removed (a Secret it uses, its mesh's policies or data
/// planes, a ZoneEgress, another mesh's CA for a crossMesh listener, ...).
#[derive(Debug)]
pub struct ResourceSetSource {
    current: RwLock<Generation>,
    /// Per node; a node's streams wait for each other's translation.
    nodes: Mutex<HashMap<NodeId, Arc<Mutex<NodeSlot>>>>,
    /// Every resource list a snapshot being served holds, by type and
    /// version, so that equal lists (of two data planes of the same
    /// gateway, or of a type a change did not touch) are held once.
    lists: Mutex<HashMap<(ResourceType, String), Weak<EncodedResources>>>,
    /// The virtual hosts nodes keep for their next translation, each held
    /// once (replicas of a gateway build the same ones).
    hosts: SharedHosts,
    changes: watch::Sender<u64>,
    /// Signing keys held in memory (by mesh), beside those in the resources.
    extra_keys: RwLock<Vec<(String, SigningKey)>>,
}

impl ResourceSetSource {
    /// A source serving `set` as generation 1.
    pub fn new(set: ResourceSet) -> Self {
        let (changes, _) = watch::channel(1);
        ResourceSetSource {
            current: RwLock::new(Generation { set: Arc::new(set), number: 1, changed: VecDeque::new() }),
            nodes: Mutex::new(HashMap::new()),
            lists: Mutex::default(),
            hosts: SharedHosts::default(),
            changes,
            extra_keys: RwLock::default(),
        }
    }

    /// Accepts tokens signed with `key` for `mesh`, as if the resources held
    /// it (`kuma-gateway run` makes one for its own Envoy when they hold none).
    pub fn add_signing_key(&self, mesh: &str, key: SigningKey) {
        self.extra_keys.write().unwrap_or_else(|e| e.into_inner()).push((mesh.to_string(), key));
    }

    /// Replaces the set; streams whose data plane read something that
    /// changed are sent the difference. Returns the new generation number.
    pub fn publish(&self, set: ResourceSet) -> u64 {
        let number = {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            let number = current.number + 1;
            let keys = changed_resources(&current.set, &set);
            current.changed.push_back((number, keys));
            if current.changed.len() > HISTORY {
                current.changed.pop_front();
            }
            current.set = Arc::new(set);
            current.number = number;
            number
        };
        self.forget_idle_reuse();
        self.changes.send_replace(number);
        number
    }

    /// Drops what nodes no stream serves any more kept for reuse (data
    /// planes come and go under new names; their hosts and the resources
    /// they compared against would otherwise stay). A node that comes back
    /// builds every host once.
    fn forget_idle_reuse(&self) {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        for slot in nodes.values() {
            // A node being translated is in use.
            if let Ok(mut slot) = slot.try_lock()
                && slot.last.as_ref().is_none_or(|n| n.snapshot.strong_count() == 0)
            {
                slot.reuse.clear();
            }
        }
    }

    /// The set being served.
    pub fn set(&self) -> Arc<ResourceSet> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).set.clone()
    }

    /// The current generation number (1 for the first set).
    pub fn generation(&self) -> u64 {
        self.current.read().unwrap_or_else(|e| e.into_inner()).number
    }

    /// The record of `node`, made empty when new.
    fn node(&self, node: &NodeId) -> Arc<Mutex<NodeSlot>> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let slot = nodes.entry(node.clone()).or_insert_with(|| {
            Arc::new(Mutex::new(NodeSlot { last: None, reuse: HostReuse::sharing(self.hosts.clone()) }))
        });
        slot.clone()
    }

    /// `snapshot` with each of its lists replaced by an equal one already
    /// held, if any (and recorded for the next ones).
    fn share(&self, mut snapshot: EncodedSnapshot) -> EncodedSnapshot {
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        for t in ResourceType::ALL {
            let list = snapshot.resources(t);
            let key = (t, list.version().to_string());
            match lists.get(&key).and_then(Weak::upgrade) {
                Some(held) if *held == **list => snapshot.set_resources(t, held),
                _ => {
                    lists.insert(key, Arc::downgrade(list));
                }
            }
        }
        // Forget the lists no snapshot holds any more, now and then.
        if lists.len() > 64 && lists.len().is_power_of_two() {
            lists.retain(|_, l| l.strong_count() > 0);
        }
        snapshot
    }
}

impl SnapshotSource for ResourceSetSource {
    type Error = TranslateError;

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn snapshot(&self, node: &NodeId, since: Option<u64>) -> Result<Option<Arc<EncodedSnapshot>>, TranslateError> {
        let slot = self.node(node);
        // Held through the translation: the other streams of this node wait
        // for it and share its result instead of translating again.
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        let NodeSlot { last: record, reuse } = &mut *guard;
        let (set, number) = {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = record.as_mut()
                && !current.changed_since(n.current_through, &n.reads)
                && n.refresh_at.is_none_or(|t| SystemTime::now() < t)
            {
                // Nothing it read changed since its last translation.
                n.current_through = current.number;
                // The stream holds that snapshot already.
                if since.is_some_and(|s| (n.translated_at..=n.current_through).contains(&s)) {
                    return Ok(None);
                }
                if let Some(held) = n.snapshot.upgrade() {
                    return Ok(Some(held));
                }
            }
            (current.set.clone(), current.number)
        };
        let (result, reads) = kuma_xds_gen::translate_encoded(&set, &node.mesh, &node.name, SystemTime::now(), reuse);
        match result {
            Ok(snapshot) => {
                let (reused, built) = reuse.last_counts();
                debug!(node = %node.name, reused, built, "virtual hosts");
                let refresh_at = snapshot.refresh_at;
                let encoded = Arc::new(self.share(snapshot));
                *record = Some(NodeReads {
                    snapshot: Arc::downgrade(&encoded),
                    reads,
                    refresh_at,
                    translated_at: number,
                    current_through: number,
                });
                Ok(Some(encoded))
            }
            Err(e) => {
                *record = None;
                drop(guard);
                // A name nobody serves is not kept (any client may claim any).
                self.nodes.lock().unwrap_or_else(|e| e.into_inner()).remove(node);
                Err(e)
            }
        }
    }

    fn allows_log_backend(&self, mesh: &str, address: &str) -> bool {
        let set = self.set();
        let logging = set.mesh(mesh).and_then(|m| m.logging.as_ref());
        let in_mesh =
            logging.is_some_and(|l| l.backends.iter().any(|b| b.kind == "tcp" && b.conf_str("address") == address));
        // A MeshAccessLog of the mesh naming the address as a tcp backend.
        in_mesh
            || set.in_mesh(kuma_model::Kind::MeshAccessLog, mesh).any(|r| match &r.spec {
                kuma_model::Spec::MeshAccessLog(log) => log
                    .to_confs()
                    .into_iter()
                    .chain(log.from_confs())
                    .flat_map(|(_, c)| c.backends.iter().flatten())
                    .any(|b| b.tcp.as_ref().is_some_and(|t| t.address == address)),
                _ => false,
            })
    }

    /// Kuma's dataplane-token check: signed by a key of the node's mesh
    /// (found by `kid`), within its times, not revoked; its `Name` and
    /// `Mesh` (when set) are the node's; each of its tags is on the data
    /// plane, with values among the token's; its `Workload` (when set) is
    /// the data plane's `kuma.io/workload` label.
    fn authenticate(&self, node: &NodeId, token: Option<&str>) -> Result<(), AuthError> {
        let unauthenticated = |m: String| AuthError::Unauthenticated(m);
        let denied = |m: String| AuthError::PermissionDenied(m);
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| unauthenticated("no dataplane token".into()))?;
        let set = self.set();
        // Only the key the token names is parsed (a garbage token costs
        // no key parsing at all).
        let kid = tokens::key_id_of(token).ok_or_else(|| unauthenticated("not a JWT with a key id (kid)".into()))?;
        let stored = match tokens::signing_key(&set, &node.mesh, &kid) {
            Some(Ok(k)) => Some(k),
            Some(Err(e)) => return Err(unauthenticated(e.to_string())),
            None => None,
        };
        let extra = self.extra_keys.read().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<&SigningKey> = stored
            .iter()
            .chain(extra.iter().filter(|(m, k)| *m == node.mesh && k.key_id() == kid).map(|(_, k)| k))
            .collect();
        let revoked = tokens::revoked_ids(&set, &node.mesh);
        let claims = tokens::verify(token, &keys, &revoked, std::time::SystemTime::now())
            .map_err(|e| unauthenticated(e.to_string()))?;
        // Kuma's other token types (ingress, egress) are not a data plane's.
        if !claims.kind.is_empty() && claims.kind != "dataplane" {
            return Err(denied(format!("the token is for a {:?} proxy, not a data plane", claims.kind)));
        }
        if !claims.name.is_empty() && claims.name != node.name {
            return Err(denied(format!("the token is for data plane {:?}, not {:?}", claims.name, node.name)));
        }
        if !claims.mesh.is_empty() && claims.mesh != node.mesh {
            return Err(denied(format!("the token is for mesh {:?}, not {:?}", claims.mesh, node.mesh)));
        }
        let (tags, labels) =
            dataplane_tags(&set, node).ok_or_else(|| denied(format!("no Dataplane {node} in the resources")))?;
        for (key, allowed) in &claims.tags {
            let Some(values) = tags.get(key) else {
                return Err(denied(format!("the data plane has no tag {key:?}, which the token requires")));
            };
            if let Some(v) = values.iter().find(|v| !allowed.contains(v)) {
                return Err(denied(format!("the data plane's tag {key}={v} is not among the token's")));
            }
        }
        if !claims.workload.is_empty() && labels.get("kuma.io/workload") != Some(&claims.workload) {
            return Err(denied(format!("the data plane's kuma.io/workload label is not {:?}", claims.workload)));
        }
        Ok(())
    }
}

/// Tags with all their values.
type MultiTags = BTreeMap<String, BTreeSet<String>>;

/// The tags of data plane `node` (of every inbound and of its gateway, each
/// with all its values) and its labels: a Dataplane, or the one a
/// MeshGatewayInstance stands for.
fn dataplane_tags(set: &ResourceSet, node: &NodeId) -> Option<(MultiTags, BTreeMap<String, String>)> {
    let (spec, labels) = match set.get(Kind::Dataplane, &node.mesh, &node.name) {
        Some(Resource { spec: Spec::Dataplane(dp), meta }) => (dp.clone(), meta.labels.clone()),
        _ => match set.get(Kind::MeshGatewayInstance, &node.mesh, &node.name) {
            Some(Resource { spec: Spec::MeshGatewayInstance(i), meta }) => {
                (i.dataplane(&node.name), meta.labels.clone())
            }
            _ => return None,
        },
    };
    let mut tags = MultiTags::new();
    let networking = spec.networking.as_ref();
    let inbound = networking.iter().flat_map(|n| n.inbound.iter()).map(|i| &i.tags);
    for t in inbound.chain(spec.gateway().map(|g| &g.tags)) {
        for (k, v) in t.iter() {
            tags.entry(k.clone()).or_default().insert(v.clone());
        }
    }
    Some((tags, labels))
}

/// The keys of resources added, removed or changed between two sets.
fn changed_resources(old: &ResourceSet, new: &ResourceSet) -> Vec<ResourceKey> {
    let mut out = Vec::new();
    for r in new.iter_shared() {
        let key = r.key();
        // A resource of a file that did not change is the same allocation
        // in both sets: no need to compare its content.
        let same = old
            .get_shared(key.kind, &key.mesh, &key.name)
            .is_some_and(|o| Arc::ptr_eq(o, r) || (o.spec == r.spec && o.meta.creation_time == r.meta.creation_time));
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

    /// A gateway `gw` in mesh `a` routing to `web`, an unused Secret, and a
    /// mesh `b` with a gateway of its own.
    const BASE: &str = "type: Mesh\nname: a\n---\ntype: Mesh\nname: b\n---\n\
type: Dataplane\nmesh: a\nname: gw\nnetworking: {address: 127.0.0.1, gateway: {type: BUILTIN, tags: {kuma.io/service: gw}}}\n---\n\
type: MeshGateway\nmesh: a\nname: gw\nselectors: [{match: {kuma.io/service: gw}}]\nconf: {listeners: [{port: 8080, protocol: HTTP}]}\n---\n\
type: MeshGatewayRoute\nmesh: a\nname: r\nselectors: [{match: {kuma.io/service: gw}}]\nconf: {http: {rules: [{matches: [{path: {match: PREFIX, value: /}}], backends: [{destination: {kuma.io/service: web}}]}]}}\n---\n\
type: Dataplane\nmesh: a\nname: web\nnetworking: {address: 127.0.0.1, inbound: [{port: 9000, tags: {kuma.io/service: web}}]}\n---\n\
type: Secret\nmesh: a\nname: unused\ndata: aGk=\n---\n\
type: Dataplane\nmesh: b\nname: gw\nnetworking: {address: 127.0.0.1, gateway: {type: BUILTIN, tags: {kuma.io/service: gw}}}\n";

    fn node(mesh: &str) -> NodeId {
        NodeId { mesh: mesh.into(), name: "gw".into() }
    }

    /// Whether `node` is translated again after the set became `yaml`,
    /// having last been translated at the generation before.
    fn retranslated(source: &ResourceSetSource, node: &NodeId, yaml: &str) -> bool {
        let since = source.generation();
        source.publish(set(yaml));
        source.snapshot(node, Some(since)).unwrap().is_some()
    }

    #[test]
    fn only_changes_to_what_a_gateway_read_translate_it_again() {
        let source = ResourceSetSource::new(set(BASE));
        let (a, b) = (node("a"), node("b"));
        assert!(source.snapshot(&a, None).unwrap().is_some() && source.snapshot(&b, None).unwrap().is_some());
        assert!(!retranslated(&source, &a, BASE), "the same resources again");
        let unused = BASE.replace("name: unused\ndata: aGk=", "name: unused\ndata: aG8=");
        assert!(!retranslated(&source, &a, &unused), "a Secret of its mesh that it does not use");
        let egress =
            format!("{unused}---\ntype: ZoneEgress\nname: e\nnetworking: {{address: 127.0.0.1, port: 10002}}\n");
        assert!(!retranslated(&source, &a, &egress), "a ZoneEgress, with no ExternalService through it");
        let moved = egress.replace("port: 9000", "port: 9001");
        assert!(retranslated(&source, &a, &moved), "a data plane of its mesh (an endpoint)");
        let logging = moved.replace(
            "type: Mesh\nname: a\n",
            "type: Mesh\nname: a\nlogging: {backends: [{name: f, type: file, conf: {path: /tmp/x}}]}\n",
        );
        assert!(retranslated(&source, &a, &logging), "its Mesh");
        let route = logging.replace("value: /}", "value: /api}");
        assert!(retranslated(&source, &a, &route), "a route");
        let removed = route.replace("type: Secret\nmesh: a\nname: unused\ndata: aG8=\n---\n", "");
        assert!(!retranslated(&source, &a, &removed), "removing what it never read");
        assert!(source.snapshot(&b, Some(1)).unwrap().is_none(), "mesh a's changes never reach mesh b's gateway");
    }

    #[test]
    fn what_a_node_kept_for_reuse_is_dropped_once_no_stream_serves_it() {
        let source = ResourceSetSource::new(set(BASE));
        let a = node("a");
        let counts = || source.node(&a).lock().unwrap().reuse.last_counts();
        let held = source.snapshot(&a, None).unwrap();
        source.publish(set(BASE));
        assert_eq!(counts(), (0, 1), "served: its host is kept");
        drop(held);
        source.publish(set(BASE));
        assert_eq!(counts(), (0, 0), "no stream holds its snapshot");
        assert!(source.snapshot(&a, None).unwrap().is_some(), "translated again when it comes back");
        assert_eq!(counts(), (0, 1));
    }

    #[test]
    fn a_node_behind_the_kept_history_or_the_last_translation_is_translated_again() {
        let source = ResourceSetSource::new(set(BASE));
        let a = node("a");
        source.snapshot(&a, None).unwrap();
        for _ in 0..HISTORY + 1 {
            source.publish(set(BASE));
        }
        assert!(source.snapshot(&a, Some(1)).unwrap().is_some(), "generation 1 is older than the history");
        let now = source.generation();
        assert!(source.snapshot(&a, Some(now)).unwrap().is_none());
        assert!(source.snapshot(&a, Some(now - 1)).unwrap().is_some(), "a stream that holds an older snapshot");
    }

    #[test]
    fn other_meshes_cas_reach_a_cross_mesh_gateway() {
        use base64::Engine as _;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/certs");
        let data = |f: &str| base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join(f)).unwrap());
        let mesh = |name: &str, ca: &str| {
            format!(
                "type: Mesh\nname: {name}\nmtls: {{enabledBackend: ca, backends: [{{name: ca, type: builtin}}]}}\n---\n\
type: Secret\nmesh: {name}\nname: {name}.ca-builtin-cert-ca\ndata: {}\n---\ntype: Secret\nmesh: {name}\nname: {name}.ca-builtin-key-ca\ndata: {}\n---\n",
                data(&format!("mesh-ca-{ca}.crt")),
                data(&format!("mesh-ca-{ca}.key"))
            )
        };
        let gateway = "type: Dataplane\nmesh: b\nname: gw\nnetworking: {address: 127.0.0.1, gateway: {type: BUILTIN, tags: {kuma.io/service: gw}}}\n---\n\
type: MeshGateway\nmesh: b\nname: gw\nselectors: [{match: {kuma.io/service: gw}}]\nconf: {listeners: [{port: 8080, protocol: HTTP, crossMesh: true, hostname: x.example.com}]}\n---\n\
type: Secret\nmesh: a\nname: unused\ndata: aGk=\n";
        let before = format!("{}{}{gateway}", mesh("a", "ec"), mesh("b", "rsa"));
        let source = ResourceSetSource::new(set(&before));
        let b = node("b");
        assert!(source.snapshot(&b, None).unwrap().is_some());
        let unused = before.replace("name: unused\ndata: aGk=", "name: unused\ndata: aG8=");
        assert!(!retranslated(&source, &b, &unused), "a Secret of mesh a that is no CA");
        let new_ca = format!("{}{}{gateway}", mesh("a", "rsa"), mesh("b", "rsa")).replace("data: aGk=", "data: aG8=");
        assert!(retranslated(&source, &b, &new_ca), "mesh a's CA, which the crossMesh listener trusts");
    }

    #[test]
    fn streams_share_one_snapshot_and_equal_lists_are_held_once() {
        let two = format!(
            "{BASE}---\ntype: Dataplane\nmesh: a\nname: gw2\nnetworking: {{address: 127.0.0.1, gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw}}}}}}\n"
        );
        let source = ResourceSetSource::new(set(&two));
        let a = node("a");
        let first = source.snapshot(&a, None).unwrap().unwrap();
        let second = source.snapshot(&a, None).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &second), "a second stream of the node gets the same snapshot");
        // Another data plane of the same gateway: its own snapshot (it is
        // translated), with the equal lists shared.
        let other = source.snapshot(&NodeId { mesh: "a".into(), name: "gw2".into() }, None).unwrap().unwrap();
        for t in [ResourceType::Cluster, ResourceType::Route, ResourceType::Listener] {
            assert!(Arc::ptr_eq(first.resources(t), other.resources(t)), "{t:?}");
        }
        // A route change: the new snapshot shares the unchanged lists with the old.
        let since = source.generation();
        source.publish(set(&two.replace("value: /}", "value: /api}")));
        let changed = source.snapshot(&a, Some(since)).unwrap().unwrap();
        assert!(!Arc::ptr_eq(first.resources(ResourceType::Route), changed.resources(ResourceType::Route)));
        assert!(Arc::ptr_eq(first.resources(ResourceType::Cluster), changed.resources(ResourceType::Cluster)));
        // Once no stream holds it, it is freed.
        let weak = Arc::downgrade(&changed);
        drop((first, second, other, changed));
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn a_first_request_always_gets_an_answer() {
        let source = ResourceSetSource::new(set(BASE));
        let missing = NodeId { mesh: "a".into(), name: "missing".into() };
        assert!(matches!(source.snapshot(&missing, None), Err(TranslateError::NoDataplane { .. })));
        assert!(source.snapshot(&missing, Some(1)).is_err(), "a failed translation is never taken as current");
    }
}
