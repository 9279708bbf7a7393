//! `explain`: what Envoy will do with one request, and why. For a BUILTIN
//! gateway it walks the route table ([`kuma_policy::route_table`]) the way
//! Envoy walks the config rendered from it (listener by port, filter chain
//! by SNI, virtual host by `Host`, first matching entry) and tells where the
//! entry comes from and which policies the table chose for it; clusters,
//! endpoints and settings are read from the rendered route, so what it
//! shows is what is generated.

use std::fmt::{self, Write as _};

use envoy_types::pb::envoy::config::core::v3::{address, data_source};
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, route, route_action};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use kuma_model::gateway::Protocol;
use kuma_model::route::{HeaderMatchKind, HttpMatch, QueryMatchKind};
use kuma_model::{Kind, SERVICE_TAG};
use kuma_policy::PathSpecificity;
use kuma_policy::route_entries::Variant;
use kuma_policy::route_table::{EntryAction, RouteEntry, RouteTable, TableChain, TableHost, compact_json};
use prost::{Message, Name};

use crate::{GatewaySnapshot, names};

/// The request to explain.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The listener port.
    pub port: u32,
    /// The `Host` header (and, on TLS listeners, the SNI name unless
    /// `sni` is set).
    pub host: String,
    /// The TLS server name, when it differs from `host` (a client reusing
    /// a connection for another name).
    pub sni: Option<String>,
    /// The path (a query string is allowed).
    pub path: String,
    /// The method.
    pub method: String,
    /// Other request headers, lower-case names.
    pub headers: Vec<(String, String)>,
}

/// What happens to a request, step by step, as text lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    /// One line per decision.
    pub steps: Vec<String>,
    /// True when a route (or TCP proxy) forwards or answers the request.
    pub matched: bool,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            writeln!(f, "{s}")?;
        }
        Ok(())
    }
}

/// Explains `request` against the config of gateway data plane `dataplane`.
pub fn explain(
    set: &kuma_model::ResourceSet,
    mesh: &str,
    dataplane: &str,
    request: &Request,
) -> Result<Explanation, crate::TranslateError> {
    let snapshot = crate::translate(set, mesh, dataplane)?;
    let mut ex = Explanation::default();
    match crate::route_table(set, mesh, dataplane)? {
        Some(table) => explain_table(&table, &snapshot, request, &mut ex),
        None => explain_listeners(&snapshot, request, &mut ex),
    }
    Ok(ex)
}

