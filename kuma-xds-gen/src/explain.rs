//! `explain`: what Envoy will do with one request, and why. It walks the
//! generated config the way Envoy does (listener by port, filter chain by
//! SNI, virtual host by `Host`, first matching route) and maps the route back
//! to the `MeshGatewayRoute` rule and the policies that shaped it.

use std::fmt::{self, Write as _};

use envoy_types::pb::envoy::config::core::v3::{address, data_source};
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher, QueryParameterMatcher, Route, RouteConfiguration, VirtualHost, header_matcher::HeaderMatchSpecifier,
    query_parameter_matcher::QueryParameterMatchSpecifier, route, route_action, route_match,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use kuma_model::{Kind, ResourceSet, Spec, Tags};
use prost::{Message, Name};

use crate::GatewaySnapshot;

/// The request to explain.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The listener port.
    pub port: u32,
    /// The `Host` header (and, on TLS listeners, the SNI name).
    pub host: String,
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

fn string_matches(m: &StringMatcher, value: &str) -> bool {
    match &m.match_pattern {
        Some(MatchPattern::Exact(e)) => value == e,
        Some(MatchPattern::Prefix(p)) => value.starts_with(p.as_str()),
        Some(MatchPattern::Suffix(p)) => value.ends_with(p.as_str()),
        Some(MatchPattern::Contains(p)) => value.contains(p.as_str()),
        Some(MatchPattern::SafeRegex(r)) => full_match(&r.regex, value),
        _ => false,
    }
}

fn full_match(regex: &str, value: &str) -> bool {
    regex::Regex::new(&format!("^(?:{regex})$")).is_ok_and(|r| r.is_match(value))
}

fn header_matches(h: &HeaderMatcher, req: &Request) -> bool {
    let value = if h.name == ":method" {
        Some(req.method.as_str())
    } else {
        req.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(&h.name)).map(|(_, v)| v.as_str())
    };
    let hit = match &h.header_match_specifier {
        Some(HeaderMatchSpecifier::PresentMatch(p)) => value.is_some() == *p,
        Some(HeaderMatchSpecifier::StringMatch(m)) => value.is_some_and(|v| string_matches(m, v)),
        _ => value.is_some(),
    };
    hit != h.invert_match
}

fn query_matches(q: &QueryParameterMatcher, query: &str) -> bool {
    let value = query.split('&').filter_map(|kv| kv.split_once('=').or(Some((kv, "")))).find(|(k, _)| *k == q.name);
    match &q.query_parameter_match_specifier {
        Some(QueryParameterMatchSpecifier::StringMatch(m)) => value.is_some_and(|(_, v)| string_matches(m, v)),
        Some(QueryParameterMatchSpecifier::PresentMatch(p)) => value.is_some() == *p,
        None => value.is_some(),
    }
}

fn route_matches(r: &Route, req: &Request) -> bool {
    let Some(m) = &r.r#match else { return false };
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let path_ok = match &m.path_specifier {
        Some(route_match::PathSpecifier::Path(p)) => path == p,
        Some(route_match::PathSpecifier::Prefix(p)) => path.starts_with(p.as_str()),
        Some(route_match::PathSpecifier::PathSeparatedPrefix(p)) => {
            path == p || path.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('/'))
        }
        Some(route_match::PathSpecifier::SafeRegex(r)) => full_match(&r.regex, path),
        _ => false,
    };
    path_ok
        && m.headers.iter().all(|h| header_matches(h, req))
        && m.query_parameters.iter().all(|q| query_matches(q, query))
}

