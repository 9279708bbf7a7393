//! Rebuilding only the virtual hosts a change touches.
//!
//! A gateway's route configuration is most of its config: 10,000 rules on
//! 20 hosts make a 1 MB RouteConfiguration, and building its virtual hosts
//! (and encoding them) is most of a translation. An edit usually touches one
//! route resource, so one host. [`HostReuse`] remembers, per virtual host,
//! its encoded bytes and the clusters it registered; the next translation
//! of the same data plane rebuilds a host only when its inputs differ:
//!
//! - the route resources attached to it (compared by identity: a
//!   [`ResourceSet`] made again after an edit shares every unchanged
//!   resource), with its name, listener, port and route configuration;
//! - every other resource of the set but the other data planes (a change
//!   to a policy, the gateway or its data plane rebuilds every host; data
//!   planes coming, going or moving only change endpoints).
//!
//! The route table itself is still built whole each time: which routes
//! attach to which host is what the comparison needs. A reused host's
//! bytes are spliced into its route configuration's encoding, which is
//! byte for byte what encoding the whole message gives (tested here and,
//! over random edits, by `kuma-xds-server`'s `incremental` property test).
//!
//! Resources are compared by address, so the resources of the last set are
//! held until the next translation: no new resource can take the address of
//! one remembered, and a held resource cannot be changed in place. A data
//! plane a ProxyTemplate selects is translated whole (a template may
//! rewrite any host).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::google::protobuf::Any;
use kuma_model::{Kind, Resource, ResourceSet};
use kuma_policy::route_table::TableHost;
use prost::Name;
use sha2::{Digest, Sha256};

use crate::clusters::Registration;
use crate::routes::HostContext;

/// What the last translation of one data plane built, so that the next one
/// ([`crate::translate_encoded`]) rebuilds only the virtual hosts whose
/// inputs changed. One per data plane; start with `HostReuse::default()`.
#[derive(Debug, Default)]
pub struct HostReuse {
    /// Where equal encodings are held once, across data planes.
    shared: Option<SharedHosts>,
    /// Every resource of the set last translated, held so that no address
    /// compared below is given to a new resource meanwhile.
    held: Vec<Arc<Resource>>,
    /// Addresses of the resources that may shape any host (all but the
    /// `MeshGatewayRoute`s and the other data planes), in set order, with
    /// the mesh and data plane: when any differs, nothing is reused.
    context: Context,
    hosts: HashMap<HostKey, BuiltHost>,
    reused: usize,
    built: usize,
}

impl HostReuse {
    /// A reuse whose hosts are held in `shared` with those of other data
    /// planes: every replica of a gateway builds the same hosts, and would
    /// otherwise keep a copy each.
    pub fn sharing(shared: SharedHosts) -> Self {
        HostReuse { shared: Some(shared), ..HostReuse::default() }
    }

    /// Of the last translation's virtual hosts: how many were reused and
    /// how many built.
    pub fn last_counts(&self) -> (usize, usize) {
        (self.reused, self.built)
    }

    /// Forgets everything (the next translation builds every host).
    pub fn clear(&mut self) {
        *self = HostReuse { shared: self.shared.take(), ..HostReuse::default() };
    }
}

/// Virtual host encodings held once for many [`HostReuse`]s (by content),
/// and only while one of them holds it. Clones share the same pool.
#[derive(Debug, Clone, Default)]
pub struct SharedHosts(Arc<Mutex<ByDigest>>);

/// Encodings by SHA-256, held weakly.
type ByDigest = HashMap<[u8; 32], Weak<[u8]>>;