fn explain_table(table: &RouteTable<'_>, snapshot: &GatewaySnapshot, request: &Request, ex: &mut Explanation) {
    let Some(port) = table.ports.iter().find(|p| p.port == request.port) else {
        return no_listener(snapshot, request, ex);
    };
    let listener = names::listener(&table.gateway, port.protocol.as_str(), port.port);
    ex.step(format!("listener {listener}"));
    let tls = matches!(port.protocol, Protocol::Https | Protocol::Tls);
    // Chains are most exact first, `*` (no server name) last.
    let sni = request.sni.as_deref().unwrap_or(&request.host);
    let chain = port.chains.iter().find(|c| !tls || c.key == "*" || kuma_policy::hostname::covers(&c.key, sni));
    let Some(chain) = chain else {
        ex.step(format!("no filter chain for SNI {sni:?}: the TLS handshake fails"));
        return;
    };
    if tls && chain.key != "*" {
        ex.step(format!("filter chain for SNI {}", chain.key));
    }
    if matches!(port.protocol, Protocol::Tcp | Protocol::Tls) {
        return explain_tcp(chain, snapshot, ex);
    }
    let route_config = names::route_configuration(&listener, &chain.key);
    ex.step(format!("route configuration {route_config}"));
    if let Some(f) = chain.own_host().policies.fault_injection.mesh.as_deref() {
        ex.step(format!("   fault injection on every request: MeshFaultInjection {}", compact_json(f)));
    }
    if let Some(t) = chain.own_host().policies.trace.as_ref() {
        ex.step(format!("   tracing: MeshTrace {}", compact_json(t)));
    }
    let Some(host) = virtual_host(chain, &request.host) else {
        let mut hosts: Vec<&str> = chain.hosts.iter().map(|h| h.hostname.as_str()).collect();
        hosts.extend(chain.misdirected.iter().map(String::as_str));
        ex.step(format!(
            "no virtual host for {:?} (hosts: {}): Envoy answers 404 with an empty body",
            request.host,
            hosts.join(", ")
        ));
        return;
    };
    let Some(host) = host else {
        ex.step(format!(
            "{:?} is another listener hostname of this port, served on a connection for its own TLS server name",
            request.host
        ));
        ex.step("-> direct response 421 (misdirected request)".into());
        ex.matched = true;
        return;
    };
    ex.step(format!("virtual host {}", host.hostname));
    let rendered = snapshot.routes.get(&route_config).and_then(|rc| rendered_host(rc, &host.hostname));
    if host.entries.is_empty() {
        ex.step(format!("no routes: -> direct response 404 {:?}", crate::routes::NO_ROUTE_BODY.trim()));
        ex.matched = true;
        return;
    }
    let Some(index) = host.entries.iter().position(|e| entry_matches(e, request)) else {
        ex.step(format!(
            "no route of {} matches {} {}: Envoy answers 404",
            host.hostname, request.method, request.path
        ));
        return;
    };
    for e in &host.entries[..index] {
        ex.step(format!("  skipped {}: {}", route_name(e), describe(e)));
    }
    let entry = &host.entries[index];
    ex.step(format!("route #{index} from {}: {}", route_name(entry), describe(entry)));
    ex.step(format!("   rule: {}", entry.origin));
    let envoy_route = rendered.and_then(|(vh, routes)| routes.get(index).map(|r| (vh, r)));
    match (entry.action, envoy_route) {
        (EntryAction::Forward, Some((vh, r))) => {
            forward(vh, r, snapshot, ex);
            policies(table, host, entry, ex);
        }
        (_, Some((_, r))) => answer(r, ex),
        (_, None) => ex.step("   (not in the rendered config: please report this)".into()),
    }
    ex.matched = true;
}

impl Explanation {
    fn step(&mut self, s: String) {
        self.steps.push(s);
    }
}

/// Envoy's virtual host choice among the chain's hosts and its misdirected
/// names: exact, then the longest `*.suffix`, then `*`. `Some(None)`: a
/// misdirected name.
fn virtual_host<'t, 'a>(chain: &'t TableChain<'a>, host: &str) -> Option<Option<&'t TableHost<'a>>> {
    let host = host.rsplit_once(':').map_or(host, |(h, p)| if p.parse::<u16>().is_ok() { h } else { host });
    let host = host.to_ascii_lowercase();
    let domains = || {
        chain
            .hosts
            .iter()
            .map(|h| (Some(h), h.hostname.to_ascii_lowercase()))
            .chain(chain.misdirected.iter().map(|d| (None, d.to_ascii_lowercase())))
    };
    if let Some((h, _)) = domains().find(|(_, d)| *d == host) {
        return Some(h);
    }
    let suffix = domains()
        .filter(|(_, d)| d.len() > 1 && d.starts_with('*') && host.ends_with(&d[1..]) && host.len() > d.len() - 1)
        .max_by_key(|(_, d)| d.len());
    if let Some((h, _)) = suffix {
        return Some(h);
    }
    domains().find(|(_, d)| d == "*").map(|(h, _)| h)
}

fn rendered_host<'r>(
    rc: &'r RouteConfiguration,
    hostname: &str,
) -> Option<(&'r envoy_types::pb::envoy::config::route::v3::VirtualHost, &'r [Route])> {
    rc.virtual_hosts.iter().find(|vh| vh.name == hostname).map(|vh| (vh, vh.routes.as_slice()))
}

fn route_name(e: &RouteEntry<'_>) -> String {
    let o = &e.summary.origin;
    e.hash().map_or_else(|| crate::routes::route_name(&o.route, o.rule, o.match_index), str::to_string)
}

