//! The shape of a builtin gateway: its listeners grouped by port, each port's
//! hosts grouped into filter chains, and the routes each host serves.
//!
//! HTTP and TCP ports have one group (`*`) holding a host per listener
//! hostname; HTTPS and TLS ports have one group per listener hostname (one
//! filter chain per SNI name). In a group with a `*` host, routes of that
//! host that name hostnames move to hosts of those names, creating implicit
//! hosts that copy the `*` host's tags (Kuma's `RedistributeWildcardRoutes`).
//! Unlike Kuma, a wildcard route name (`*.example.com`) reaches every host it
//! covers whatever the order routes were read in, and only across a dot.

use kuma_model::gateway::{MeshGatewaySpec, Protocol};
use kuma_model::route::MeshGatewayRouteSpec;
use kuma_model::{Resource, ResourceSet, Tags};
use std::sync::Arc;

use crate::gateway::{GatewayListener, attached_routes, listeners};
use crate::hostname;
use crate::mesh_routes;
use crate::targeting::Gateway;

/// A route attached to a host: a `MeshGatewayRoute` as written, or the
/// rules of a `MeshHTTPRoute`/`MeshTCPRoute` lowered to that form.
#[derive(Debug, Clone)]
pub struct AttachedRoute<'a> {
    /// The route resource the rules come from.
    pub resource: &'a Resource,
    /// The rules.
    pub spec: RouteSpec<'a>,
    /// Which part of the resource: a `MeshHTTPRoute` gives one part per
    /// `hostnames` set; 0 otherwise.
    pub part: usize,
    /// For lowered rules, where each was written in the resource
    /// (`spec.to[0].rules[2]`); `None` for a `MeshGatewayRoute`, whose rules
    /// are `conf.http.rules[i]` as written.
    pub rule_paths: Option<Arc<Vec<String>>>,
}

impl<'a> AttachedRoute<'a> {
    /// A `MeshGatewayRoute` as written.
    pub fn written(resource: &'a Resource, spec: &'a MeshGatewayRouteSpec) -> Self {
        AttachedRoute { resource, spec: RouteSpec::Written(spec), part: 0, rule_paths: None }
    }

    /// HTTP rule `index` of a `MeshGatewayRoute` as written, borrowed for as
    /// long as the resources; `None` for lowered rules.
    pub(crate) fn written_rule(&self, index: usize) -> Option<&'a kuma_model::route::HttpRule> {
        match self.spec {
            RouteSpec::Written(spec) => spec.conf.as_ref()?.http.as_ref()?.rules.get(index),
            RouteSpec::Lowered(_) => None,
        }
    }

    fn same(&self, other: &Self) -> bool {
        std::ptr::eq(self.resource, other.resource) && self.part == other.part
    }
}

/// Route rules, written or lowered.
#[derive(Debug, Clone)]
pub enum RouteSpec<'a> {
    /// A `MeshGatewayRoute`'s spec.
    Written(&'a MeshGatewayRouteSpec),
    /// Rules lowered from a `MeshHTTPRoute` or `MeshTCPRoute`.
    Lowered(Arc<MeshGatewayRouteSpec>),
}

impl std::ops::Deref for RouteSpec<'_> {
    type Target = MeshGatewayRouteSpec;

    fn deref(&self) -> &MeshGatewayRouteSpec {
        match self {
            RouteSpec::Written(s) => s,
            RouteSpec::Lowered(s) => s,
        }
    }
}

/// One port of the gateway: one Envoy listener.
#[derive(Debug, Clone)]
pub struct PortPlan<'a> {
    /// The port.
    pub port: u32,
    /// The protocol of the listeners on it (validation makes them agree).
    pub protocol: Protocol,
    /// The gateway listeners on this port, in the order written.
    pub listeners: Vec<GatewayListener<'a>>,
    /// Host groups, most exact key first (`*` last).
    pub groups: Vec<HostGroup<'a>>,
}

