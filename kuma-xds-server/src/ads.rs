//! The Aggregated Discovery Service (State of the World) as a pure state
//! machine: requests and snapshots in, responses out, no sockets. The gRPC
//! service ([`crate::AdsService`]) only moves messages between this and Envoy.
//!
//! Per resource type it tracks what Envoy subscribed to, what was sent
//! (version and nonce), and what Envoy acknowledged or rejected:
//! - a request with an empty nonce is a (re)subscription: it is answered;
//! - a request whose nonce is the last one sent is an ACK, or a NACK when it
//!   carries `error_detail`; a NACK is recorded and nothing is resent, so
//!   Envoy keeps its last good config until the next change;
//! - a request with any other nonce is stale and ignored;
//! - a version any Envoy of the data plane rejected is never sent again
//!   ([`NodeHistory`]): the last accepted one is sent in its place.
//!
//! Versions are content hashes of the resources sent, so equal content is
//! never sent twice. Updates are make-before-break: clusters and endpoints
//! go first (still including removed ones), then secrets and runtime, then
//! listeners and routes, and only then the clusters without the removed ones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use kuma_xds_gen::{EncodedResources, EncodedSnapshot, ResourceType};

use crate::history::NodeHistory;

/// What a request was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// A first request, or a new subscription for the type.
    Subscribe,
    /// A first request naming the version Envoy already runs, which is the
    /// current one (an Envoy that reconnected, to this control plane or
    /// another replica): nothing is sent until something changes.
    Resume {
        /// The version Envoy runs.
        version: String,
    },
    /// Envoy accepted the version.
    Ack {
        /// The accepted version.
        version: String,
    },
    /// Envoy rejected the last response; it keeps its previous config.
    Nack {
        /// The version Envoy still runs (`""` when none).
        version: String,
        /// Envoy's error message.
        detail: String,
    },
    /// A reply to an older response; ignored.
    Stale,
    /// A type this server does not serve; ignored.
    UnknownType,
}

/// The outcome of one request: State of the World responses
/// ([`AdsStream`]) or incremental ones ([`crate::DeltaStream`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome<R = DiscoveryResponse> {
    /// The resource type, when known.
    pub resource_type: Option<ResourceType>,
    /// What the request was.
    pub kind: RequestKind,
    /// Responses to send, in order.
    pub responses: Vec<R>,
}

#[derive(Debug, Default, Clone)]
struct TypeState {
    /// Requested names; empty means every resource of the type.
    names: BTreeSet<String>,
    /// Version and nonce of the last response.
    sent: Option<(String, String)>,
    /// The resources of the last response, recorded as accepted on its ACK
    /// (shared with the snapshot when Envoy asked for all of them).
    sent_resources: Arc<EncodedResources>,
    /// Last version Envoy acknowledged.
    acked: Option<String>,
    /// Last rejection: (version, detail).
    nacked: Option<(String, String)>,
}

/// One Envoy's ADS stream.
#[derive(Debug, Default)]
pub struct AdsStream {
    types: BTreeMap<ResourceType, TypeState>,
    nonce: u64,
    history: NodeHistory,
}

impl AdsStream {
    /// A new stream with nothing subscribed, and a history of its own.
    pub fn new() -> Self {
        AdsStream::default()
    }

    /// A new stream sharing `history` with the other streams of its data
    /// plane, past and present: what one Envoy rejected, none is sent again.
    pub fn with_history(history: NodeHistory) -> Self {
        AdsStream { history, ..AdsStream::default() }
    }

    /// The accept/reject record this stream shares.
    pub fn history(&self) -> &NodeHistory {
        &self.history
    }

    /// What to send for `t` from `snapshot`: the subscribed names, unless
    /// that content was rejected before (then the last accepted one).
    fn content(&self, t: ResourceType, snapshot: &EncodedSnapshot) -> Arc<EncodedResources> {
        let all = snapshot.resources(t);
        let selected = match self.types.get(&t).map(|s| &s.names) {
            Some(names) => selected(names, all),
            None => all.clone(),
        };
        self.history.servable(t, selected)
    }