impl SharedHosts {
    /// The held encoding equal to `bytes`, or `bytes`, now held.
    fn intern(&self, bytes: Arc<[u8]>) -> Arc<[u8]> {
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = held.get(&digest).and_then(Weak::upgrade)
            && *h == *bytes
        {
            return h;
        }
        held.insert(digest, Arc::downgrade(&bytes));
        // Forget the encodings no reuse holds any more, now and then.
        if held.len() > 64 && held.len().is_power_of_two() {
            held.retain(|_, h| h.strong_count() > 0);
        }
        bytes
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Context {
    mesh: String,
    dataplane: String,
    others: Vec<usize>,
}

/// What makes one virtual host, given an unchanged [`Context`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct HostKey {
    route_configuration: String,
    listener: usize,
    hostname: String,
    implicit: bool,
    port: u32,
    https: bool,
    /// (resource address, part) of each attached route, in order.
    routes: Vec<(usize, usize)>,
}

impl HostKey {
    pub(crate) fn of(route_configuration: &str, ctx: &HostContext, host: &TableHost<'_>) -> Self {
        HostKey {
            route_configuration: route_configuration.to_string(),
            listener: host.listener.index,
            hostname: host.hostname.clone(),
            implicit: host.implicit,
            port: ctx.port,
            https: ctx.https,
            routes: host.routes.iter().map(|r| (std::ptr::from_ref(r.resource) as usize, r.part)).collect(),
        }
    }
}

/// A built virtual host: its canonical encoding, and the clusters it
/// registered.
#[derive(Debug, Clone)]
pub(crate) struct BuiltHost {
    pub(crate) bytes: Arc<[u8]>,
    pub(crate) registrations: Arc<[Registration]>,
}

/// One translation's use of a [`HostReuse`]: what it may reuse, and what it
/// built, by route configuration.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    shared: Option<SharedHosts>,
    previous: HashMap<HostKey, BuiltHost>,
    next: HashMap<HostKey, BuiltHost>,
    /// Per route configuration, its virtual hosts' bytes in order.
    pub(crate) encoded: HashMap<String, Vec<Arc<[u8]>>>,
    reused: usize,
    built: usize,
}

impl Pass {
    /// Starts a translation of `dataplane` in `mesh` from `set`: the hosts
    /// of `reuse` are usable when every resource that shapes hosts
    /// ([`shapes_hosts`]) is the one it last saw.
    pub(crate) fn start(reuse: &mut HostReuse, set: &ResourceSet, mesh: &str, dataplane: &str) -> Pass {
        let held: Vec<Arc<Resource>> = set.iter_shared().cloned().collect();
        let context = Context {
            mesh: mesh.to_string(),
            dataplane: dataplane.to_string(),
            others: held.iter().filter(|r| shapes_hosts(r, mesh, dataplane)).map(|r| Arc::as_ptr(r) as usize).collect(),
        };
        let previous = if context == reuse.context { std::mem::take(&mut reuse.hosts) } else { HashMap::new() };
        reuse.context = context;
        // The last set's resources can go now: every resource of `set` was
        // made while they were held, so none has the address of one in
        // `previous`'s keys unless it is that very resource, unchanged.
        reuse.held = held;
        Pass { shared: reuse.shared.clone(), previous, ..Pass::default() }
    }

    /// The host built for `key` last time, if its inputs are unchanged.
    pub(crate) fn reusable(&self, key: &HostKey) -> Option<BuiltHost> {
        self.previous.get(key).cloned()
    }

    /// Notes the host of `key` for the next translation, and its bytes for
    /// route configuration `route_configuration`.
    pub(crate) fn keep(&mut self, route_configuration: &str, key: HostKey, mut host: BuiltHost, reused: bool) {
        if reused {
            self.reused += 1;
        } else {
            self.built += 1;
            if let Some(shared) = &self.shared {
                host.bytes = shared.intern(host.bytes);
            }
        }
        self.encoded.entry(route_configuration.to_string()).or_default().push(host.bytes.clone());
        self.next.insert(key, host);
    }

    /// The bytes of a virtual host built here and kept by no key (one
    /// computed anew each time, as the misdirected-host answer).
    pub(crate) fn push_unkept(&mut self, route_configuration: &str, host: &VirtualHost) {
        self.encoded.entry(route_configuration.to_string()).or_default().push(encode_host(host));
    }

    /// Hands what this pass built to `reuse`, for the next translation.
    pub(crate) fn finish(self, reuse: &mut HostReuse) -> HashMap<String, Vec<Arc<[u8]>>> {
        reuse.hosts = self.next;
        reuse.reused = self.reused;
        reuse.built = self.built;
        self.encoded
    }
}

