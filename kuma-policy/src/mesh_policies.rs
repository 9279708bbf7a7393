//! Kuma 2.x targetRef policies on a builtin gateway listener: the merged
//! `MeshTimeout`, `MeshRetry`, `MeshCircuitBreaker`, `MeshFaultInjection`
//! and `MeshRateLimit` confs that apply to its routes, its clusters and the
//! listener itself.
//!
//! Policies whose top-level target selects the listener merge in Kuma's
//! order ([`crate::targeting::policies`]); their `to` entries are then
//! taken by target kind, `Mesh` first and `MeshService` after it, so a
//! service's own entry wins over a mesh-wide one. Policies whose top-level
//! target is a `MeshHTTPRoute` come last and apply to the routes of that
//! route's rules (by the hash of each rule's matches).

use std::collections::BTreeMap;
use std::sync::Arc;

use kuma_model::mesh_access_log::AccessLogConf;
use kuma_model::mesh_circuit_breaker::CircuitBreakerConf;
use kuma_model::mesh_fault_injection::FaultConf;
use kuma_model::mesh_health_check::HealthCheckConf;
use kuma_model::mesh_load_balancing_strategy::LoadBalancingConf;
use kuma_model::mesh_rate_limit::RateLimitConf;
use kuma_model::mesh_retry::RetryConf;
use kuma_model::mesh_timeout::TimeoutConf;
use kuma_model::mesh_tls::TlsConf;
use kuma_model::mesh_trace::TraceConf;
use kuma_model::target_ref::{TargetKind, TargetRef};
use kuma_model::{Kind, Resource, ResourceSet, Spec, Tags};

use crate::initial;
use crate::targeting::{self, Gateway};

/// Confs of one policy kind for one listener. Shared (`Arc`): the route
/// table hands each route entry the conf chosen for it without copying.
#[derive(Debug, Clone, PartialEq)]
pub struct Confs<C> {
    /// `to` entries of kind `Mesh`, merged.
    pub mesh: Option<Arc<C>>,
    /// Per `kuma.io/service`: the mesh-wide entries and that service's.
    pub services: BTreeMap<String, Arc<C>>,
    /// Per route (the hash of a MeshHTTPRoute rule's matches): the
    /// mesh-wide entries and those of policies targeting that route.
    pub routes: BTreeMap<String, Arc<C>>,
    /// Some `to` entry applies to the listener at all.
    pub any: bool,
}

impl<C> Default for Confs<C> {
    fn default() -> Self {
        Confs { mesh: None, services: BTreeMap::new(), routes: BTreeMap::new(), any: false }
    }
}

impl<C> Confs<C> {
    /// The conf of a route: its own (by matches hash) or the mesh-wide one.
    pub fn route(&self, hash: Option<&str>) -> Option<&C> {
        self.route_shared(hash).map(|c| &**c)
    }

    /// [`Confs::route`], shared.
    pub fn route_shared(&self, hash: Option<&str>) -> Option<&Arc<C>> {
        hash.and_then(|h| self.routes.get(h)).or(self.mesh.as_ref())
    }

    /// The conf of a service's clusters: its own or the mesh-wide one.
    pub fn service(&self, service: &str) -> Option<&C> {
        self.service_shared(service).map(|c| &**c)
    }

    /// [`Confs::service`], shared.
    pub fn service_shared(&self, service: &str) -> Option<&Arc<C>> {
        self.services.get(service).or(self.mesh.as_ref())
    }
}

/// Every Kuma 2.x policy conf of one listener.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListenerPolicies {
    /// `MeshTimeout` `from` entries (the listener's own timeouts).
    pub timeout_from: Option<TimeoutConf>,
    /// `MeshTimeout` `to` entries.
    pub timeout: Confs<TimeoutConf>,
    /// `MeshRetry` `to` entries.
    pub retry: Confs<RetryConf>,
    /// `MeshCircuitBreaker` `to` entries.
    pub circuit_breaker: Confs<CircuitBreakerConf>,
    /// `MeshFaultInjection` `to` entries.
    pub fault_injection: Confs<FaultConf>,
    /// `MeshRateLimit` `to` entries.
    pub rate_limit: Confs<RateLimitConf>,
    /// `MeshHealthCheck` `to` entries.
    pub health_check: Confs<HealthCheckConf>,
    /// `MeshLoadBalancingStrategy` `to` entries.
    pub load_balancing: Confs<LoadBalancingConf>,
    /// `MeshAccessLog` `to` entries (what the gateway sends).
    pub access_log_to: Confs<AccessLogConf>,
    /// `MeshAccessLog` `from` entries (what the gateway receives).
    pub access_log_from: Option<AccessLogConf>,
    /// `MeshTrace` `default`s, merged (the listener's tracing).
    pub trace: Option<TraceConf>,
    /// `MeshTLS` confs for all incoming traffic, merged (TLS versions and
    /// ciphers of the gateway's mTLS clusters).
    pub tls: Option<TlsConf>,
    /// The policies that contributed, `Kind name`, in merge order.
    pub origins: Vec<String>,
}