    /// The last version Envoy acknowledged for a type.
    pub fn acked(&self, t: ResourceType) -> Option<&str> {
        self.types.get(&t).and_then(|s| s.acked.as_deref())
    }

    /// The last rejection for a type: (version Envoy kept, error).
    pub fn nacked(&self, t: ResourceType) -> Option<(&str, &str)> {
        self.types.get(&t).and_then(|s| s.nacked.as_ref()).map(|(v, d)| (v.as_str(), d.as_str()))
    }

    /// The version last sent for a type.
    pub fn sent_version(&self, t: ResourceType) -> Option<&str> {
        self.types.get(&t).and_then(|s| s.sent.as_ref()).map(|(v, _)| v.as_str())
    }

    fn respond(&mut self, t: ResourceType, resources: Arc<EncodedResources>) -> DiscoveryResponse {
        self.nonce += 1;
        let version = resources.version().to_string();
        let nonce = self.nonce.to_string();
        let response = DiscoveryResponse {
            version_info: version.clone(),
            resources: resources.items().iter().map(|r| r.any.clone()).collect(),
            type_url: t.type_url(),
            nonce: nonce.clone(),
            ..Default::default()
        };
        let state = self.types.entry(t).or_default();
        state.sent = Some((version, nonce));
        state.sent_resources = resources;
        response
    }

    /// A response for `t` if what Envoy should have differs from what was sent.
    fn respond_if_changed(&mut self, t: ResourceType, resources: Arc<EncodedResources>) -> Option<DiscoveryResponse> {
        let state = self.types.get(&t)?;
        if state.sent.as_ref().is_some_and(|(v, _)| v == resources.version()) {
            return None;
        }
        Some(self.respond(t, resources))
    }

    /// Handles one request from Envoy against the current snapshot.
    pub fn handle_request(&mut self, request: &DiscoveryRequest, snapshot: &EncodedSnapshot) -> Outcome {
        let Some(t) = ResourceType::from_type_url(&request.type_url) else {
            return Outcome { resource_type: None, kind: RequestKind::UnknownType, responses: Vec::new() };
        };
        let names: BTreeSet<String> = request.resource_names.iter().cloned().collect();
        let state = self.types.entry(t).or_default();
        let outcome = |kind, responses| Outcome { resource_type: Some(t), kind, responses };
        if request.response_nonce.is_empty() {
            state.names = names;
            let resources = self.content(t, snapshot);
            let version = resources.version().to_string();
            if !request.version_info.is_empty() && request.version_info == version {
                // Versions are content hashes: Envoy has exactly this.
                self.history.accept(t, &resources);
                let state = self.types.entry(t).or_default();
                state.sent = Some((version.clone(), String::new()));
                state.sent_resources = resources;
                state.acked = Some(version.clone());
                return outcome(RequestKind::Resume { version }, Vec::new());
            }
            let response = self.respond(t, resources);
            return outcome(RequestKind::Subscribe, vec![response]);
        }
        if state.sent.as_ref().is_none_or(|(_, nonce)| *nonce != request.response_nonce) {
            return outcome(RequestKind::Stale, Vec::new());
        }
        let sent_version = state.sent.as_ref().map(|(v, _)| v.clone()).unwrap_or_default();
        let kind = match &request.error_detail {
            Some(status) => {
                // The rejected version is the one this nonce carried;
                // `version_info` is the one Envoy keeps.
                self.history.reject(t, &sent_version);
                state.nacked = Some((request.version_info.clone(), status.message.clone()));
                RequestKind::Nack { version: request.version_info.clone(), detail: status.message.clone() }
            }
            None => {
                self.history.accept(t, &state.sent_resources);
                state.acked = Some(request.version_info.clone());
                RequestKind::Ack { version: request.version_info.clone() }
            }
        };
        let mut responses = Vec::new();
        if state.names != names {
            // A new subscription set (Envoy asks for more or fewer routes or
            // endpoints): answer it whatever happened to the last response.
            state.names = names;
            let resources = self.content(t, snapshot);
            responses.extend(self.respond_if_changed(t, resources));
        }
        outcome(kind, responses)
    }