fn describe(e: &RouteEntry<'_>) -> String {
    let mut out = e.path();
    let m = e.conditions();
    if let Some(method) = m.method.as_str() {
        let _ = write!(out, ", method {method}");
    }
    for h in &m.headers {
        let _ = write!(out, ", header {}", h.name);
    }
    for q in &m.query_parameters {
        let _ = write!(out, ", query {}", q.name);
    }
    out
}

fn full_match(regex: &str, value: &str) -> bool {
    regex::Regex::new(&format!("^(?:{regex})$")).is_ok_and(|r| r.is_match(value))
}

/// Whether Envoy's route for the entry matches the request.
fn entry_matches(e: &RouteEntry<'_>, req: &Request) -> bool {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let path_ok = match (&e.summary.path, e.variant) {
        (PathSpecificity::Exact(p), _) => path == p,
        (PathSpecificity::Prefix(p), Variant::Separated) => {
            let p = p.trim_end_matches('/');
            path == p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))
        }
        (PathSpecificity::Prefix(p), _) => path.starts_with(p.as_str()),
        (PathSpecificity::Regex(r), _) => full_match(r, path),
        _ => false,
    };
    path_ok && conditions_match(e.conditions(), req, query)
}

fn conditions_match(m: &HttpMatch, req: &Request, query: &str) -> bool {
    if m.method.as_str().is_some_and(|method| method != req.method) {
        return false;
    }
    let header = |name: &str| req.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let headers_ok = m.headers.iter().all(|h| {
        let value = header(&h.name);
        match h.kind {
            HeaderMatchKind::Exact => value == Some(h.value.as_str()),
            HeaderMatchKind::Regex => value.is_some_and(|v| full_match(&h.value, v)),
            HeaderMatchKind::Prefix => value.is_some_and(|v| v.starts_with(h.value.as_str())),
            HeaderMatchKind::Present => value.is_some(),
            HeaderMatchKind::Absent => value.is_none(),
            // A kind newer than this crate renders as a match for nothing.
            _ => false,
        }
    });
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let query_ok = m.query_parameters.iter().all(|q| {
        let value = param(&q.name);
        match q.kind {
            QueryMatchKind::Exact => value == Some(q.value.as_str()),
            QueryMatchKind::Regex => value.is_some_and(|v| full_match(&q.value, v)),
            _ => false,
        }
    });
    headers_ok && query_ok
}

fn forward(
    vh: &envoy_types::pb::envoy::config::route::v3::VirtualHost,
    route: &Route,
    snapshot: &GatewaySnapshot,
    ex: &mut Explanation,
) {
    let Some(route::Action::Route(a)) = &route.action else { return };
    match &a.cluster_specifier {
        Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
            for c in &w.clusters {
                let weight = c.weight.as_ref().map_or(0, |w| w.value);
                ex.step(format!("-> cluster {} weight {weight} [{}]", c.name, endpoints_of(snapshot, &c.name)));
            }
        }
        Some(route_action::ClusterSpecifier::Cluster(c)) => {
            ex.step(format!("-> cluster {c} [{}]", endpoints_of(snapshot, c)));
        }
        _ => {}
    }
    let mut settings = String::new();
    if let Some(t) = &a.timeout {
        let _ = write!(settings, "timeout {}s", t.seconds as f64 + f64::from(t.nanos) / 1e9);
    }
    if let Some(r) = a.retry_policy.as_ref().or(vh.retry_policy.as_ref()) {
        let _ = write!(settings, ", retries {} on {}", r.num_retries.as_ref().map_or(1, |n| n.value), r.retry_on);
    }
    for m in &a.request_mirror_policies {
        let _ = write!(settings, ", mirror to {}", m.cluster);
    }
    ex.step(format!("   {settings}"));
}