/// The policies of a mesh, explicit and implied ([`crate::initial`]).
#[derive(Debug, Clone)]
pub struct MeshPolicies<'a> {
    set: &'a ResourceSet,
    mesh: String,
    implied: Vec<Resource>,
}

impl<'a> MeshPolicies<'a> {
    /// The policies of `mesh` in `set`.
    pub fn new(set: &'a ResourceSet, mesh: &str) -> Self {
        MeshPolicies { set, mesh: mesh.to_string(), implied: initial::implied(set, mesh) }
    }

    /// The confs for a listener of `gateway` whose merged tags are
    /// `listener_tags`.
    pub fn for_listener(&self, gateway: Gateway<'_>, listener_tags: &Tags) -> ListenerPolicies {
        let mut out = ListenerPolicies::default();
        let routes = route_hashes(self.set, gateway, listener_tags);
        for kind in [
            Kind::MeshTimeout,
            Kind::MeshRetry,
            Kind::MeshCircuitBreaker,
            Kind::MeshFaultInjection,
            Kind::MeshRateLimit,
            Kind::MeshHealthCheck,
            Kind::MeshAccessLog,
            Kind::MeshLoadBalancingStrategy,
            Kind::MeshTrace,
            Kind::MeshTLS,
        ] {
            let candidates = initial::with_implied(self.set, &self.implied, &self.mesh, kind);
            let selected = targeting::policies(candidates.iter().copied(), gateway, listener_tags, top);
            let on_routes: Vec<(&Resource, &[String])> = candidates
                .iter()
                .filter_map(|r| {
                    let t = top(r)?;
                    (t.kind == TargetKind::MeshHttpRoute)
                        .then(|| routes.get(t.name()).map(|h| (*r, h.as_slice())))
                        .flatten()
                })
                .collect();
            let mut sorted_routes = on_routes;
            sorted_routes.sort_by(|(a, _), (b, _)| b.meta.name.cmp(&a.meta.name));
            for r in selected.iter().chain(sorted_routes.iter().map(|(r, _)| r)) {
                out.origins.push(format!("{} {}", r.spec.kind(), r.meta.name));
            }
            match kind {
                Kind::MeshTimeout => {
                    out.timeout = confs(
                        &selected,
                        &sorted_routes,
                        |s| match s {
                            Spec::MeshTimeout(t) => t.to_confs(),
                            _ => Vec::new(),
                        },
                        TimeoutConf::merge,
                    );
                    for r in &selected {
                        if let Spec::MeshTimeout(t) = &r.spec {
                            for e in t.from.iter().flatten().filter(|e| e.target_ref.kind == TargetKind::Mesh) {
                                out.timeout_from.get_or_insert_with(TimeoutConf::default).merge(&e.default);
                            }
                        }
                    }
                }
                Kind::MeshRetry => {
                    out.retry = confs(
                        &selected,
                        &sorted_routes,
                        |s| match s {
                            Spec::MeshRetry(t) => t.to_confs(),
                            _ => Vec::new(),
                        },
                        RetryConf::merge,
                    );
                }
                Kind::MeshFaultInjection => {
                    out.fault_injection = confs(
                        &selected,
                        &sorted_routes,
                        |s| match s {
                            Spec::MeshFaultInjection(t) => t.to_confs(),
                            _ => Vec::new(),
                        },
                        FaultConf::merge,
                    );
                }
                Kind::MeshLoadBalancingStrategy => {
                    out.load_balancing = confs(
                        &selected,
                        &sorted_routes,
                        |s| match s {
                            Spec::MeshLoadBalancingStrategy(t) => t.to_confs(),
                            _ => Vec::new(),
                        },
                        LoadBalancingConf::merge,
                    );
                }
                Kind::MeshAccessLog => {
                    out.access_log_to = confs(
                        &selected,
                        &sorted_routes,
                        |s| match s {
                            Spec::MeshAccessLog(t) => t.to_confs(),
                            _ => Vec::new(),
                        },
                        AccessLogConf::merge,
                    );
                    for r in &selected {
                        if let Spec::MeshAccessLog(t) = &r.spec {
                            for (target, conf) in t.from_confs() {
                                if target.kind == TargetKind::Mesh {
                                    out.access_log_from.get_or_insert_with(AccessLogConf::default).merge(conf);
                                }
                            }
                        }
                    }
                }
                Kind::MeshHealthCheck => {
                    out.health_check = confs(
                        &selected,
                        &sorted_routes,
                        |s| match s {
                            Spec::MeshHealthCheck(t) => t.to_confs(),
                            _ => Vec::new(),
                        },
                        HealthCheckConf::merge,
                    );
                }
                Kind::MeshTrace => {
                    for r in &selected {
                        if let Spec::MeshTrace(t) = &r.spec {
                            out.trace.get_or_insert_with(TraceConf::default).merge(&t.default);
                        }
                    }
                }
                Kind::MeshTLS => {
                    for r in &selected {
                        if let Spec::MeshTLS(t) = &r.spec {
                            for c in t.confs() {
                                out.tls.get_or_insert_with(TlsConf::default).merge(c);
                            }
                        }
                    }
                }
                Kind::MeshRateLimit => {
                    out.rate_limit = confs(
                        &selected,
                        &sorted_routes,
                        |s| match s {
                            Spec::MeshRateLimit(t) => t.to_confs(),
                            _ => Vec::new(),
                        },
                        RateLimitConf::merge,
                    );
                }
                _ => {
                    out.circuit_breaker = confs(
                        &selected,
                        &sorted_routes,
                        |s| match s {
                            Spec::MeshCircuitBreaker(t) => t.to_confs(),
                            _ => Vec::new(),
                        },
                        CircuitBreakerConf::merge,
                    );
                }
            }
        }
        out
    }
}