    /// Responses that bring Envoy from `previous` to `snapshot`, for the
    /// types it subscribed to, in make-before-break order.
    pub fn handle_snapshot(
        &mut self,
        previous: &EncodedSnapshot,
        snapshot: &EncodedSnapshot,
    ) -> Vec<DiscoveryResponse> {
        let mut out = Vec::new();
        let subscribed = |s: &Self, t| s.types.get(&t).is_some_and(|st| st.sent.is_some());
        // 1. Clusters and endpoints: the new ones, plus the removed ones still in use.
        for t in [ResourceType::Cluster, ResourceType::Endpoint] {
            if !subscribed(self, t) {
                continue;
            }
            let (old, new) = (self.content(t, previous), self.content(t, snapshot));
            let merged = if old.items().iter().all(|r| new.get(&r.name).is_some()) {
                new
            } else {
                // The new list, and the removed ones (EncodedResources::new
                // keeps the last of equal names: the new ones).
                let items = old.items().iter().chain(new.items()).cloned().collect();
                Arc::new(EncodedResources::new(items))
            };
            out.extend(self.respond_if_changed(t, merged));
        }
        // 2. Everything that refers to clusters, new.
        for t in [ResourceType::Secret, ResourceType::Runtime, ResourceType::Listener, ResourceType::Route] {
            if subscribed(self, t) {
                let resources = self.content(t, snapshot);
                out.extend(self.respond_if_changed(t, resources));
            }
        }
        // 3. Clusters and endpoints without the removed ones.
        for t in [ResourceType::Cluster, ResourceType::Endpoint] {
            if subscribed(self, t) {
                let resources = self.content(t, snapshot);
                out.extend(self.respond_if_changed(t, resources));
            }
        }
        out
    }
}

