//! The route table of one builtin gateway, free of Envoy types: ports →
//! filter chains → hosts → ordered route entries. Each entry carries its
//! match summary, its backends (weights, destination tags and whether a
//! TrafficPermission lets them through), the value chosen for every policy
//! that shapes it, and its origin (resource, rule, match).
//!
//! `MeshGatewayRoute`s and the rules of `MeshHTTPRoute`s and `MeshTCPRoute`s
//! lower into the same table, and Kuma 1.x connection policies and Kuma 2.x
//! targetRef policies are both chosen here, so everything below it is
//! shared. The translator (`kuma-xds-gen`) renders the table into Envoy
//! config, and `explain` walks it; [`RouteTable`]'s `Display` form is what
//! the snapshot tests hold.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use kuma_model::gateway::{MeshGatewaySpec, Protocol};
use kuma_model::mesh_load_balancing_strategy::LoadBalancingConf;
use kuma_model::mesh_rate_limit::RateLimitConf;
use kuma_model::mesh_retry::RetryConf;
use kuma_model::mesh_timeout::TimeoutConf;
use kuma_model::route::{HttpMatch, HttpRule, TcpRule};
use kuma_model::{Kind, Resource, ResourceSet, SERVICE_TAG, Tags};

use crate::cluster_choice::ClusterChoice;
use crate::gateway::GatewayListener;
use crate::host_policies::{HostPolicies, RoutePolicies};
use crate::hosts::{AttachedRoute, HostGroup, RouteSpec, plan};
use crate::mesh_policies::{ListenerPolicies, MeshPolicies};
use crate::precedence::{MatchSummary, PathSpecificity};
use crate::route_entries::{self, ANY_REQUEST, Variant};
use crate::targeting::Gateway;

/// The route table of one builtin gateway.
///
/// ```
/// use kuma_model::{ResourceSet, UnknownFields};
/// let yaml = "type: MeshGateway\nname: gw\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 80, protocol: HTTP}]}\n---\ntype: MeshGatewayRoute\nname: r\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {http: {rules: [{matches: [{path: {match: PREFIX, value: /api}}], backends: [{destination: {kuma.io/service: web}}]}]}}\n";
/// let (set, _) = ResourceSet::load([("gw.yaml", yaml)], UnknownFields::Reject).unwrap();
/// let tags = kuma_model::tags::tags_of([("kuma.io/service", "edge")]);
/// let (_, gw) = kuma_policy::gateway::select_gateway(&set, "default", &tags).unwrap();
/// let table = kuma_policy::route_table::RouteTable::build(&set, "default", &tags, "gw", gw);
/// let entry = &table.ports[0].chains[0].hosts[0].entries[0];
/// assert_eq!(entry.origin.to_string(), "MeshGatewayRoute r conf.http.rules[0].matches[0]");
/// assert_eq!(entry.backends[0].destination["kuma.io/service"], "web");
/// // `/api` and `/api/...`, as one entry.
/// assert_eq!(entry.path(), "path is /api or starts with /api/");
/// ```
#[derive(Debug, Clone)]
pub struct RouteTable<'a> {
    /// The name of the `MeshGateway`.
    pub gateway: String,
    /// The gateway's ports, ascending.
    pub ports: Vec<TablePort<'a>>,
    /// The clusters the entries use, by (destination tags, listener tags),
    /// with the policies chosen for each.
    pub clusters: BTreeMap<(Tags, Tags), ClusterChoice<'a>>,
}

/// One port: one Envoy listener.
#[derive(Debug, Clone)]
pub struct TablePort<'a> {
    /// The port.
    pub port: u32,
    /// The protocol of the listeners on it.
    pub protocol: Protocol,
    /// The gateway listeners on this port, in the order written.
    pub listeners: Vec<GatewayListener<'a>>,
    /// Filter chains, most exact SNI name first (`*` last).
    pub chains: Vec<TableChain<'a>>,
}

impl TablePort<'_> {
    /// True when a listener of the port accepts other meshes' proxies.
    pub fn cross_mesh(&self) -> bool {
        self.listeners.iter().any(|l| l.listener.cross_mesh)
    }
}