fn top(r: &Resource) -> Option<&TargetRef> {
    match &r.spec {
        Spec::MeshFaultInjection(s) => s.target_ref.as_ref(),
        Spec::MeshTrace(s) => s.target_ref.as_ref(),
        Spec::MeshTLS(s) => s.target_ref.as_ref(),
        Spec::MeshRateLimit(s) => s.target_ref.as_ref(),
        Spec::MeshHealthCheck(s) => s.target_ref.as_ref(),
        Spec::MeshAccessLog(s) => s.target_ref.as_ref(),
        Spec::MeshLoadBalancingStrategy(s) => s.target_ref.as_ref(),
        Spec::MeshTimeout(s) => s.target_ref.as_ref(),
        Spec::MeshRetry(s) => s.target_ref.as_ref(),
        Spec::MeshCircuitBreaker(s) => s.target_ref.as_ref(),
        _ => None,
    }
}

/// The rule hashes of each MeshHTTPRoute that reaches the listener, by name.
fn route_hashes(set: &ResourceSet, gateway: Gateway<'_>, listener_tags: &Tags) -> BTreeMap<String, Vec<String>> {
    let routes = targeting::routes(set, Kind::MeshHTTPRoute, gateway, listener_tags, |r| match &r.spec {
        Spec::MeshHTTPRoute(s) => s.target_ref.as_ref(),
        _ => None,
    });
    routes
        .into_iter()
        .filter_map(|r| match &r.spec {
            Spec::MeshHTTPRoute(s) => Some((
                r.meta.name.clone(),
                s.to.iter().flat_map(|t| t.rules.iter()).map(|rule| rule.matches_hash()).collect(),
            )),
            _ => None,
        })
        .collect()
}

/// Rank of a `to` entry's target: later ranks merge later and win.
fn to_rank(kind: TargetKind) -> Option<u8> {
    match kind {
        TargetKind::Mesh => Some(1),
        TargetKind::MeshService => Some(5),
        _ => None,
    }
}

fn confs<'r, C: Clone + Default + 'r>(
    selected: &[&'r Resource],
    on_routes: &[(&'r Resource, &[String])],
    entries: impl Fn(&'r Spec) -> Vec<(&'r TargetRef, &'r C)>,
    merge: fn(&mut C, &C),
) -> Confs<C> {
    struct Plain<C> {
        mesh: Option<C>,
        services: BTreeMap<String, C>,
        routes: BTreeMap<String, C>,
        any: bool,
    }
    let mut out = Plain { mesh: None, services: BTreeMap::new(), routes: BTreeMap::new(), any: false };
    let mut flat: Vec<(u8, &'r TargetRef, &'r C)> = Vec::new();
    for r in selected {
        for (t, c) in entries(&r.spec) {
            if let Some(rank) = to_rank(t.kind) {
                flat.push((rank, t, c));
            }
        }
    }
    // Stable: equal ranks keep the policies' order.
    flat.sort_by_key(|(rank, _, _)| *rank);
    out.any = !flat.is_empty();
    for (_, t, c) in &flat {
        match t.kind {
            TargetKind::Mesh => {
                merge(out.mesh.get_or_insert_with(C::default), c);
                for s in out.services.values_mut() {
                    merge(s, c);
                }
            }
            _ => {
                let base = out.mesh.clone().unwrap_or_default();
                merge(out.services.entry(t.name().to_string()).or_insert(base), c);
            }
        }
    }
    for (r, hashes) in on_routes {
        for (t, c) in entries(&r.spec) {
            if t.kind != TargetKind::Mesh {
                continue;
            }
            out.any = true;
            for h in hashes.iter() {
                let base = out.mesh.clone().unwrap_or_default();
                merge(out.routes.entry(h.clone()).or_insert(base), c);
            }
        }
    }
    Confs {
        mesh: out.mesh.map(Arc::new),
        services: out.services.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        routes: out.routes.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        any: out.any,
    }
}