/// Picks the resources named in `names` (all when empty); shares the list
/// itself when every one is named.
pub(crate) fn selected(names: &BTreeSet<String>, all: &Arc<EncodedResources>) -> Arc<EncodedResources> {
    if names.is_empty() || all.items().iter().all(|r| names.contains(&r.name)) {
        return all.clone();
    }
    Arc::new(EncodedResources::new(all.items().iter().filter(|r| names.contains(&r.name)).cloned().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuma_xds_gen::envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use kuma_xds_gen::envoy_types::pb::envoy::config::listener::v3::Listener;
    use kuma_xds_gen::envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
    use kuma_xds_gen::envoy_types::pb::google::rpc::Status;

    fn snapshot(clusters: &[&str], routes: &[&str]) -> EncodedSnapshot {
        EncodedSnapshot::encode(&decoded(clusters, routes))
    }

    fn decoded(clusters: &[&str], routes: &[&str]) -> kuma_xds_gen::GatewaySnapshot {
        let mut s = kuma_xds_gen::GatewaySnapshot::default();
        for c in clusters {
            s.clusters.insert(c.to_string(), Cluster { name: c.to_string(), ..Default::default() });
        }
        for r in routes {
            s.routes.insert(r.to_string(), RouteConfiguration { name: r.to_string(), ..Default::default() });
        }
        s.listeners.insert("l".into(), Listener { name: "l".into(), ..Default::default() });
        s
    }

    fn request(t: ResourceType, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            type_url: t.type_url(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            version_info: version.into(),
            response_nonce: nonce.into(),
            ..Default::default()
        }
    }

    fn names(r: &DiscoveryResponse) -> Vec<String> {
        r.resources
            .iter()
            .map(|a| {
                if a.type_url == ResourceType::Cluster.type_url() {
                    <Cluster as prost::Message>::decode(a.value.as_slice()).unwrap().name
                } else {
                    <RouteConfiguration as prost::Message>::decode(a.value.as_slice()).unwrap().name
                }
            })
            .collect()
    }

    #[test]
    fn initial_fetch_ack_and_no_resend() {
        let snap = snapshot(&["a", "b"], &[]);
        let mut ads = AdsStream::new();
        let out = ads.handle_request(&request(ResourceType::Cluster, &[], "", ""), &snap);
        assert_eq!(out.kind, RequestKind::Subscribe);
        let r = &out.responses[0];
        assert_eq!(names(r), ["a", "b"]);
        assert_eq!(r.type_url, ResourceType::Cluster.type_url());
        let ack = ads.handle_request(&request(ResourceType::Cluster, &[], &r.version_info, &r.nonce), &snap);
        assert_eq!(ack.kind, RequestKind::Ack { version: r.version_info.clone() });
        assert!(ack.responses.is_empty());
        assert_eq!(ads.acked(ResourceType::Cluster), Some(r.version_info.as_str()));
        // The same content again sends nothing.
        assert!(ads.handle_snapshot(&snap, &snapshot(&["a", "b"], &[])).is_empty());
    }

    #[test]
    fn a_reconnecting_envoy_that_has_the_current_version_gets_nothing_until_a_change() {
        let snap = snapshot(&["a", "b"], &[]);
        let version = AdsStream::new().handle_request(&request(ResourceType::Cluster, &[], "", ""), &snap).responses[0]
            .version_info
            .clone();
        // A new stream (another replica), Envoy naming what it runs.
        let mut ads = AdsStream::new();
        let out = ads.handle_request(&request(ResourceType::Cluster, &[], &version, ""), &snap);
        assert_eq!(out.kind, RequestKind::Resume { version: version.clone() });
        assert!(out.responses.is_empty(), "nothing Envoy already has");
        assert_eq!(ads.acked(ResourceType::Cluster), Some(version.as_str()));
        // An older version is answered at once.
        let mut other = AdsStream::new();
        let out = other.handle_request(&request(ResourceType::Cluster, &[], "old", ""), &snap);
        assert_eq!(out.kind, RequestKind::Subscribe);
        assert_eq!(out.responses.len(), 1);
        // A change reaches the resumed stream, and its ACK is matched.
        let changed = snapshot(&["a", "c"], &[]);
        let sent = ads.handle_snapshot(&snap, &changed);
        let last = sent.last().expect("the change is sent");
        assert_eq!(names(last), ["a", "c"]);
        let ack = ads.handle_request(&request(ResourceType::Cluster, &[], &last.version_info, &last.nonce), &changed);
        assert_eq!(ack.kind, RequestKind::Ack { version: last.version_info.clone() });
    }

    #[test]
    fn nack_is_recorded_and_nothing_is_resent() {
        let snap = snapshot(&["a"], &[]);
        let mut ads = AdsStream::new();
        let r = ads.handle_request(&request(ResourceType::Cluster, &[], "", ""), &snap).responses.remove(0);
        let mut nack = request(ResourceType::Cluster, &[], "", &r.nonce);
        nack.error_detail = Some(Status { code: 3, message: "bad cluster".into(), details: vec![] });
        let out = ads.handle_request(&nack, &snap);
        assert_eq!(out.kind, RequestKind::Nack { version: String::new(), detail: "bad cluster".into() });
        assert!(out.responses.is_empty());
        assert_eq!(ads.nacked(ResourceType::Cluster), Some(("", "bad cluster")));
        // A fixed snapshot is sent.
        let fixed = snapshot(&["a2"], &[]);
        let sent = ads.handle_snapshot(&snap, &fixed);
        assert_eq!(sent.len(), 2, "make (a, a2) then break (a2)");
        assert_eq!(names(&sent[0]), ["a", "a2"]);
        assert_eq!(names(&sent[1]), ["a2"]);
    }

    #[test]
    fn a_rejected_version_is_never_sent_again_to_any_stream() {
        let history = NodeHistory::new();
        let good = snapshot(&[], &["r1"]);
        let mut first = AdsStream::with_history(history.clone());
        let r = first.handle_request(&request(ResourceType::Route, &[], "", ""), &good).responses.remove(0);
        first.handle_request(&request(ResourceType::Route, &[], &r.version_info, &r.nonce), &good);
        // A new config that Envoy rejects.
        let bad = snapshot(&[], &["r1", "bad"]);
        let sent = first.handle_snapshot(&good, &bad).remove(0);
        assert_eq!(names(&sent), ["bad", "r1"]);
        let mut nack = request(ResourceType::Route, &[], &r.version_info, &sent.nonce);
        nack.error_detail = Some(Status { code: 3, message: "bad regex".into(), details: vec![] });
        first.handle_request(&nack, &bad);
        assert_eq!(history.rejections(), [(ResourceType::Route, 1)].into());
        // Envoy restarts: the new stream gets the accepted routes, not the rejected ones.
        let mut second = AdsStream::with_history(history.clone());
        let again = second.handle_request(&request(ResourceType::Route, &[], "", ""), &bad).responses.remove(0);
        assert_eq!(names(&again), ["r1"]);
        assert_eq!(again.version_info, r.version_info);
        // A fixed config is sent at once.
        let fixed = snapshot(&[], &["r1", "fixed"]);
        let update = second.handle_snapshot(&bad, &fixed);
        assert_eq!(names(&update[0]), ["fixed", "r1"]);
    }

    #[test]
    fn stale_nonces_and_unknown_types_are_ignored() {
        let snap = snapshot(&["a"], &[]);
        let mut ads = AdsStream::new();
        ads.handle_request(&request(ResourceType::Cluster, &[], "", ""), &snap);
        let out = ads.handle_request(&request(ResourceType::Cluster, &[], "v", "999"), &snap);
        assert_eq!(out.kind, RequestKind::Stale);
        assert!(out.responses.is_empty());
        let mut other = request(ResourceType::Cluster, &[], "", "");
        other.type_url = "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration".into();
        assert_eq!(ads.handle_request(&other, &snap).kind, RequestKind::UnknownType);
    }

    #[test]
    fn resource_names_select_and_resubscribe() {
        let snap = snapshot(&[], &["r1", "r2"]);
        let mut ads = AdsStream::new();
        let r = ads.handle_request(&request(ResourceType::Route, &["r1"], "", ""), &snap).responses.remove(0);
        assert_eq!(names(&r), ["r1"]);
        // The ACK asks for both now: answered with both.
        let out = ads.handle_request(&request(ResourceType::Route, &["r1", "r2"], &r.version_info, &r.nonce), &snap);
        assert!(matches!(out.kind, RequestKind::Ack { .. }));
        assert_eq!(names(&out.responses[0]), ["r1", "r2"]);
        assert_ne!(out.responses[0].nonce, r.nonce);
    }

    #[test]
    fn updates_go_clusters_first_listeners_then_removals() {
        let old = snapshot(&["a"], &["r"]);
        let mut ads = AdsStream::new();
        for t in [ResourceType::Cluster, ResourceType::Listener] {
            ads.handle_request(&request(t, &[], "", ""), &old);
        }
        ads.handle_request(&request(ResourceType::Route, &["r"], "", ""), &old);
        let mut new = decoded(&["b"], &["r"]);
        new.routes.get_mut("r").unwrap().virtual_hosts.push(Default::default());
        let new = EncodedSnapshot::encode(&new);
        let sent: Vec<String> = ads
            .handle_snapshot(&old, &new)
            .iter()
            .map(|r| r.type_url.rsplit('.').next().unwrap().to_string())
            .collect();
        assert_eq!(sent, ["Cluster", "RouteConfiguration", "Cluster"]);
        // Types Envoy never asked for are never pushed.
        assert!(ads.sent_version(ResourceType::Secret).is_none());
    }
}