/// Hosts that share one filter chain (and, for HTTPS, one route
/// configuration).
#[derive(Debug, Clone)]
pub struct TableChain<'a> {
    /// `*` on HTTP and TCP ports; the listener hostname (SNI name) on HTTPS
    /// and TLS.
    pub key: String,
    /// True when the hosts serve `MeshHTTPRoute`s or `MeshTCPRoute`s.
    pub mesh_routes: bool,
    /// The hosts, in the order they are matched.
    pub hosts: Vec<TableHost<'a>>,
    /// HTTPS: the port's other listener hostnames, which have chains of
    /// their own; a request for one of them on this chain is misdirected
    /// (answered `421`).
    pub misdirected: Vec<String>,
    /// TCP and TLS: where connections go.
    pub tcp: TcpForward<'a>,
}

impl<'a> TableChain<'a> {
    /// The host the chain was made for (its listener carries the TLS
    /// settings and the tags the chain's own policies match), not one split
    /// off for a route.
    pub fn own_host(&self) -> &TableHost<'a> {
        self.hosts.iter().find(|h| !h.implicit).unwrap_or(&self.hosts[0])
    }
}

/// Where a TCP or TLS chain sends connections.
#[derive(Debug, Clone, Default)]
pub struct TcpForward<'a> {
    /// Backends of every rule of the chain's routes, each with the index
    /// of the host whose listener tags name its cluster.
    pub backends: Vec<(usize, TableBackend<'a>)>,
    /// The connection policies chosen for the chain (Timeout, Retry).
    pub legacy: RoutePolicies<'a>,
    /// `MeshRetry` `tcp.maxConnectAttempt`.
    pub max_connect_attempts: Option<u32>,
}

/// A virtual host (HTTP) or SNI target (TLS) and what it serves.
#[derive(Debug, Clone)]
pub struct TableHost<'a> {
    /// The hostname, `*` for any.
    pub hostname: String,
    /// The listener whose tags and TLS settings this host uses.
    pub listener: GatewayListener<'a>,
    /// True when the host exists only because a route named it.
    pub implicit: bool,
    /// The routes attached to this host, in route name order.
    pub routes: Vec<AttachedRoute<'a>>,
    /// HTTP: the route entries, in the order they are matched.
    pub entries: Vec<RouteEntry<'a>>,
    /// The Kuma 2.x policies that select the host's listener.
    pub policies: Arc<ListenerPolicies>,
    /// The connection policies whose sources match the listener tags.
    pub legacy: Arc<HostPolicies<'a>>,
}

impl TableHost<'_> {
    /// The merged tags of the host's listener (they name its clusters).
    pub fn tags(&self) -> &Tags {
        &self.listener.tags
    }
}

/// One route entry: one Envoy route.
#[derive(Debug, Clone)]
pub struct RouteEntry<'a> {
    /// The match as this crate's precedence order sees it.
    pub summary: MatchSummary,
    /// How the entry relates to the written match (PREFIX matches give
    /// one or two entries).
    pub variant: Variant,
    /// Where it comes from.
    pub origin: EntryOrigin<'a>,
    /// What it does.
    pub action: EntryAction,
    /// The rule's backends, in the order written.
    pub backends: Vec<TableBackend<'a>>,
    /// The policies chosen for it.
    pub policies: EntryPolicies<'a>,
    spec: RouteSpec<'a>,
}