/// The policies the route table chose for an entry, and for the clusters
/// of its backends.
fn policies(table: &RouteTable<'_>, host: &TableHost<'_>, entry: &RouteEntry<'_>, ex: &mut Explanation) {
    for p in entry.policies.legacy.iter() {
        ex.step(format!("   policy {} {} (route)", p.spec.kind(), p.meta.name));
    }
    for p in &host.policies.origins {
        ex.step(format!("   policy {p} (listener)"));
    }
    let p = &entry.policies;
    let chosen: [(Kind, Option<String>); 4] = [
        (Kind::MeshTimeout, p.timeout.as_deref().map(compact_json)),
        (Kind::MeshRetry, p.retry.as_deref().map(compact_json)),
        (Kind::MeshRateLimit, p.rate_limit.as_deref().map(compact_json)),
        (Kind::MeshLoadBalancingStrategy, p.load_balancing.as_deref().map(compact_json)),
    ];
    for (kind, conf) in chosen {
        if let Some(conf) = conf {
            ex.step(format!("   {kind} of the route: {conf}"));
        }
    }
    for b in entry.backends.iter().filter(|b| b.permitted) {
        let Some(choice) = table.clusters.get(&(b.destination.as_ref().clone(), host.tags().clone())) else { continue };
        let service = b.destination.get(SERVICE_TAG).map_or("", String::as_str);
        for p in choice.legacy() {
            ex.step(format!("   policy {} {} (cluster of {service})", p.spec.kind(), p.meta.name));
        }
        let confs: [(Kind, Option<String>); 3] = [
            (Kind::MeshCircuitBreaker, choice.circuit_breaker.as_deref().map(compact_json)),
            (Kind::MeshHealthCheck, choice.health_check.as_deref().map(compact_json)),
            (Kind::MeshLoadBalancingStrategy, choice.load_balancing.as_deref().map(compact_json)),
        ];
        for (kind, conf) in confs {
            if let Some(conf) = conf {
                ex.step(format!("   {kind} of the cluster of {service}: {conf}"));
            }
        }
    }
}

/// A redirect or direct response.
fn answer(route: &Route, ex: &mut Explanation) {
    match &route.action {
        Some(route::Action::Redirect(r)) => {
            use envoy_types::pb::envoy::config::route::v3::redirect_action::SchemeRewriteSpecifier;
            ex.step(format!(
                "-> redirect {} to {}{}{}",
                match r.response_code {
                    1 => 302,
                    2 => 303,
                    3 => 307,
                    4 => 308,
                    _ => 301,
                },
                match &r.scheme_rewrite_specifier {
                    Some(SchemeRewriteSpecifier::SchemeRedirect(s)) => format!("{s}://"),
                    _ => String::new(),
                },
                if r.host_redirect.is_empty() { "<same host>".into() } else { r.host_redirect.clone() },
                if r.port_redirect == 0 { String::new() } else { format!(":{}", r.port_redirect) },
            ))
        }
        Some(route::Action::DirectResponse(d)) => {
            let body = match d.body.as_ref().and_then(|b| b.specifier.as_ref()) {
                Some(data_source::Specifier::InlineString(s)) => s.trim().to_string(),
                _ => String::new(),
            };
            ex.step(format!("-> direct response {} {body:?}", d.status));
        }
        _ => {}
    }
}

fn explain_tcp(chain: &TableChain<'_>, snapshot: &GatewaySnapshot, ex: &mut Explanation) {
    let permitted: Vec<_> = chain.tcp.backends.iter().filter(|(_, b)| b.permitted).collect();
    if permitted.is_empty() {
        ex.step("the filter chain is empty: the connection is closed (a TCP listener without routes)".into());
        return;
    }
    let mut clusters: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    for (i, b) in &permitted {
        clusters.insert(names::cluster(&b.destination, chain.hosts[*i].tags()), b.weight);
    }
    let one = clusters.len() == 1;
    for (name, weight) in &clusters {
        let weight = if one { String::new() } else { format!(" weight {weight}") };
        ex.step(format!("tcp_proxy -> cluster {name}{weight} [{}]", endpoints_of(snapshot, name)));
    }
    for p in chain.tcp.legacy.iter() {
        ex.step(format!("   policy {} {} (route)", p.spec.kind(), p.meta.name));
    }
    for p in &chain.own_host().policies.origins {
        ex.step(format!("   policy {p} (listener)"));
    }
    ex.matched = true;
}

