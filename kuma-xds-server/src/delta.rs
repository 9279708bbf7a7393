//! The incremental ("delta") Aggregated Discovery Service as a pure state
//! machine: requests and snapshots in, responses out, no sockets.
//!
//! Per resource type it tracks what Envoy subscribed to (every resource,
//! "wildcard", or names) and which version of each resource Envoy has.
//! A response carries only the resources whose version differs, and the
//! names of those that are gone:
//! - a request without a nonce (re)subscribes; the first one of a type
//!   also says, in `initial_resource_versions`, what an Envoy that
//!   reconnected already has, so it is sent only what changed since;
//! - a request naming a nonce sent is an ACK, or a NACK when it carries
//!   `error_detail`; on a NACK the resources of that response are taken
//!   back to the versions Envoy kept, and that content is never sent again
//!   ([`NodeHistory`]): the last accepted one is sent in its place;
//! - any other nonce is stale and ignored.
//!
//! Updates are make-before-break, as in State of the World: new and changed
//! clusters and endpoints first, then everything else, then the removal of
//! clusters and endpoints no longer used.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use kuma_xds_gen::{EncodedResources, EncodedSnapshot, ResourceType};

use crate::ads::{Outcome, RequestKind};
use crate::history::NodeHistory;

/// The name that subscribes to every resource of a type.
const WILDCARD: &str = "*";

/// Responses of a type not yet answered that a stream remembers; a client
/// that never answers cannot grow it further.
const MAX_PENDING: usize = 16;

/// A response sent and not yet answered.
#[derive(Debug)]
struct Pending {
    /// Its `system_version_info`.
    version: String,
    /// The whole content it brought Envoy to.
    content: Arc<EncodedResources>,
    /// What Envoy had of each resource it changed (`None`: nothing), to go
    /// back to on a NACK.
    undo: Vec<(String, Option<String>)>,
    /// What it set them to.
    redo: Vec<(String, Option<String>)>,
}

#[derive(Debug, Default)]
struct TypeState {
    /// A first request came.
    subscribed: bool,
    /// Envoy wants every resource of the type.
    wildcard: bool,
    /// Names Envoy subscribed to.
    names: BTreeSet<String>,
    /// What Envoy has: resource name -> version.
    known: BTreeMap<String, String>,
    /// Responses sent and not answered, by nonce.
    pending: BTreeMap<u64, Pending>,
    /// `system_version_info` of the last response.
    sent: Option<String>,
    /// The last version Envoy acknowledged (or resumed with).
    acked: Option<String>,
    /// The last rejection: (version kept, detail).
    nacked: Option<(String, String)>,
}

impl TypeState {
    fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    /// True when what Envoy has is `content` (the part it wants).
    fn in_sync(&self, content: &EncodedResources) -> bool {
        content.items().iter().filter(|r| self.wants(&r.name)).all(|r| self.known.get(&r.name) == Some(&r.version))
            && self.known.keys().all(|n| content.get(n).is_some())
    }
}

/// Which part of a type's difference a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// New and changed resources, and the removals.
    All,
    /// New and changed resources only.
    Upserts,
    /// Removals only.
    Removals,
}

/// One Envoy's incremental ADS stream.
#[derive(Debug, Default)]
pub struct DeltaStream {
    types: BTreeMap<ResourceType, TypeState>,
    nonce: u64,
    history: NodeHistory,
}

impl DeltaStream {
    /// A new stream with nothing subscribed, and a history of its own.
    pub fn new() -> Self {
        DeltaStream::default()
    }

    /// A new stream sharing `history` with the other streams of its data
    /// plane, past and present.
    pub fn with_history(history: NodeHistory) -> Self {
        DeltaStream { history, ..DeltaStream::default() }
    }

    /// The accept/reject record this stream shares.
    pub fn history(&self) -> &NodeHistory {
        &self.history
    }

    /// The content version last sent for a type.
    pub fn sent_version(&self, t: ResourceType) -> Option<&str> {
        self.types.get(&t).and_then(|s| s.sent.as_deref())
    }

    /// The last content version Envoy acknowledged for a type.
    pub fn acked(&self, t: ResourceType) -> Option<&str> {
        self.types.get(&t).and_then(|s| s.acked.as_deref())
    }

    /// The last rejection for a type: (version Envoy kept, error).
    pub fn nacked(&self, t: ResourceType) -> Option<(&str, &str)> {
        self.types.get(&t).and_then(|s| s.nacked.as_ref()).map(|(v, d)| (v.as_str(), d.as_str()))
    }

    /// The versions Envoy has of the resources of a type, by name.
    pub fn known(&self, t: ResourceType) -> Option<&BTreeMap<String, String>> {
        self.types.get(&t).map(|s| &s.known)
    }