/// Envoy's virtual host choice: exact domain, then the longest `*.suffix`,
/// then the longest `prefix*`, then `*`.
fn virtual_host<'r>(rc: &'r RouteConfiguration, host: &str) -> Option<&'r VirtualHost> {
    let host = host.rsplit_once(':').map_or(host, |(h, p)| if p.parse::<u16>().is_ok() { h } else { host });
    let host = host.to_ascii_lowercase();
    let domains =
        || rc.virtual_hosts.iter().flat_map(|vh| vh.domains.iter().map(move |d| (vh, d.to_ascii_lowercase())));
    if let Some((vh, _)) = domains().find(|(_, d)| *d == host) {
        return Some(vh);
    }
    let suffix = domains()
        .filter(|(_, d)| d.len() > 1 && d.starts_with('*') && host.ends_with(&d[1..]) && host.len() > d.len() - 1)
        .max_by_key(|(_, d)| d.len());
    if let Some((vh, _)) = suffix {
        return Some(vh);
    }
    let prefix = domains()
        .filter(|(_, d)| d.len() > 1 && d.ends_with('*') && host.starts_with(&d[..d.len() - 1]))
        .max_by_key(|(_, d)| d.len());
    if let Some((vh, _)) = prefix {
        return Some(vh);
    }
    domains().find(|(_, d)| d == "*").map(|(vh, _)| vh)
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

/// Connection policies that shaped a route's backends (names, by type),
/// found from the route's rule in `set`.
fn policies_of(set: &ResourceSet, mesh: &str, route_name: &str, host_tags: &Tags) -> Vec<String> {
    let Some((resource, rest)) = route_name.split_once("/rules[") else { return Vec::new() };
    let Some(rule) = rest.split(']').next().and_then(|i| i.parse::<usize>().ok()) else { return Vec::new() };
    let Some(Spec::MeshGatewayRoute(r)) = set.get(Kind::MeshGatewayRoute, mesh, resource).map(|r| &r.spec) else {
        return Vec::new();
    };
    let Some(rule) = r.conf.as_ref().and_then(|c| c.http.as_ref()).and_then(|h| h.rules.get(rule)) else {
        return Vec::new();
    };
    let destinations: Vec<Tags> = rule.backends.iter().map(|b| b.destination.clone()).collect();
    let policies = crate::policy::HostPolicies::new(set, mesh, host_tags);
    let mut out = Vec::new();
    for kind in [Kind::Timeout, Kind::Retry, Kind::RateLimit, Kind::FaultInjection] {
        if let Some(p) = policies.for_route(kind, &destinations) {
            out.push(format!("{kind} {} (route)", p.meta.name));
        }
    }
    for d in &destinations {
        for kind in [Kind::Timeout, Kind::CircuitBreaker, Kind::HealthCheck] {
            if let Some(p) = policies.for_destination(kind, d) {
                out.push(format!(
                    "{kind} {} (cluster of {})",
                    p.meta.name,
                    d.get(kuma_model::SERVICE_TAG).map_or("", String::as_str)
                ));
            }
        }
    }
    out
}