/// Hosts that share one filter chain (and, for HTTPS, one route configuration).
#[derive(Debug, Clone)]
pub struct HostGroup<'a> {
    /// `*` on HTTP and TCP ports; the listener hostname on HTTPS and TLS.
    pub key: String,
    /// The hosts: for `MeshGatewayRoute`s in descending hostname order,
    /// for Kuma 2.x routes most exact first (exact names alphabetically,
    /// then `*.x`, then `*`).
    pub hosts: Vec<GatewayHost<'a>>,
    /// True when the hosts serve `MeshHTTPRoute`s or `MeshTCPRoute`s
    /// (Kuma names their inline certificates after the listener hostname
    /// rather than the hosts).
    pub mesh_routes: bool,
}

/// A virtual host (HTTP) or SNI target (TLS) and the routes it serves.
#[derive(Debug, Clone)]
pub struct GatewayHost<'a> {
    /// The hostname, `*` for any.
    pub hostname: String,
    /// The listener whose tags and TLS settings this host uses; for an
    /// implicit host, the `*` listener it was split from.
    pub listener: GatewayListener<'a>,
    /// True when the host exists only because a route named it.
    pub implicit: bool,
    /// The routes this host serves, in route name order.
    pub routes: Vec<AttachedRoute<'a>>,
}

impl GatewayHost<'_> {
    /// The merged tags of the host's listener (they name its clusters).
    pub fn tags(&self) -> &Tags {
        &self.listener.tags
    }
}

/// The gateway's ports in ascending order, with hosts and routes resolved.
///
/// ```
/// use kuma_model::{ResourceSet, UnknownFields};
/// let yaml = "type: MeshGateway\nname: gw\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 80, protocol: HTTP}]}\n---\ntype: MeshGatewayRoute\nname: r\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {http: {hostnames: [a.example.com], rules: [{matches: [{path: {value: /}}], backends: [{destination: {kuma.io/service: web}}]}]}}\n";
/// let (set, _) = ResourceSet::load([("gw.yaml", yaml)], UnknownFields::Reject).unwrap();
/// let tags = kuma_model::tags::tags_of([("kuma.io/service", "edge")]);
/// let (_, gw) = kuma_policy::gateway::select_gateway(&set, "default", &tags).unwrap();
/// let ports = kuma_policy::hosts::plan(&set, "default", &tags, "gw", gw);
/// let hosts: Vec<_> = ports[0].groups[0].hosts.iter().map(|h| (h.hostname.as_str(), h.routes.len())).collect();
/// // The route names a host, so it moves from `*` to an implicit host of that name.
/// assert_eq!(hosts, [("a.example.com", 1), ("*", 0)]);
/// ```
pub fn plan<'a>(
    set: &'a ResourceSet,
    mesh: &str,
    dataplane_tags: &Tags,
    gateway_name: &str,
    gateway: &'a MeshGatewaySpec,
) -> Vec<PortPlan<'a>> {
    let target = Gateway { mesh, name: gateway_name };
    let mut ports: Vec<PortPlan<'a>> = Vec::new();
    for listener in listeners(dataplane_tags, gateway) {
        let port = listener.listener.port;
        let protocol = listener.listener.protocol;
        let i = match ports.iter().position(|p| p.port == port) {
            Some(i) => i,
            None => {
                ports.push(PortPlan { port, protocol, listeners: Vec::new(), groups: Vec::new() });
                ports.len() - 1
            }
        };
        ports[i].listeners.push(listener);
    }
    ports.sort_by_key(|p| p.port);
    // Kuma 2.x routes replace MeshGatewayRoutes gateway-wide, per protocol
    // family: once a MeshHTTPRoute reaches any HTTP/HTTPS listener, every
    // HTTP/HTTPS listener serves MeshHTTPRoutes only (and likewise
    // MeshTCPRoute for TCP/TLS listeners).
    let mut new_http = false;
    let mut new_tcp = false;
    for l in ports.iter().flat_map(|p| &p.listeners) {
        if l.listener.protocol.is_http() {
            new_http = new_http || !mesh_routes::http_routes(set, target, l).is_empty();
        } else {
            new_tcp = new_tcp || !mesh_routes::tcp_routes(set, target, l).is_empty();
        }
    }
    for port in &mut ports {
        port.groups = match (port.protocol.is_http(), new_http, new_tcp) {
            (true, true, _) => mesh_http_groups(set, target, port.protocol, &port.listeners),
            (false, _, true) => mesh_tcp_groups(set, target, port.protocol, &port.listeners),
            _ => groups(set, target.mesh, port.protocol, &port.listeners),
        };
    }
    ports
}