fn no_listener(snapshot: &GatewaySnapshot, request: &Request, ex: &mut Explanation) {
    let ports: Vec<String> = snapshot.listeners.values().filter_map(listener_port).map(|p| p.to_string()).collect();
    ex.step(format!(
        "no listener on port {}: the connection is refused (listeners: {})",
        request.port,
        ports.join(", ")
    ));
}

/// A DELEGATED gateway: one outbound listener per port, to one service.
fn explain_listeners(snapshot: &GatewaySnapshot, request: &Request, ex: &mut Explanation) {
    let Some(listener) = snapshot.listeners.values().find(|l| listener_port(l) == Some(request.port)) else {
        return no_listener(snapshot, request, ex);
    };
    ex.step(format!("listener {}", listener.name));
    let any = listener.filter_chains.first().and_then(|c| c.filters.first()).and_then(|f| match &f.config_type {
        Some(filter::ConfigType::TypedConfig(any)) => Some(any),
        _ => None,
    });
    let Some(any) = any else { return };
    let cluster = if let Some(proxy) = decode::<TcpProxy>(any) {
        match proxy.cluster_specifier {
            Some(tcp_proxy::ClusterSpecifier::Cluster(c)) => Some(c),
            _ => None,
        }
    } else if let Some(hcm) = decode::<HttpConnectionManager>(any) {
        let rc = match hcm.route_specifier {
            Some(RouteSpecifier::Rds(rds)) => snapshot.routes.get(&rds.route_config_name).cloned(),
            _ => None,
        };
        rc.into_iter().flat_map(|rc| rc.virtual_hosts).flat_map(|vh| vh.routes).find_map(|r| match r.action {
            Some(route::Action::Route(a)) => match a.cluster_specifier {
                Some(route_action::ClusterSpecifier::Cluster(c)) => Some(c),
                _ => None,
            },
            _ => None,
        })
    } else {
        None
    };
    if let Some(c) = cluster {
        ex.step(format!("-> cluster {c} [{}]", endpoints_of(snapshot, &c)));
        ex.matched = true;
    }
}

fn decode<T: Message + Name + Default>(any: &envoy_types::pb::google::protobuf::Any) -> Option<T> {
    (any.type_url == T::type_url()).then(|| T::decode(any.value.as_slice()).ok()).flatten()
}

fn listener_port(l: &Listener) -> Option<u32> {
    match l.address.as_ref()?.address.as_ref()? {
        address::Address::SocketAddress(s) => match s.port_specifier {
            Some(envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(p)) => Some(p),
            _ => None,
        },
        _ => None,
    }
}

fn endpoints_of(snapshot: &GatewaySnapshot, cluster: &str) -> String {
    use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
    let cla = snapshot
        .endpoints
        .get(cluster)
        .or_else(|| snapshot.clusters.get(cluster).and_then(|c| c.load_assignment.as_ref()));
    let Some(cla) = cla else { return "no cluster: Envoy answers 500".into() };
    let eps: Vec<String> = cla
        .endpoints
        .iter()
        .flat_map(|l| l.lb_endpoints.iter())
        .filter_map(|e| match &e.host_identifier {
            Some(HostIdentifier::Endpoint(ep)) => match ep.address.as_ref()?.address.as_ref()? {
                address::Address::SocketAddress(s) => Some(format!(
                    "{}:{}",
                    s.address,
                    match s.port_specifier {
                        Some(envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(p)) =>
                            p,
                        _ => 0,
                    }
                )),
                _ => None,
            },
            _ => None,
        })
        .collect();
    if eps.is_empty() { "no endpoints: Envoy answers 503".into() } else { eps.join(", ") }
}