impl RouteEntry<'_> {
    /// The rule the entry comes from (for a `MeshHTTPRoute`, lowered).
    pub fn rule(&self) -> &HttpRule {
        let http = self.spec.conf.as_ref().and_then(|c| c.http.as_ref()).expect("an entry comes from an HTTP rule");
        &http.rules[self.origin.rule]
    }

    /// The conditions of the match the entry comes from.
    pub fn conditions(&self) -> &HttpMatch {
        match self.origin.match_index {
            Some(i) => &self.rule().matches[i],
            None => &ANY_REQUEST,
        }
    }

    /// The path condition, in words.
    pub fn path(&self) -> String {
        match (&self.summary.path, self.variant) {
            (PathSpecificity::Exact(p), _) => format!("path == {p}"),
            (PathSpecificity::Prefix(p), Variant::Separated) => {
                let p = p.trim_end_matches('/');
                format!("path is {p} or starts with {p}/")
            }
            (PathSpecificity::Prefix(p), _) => format!("path starts with {p}"),
            (PathSpecificity::Regex(r), _) => format!("path matches {r}"),
            _ => String::new(),
        }
    }

    /// The Kuma 2.x route hash (a `MeshHTTPRoute` rule's matches): the
    /// Envoy route's name, and how policies targeting the route find it.
    pub fn hash(&self) -> Option<&str> {
        self.rule().name.as_deref()
    }

    fn destinations(&self) -> Vec<Tags> {
        self.backends.iter().map(|b| b.destination.as_ref().clone()).collect()
    }
}

/// Where a route entry comes from.
#[derive(Debug, Clone)]
pub struct EntryOrigin<'a> {
    /// The route resource (`MeshGatewayRoute` or `MeshHTTPRoute`).
    pub resource: &'a Resource,
    /// The index of the rule in the host's rules of that resource (for a
    /// `MeshHTTPRoute`, its rules lowered for this host).
    pub rule: usize,
    /// The index of the match; `None` for a rule without matches.
    pub match_index: Option<usize>,
    /// Where lowered rules were written (see [`AttachedRoute::rule_paths`]).
    rule_paths: Option<Arc<Vec<String>>>,
}

impl EntryOrigin<'_> {
    /// The field path of the rule in the resource as written
    /// (`conf.http.rules[1]`, `spec.to[0].rules[2]`).
    pub fn rule_path(&self) -> String {
        match &self.rule_paths {
            Some(paths) => paths.get(self.rule).cloned().unwrap_or_default(),
            None => format!("conf.http.rules[{}]", self.rule),
        }
    }
}

impl fmt::Display for EntryOrigin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.resource.spec.kind(), self.resource.meta.name, self.rule_path())?;
        match self.match_index {
            Some(m) => write!(f, ".matches[{m}]"),
            None => Ok(()),
        }
    }
}

/// What a route entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryAction {
    /// Forwards to the permitted backends.
    Forward,
    /// Answers with the rule's redirect.
    Redirect,
    /// Answers `403`: no TrafficPermission lets the host reach any backend.
    Forbidden,
}

/// A backend of a route entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TableBackend<'a> {
    /// The destination tags (with the host's listener tags, they identify
    /// the cluster): borrowed from a `MeshGatewayRoute` as written, which
    /// spares a copy per entry of a large gateway.
    pub destination: Cow<'a, Tags>,
    /// The weight as written (0: unweighted).
    pub weight: u32,
    /// False when mesh mTLS is on and no TrafficPermission lets the host
    /// reach it: it gets no traffic.
    pub permitted: bool,
}

/// The policies chosen for one route entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryPolicies<'a> {
    /// The connection policies chosen for the route's backends.
    pub legacy: RoutePolicies<'a>,
    /// The merged `MeshTimeout` conf of the route.
    pub timeout: Option<Arc<TimeoutConf>>,
    /// The merged `MeshRetry` conf of the route.
    pub retry: Option<Arc<RetryConf>>,
    /// The merged `MeshRateLimit` conf of the route.
    pub rate_limit: Option<Arc<RateLimitConf>>,
    /// The `MeshLoadBalancingStrategy` conf whose hash policies the route
    /// uses: its one service's, else the mesh-wide one.
    pub load_balancing: Option<Arc<LoadBalancingConf>>,
}