    /// The content of `t` to bring Envoy to: the snapshot's, unless that was
    /// rejected before (then the last accepted one).
    fn content(&self, t: ResourceType, snapshot: &EncodedSnapshot) -> Arc<EncodedResources> {
        self.history.servable(t, snapshot.resources(t).clone())
    }

    /// A response with `part` of what differs between what Envoy has of `t`
    /// and `content`; `None` when nothing does, unless `always`.
    fn respond(
        &mut self,
        t: ResourceType,
        content: Arc<EncodedResources>,
        part: Part,
        always: bool,
    ) -> Option<DeltaDiscoveryResponse> {
        let state = self.types.get_mut(&t)?;
        let mut resources = Vec::new();
        let mut changes: Vec<(String, Option<String>)> = Vec::new();
        if part != Part::Removals {
            for r in content.items().iter().filter(|r| state.wants(&r.name)) {
                if state.known.get(&r.name) != Some(&r.version) {
                    resources.push(Resource {
                        name: r.name.clone(),
                        version: r.version.clone(),
                        resource: Some(r.any.clone()),
                        ..Default::default()
                    });
                    changes.push((r.name.clone(), Some(r.version.clone())));
                }
            }
        }
        let mut removed = Vec::new();
        if part != Part::Upserts {
            for name in state.known.keys().filter(|n| content.get(n).is_none()) {
                removed.push(name.clone());
                changes.push((name.clone(), None));
            }
        }
        if changes.is_empty() && !always {
            // Envoy has exactly this content (after a rejected response was
            // taken back, say): nothing to send, and nothing outstanding.
            if state.pending.is_empty() && state.in_sync(&content) {
                state.sent = Some(content.version().to_string());
                state.acked = state.sent.clone();
            }
            return None;
        }
        let mut undo = Vec::with_capacity(changes.len());
        for (name, version) in &changes {
            let before = match version {
                Some(v) => state.known.insert(name.clone(), v.clone()),
                None => state.known.remove(name),
            };
            undo.push((name.clone(), before));
        }
        self.nonce += 1;
        let version = content.version().to_string();
        state.sent = Some(version.clone());
        if state.pending.len() >= MAX_PENDING {
            state.pending.pop_first();
        }
        state.pending.insert(self.nonce, Pending { version: version.clone(), content, undo, redo: changes });
        Some(DeltaDiscoveryResponse {
            system_version_info: version,
            resources,
            type_url: t.type_url(),
            removed_resources: removed,
            nonce: self.nonce.to_string(),
            ..Default::default()
        })
    }

    /// Handles one request from Envoy against the current snapshot.
    pub fn handle_request(
        &mut self,
        request: &DeltaDiscoveryRequest,
        snapshot: &EncodedSnapshot,
    ) -> Outcome<DeltaDiscoveryResponse> {
        let Some(t) = ResourceType::from_type_url(&request.type_url) else {
            return Outcome { resource_type: None, kind: RequestKind::UnknownType, responses: Vec::new() };
        };
        let history = self.history.clone();
        let state = self.types.entry(t).or_default();
        let mut kind = RequestKind::Subscribe;
        if !request.response_nonce.is_empty() {
            let pending = request.response_nonce.parse().ok().and_then(|n: u64| state.pending.remove(&n));
            kind = match (pending, &request.error_detail) {
                (None, _) => RequestKind::Stale,
                (Some(p), Some(status)) => {
                    history.reject(t, &p.version);
                    // Envoy kept what it had: take back what this response
                    // changed, unless a later response changed it again.
                    for ((name, before), (_, after)) in p.undo.into_iter().zip(p.redo).rev() {
                        if state.known.get(&name) == after.as_ref() {
                            match before {
                                Some(v) => state.known.insert(name, v),
                                None => state.known.remove(&name),
                            };
                        }
                    }
                    let kept = state.acked.clone().unwrap_or_default();
                    state.nacked = Some((kept.clone(), status.message.clone()));
                    RequestKind::Nack { version: kept, detail: status.message.clone() }
                }
                (Some(p), None) => {
                    history.accept(t, &p.content);
                    state.acked = Some(p.version.clone());
                    RequestKind::Ack { version: p.version }
                }
            };
        }
        let first = !state.subscribed;
        if first {
            state.subscribed = true;
            state.known = request.initial_resource_versions.clone().into_iter().collect();
            // A first request naming nothing asks for everything.
            state.wildcard = request.resource_names_subscribe.is_empty();
        }
        let mut subscription_changed = first;
        for name in &request.resource_names_subscribe {
            subscription_changed |= if name == WILDCARD {
                !std::mem::replace(&mut state.wildcard, true)
            } else {
                state.names.insert(name.clone())
            };
        }
        for name in &request.resource_names_unsubscribe {
            if name == WILDCARD {
                state.wildcard = false;
            } else {
                state.names.remove(name);
            }
        }
        // What Envoy no longer wants it drops itself.
        if !request.resource_names_unsubscribe.is_empty() {
            let wanted: Vec<String> = state.known.keys().filter(|n| state.wants(n)).cloned().collect();
            state.known.retain(|n, _| wanted.contains(n));
        }
        let mut responses = Vec::new();
        if subscription_changed {
            let content = self.content(t, snapshot);
            // Envoy waits for a first answer before it starts (even one with
            // nothing in it), unless it reconnected holding resources.
            let always = first && request.initial_resource_versions.is_empty();
            responses.extend(self.respond(t, content.clone(), Part::All, always));
            if first && responses.is_empty() {
                // It reconnected with exactly what it should have.
                let state = self.types.entry(t).or_default();
                state.sent = Some(content.version().to_string());
                state.acked = state.sent.clone();
                self.history.accept(t, &content);
                kind = RequestKind::Resume { version: content.version().to_string() };
            }
        }
        Outcome { resource_type: Some(t), kind, responses }
    }