/// Kuma's `GetNonEmptyHostname` contains relation: `*` contains every name.
fn contains(outer: &str, inner: &str) -> bool {
    outer == "*" || hostname::covers(outer, inner)
}

/// The hosts of an HTTP or HTTPS port whose listeners serve MeshHTTPRoutes
/// (Kuma's `sortRulesToHosts`). Listeners go most exact hostname first; a
/// listener gets a host per route hostname that meets its own (the
/// listener's name when the route's covers it), unless a more exact
/// listener already owns that name. A host serves every route part whose
/// hostnames meet it (`*` for a part without), except parts whose more
/// specific hostname has a host of its own.
fn mesh_http_groups<'a>(
    set: &'a ResourceSet,
    gateway: Gateway<'_>,
    protocol: Protocol,
    ls: &[GatewayListener<'a>],
) -> Vec<HostGroup<'a>> {
    let per_sni = protocol == Protocol::Https;
    let mut sorted: Vec<&GatewayListener<'a>> = ls.iter().collect();
    sorted.sort_by(|a, b| hostname::by_exactness(a.listener.effective_hostname(), b.listener.effective_hostname()));
    let mut observed: Vec<String> = Vec::new();
    let mut groups: Vec<HostGroup<'a>> = Vec::new();
    for l in sorted {
        let own = l.listener.effective_hostname().to_string();
        if observed.contains(&own) {
            continue;
        }
        let parts = mesh_routes::http_routes(set, gateway, l);
        let names_of = |r: &AttachedRoute<'_>| -> Vec<String> {
            let names = route_hostnames(&r.spec);
            if names.is_empty() { vec!["*".to_string()] } else { names.to_vec() }
        };
        let mut rule_names: Vec<String> = Vec::new();
        for part in &parts {
            for n in names_of(part) {
                if !rule_names.contains(&n) {
                    rule_names.push(n);
                }
            }
        }
        let mut host_names: Vec<String> = Vec::new();
        for r in rule_names.iter().filter(|r| hostname::matches(&own, r)) {
            let name = if contains(r, &own) { own.clone() } else { r.clone() };
            if !host_names.contains(&name) {
                host_names.push(name);
            }
        }
        let key = if per_sni { own.clone() } else { "*".to_string() };
        let gi = match groups.iter().position(|g| g.key == key) {
            Some(i) => i,
            None => {
                groups.push(HostGroup { key, hosts: Vec::new(), mesh_routes: true });
                groups.len() - 1
            }
        };
        for name in &host_names {
            if observed.iter().any(|o| contains(o, name)) {
                continue;
            }
            let routes = parts
                .iter()
                .filter(|p| {
                    names_of(p)
                        .iter()
                        .any(|r| hostname::matches(name, r) && (contains(r, name) || !host_names.contains(r)))
                })
                .cloned()
                .collect();
            let host = GatewayHost { hostname: name.clone(), listener: l.clone(), implicit: *name != own, routes };
            groups[gi].hosts.push(host);
        }
        // A listener no rule reaches still gets its own host, without
        // routes: it answers "no route" (Kuma leaves it without one).
        if !groups[gi].hosts.iter().any(|h| std::ptr::eq(h.listener.listener, l.listener)) {
            let host = GatewayHost { hostname: own.clone(), listener: l.clone(), implicit: false, routes: Vec::new() };
            if !groups[gi].hosts.iter().any(|h| h.hostname == host.hostname) {
                groups[gi].hosts.push(host);
            }
        }
        observed.push(own);
    }
    for g in &mut groups {
        g.hosts.sort_by(|a, b| hostname::by_exactness(&a.hostname, &b.hostname));
    }
    groups.sort_by(|a, b| hostname::by_exactness(&a.key, &b.key));
    groups
}

