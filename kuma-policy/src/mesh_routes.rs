//! Kuma 2.x routes on a builtin gateway listener: the `MeshHTTPRoute` and
//! `MeshTCPRoute` rules that reach it, merged as Kuma merges them, and
//! lowered to the form `MeshGatewayRoute` rules take so that both kinds
//! share every step after this one.
//!
//! Merging: routes apply in name order ([`crate::targeting::routes`]); each
//! `to` entry adds its rules to the set of its `hostnames`, and a rule whose
//! `matches` equal an earlier rule's replaces that rule's `backendRefs` and
//! `filters` (those it sets). Within one route the first of two rules with
//! equal matches wins.

use std::sync::Arc;

use kuma_model::mesh_http_route::{HttpRouteConf, MeshHttpRouteSpec, RouteMatch};
use kuma_model::mesh_tcp_route::{MeshTcpRouteSpec, TcpRouteRule};
use kuma_model::route::{HttpRoute, MeshGatewayRouteSpec, RouteConf, TcpRoute};
use kuma_model::target_ref::TargetKind;
use kuma_model::{Kind, Resource, ResourceSet, Spec};

use crate::gateway::GatewayListener;
use crate::hosts::{AttachedRoute, RouteSpec};
use crate::targeting::{self, Gateway};

struct Rule<'a> {
    matches: Vec<RouteMatch>,
    conf: HttpRouteConf,
    origin: &'a Resource,
    /// Where the rule is written in `origin`.
    path: String,
}

/// The `MeshHTTPRoute` rules for an HTTP or HTTPS listener, one attached
/// route per (route, `hostnames` set) that still owns a rule after merging.
/// Empty when no `MeshHTTPRoute` selects the listener.
pub fn http_routes<'a>(
    set: &'a ResourceSet,
    gateway: Gateway<'_>,
    listener: &GatewayListener<'_>,
) -> Vec<AttachedRoute<'a>> {
    let routes = targeting::routes(set, Kind::MeshHTTPRoute, gateway, &listener.tags, |r| match &r.spec {
        Spec::MeshHTTPRoute(s) => s.target_ref.as_ref(),
        _ => None,
    });
    let mut groups: Vec<(Vec<String>, Vec<Rule<'a>>)> = Vec::new();
    for resource in routes {
        let Spec::MeshHTTPRoute(spec) = &resource.spec else { continue };
        merge_http(resource, spec, &mut groups);
    }
    let mut out = Vec::new();
    for (part, (hostnames, rules)) in groups.into_iter().enumerate() {
        let mut owners: Vec<&'a Resource> = Vec::new();
        for r in &rules {
            if !owners.iter().any(|o| std::ptr::eq(*o, r.origin)) {
                owners.push(r.origin);
            }
        }
        for owner in owners {
            let (lowered, paths): (Vec<_>, Vec<_>) = rules
                .iter()
                .filter(|r| std::ptr::eq(r.origin, owner))
                .filter_map(|r| {
                    let mut conf = r.conf.clone();
                    resolve_http_refs(set, gateway.mesh, &mut conf);
                    kuma_model::mesh_http_route::HttpRouteRule { matches: r.matches.clone(), default: conf }
                        .lower()
                        .ok()
                        .map(|l| (l, r.path.clone()))
                })
                .unzip();
            let spec = MeshGatewayRouteSpec {
                selectors: Vec::new(),
                conf: Some(RouteConf {
                    tcp: None,
                    http: Some(HttpRoute { hostnames: hostnames.clone(), rules: lowered }),
                }),
            };
            out.push(AttachedRoute {
                resource: owner,
                spec: RouteSpec::Lowered(Arc::new(spec)),
                part,
                rule_paths: Some(Arc::new(paths)),
            });
        }
    }
    out
}