    /// Responses that bring Envoy from what it has to `snapshot`, for the
    /// types it subscribed to, in make-before-break order.
    pub fn handle_snapshot(&mut self, snapshot: &EncodedSnapshot) -> Vec<DeltaDiscoveryResponse> {
        let mut out = Vec::new();
        let subscribed = |s: &Self, t| s.types.get(&t).is_some_and(|st| st.subscribed);
        let mut step = |s: &mut Self, t, part| {
            if subscribed(s, t) {
                let content = s.content(t, snapshot);
                out.extend(s.respond(t, content, part, false));
            }
        };
        // 1. New and changed clusters and endpoints, removing nothing yet.
        for t in [ResourceType::Cluster, ResourceType::Endpoint] {
            step(self, t, Part::Upserts);
        }
        // 2. Everything that refers to clusters.
        for t in [ResourceType::Secret, ResourceType::Runtime, ResourceType::Listener, ResourceType::Route] {
            step(self, t, Part::All);
        }
        // 3. The clusters and endpoints nothing uses any more.
        for t in [ResourceType::Cluster, ResourceType::Endpoint] {
            step(self, t, Part::Removals);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuma_xds_gen::GatewaySnapshot;
    use kuma_xds_gen::envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use kuma_xds_gen::envoy_types::pb::envoy::config::listener::v3::Listener;
    use kuma_xds_gen::envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
    use kuma_xds_gen::envoy_types::pb::google::rpc::Status;

    fn snapshot(clusters: &[(&str, u32)], routes: &[&str]) -> EncodedSnapshot {
        let mut s = GatewaySnapshot::default();
        for (c, timeout) in clusters {
            let cluster = Cluster {
                name: c.to_string(),
                per_connection_buffer_limit_bytes: Some(kuma_xds_gen::envoy_types::pb::google::protobuf::UInt32Value {
                    value: *timeout,
                }),
                ..Default::default()
            };
            s.clusters.insert(c.to_string(), cluster);
        }
        for r in routes {
            s.routes.insert(r.to_string(), RouteConfiguration { name: r.to_string(), ..Default::default() });
        }
        s.listeners.insert("l".into(), Listener { name: "l".into(), ..Default::default() });
        EncodedSnapshot::encode(&s)
    }

    fn request(t: ResourceType, subscribe: &[&str], nonce: &str) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            type_url: t.type_url(),
            resource_names_subscribe: subscribe.iter().map(|n| n.to_string()).collect(),
            response_nonce: nonce.into(),
            ..Default::default()
        }
    }