/// Explains `request` against the config of gateway data plane `dataplane`.
pub fn explain(
    set: &ResourceSet,
    mesh: &str,
    dataplane: &str,
    request: &Request,
) -> Result<Explanation, crate::TranslateError> {
    let snapshot = crate::translate(set, mesh, dataplane)?;
    let mut ex = Explanation::default();
    let mut step = |s: String| ex.steps.push(s);
    let Some(listener) = snapshot.listeners.values().find(|l| listener_port(l) == Some(request.port)) else {
        let ports: Vec<String> = snapshot.listeners.values().filter_map(listener_port).map(|p| p.to_string()).collect();
        step(format!(
            "no listener on port {}: the connection is refused (listeners: {})",
            request.port,
            ports.join(", ")
        ));
        return Ok(ex);
    };
    step(format!("listener {}", listener.name));
    let chain = listener.filter_chains.iter().find(|c| {
        c.filter_chain_match.as_ref().is_none_or(|m| {
            m.server_names.is_empty() || m.server_names.iter().any(|n| kuma_policy::hostname::covers(n, &request.host))
        })
    });
    let Some(chain) = chain else {
        step(format!("no filter chain for SNI {:?}: the TLS handshake fails", request.host));
        return Ok(ex);
    };
    if let Some(m) = &chain.filter_chain_match
        && !m.server_names.is_empty()
    {
        step(format!("filter chain for SNI {}", m.server_names.join(", ")));
    }
    let Some(filter) = chain.filters.first() else {
        step("the filter chain is empty: the connection is closed (a TCP listener without routes)".into());
        return Ok(ex);
    };
    let Some(filter::ConfigType::TypedConfig(any)) = &filter.config_type else { return Ok(ex) };
    if let Some(proxy) = decode::<TcpProxy>(any) {
        match proxy.cluster_specifier {
            Some(tcp_proxy::ClusterSpecifier::Cluster(c)) => {
                step(format!("tcp_proxy -> cluster {c} [{}]", endpoints_of(&snapshot, &c)))
            }
            Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) => {
                for c in w.clusters {
                    step(format!(
                        "tcp_proxy -> cluster {} weight {} [{}]",
                        c.name,
                        c.weight,
                        endpoints_of(&snapshot, &c.name)
                    ));
                }
            }
            None => {}
        }
        ex.matched = true;
        return Ok(ex);
    }
    let Some(hcm) = decode::<HttpConnectionManager>(any) else { return Ok(ex) };
    let rc = match hcm.route_specifier {
        Some(RouteSpecifier::Rds(rds)) => snapshot.routes.get(&rds.route_config_name).cloned(),
        Some(RouteSpecifier::RouteConfig(rc)) => Some(rc),
        _ => None,
    };
    let Some(rc) = rc else { return Ok(ex) };
    step(format!("route configuration {}", rc.name));
    let Some(vh) = virtual_host(&rc, &request.host) else {
        let hosts: Vec<&str> = rc.virtual_hosts.iter().flat_map(|v| v.domains.iter().map(String::as_str)).collect();
        step(format!(
            "no virtual host for {:?} (hosts: {}): Envoy answers 404 with an empty body",
            request.host,
            hosts.join(", ")
        ));
        return Ok(ex);
    };
    step(format!("virtual host {}", vh.name));
    let Some((index, route)) = vh.routes.iter().enumerate().find(|(_, r)| route_matches(r, request)) else {
        step(format!("no route of {} matches {} {}: Envoy answers 404", vh.name, request.method, request.path));
        return Ok(ex);
    };
    for r in vh.routes.iter().take(index) {
        step(format!("  skipped {}: {}", if r.name.is_empty() { "route" } else { r.name.as_str() }, describe_match(r)));
    }
    let origin = if route.name.is_empty() { String::new() } else { format!(" from {}", route.name) };
    step(format!("route #{index}{origin}: {}", describe_match(route)));
    let mut step = |s: String| ex.steps.push(s);
    match &route.action {
        Some(route::Action::Route(a)) => {
            if let Some(route_action::ClusterSpecifier::WeightedClusters(w)) = &a.cluster_specifier {
                for c in &w.clusters {
                    let weight = c.weight.as_ref().map_or(0, |w| w.value);
                    step(format!("-> cluster {} weight {weight} [{}]", c.name, endpoints_of(&snapshot, &c.name)));
                }
            }
            if let Some(route_action::ClusterSpecifier::Cluster(c)) = &a.cluster_specifier {
                step(format!("-> cluster {c} [{}]", endpoints_of(&snapshot, c)));
            }
            let mut settings = String::new();
            if let Some(t) = &a.timeout {
                let _ = write!(settings, "timeout {}s", t.seconds as f64 + f64::from(t.nanos) / 1e9);
            }
            if let Some(r) = a.retry_policy.as_ref().or(vh.retry_policy.as_ref()) {
                let _ =
                    write!(settings, ", retries {} on {}", r.num_retries.as_ref().map_or(1, |n| n.value), r.retry_on);
            }
            for m in &a.request_mirror_policies {
                let _ = write!(settings, ", mirror to {}", m.cluster);
            }
            step(format!("   {settings}"));
            let host_tags = host_tags_for(set, mesh, dataplane, &rc.name, &vh.name);
            for p in policies_of(set, mesh, &route.name, &host_tags) {
                step(format!("   policy {p}"));
            }
            for p in targeted_policies_of(set, mesh, dataplane, &host_tags) {
                step(format!("   policy {p} (listener)"));
            }
        }
        Some(route::Action::Redirect(r)) => step(format!(
            "-> redirect {} to {}{}{}",
            match r.response_code {
                1 => 302,
                2 => 303,
                3 => 307,
                4 => 308,
                _ => 301,
            },
            match &r.scheme_rewrite_specifier {
                Some(
                    envoy_types::pb::envoy::config::route::v3::redirect_action::SchemeRewriteSpecifier::SchemeRedirect(
                        s,
                    ),
                ) => format!("{s}://"),
                _ => String::new(),
            },
            if r.host_redirect.is_empty() { "<same host>".into() } else { r.host_redirect.clone() },
            if r.port_redirect == 0 { String::new() } else { format!(":{}", r.port_redirect) },
        )),
        Some(route::Action::DirectResponse(d)) => {
            let body = match d.body.as_ref().and_then(|b| b.specifier.as_ref()) {
                Some(data_source::Specifier::InlineString(s)) => s.trim().to_string(),
                _ => String::new(),
            };
            step(format!("-> direct response {} {body:?}", d.status));
        }
        _ => {}
    }
    ex.matched = true;
    Ok(ex)
}