fn merge_http<'a>(resource: &'a Resource, spec: &MeshHttpRouteSpec, groups: &mut Vec<(Vec<String>, Vec<Rule<'a>>)>) {
    for (to_index, to) in spec.to.iter().enumerate().filter(|(_, t)| t.target_ref.kind == TargetKind::Mesh) {
        let i = match groups.iter().position(|(h, _)| *h == to.hostnames) {
            Some(i) => i,
            None => {
                groups.push((to.hostnames.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        let rules = &mut groups[i].1;
        // Reversed: of two rules with equal matches in one route, the first wins.
        for (rule_index, rule) in to.rules.iter().enumerate().rev() {
            let path = format!("spec.to[{to_index}].rules[{rule_index}]");
            match rules.iter_mut().find(|r| r.matches == rule.matches) {
                Some(r) => {
                    if rule.default.backend_refs.is_some() {
                        r.conf.backend_refs.clone_from(&rule.default.backend_refs);
                    }
                    if rule.default.filters.is_some() {
                        r.conf.filters.clone_from(&rule.default.filters);
                    }
                    r.origin = resource;
                    r.path = path;
                }
                None => rules.push(Rule {
                    matches: rule.matches.clone(),
                    conf: rule.default.clone(),
                    origin: resource,
                    path,
                }),
            }
        }
    }
}

/// The `MeshTCPRoute` rule for a TCP or TLS listener: the first rule of the
/// last `to` entry of the route whose name sorts last (a later route's
/// backends replace an earlier one's). Empty when no `MeshTCPRoute` selects it.
pub fn tcp_routes<'a>(
    set: &'a ResourceSet,
    gateway: Gateway<'_>,
    listener: &GatewayListener<'_>,
) -> Vec<AttachedRoute<'a>> {
    let routes = targeting::routes(set, Kind::MeshTCPRoute, gateway, &listener.tags, |r| match &r.spec {
        Spec::MeshTCPRoute(s) => s.target_ref.as_ref(),
        _ => None,
    });
    let mut chosen: Option<(&'a Resource, &'a TcpRouteRule, usize)> = None;
    for resource in routes {
        let Spec::MeshTCPRoute(MeshTcpRouteSpec { to, .. }) = &resource.spec else { continue };
        for (i, entry) in to.iter().enumerate().filter(|(_, t)| t.target_ref.kind == TargetKind::Mesh) {
            if let Some(rule) = entry.rules.first() {
                chosen = Some((resource, rule, i));
            }
        }
    }
    let Some((resource, rule, to_index)) = chosen else { return Vec::new() };
    let mut rule = rule.clone();
    for b in &mut rule.default.backend_refs {
        resolve_ref(set, gateway.mesh, b);
    }
    let Ok(lowered) = rule.lower() else { return Vec::new() };
    let spec = MeshGatewayRouteSpec {
        selectors: Vec::new(),
        conf: Some(RouteConf { tcp: Some(TcpRoute { rules: vec![lowered] }), http: None }),
    };
    vec![AttachedRoute {
        resource,
        spec: RouteSpec::Lowered(Arc::new(spec)),
        part: 0,
        rule_paths: Some(Arc::new(vec![format!("spec.to[{to_index}].rules[0]")])),
    }]
}

/// A backendRef that references a `MeshService` resource (with a port or
/// section) becomes a reference by name to the destination Kuma routes it
/// as ([`crate::mesh_services`]), or to Kuma's unresolved backend when no
/// such service port exists.
fn resolve_ref(set: &ResourceSet, mesh: &str, b: &mut kuma_model::target_ref::BackendRef) {
    if !crate::mesh_services::references_resource(b) {
        return;
    }
    let name = crate::mesh_services::resolve(set, mesh, b)
        .map_or_else(|| kuma_model::mesh_http_route::UNRESOLVED_BACKEND.to_string(), |s| s.name);
    let mut target = kuma_model::target_ref::TargetRef::mesh();
    target.kind = TargetKind::MeshService;
    target.name = Some(name);
    *b = kuma_model::target_ref::BackendRef { target, port: None, weight: b.weight };
}

fn resolve_http_refs(set: &ResourceSet, mesh: &str, conf: &mut HttpRouteConf) {
    for b in conf.backend_refs.iter_mut().flatten() {
        resolve_ref(set, mesh, b);
    }
    for f in conf.filters.iter_mut().flatten() {
        if let Some(m) = &mut f.request_mirror {
            resolve_ref(set, mesh, &mut m.backend_ref);
        }
    }
}