    fn names(r: &DeltaDiscoveryResponse) -> Vec<&str> {
        r.resources.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn only_what_changed_is_sent_and_removals_come_last() {
        let snap = snapshot(&[("a", 1), ("b", 1)], &["r"]);
        let mut ds = DeltaStream::new();
        let out = ds.handle_request(&request(ResourceType::Cluster, &[], ""), &snap);
        assert_eq!(out.kind, RequestKind::Subscribe);
        assert_eq!(names(&out.responses[0]), ["a", "b"]);
        let nonce = out.responses[0].nonce.clone();
        let ack = ds.handle_request(&request(ResourceType::Cluster, &[], &nonce), &snap);
        assert!(matches!(ack.kind, RequestKind::Ack { .. }) && ack.responses.is_empty());
        let routes = ds.handle_request(&request(ResourceType::Route, &["r"], ""), &snap);
        assert_eq!(names(&routes.responses[0]), ["r"]);
        // b changes, c is new, a is removed.
        let next = snapshot(&[("b", 2), ("c", 1)], &["r"]);
        let sent = ds.handle_snapshot(&next);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(names(&sent[0]), ["b", "c"]);
        assert!(sent[0].removed_resources.is_empty(), "nothing removed before the rest is updated");
        assert!(sent[1].resources.is_empty());
        assert_eq!(sent[1].removed_resources, ["a"]);
        assert!(ds.handle_snapshot(&next).is_empty(), "the same content again sends nothing");
    }

    #[test]
    fn a_reconnecting_envoy_gets_only_what_it_lacks() {
        let snap = snapshot(&[("a", 1), ("b", 1)], &[]);
        let mut first = DeltaStream::new();
        let out = first.handle_request(&request(ResourceType::Cluster, &[], ""), &snap);
        let has: std::collections::HashMap<String, String> =
            out.responses[0].resources.iter().map(|r| (r.name.clone(), r.version.clone())).collect();
        let mut again = DeltaStream::new();
        let mut resume = request(ResourceType::Cluster, &[], "");
        resume.initial_resource_versions = has.clone();
        let out = again.handle_request(&resume, &snap);
        assert!(matches!(out.kind, RequestKind::Resume { .. }), "{:?}", out.kind);
        assert!(out.responses.is_empty());
        // Reconnecting after a change: only the change.
        let changed = snapshot(&[("a", 1), ("c", 1)], &[]);
        let mut later = DeltaStream::new();
        let out = later.handle_request(&resume, &changed);
        assert_eq!(names(&out.responses[0]), ["c"]);
        assert_eq!(out.responses[0].removed_resources, ["b"]);
    }

    #[test]
    fn a_nack_takes_back_what_envoy_refused_and_it_is_not_sent_again() {
        let good = snapshot(&[("a", 1)], &[]);
        let mut ds = DeltaStream::new();
        let out = ds.handle_request(&request(ResourceType::Cluster, &[], ""), &good);
        ds.handle_request(&request(ResourceType::Cluster, &[], &out.responses[0].nonce), &good);
        let bad = snapshot(&[("a", 2)], &[]);
        let sent = ds.handle_snapshot(&bad);
        let mut nack = request(ResourceType::Cluster, &[], &sent[0].nonce);
        nack.error_detail = Some(Status { code: 3, message: "bad cluster".into(), details: vec![] });
        let out = ds.handle_request(&nack, &bad);
        assert!(matches!(out.kind, RequestKind::Nack { .. }));
        assert!(out.responses.is_empty());
        assert_eq!(
            ds.known(ResourceType::Cluster).unwrap()["a"],
            good.resources(ResourceType::Cluster).items()[0].version
        );
        // The same bad content is not sent again; a new stream of the same
        // data plane gets the accepted content.
        assert!(ds.handle_snapshot(&bad).is_empty());
        // Back to the good content: nothing to send, and Envoy is up to date.
        assert!(ds.handle_snapshot(&good).is_empty());
        assert_eq!(ds.sent_version(ResourceType::Cluster), ds.acked(ResourceType::Cluster));
        let mut other = DeltaStream::with_history(ds.history().clone());
        let out = other.handle_request(&request(ResourceType::Cluster, &[], ""), &bad);
        assert_eq!(out.responses[0].resources[0].version, good.resources(ResourceType::Cluster).items()[0].version);
    }

    #[test]
    fn subscriptions_by_name_and_unsubscribing() {
        let snap = snapshot(&[], &["r1", "r2"]);
        let mut ds = DeltaStream::new();
        let out = ds.handle_request(&request(ResourceType::Route, &["r1"], ""), &snap);
        assert_eq!(names(&out.responses[0]), ["r1"]);
        let out = ds.handle_request(&request(ResourceType::Route, &["r2"], ""), &snap);
        assert_eq!(names(&out.responses[0]), ["r2"], "only the new name");
        let mut unsubscribe = request(ResourceType::Route, &[], "");
        unsubscribe.resource_names_unsubscribe = vec!["r1".into()];
        assert!(ds.handle_request(&unsubscribe, &snap).responses.is_empty());
        assert_eq!(ds.known(ResourceType::Route).unwrap().keys().collect::<Vec<_>>(), ["r2"]);
        let out = ds.handle_request(&request(ResourceType::Route, &["missing"], ""), &snap);
        assert!(out.responses.is_empty(), "a name that does not exist");
        assert_eq!(ds.handle_request(&request(ResourceType::Route, &[], "99"), &snap).kind, RequestKind::Stale);
    }
}