impl<'a> RouteTable<'a> {
    /// The table of `gateway` (named `gateway_name`) in `mesh`, for a data
    /// plane whose tags are `dataplane_tags`.
    pub fn build(
        set: &'a ResourceSet,
        mesh: &str,
        dataplane_tags: &Tags,
        gateway_name: &str,
        gateway: &'a MeshGatewaySpec,
    ) -> Self {
        let target = Gateway { mesh, name: gateway_name };
        let mut by_tags =
            PoliciesByTags { set, mesh, target, mesh_policies: MeshPolicies::new(set, mesh), cache: BTreeMap::new() };
        let ports = plan(set, mesh, dataplane_tags, gateway_name, gateway)
            .into_iter()
            .map(|port| {
                let names: Vec<String> = port.groups.iter().map(|g| g.key.clone()).collect();
                let chains =
                    port.groups.into_iter().map(|group| chain(group, port.protocol, &names, &mut by_tags)).collect();
                TablePort { port: port.port, protocol: port.protocol, listeners: port.listeners, chains }
            })
            .collect();
        let mut table = RouteTable { gateway: gateway_name.to_string(), ports, clusters: BTreeMap::new() };
        table.choose_clusters(set, mesh);
        table
    }

    /// Every destination an entry, mirror or TCP chain sends to, and the
    /// policies chosen for its cluster.
    fn choose_clusters(&mut self, set: &'a ResourceSet, mesh: &str) {
        let real: BTreeMap<String, crate::mesh_services::RealService<'a>> =
            crate::mesh_services::all(set, mesh).into_iter().map(|r| (r.name.clone(), r)).collect();
        // Every (host, destination) sent to, in order; entries repeat
        // them, so keys are cloned once, when first seen.
        let mut sends: Vec<(&TableHost<'a>, &Tags)> = Vec::new();
        for chain in self.ports.iter().flat_map(|p| p.chains.iter()) {
            for host in &chain.hosts {
                for e in host.entries.iter().filter(|e| e.action == EntryAction::Forward) {
                    sends.extend(e.backends.iter().filter(|b| b.permitted).map(|b| (host, &*b.destination)));
                    let mirror = e.rule().filters.iter().rev().find_map(|f| f.mirror.as_ref());
                    let mirrored = mirror.filter(|m| m.percentage.unwrap_or(100.0) > 0.0);
                    if let Some(backend) = mirrored.and_then(|m| m.backend.as_ref()) {
                        sends.push((host, &backend.destination));
                    }
                }
            }
            for (i, b) in chain.tcp.backends.iter().filter(|(_, b)| b.permitted) {
                sends.push((&chain.hosts[*i], &b.destination));
            }
        }
        let mut seen: std::collections::BTreeSet<(&Tags, &Tags)> = std::collections::BTreeSet::new();
        let mut clusters = BTreeMap::new();
        // Consecutive entries mostly send to the same place: one comparison
        // with the last key spares a search of `seen`.
        let mut last: Option<(&Tags, &Tags)> = None;
        for (host, destination) in sends {
            let key = (destination, host.tags());
            if last == Some(key) {
                continue;
            }
            last = Some(key);
            let service = destination.get(SERVICE_TAG).map_or("", String::as_str);
            // Kuma makes no cluster for a backend it could not resolve.
            if service == kuma_model::mesh_http_route::UNRESOLVED_BACKEND || !seen.insert(key) {
                continue;
            }
            let choice = ClusterChoice::new(&host.policies, &host.legacy, destination, real.get(service));
            clusters.insert((destination.clone(), host.tags().clone()), choice);
        }
        self.clusters = clusters;
    }
}

/// Policies by listener tags, computed once per tag set.
struct PoliciesByTags<'a, 's> {
    set: &'a ResourceSet,
    mesh: &'s str,
    target: Gateway<'s>,
    mesh_policies: MeshPolicies<'a>,
    cache: BTreeMap<Tags, (Arc<ListenerPolicies>, Arc<HostPolicies<'a>>)>,
}

impl<'a> PoliciesByTags<'a, '_> {
    fn get(&mut self, tags: &Tags) -> (Arc<ListenerPolicies>, Arc<HostPolicies<'a>>) {
        if let Some(p) = self.cache.get(tags) {
            return p.clone();
        }
        let p = (
            Arc::new(self.mesh_policies.for_listener(self.target, tags)),
            Arc::new(HostPolicies::new(self.set, self.mesh, tags)),
        );
        self.cache.insert(tags.clone(), p.clone());
        p
    }
}

fn chain<'a>(
    group: HostGroup<'a>,
    protocol: Protocol,
    names: &[String],
    by_tags: &mut PoliciesByTags<'a, '_>,
) -> TableChain<'a> {
    let own: Vec<String> = group.hosts.iter().map(|h| h.hostname.clone()).collect();
    let misdirected = if protocol == Protocol::Https {
        names
            .iter()
            .filter(|k| *k != "*" && **k != group.key && !own.iter().any(|o| o.eq_ignore_ascii_case(k)))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let http = matches!(protocol, Protocol::Http | Protocol::Https);
    let hosts: Vec<TableHost<'a>> = group
        .hosts
        .into_iter()
        .map(|h| {
            let (policies, legacy) = by_tags.get(&h.listener.tags);
            let entries = if http { entries(&h.routes, &policies, &legacy) } else { Vec::new() };
            TableHost {
                hostname: h.hostname,
                listener: h.listener,
                implicit: h.implicit,
                routes: h.routes,
                entries,
                policies,
                legacy,
            }
        })
        .collect();
    let mut out =
        TableChain { key: group.key, mesh_routes: group.mesh_routes, hosts, misdirected, tcp: TcpForward::default() };
    if !http {
        out.tcp = tcp_forward(&out);
    }
    out
}