/// True when a change to `r` may change a virtual host of `dataplane`
/// other than through the routes attached to it. Other data planes only
/// give endpoints (ClusterLoadAssignments), never anything a virtual host
/// holds, so endpoints coming and going, the most frequent change in a
/// mesh, reuse every host too.
fn shapes_hosts(r: &Resource, mesh: &str, dataplane: &str) -> bool {
    match r.spec.kind() {
        Kind::MeshGatewayRoute => false,
        Kind::Dataplane => r.meta.mesh == mesh && r.meta.name == dataplane,
        _ => true,
    }
}

/// The canonical encoding of a virtual host.
pub(crate) fn encode_host(host: &VirtualHost) -> Arc<[u8]> {
    Arc::from(crate::canonical::bytes(host))
}

/// `config` packed with `hosts` (canonical encodings) as its virtual hosts,
/// after those it has: the bytes [`crate::canonical::any`] gives for the
/// whole message. prost writes fields in number order, and
/// `virtual_hosts` (2) comes right after `name` (1).
pub(crate) fn route_configuration(config: &RouteConfiguration, hosts: &[Arc<[u8]>]) -> Any {
    const NAME: u32 = 1;
    const VIRTUAL_HOSTS_KEY: u8 = 2 << 3 | 2; // field 2, length-delimited
    let rest = crate::canonical::bytes(config);
    // Where the name field (if any) ends: the hosts go after it, and after
    // those the message holds itself.
    let split = match crate::canonical::first_field(&rest) {
        Some((NAME, end)) => end,
        _ => 0,
    };
    let mut own_end = split;
    while let Some((2, len)) = crate::canonical::first_field(&rest[own_end..]) {
        own_end += len;
    }
    let hosts_len: usize = hosts.iter().map(|h| 1 + prost::length_delimiter_len(h.len()) + h.len()).sum();
    let mut value = Vec::with_capacity(rest.len() + hosts_len);
    // The name, and the hosts the message holds itself (if any).
    value.extend_from_slice(&rest[..own_end]);
    for h in hosts {
        value.push(VIRTUAL_HOSTS_KEY);
        prost::encode_length_delimiter(h.len(), &mut value).expect("a Vec grows");
        value.extend_from_slice(h);
    }
    value.extend_from_slice(&rest[own_end..]);
    Any { type_url: RouteConfiguration::type_url(), value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::route::v3::Route;

    fn host(name: &str, filters: usize) -> VirtualHost {
        VirtualHost {
            name: name.into(),
            domains: vec![name.into()],
            routes: vec![Route {
                name: format!("{name}/r"),
                // A map, so the canonical sort matters inside the host.
                typed_per_filter_config: (0..filters)
                    .map(|i| (format!("f{i}"), crate::pb::any(&RouteConfiguration::default())))
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn spliced_hosts_give_the_bytes_of_the_whole_message() {
        let hosts = vec![host("a", 5), host("b", 0), host("c", 3)];
        for name in ["", "rc"] {
            for own in 0..=hosts.len() {
                let whole = RouteConfiguration {
                    name: name.into(),
                    virtual_hosts: hosts.clone(),
                    validate_clusters: crate::pb::boolv(false),
                    request_headers_to_remove: vec!["x".into()],
                    ignore_port_in_host_matching: true,
                    ..Default::default()
                };
                let mut partial = whole.clone();
                let spliced: Vec<Arc<[u8]>> = partial.virtual_hosts.split_off(own).iter().map(encode_host).collect();
                assert_eq!(route_configuration(&partial, &spliced), crate::canonical::any(&whole), "{name:?} {own}");
            }
        }
    }
}

#[cfg(test)]
mod translate_tests {
    use super::*;
    use crate::snapshot::ResourceType;
    use crate::{EncodedSnapshot, translate_at, translate_encoded};
    use kuma_model::{ParsedFile, UnknownFields, parse_file};

    const GATEWAY: &str = "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {type: BUILTIN, tags: {kuma.io/service: edge}}\n---\ntype: MeshGateway\nname: edge\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 8080, protocol: HTTP}, {port: 8081, protocol: HTTP, hostname: other.example.com}]}\n";
    const WEB: &str = "type: Dataplane\nname: web\nnetworking:\n  address: 10.0.0.1\n  inbound: [{port: 80, tags: {kuma.io/service: web, kuma.io/protocol: http}}]\n";

    fn route(name: &str, host: &str, path: &str, service: &str) -> String {
        format!(
            "type: MeshGatewayRoute\nname: {name}\nselectors: [{{match: {{kuma.io/service: edge}}}}]\nconf: {{http: {{hostnames: [{host}], rules: [{{matches: [{{path: {{match: PREFIX, value: {path}}}}}], backends: [{{destination: {{kuma.io/service: {service}}}}}]}}]}}}}\n"
        )
    }

    /// Files parsed once and kept while unchanged, as the file store does.
    fn set(files: &mut HashMap<String, (String, ParsedFile)>, texts: &[(&str, String)]) -> ResourceSet {
        files.retain(|name, _| texts.iter().any(|(n, _)| n == name));
        for (name, text) in texts {
            if files.get(*name).is_none_or(|(old, _)| old != text) {
                files.insert(name.to_string(), (text.clone(), parse_file(name, text, UnknownFields::Reject)));
            }
        }
        let mut names: Vec<&String> = files.keys().collect();
        names.sort();
        ResourceSet::assemble(names.into_iter().map(|n| &files[n].1)).expect("valid").0
    }

    fn whole(set: &ResourceSet, at: std::time::SystemTime) -> EncodedSnapshot {
        EncodedSnapshot::encode(&translate_at(set, "default", "gw", at).unwrap())
    }

    #[test]
    fn only_the_hosts_a_change_touches_are_built_and_the_bytes_are_a_whole_translation() {
        let at = std::time::SystemTime::now();
        let mut files = HashMap::new();
        let mut texts = vec![
            ("0-gw.yaml", GATEWAY.to_string()),
            ("0-web.yaml", WEB.to_string()),
            ("a.yaml", route("a", "a.example.com", "/a", "web")),
            ("b.yaml", route("b", "b.example.com", "/b", "web")),
            ("c.yaml", route("c", "other.example.com", "/c", "web")),
        ];
        let mut reuse = HostReuse::default();
        let mut check = |texts: &[(&str, String)], expect: (usize, usize), why: &str| {
            let set = set(&mut files, texts);
            let (encoded, _) = translate_encoded(&set, "default", "gw", at, &mut reuse);
            assert_eq!(encoded.unwrap(), whole(&set, at), "{why}: the bytes of a whole translation");
            assert_eq!(reuse.last_counts(), expect, "{why}: (reused, built)");
        };
        // Port 8080: a, b and the listener's own `*` host; 8081:
        // other.example.com, and the hosts of routes that name none of it.
        check(&texts, (0, 5), "first translation");
        check(&texts, (5, 0), "nothing changed");
        texts[3].1 = route("b", "b.example.com", "/b2", "web");
        check(&texts, (4, 1), "one route changed");
        texts[3].1 = route("b", "b.example.com", "/b2", "other");
        check(&texts, (4, 1), "a new backend: its cluster is registered too");
        texts.push(("d.yaml", route("d", "a.example.com", "/d", "web")));
        check(&texts, (4, 1), "a route added to host a");
        texts[1].1 = WEB.replace("10.0.0.1", "10.0.0.2");
        check(&texts, (5, 0), "an endpoint moved");
        texts[0].1 = GATEWAY.replace("8081", "8082");
        check(&texts, (0, 5), "the gateway changed");
        texts[0].1 = GATEWAY.replace("127.0.0.1", "127.0.0.2");
        check(&texts, (0, 5), "its data plane changed");
        texts.pop();
        check(&texts, (4, 1), "a route removed");
        // A replica of the gateway, sharing hosts with this one.
        let shared = SharedHosts::default();
        let set = set(&mut files, &texts);
        let mut replicas = [HostReuse::sharing(shared.clone()), HostReuse::sharing(shared)];
        for r in &mut replicas {
            let _ = translate_encoded(&set, "default", "gw", at, r);
        }
        for (key, host) in &replicas[0].hosts {
            assert!(Arc::ptr_eq(&host.bytes, &replicas[1].hosts[key].bytes), "held once: {key:?}");
        }
        let routes = whole(&set, at);
        assert_eq!(routes.resources(ResourceType::Route).len(), 2, "two route configurations");
    }
}