/// The hosts of a TCP or TLS port whose listeners serve MeshTCPRoutes: one
/// host per listener (TLS: one group per SNI name) with its route.
fn mesh_tcp_groups<'a>(
    set: &'a ResourceSet,
    gateway: Gateway<'_>,
    protocol: Protocol,
    ls: &[GatewayListener<'a>],
) -> Vec<HostGroup<'a>> {
    let per_sni = protocol == Protocol::Tls;
    let mut groups: Vec<HostGroup<'a>> = Vec::new();
    for l in ls {
        let hostname = l.listener.effective_hostname().to_string();
        let key = if per_sni { hostname.clone() } else { "*".to_string() };
        let routes = mesh_routes::tcp_routes(set, gateway, l);
        let host = GatewayHost { hostname, listener: l.clone(), implicit: false, routes };
        match groups.iter_mut().find(|g| g.key == key) {
            Some(g) if g.hosts.iter().any(|h| h.hostname == host.hostname) => {}
            Some(g) => g.hosts.push(host),
            None => groups.push(HostGroup { key, hosts: vec![host], mesh_routes: true }),
        }
    }
    groups.sort_by(|a, b| hostname::by_exactness(&a.key, &b.key));
    groups
}

/// The hosts of a port whose listeners serve `MeshGatewayRoute`s.
fn groups<'a>(set: &'a ResourceSet, mesh: &str, protocol: Protocol, ls: &[GatewayListener<'a>]) -> Vec<HostGroup<'a>> {
    let per_sni = matches!(protocol, Protocol::Https | Protocol::Tls);
    let mut groups: Vec<HostGroup<'a>> = Vec::new();
    for l in ls {
        let hostname = l.listener.effective_hostname().to_string();
        let key = if per_sni { hostname.clone() } else { "*".to_string() };
        let routes = attached_routes(set, mesh, l).into_iter().map(|(r, s)| AttachedRoute::written(r, s)).collect();
        let host = GatewayHost { hostname, listener: l.clone(), implicit: false, routes };
        match groups.iter_mut().find(|g| g.key == key) {
            // Validation rejects two listeners with one hostname on a port;
            // if it slipped through, the first listener keeps the host.
            Some(g) if g.hosts.iter().any(|h| h.hostname == host.hostname) => {}
            Some(g) => g.hosts.push(host),
            None => groups.push(HostGroup { key, hosts: vec![host], mesh_routes: false }),
        }
    }
    for g in &mut groups {
        redistribute(&mut g.hosts);
        for h in &mut g.hosts {
            let name = h.hostname.clone();
            h.routes.retain(|r| serves(&name, &r.spec));
            h.routes.sort_by(|a, b| {
                (&a.resource.meta.name, a.resource.spec.kind(), a.part).cmp(&(
                    &b.resource.meta.name,
                    b.resource.spec.kind(),
                    b.part,
                ))
            });
            h.routes.dedup_by(|a, b| a.same(b));
        }
        g.hosts.sort_by(|a, b| b.hostname.cmp(&a.hostname));
    }
    groups.sort_by(|a, b| hostname::by_exactness(&a.key, &b.key));
    groups
}

fn route_hostnames(route: &MeshGatewayRouteSpec) -> &[String] {
    route.conf.as_ref().and_then(|c| c.http.as_ref()).map_or(&[], |h| &h.hostnames)
}

/// Whether a host serves a route: `*` serves what is left on it, a named
/// host serves routes without hostnames and those whose names match its own.
fn serves(host: &str, route: &MeshGatewayRouteSpec) -> bool {
    let names = route_hostnames(route);
    host == "*" || names.is_empty() || names.iter().any(|n| hostname::matches(host, n))
}

fn redistribute<'a>(hosts: &mut Vec<GatewayHost<'a>>) {
    let Some(star) = hosts.iter().position(|h| h.hostname == "*") else { return };
    let (moved, kept): (Vec<_>, Vec<_>) =
        std::mem::take(&mut hosts[star].routes).into_iter().partition(|r| !route_hostnames(&r.spec).is_empty());
    hosts[star].routes = kept;
    // First every host a moved route names, so wildcard names reach hosts
    // created by routes read later too (Kuma misses those).
    for route in &moved {
        for name in route_hostnames(&route.spec) {
            if name != "*" && !hosts.iter().any(|h| h.hostname.eq_ignore_ascii_case(name)) {
                let mut implicit = hosts[star].clone();
                implicit.hostname = name.clone();
                implicit.implicit = true;
                implicit.routes.clear();
                hosts.push(implicit);
            }
        }
    }
    for host in hosts.iter_mut().filter(|h| h.hostname != "*") {
        for route in &moved {
            if route_hostnames(&route.spec).iter().any(|n| hostname::covers(n, &host.hostname)) {
                host.routes.push(route.clone());
            }
        }
    }
    // A route naming `*` itself stays on the `*` host.
    for route in &moved {
        if route_hostnames(&route.spec).iter().any(|n| n == "*") {
            hosts[star].routes.push(route.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::select_gateway;
    use kuma_model::UnknownFields;
    use kuma_model::tags::tags_of;

    fn gateway(listeners: &str) -> String {
        format!(
            "type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: edge}}}}]\nconf:\n  listeners:\n{listeners}"
        )
    }

    fn route(name: &str, hostnames: &str) -> String {
        format!(
            "---\ntype: MeshGatewayRoute\nname: {name}\nselectors: [{{match: {{kuma.io/service: edge}}}}]\nconf: {{http: {{hostnames: {hostnames}, rules: [{{matches: [{{path: {{value: /}}}}], backends: [{{destination: {{kuma.io/service: web}}}}]}}]}}}}\n"
        )
    }

    type Host = (String, bool, Vec<String>);

    fn shape(yaml: &str) -> Vec<(u32, String, Vec<Host>)> {
        let (set, _) = ResourceSet::load([("t.yaml", yaml)], UnknownFields::Reject).unwrap();
        let tags = tags_of([("kuma.io/service", "edge")]);
        let (_, gw) = select_gateway(&set, "default", &tags).unwrap();
        plan(&set, "default", &tags, "gw", gw)
            .into_iter()
            .flat_map(|p| {
                p.groups.into_iter().map(move |g| {
                    let hosts = g
                        .hosts
                        .iter()
                        .map(|h| {
                            (
                                h.hostname.clone(),
                                h.implicit,
                                h.routes.iter().map(|r| r.resource.meta.name.clone()).collect(),
                            )
                        })
                        .collect();
                    (p.port, g.key, hosts)
                })
            })
            .collect()
    }

    fn host(name: &str, implicit: bool, routes: &[&str]) -> Host {
        (name.to_string(), implicit, routes.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn golden_01_named_routes_leave_the_wildcard_host() {
        let yaml = gateway("  - {port: 8080, protocol: HTTP}\n")
            + &route("echo", "[foo.example.com, bar.example.com, '*.example.com']");
        assert_eq!(
            shape(&yaml),
            [(
                8080,
                "*".to_string(),
                vec![
                    host("foo.example.com", true, &["echo"]),
                    host("bar.example.com", true, &["echo"]),
                    host("*.example.com", true, &["echo"]),
                    host("*", false, &[]),
                ]
            )]
        );
    }

    #[test]
    fn golden_02_unnamed_routes_stay_on_the_wildcard_host() {
        let yaml = gateway("  - {port: 8080, protocol: HTTP}\n")
            + &route("any", "[]")
            + &route("extra", "[extra.example.com]");
        assert_eq!(
            shape(&yaml),
            [(8080, "*".to_string(), vec![host("extra.example.com", true, &["extra"]), host("*", false, &["any"])])]
        );
    }

    #[test]
    fn explicit_hosts_take_matching_and_unnamed_routes() {
        let yaml =
            gateway("  - {port: 80, protocol: HTTP, hostname: foo.example.com}\n  - {port: 80, protocol: HTTP}\n")
                + &route("any", "[]")
                + &route("foo", "[foo.example.com]")
                + &route("bar", "[bar.example.com]");
        assert_eq!(
            shape(&yaml),
            [(
                80,
                "*".to_string(),
                vec![
                    host("foo.example.com", false, &["any", "foo"]),
                    host("bar.example.com", true, &["bar"]),
                    host("*", false, &["any"]),
                ]
            )]
        );
    }

    #[test]
    fn wildcard_names_reach_hosts_created_later_and_respect_dots() {
        let yaml = gateway("  - {port: 80, protocol: HTTP}\n")
            + &route("a-wild", "['*.com']")
            + &route("b-tele", "[telecom]")
            + &route("c-shop", "[shop.com]");
        let got = shape(&yaml);
        // `*.com` covers shop.com (read after it) but not telecom.
        assert_eq!(
            got[0].2,
            vec![
                host("telecom", true, &["b-tele"]),
                host("shop.com", true, &["a-wild", "c-shop"]),
                host("*.com", true, &["a-wild"]),
                host("*", false, &[]),
            ]
        );
    }

    #[test]
    fn a_listener_no_mesh_http_route_rule_reaches_keeps_a_host_without_routes() {
        // Found by the whole-set differential test: the route's hostnames
        // meet neither listener, so no host came out and rendering indexed
        // an empty group.
        let yaml = gateway("  - {port: 80, protocol: HTTP, hostname: a.example.com}\n  - {port: 81, protocol: HTTP}\n")
            + "---\ntype: MeshHTTPRoute\nname: r\nspec:\n  targetRef: {kind: MeshGateway, name: gw}\n  to:\n  - targetRef: {kind: Mesh}\n    hostnames: [b.example.com]\n    rules: [{matches: [{path: {type: PathPrefix, value: /}}], default: {backendRefs: [{kind: MeshService, name: web}]}}]\n";
        assert_eq!(
            shape(&yaml),
            [
                (80, "*".to_string(), vec![host("a.example.com", false, &[])]),
                (81, "*".to_string(), vec![host("b.example.com", true, &["r"])]),
            ]
        );
    }

    #[test]
    fn https_ports_group_by_hostname_most_exact_first() {
        let tls = "tls: {mode: TERMINATE, certificates: [{secret: cert}]}";
        let yaml = gateway(&format!(
            "  - {{port: 443, protocol: HTTPS, {tls}}}\n  - {{port: 443, protocol: HTTPS, hostname: '*.example.com', {tls}}}\n  - {{port: 443, protocol: HTTPS, hostname: a.example.com, {tls}}}\n  - {{port: 80, protocol: HTTP}}\n"
        )) + "---\ntype: Secret\nname: cert\ndata: aGVsbG8=\n";
        let got = shape(&yaml);
        let keys: Vec<_> = got.iter().map(|(p, k, _)| (*p, k.as_str())).collect();
        assert_eq!(keys, [(80, "*"), (443, "a.example.com"), (443, "*.example.com"), (443, "*")]);
    }
}