fn entries<'a>(
    routes: &[AttachedRoute<'a>],
    policies: &ListenerPolicies,
    legacy: &HostPolicies<'a>,
) -> Vec<RouteEntry<'a>> {
    route_entries::plan(routes)
        .into_iter()
        .map(|p| {
            // The rule as written, when it is: its tags are borrowed.
            let written = p.route.written_rule(p.rule_index);
            let backends: Vec<TableBackend<'a>> = p
                .rule
                .backends
                .iter()
                .enumerate()
                .map(|(k, b)| TableBackend {
                    destination: match written {
                        Some(rule) => Cow::Borrowed(&rule.backends[k].destination),
                        None => Cow::Owned(b.destination.clone()),
                    },
                    weight: b.weight,
                    permitted: legacy.permits(&b.destination),
                })
                .collect();
            let action = if route_entries::path_rewrite(p.rule).0.is_some() {
                EntryAction::Redirect
            } else if !backends.is_empty() && !backends.iter().any(|b| b.permitted) {
                EntryAction::Forbidden
            } else {
                EntryAction::Forward
            };
            let mut entry = RouteEntry {
                summary: p.summary,
                variant: p.variant,
                origin: EntryOrigin {
                    resource: p.route.resource,
                    rule: p.rule_index,
                    match_index: p.match_index,
                    rule_paths: p.route.rule_paths.clone(),
                },
                action,
                backends,
                policies: EntryPolicies::default(),
                spec: p.route.spec.clone(),
            };
            if action == EntryAction::Forward {
                entry.policies = entry_policies(&entry, policies, legacy);
            }
            entry
        })
        .collect()
}

fn entry_policies<'a>(
    entry: &RouteEntry<'a>,
    policies: &ListenerPolicies,
    legacy: &HostPolicies<'a>,
) -> EntryPolicies<'a> {
    let hash = entry.hash();
    let balancing = &policies.load_balancing;
    // Without per-service confs the mesh-wide one applies whatever the
    // backends are, and their tags need not be read.
    let one_service = if balancing.services.is_empty() {
        None
    } else {
        let mut services = entry.backends.iter().filter_map(|b| b.destination.get(SERVICE_TAG));
        match (services.next(), services.next()) {
            (Some(s), None) => Some(s.as_str()),
            _ => None,
        }
    };
    EntryPolicies {
        // Most hosts have no connection policies: no destination list then.
        legacy: if legacy.has_route_policies() {
            legacy.http_route(&entry.destinations())
        } else {
            RoutePolicies::default()
        },
        timeout: policies.timeout.route_shared(hash).cloned(),
        retry: policies.retry.route_shared(hash).cloned(),
        rate_limit: policies.rate_limit.route_shared(hash).cloned(),
        load_balancing: one_service.map_or(balancing.mesh.as_ref(), |s| balancing.service_shared(s)).cloned(),
    }
}