/// The Kuma 2.x policies (explicit and implied initial ones) that select the
/// listener whose merged tags are `host_tags`, in the order they merge.
fn targeted_policies_of(set: &ResourceSet, mesh: &str, dataplane: &str, host_tags: &Tags) -> Vec<String> {
    let Some(Spec::Dataplane(dp)) = set.get(Kind::Dataplane, mesh, dataplane).map(|r| &r.spec) else {
        return Vec::new();
    };
    let Some(g) = dp.gateway() else { return Vec::new() };
    let name = kuma_policy::gateway::select_gateway(set, mesh, &g.tags).map_or("", |(r, _)| r.meta.name.as_str());
    let gateway = kuma_policy::targeting::Gateway { mesh, name };
    kuma_policy::mesh_policies::MeshPolicies::new(set, mesh).for_listener(gateway, host_tags).origins
}

fn host_tags_for(set: &ResourceSet, mesh: &str, dataplane: &str, route_config: &str, vhost: &str) -> Tags {
    let Some(Spec::Dataplane(dp)) = set.get(Kind::Dataplane, mesh, dataplane).map(|r| &r.spec) else {
        return Tags::new();
    };
    let Some(g) = dp.gateway() else { return Tags::new() };
    let Some((gw_resource, gw)) = kuma_policy::gateway::select_gateway(set, mesh, &g.tags) else {
        return g.tags.clone();
    };
    for port in kuma_policy::hosts::plan(set, mesh, &g.tags, &gw_resource.meta.name, gw) {
        for group in &port.groups {
            if !route_config.ends_with(&format!(":{}:{}", port.port, group.key)) {
                continue;
            }
            if let Some(h) = group.hosts.iter().find(|h| h.hostname == vhost) {
                return h.tags().clone();
            }
        }
    }
    g.tags.clone()
}

fn describe_match(r: &Route) -> String {
    let Some(m) = &r.r#match else { return String::new() };
    let mut out = match &m.path_specifier {
        Some(route_match::PathSpecifier::Path(p)) => format!("path == {p}"),
        Some(route_match::PathSpecifier::Prefix(p)) => format!("path starts with {p}"),
        Some(route_match::PathSpecifier::PathSeparatedPrefix(p)) => format!("path is {p} or starts with {p}/"),
        Some(route_match::PathSpecifier::SafeRegex(r)) => format!("path matches {}", r.regex),
        _ => String::new(),
    };
    for h in &m.headers {
        let _ = write!(out, ", header {}", h.name);
    }
    for q in &m.query_parameters {
        let _ = write!(out, ", query {}", q.name);
    }
    out
}