fn tcp_forward<'a>(chain: &TableChain<'a>) -> TcpForward<'a> {
    let mut backends = Vec::new();
    for (i, host) in chain.hosts.iter().enumerate() {
        for route in &host.routes {
            let rules: &[TcpRule] = route.spec.conf.as_ref().and_then(|c| c.tcp.as_ref()).map_or(&[], |t| &t.rules[..]);
            for b in rules.iter().flat_map(|r| r.backends.iter()) {
                backends.push((
                    i,
                    TableBackend {
                        destination: Cow::Owned(b.destination.clone()),
                        weight: b.weight,
                        permitted: host.legacy.permits(&b.destination),
                    },
                ));
            }
        }
    }
    if backends.is_empty() {
        return TcpForward::default();
    }
    let own = chain.own_host();
    let destinations: Vec<Tags> = backends.iter().map(|(_, b)| b.destination.as_ref().clone()).collect();
    TcpForward {
        legacy: own.legacy.tcp_route(&destinations),
        max_connect_attempts: own.policies.retry.mesh.as_ref().and_then(|r| r.tcp.as_ref()?.max_connect_attempt),
        backends,
    }
}

/// Tags as `{k: v, ...}` without `kuma.io/service` (named before them).
fn destination(tags: &Tags) -> String {
    let service = tags.get(SERVICE_TAG).map_or("", String::as_str);
    let rest: Vec<String> = tags.iter().filter(|(k, _)| *k != SERVICE_TAG).map(|(k, v)| format!("{k}={v}")).collect();
    if rest.is_empty() { service.to_string() } else { format!("{service}{{{}}}", rest.join(",")) }
}

fn backend(b: &TableBackend<'_>) -> String {
    let mut out = destination(&b.destination);
    if b.weight != 0 {
        let _ = write!(out, " weight {}", b.weight);
    }
    if !b.permitted {
        out.push_str(" (not permitted)");
    }
    out
}

/// A conf as one line of JSON without its unset fields.
pub fn compact_json<C: serde::Serialize>(c: &C) -> String {
    fn prune(v: serde_json::Value) -> Option<serde_json::Value> {
        match v {
            serde_json::Value::Null => None,
            serde_json::Value::Object(m) => {
                let m: serde_json::Map<_, _> = m.into_iter().filter_map(|(k, v)| prune(v).map(|v| (k, v))).collect();
                Some(serde_json::Value::Object(m))
            }
            serde_json::Value::Array(a) => Some(serde_json::Value::Array(a.into_iter().filter_map(prune).collect())),
            v => Some(v),
        }
    }
    serde_json::to_value(c).ok().and_then(prune).map_or_else(String::new, |v| v.to_string())
}

fn conditions(m: &HttpMatch) -> String {
    let mut out = String::new();
    if let Some(method) = m.method.as_str() {
        let _ = write!(out, ", method {method}");
    }
    for h in &m.headers {
        let _ = write!(out, ", header {} {:?} {:?}", h.name, h.kind, h.value);
    }
    for q in &m.query_parameters {
        let _ = write!(out, ", query {} {:?} {:?}", q.name, q.kind, q.value);
    }
    out
}

impl fmt::Display for RouteTable<'_> {
    /// One line per port, chain, host and entry, indented; under each
    /// entry, its backends and the policies chosen for it; then each
    /// cluster and the policies chosen for it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for port in &self.ports {
            writeln!(f, "port {} {}", port.port, port.protocol.as_str())?;
            for chain in &port.chains {
                writeln!(f, "  chain {}", chain.key)?;
                if !chain.misdirected.is_empty() {
                    writeln!(f, "    misdirected (421): {}", chain.misdirected.join(", "))?;
                }
                if let Some(own) = chain.hosts.first().map(|_| chain.own_host()) {
                    if let Some(fault) = own.policies.fault_injection.mesh.as_deref() {
                        writeln!(f, "    MeshFaultInjection {}", compact_json(fault))?;
                    }
                    if let Some(trace) = own.policies.trace.as_ref() {
                        writeln!(f, "    MeshTrace {}", compact_json(trace))?;
                    }
                }
                for host in &chain.hosts {
                    let implicit = if host.implicit { ", implicit" } else { "" };
                    writeln!(f, "    host {} (listener {}{implicit})", host.hostname, host.listener.index)?;
                    if !host.policies.origins.is_empty() {
                        writeln!(f, "      Kuma 2.x policies: {}", host.policies.origins.join(", "))?;
                    }
                    for (i, e) in host.entries.iter().enumerate() {
                        write_entry(f, i, e)?;
                    }
                }
                let tcp = &chain.tcp;
                for (i, b) in &tcp.backends {
                    writeln!(f, "    -> {} (host {})", backend(b), chain.hosts[*i].hostname)?;
                }
                for p in tcp.legacy.iter() {
                    writeln!(f, "      {} {}", p.spec.kind(), p.meta.name)?;
                }
                if let Some(n) = tcp.max_connect_attempts {
                    writeln!(f, "      MeshRetry maxConnectAttempt {n}")?;
                }
            }
        }
        for ((destination_tags, listener), c) in &self.clusters {
            let from: Vec<String> = listener.iter().map(|(k, v)| format!("{k}={v}")).collect();
            writeln!(f, "cluster {} from {{{}}}", destination(destination_tags), from.join(","))?;
            if c.real {
                writeln!(f, "  MeshService {}", c.service)?;
            }
            for r in c.legacy() {
                writeln!(f, "  {} {}", r.spec.kind(), r.meta.name)?;
            }
            let confs: [(Kind, Option<String>); 4] = [
                (Kind::MeshTimeout, c.timeout.as_deref().map(compact_json)),
                (Kind::MeshCircuitBreaker, c.circuit_breaker.as_deref().map(compact_json)),
                (Kind::MeshHealthCheck, c.health_check.as_deref().map(compact_json)),
                (Kind::MeshLoadBalancingStrategy, c.load_balancing.as_deref().map(compact_json)),
            ];
            for (kind, conf) in confs {
                if let Some(conf) = conf {
                    writeln!(f, "  {kind} {conf}")?;
                }
            }
        }
        Ok(())
    }
}

fn write_entry(f: &mut fmt::Formatter<'_>, i: usize, e: &RouteEntry<'_>) -> fmt::Result {
    writeln!(f, "      [{i}] {}{} <- {}", e.path(), conditions(e.conditions()), e.origin)?;
    if let Some(hash) = e.hash() {
        writeln!(f, "          hash {hash}")?;
    }
    match e.action {
        EntryAction::Redirect => writeln!(f, "          redirect")?,
        EntryAction::Forbidden => writeln!(f, "          403: no backend permitted")?,
        EntryAction::Forward if e.backends.is_empty() => writeln!(f, "          no backends")?,
        EntryAction::Forward => {
            let backends: Vec<String> = e.backends.iter().map(backend).collect();
            writeln!(f, "          -> {}", backends.join(", "))?;
        }
    }
    let p = &e.policies;
    for r in p.legacy.iter() {
        writeln!(f, "          {} {}", r.spec.kind(), r.meta.name)?;
    }
    let targeted: [(Kind, Option<String>); 4] = [
        (Kind::MeshTimeout, p.timeout.as_deref().map(compact_json)),
        (Kind::MeshRetry, p.retry.as_deref().map(compact_json)),
        (Kind::MeshRateLimit, p.rate_limit.as_deref().map(compact_json)),
        (Kind::MeshLoadBalancingStrategy, p.load_balancing.as_deref().map(compact_json)),
    ];
    for (kind, c) in targeted {
        if let Some(c) = c {
            writeln!(f, "          {kind} {c}")?;
        }
    }
    Ok(())
}
