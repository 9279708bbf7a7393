//! The endpoints behind a backend destination: data plane inbounds whose
//! tags carry every destination tag, and the `ExternalService`s that do.

use kuma_model::dataplane::DataplaneSpec;
use kuma_model::external_service::ExternalServiceSpec;
use kuma_model::{Kind, Resource, ResourceSet, SERVICE_TAG, Spec, Tags};

/// The tag that names an endpoint's application protocol.
pub const PROTOCOL_TAG: &str = "kuma.io/protocol";

/// One address a destination can be reached at, from a data plane inbound.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    /// The data plane.
    pub dataplane: &'a Resource,
    /// Index of the inbound in `networking.inbound`.
    pub inbound: usize,
    /// The address to connect to.
    pub address: &'a str,
    /// The port to connect to.
    pub port: u32,
    /// The inbound's tags.
    pub tags: &'a Tags,
}

impl<'a> Endpoint<'a> {
    /// `kuma.io/protocol` of the inbound, `tcp` when unset (Kuma's default).
    pub fn protocol(&self) -> &'a str {
        self.tags.get(PROTOCOL_TAG).map_or("tcp", String::as_str)
    }
}

/// True when `tags` carry every tag of `destination` with the same value
/// (`*` matches any value).
pub fn carries(tags: &Tags, destination: &Tags) -> bool {
    destination.iter().all(|(k, v)| tags.get(k).is_some_and(|t| v == "*" || t == v))
}

/// The zone egresses (`address`, `port`), in name order: the endpoints of
/// every ExternalService reached through the zone egress.
pub fn zone_egresses(set: &ResourceSet) -> Vec<(&str, u32)> {
    set.of_kind(Kind::ZoneEgress)
        .filter_map(|r| match &r.spec {
            Spec::ZoneEgress(z) => z.endpoint(),
            _ => None,
        })
        .collect()
}

/// The ready inbounds in `mesh` whose tags carry `destination`, in data plane
/// name order, then inbound order. Inbounds marked `health.ready: false` (or
/// state `NotReady`/`Ignored`) are left out, as Kuma leaves them out of EDS.
///
/// ```
/// use kuma_model::{ResourceSet, UnknownFields, Tags};
/// let (set, _) = ResourceSet::load([("dp.yaml", "type: Dataplane\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound: [{port: 8080, tags: {kuma.io/service: web, kuma.io/protocol: http}}]\n")], UnknownFields::Reject).unwrap();
/// let dest = kuma_model::tags::tags_of([("kuma.io/service", "web")]);
/// let eps = kuma_policy::endpoints::mesh_endpoints(&set, "default", &dest);
/// assert_eq!((eps[0].address, eps[0].port, eps[0].protocol()), ("10.0.0.1", 8080, "http"));
/// ```
pub fn mesh_endpoints<'a>(set: &'a ResourceSet, mesh: &str, destination: &Tags) -> Vec<Endpoint<'a>> {
    ready_inbounds(set, mesh, |_, ib| carries(&ib.tags, destination))
}

/// The ready inbounds of `mesh`'s data planes that `pick` keeps.
pub(crate) fn ready_inbounds<'a>(
    set: &'a ResourceSet,
    mesh: &str,
    mut pick: impl FnMut(&'a Resource, &'a kuma_model::dataplane::Inbound) -> bool,
) -> Vec<Endpoint<'a>> {
    let mut out = Vec::new();
    for dataplane in set.in_mesh(Kind::Dataplane, mesh) {
        let Spec::Dataplane(DataplaneSpec { networking: Some(networking), .. }) = &dataplane.spec else { continue };
        for (inbound, ib) in networking.inbound.iter().enumerate() {
            if ib.is_ready() && pick(dataplane, ib) {
                out.push(Endpoint {
                    dataplane,
                    inbound,
                    address: ib.endpoint_address(networking),
                    port: ib.port,
                    tags: &ib.tags,
                });
            }
        }
    }
    out
}

/// The `ExternalService`s in `mesh` whose tags carry `destination`, in name order.
pub fn external_services<'a>(
    set: &'a ResourceSet,
    mesh: &str,
    destination: &Tags,
) -> Vec<(&'a Resource, &'a ExternalServiceSpec)> {
    set.in_mesh(Kind::ExternalService, mesh)
        .filter_map(|r| match &r.spec {
            Spec::ExternalService(es) if carries(&es.tags, destination) => Some((r, es)),
            _ => None,
        })
        .collect()
}

/// True when some `ExternalService` in `mesh` provides `service`
/// (Kuma's `IsExternalService`).
pub fn is_external_service(set: &ResourceSet, mesh: &str, service: &str) -> bool {
    set.in_mesh(Kind::ExternalService, mesh)
        .any(|r| matches!(&r.spec, Spec::ExternalService(es) if es.tags.get(SERVICE_TAG).is_some_and(|s| s == service)))
}

/// The protocol of a service: the `kuma.io/protocol` its endpoints agree on
/// (an `ExternalService`'s own tag counts), `None` when there are none or
/// they disagree (Kuma then falls back to the route's kind).
pub fn service_protocol<'a>(set: &'a ResourceSet, mesh: &str, destination: &Tags) -> Option<&'a str> {
    let from_dps = mesh_endpoints(set, mesh, destination).into_iter().map(|e| e.protocol());
    let from_es = external_services(set, mesh, destination).into_iter().map(|(_, es)| es_protocol(es));
    agreed(from_dps.chain(from_es))
}

fn es_protocol(es: &ExternalServiceSpec) -> &str {
    es.tags.get(PROTOCOL_TAG).map_or("tcp", String::as_str)
}

/// The one protocol every endpoint names, or `None` when there are none or they differ.
fn agreed<'a>(protocols: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen: Option<&'a str> = None;
    for p in protocols {
        match seen {
            None => seen = Some(p),
            Some(s) if s != p => return None,
            Some(_) => {}
        }
    }
    seen
}

/// Every ready inbound and `ExternalService` of a mesh, grouped by
/// `kuma.io/service`, so a translation looks each destination up once
/// instead of scanning every data plane per cluster. Answers exactly as
/// [`mesh_endpoints`], [`external_services`] and [`is_external_service`] do.
#[derive(Debug, Default)]
pub struct EndpointIndex<'a> {
    inbounds: std::collections::HashMap<&'a str, Vec<Endpoint<'a>>>,
    /// `MeshService` ports by Kuma's destination name, with their endpoints.
    real: std::collections::HashMap<String, (crate::mesh_services::RealService<'a>, Vec<Endpoint<'a>>)>,
    external: std::collections::HashMap<&'a str, Vec<(&'a Resource, &'a ExternalServiceSpec)>>,
}

impl<'a> EndpointIndex<'a> {
    /// Indexes `mesh`.
    pub fn new(set: &'a ResourceSet, mesh: &str) -> Self {
        let mut index = EndpointIndex::default();
        for e in mesh_endpoints(set, mesh, &Tags::new()) {
            let service = e.tags.get(SERVICE_TAG).map_or("", String::as_str);
            index.inbounds.entry(service).or_default().push(e);
        }
        for (r, es) in external_services(set, mesh, &Tags::new()) {
            index.external.entry(es.service()).or_default().push((r, es));
        }
        for real in crate::mesh_services::all(set, mesh) {
            let endpoints = real.endpoints(set, mesh);
            index.real.insert(real.name.clone(), (real, endpoints));
        }
        index
    }

    fn service(destination: &Tags) -> &str {
        destination.get(SERVICE_TAG).map_or("", String::as_str)
    }

    /// As [`mesh_endpoints`].
    pub fn endpoints(&self, destination: &Tags) -> Vec<Endpoint<'a>> {
        if let Some((_, endpoints)) = self.real.get(Self::service(destination)) {
            return endpoints.clone();
        }
        let all = self.inbounds.get(Self::service(destination)).map_or(&[][..], Vec::as_slice);
        all.iter().filter(|e| carries(e.tags, destination)).cloned().collect()
    }

    /// As [`external_services`].
    pub fn external_services(&self, destination: &Tags) -> Vec<(&'a Resource, &'a ExternalServiceSpec)> {
        let all = self.external.get(Self::service(destination)).map_or(&[][..], Vec::as_slice);
        all.iter().filter(|(_, es)| carries(&es.tags, destination)).copied().collect()
    }

    /// The `MeshService` port a destination service name stands for.
    pub fn real_service(&self, service: &str) -> Option<&crate::mesh_services::RealService<'a>> {
        self.real.get(service).map(|(r, _)| r)
    }

    /// As [`is_external_service`].
    pub fn is_external_service(&self, service: &str) -> bool {
        self.external.contains_key(service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuma_model::UnknownFields;

    const DPS: &str = "type: Dataplane\nname: web-2\nnetworking:\n  address: 10.0.0.2\n  advertisedAddress: 1.2.3.4\n  inbound:\n  - {port: 80, tags: {kuma.io/service: web, version: v2, kuma.io/protocol: http}}\n  - {port: 81, tags: {kuma.io/service: web, version: v2}, health: {ready: false}}\n---\ntype: Dataplane\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - {port: 80, address: 10.9.9.9, tags: {kuma.io/service: web, version: v1, kuma.io/protocol: http}}\n---\ntype: ExternalService\nname: httpbin\nnetworking: {address: httpbin.org:443}\ntags: {kuma.io/service: httpbin, kuma.io/protocol: http}\n";

    fn set() -> ResourceSet {
        ResourceSet::load([("t.yaml", DPS)], UnknownFields::Reject).unwrap().0
    }

    #[test]
    fn inbounds_that_carry_the_destination_and_are_ready() {
        let s = set();
        let all = mesh_endpoints(&s, "default", &kuma_model::tags::tags_of([("kuma.io/service", "web")]));
        let got: Vec<_> = all.iter().map(|e| (e.dataplane.meta.name.as_str(), e.address, e.port)).collect();
        assert_eq!(got, [("web-1", "10.9.9.9", 80), ("web-2", "1.2.3.4", 80)]);
        let v2 =
            mesh_endpoints(&s, "default", &kuma_model::tags::tags_of([("kuma.io/service", "web"), ("version", "v2")]));
        assert_eq!(v2.len(), 1);
        assert!(mesh_endpoints(&s, "default", &kuma_model::tags::tags_of([("kuma.io/service", "api")])).is_empty());
        assert!(mesh_endpoints(&s, "other", &kuma_model::tags::tags_of([("kuma.io/service", "web")])).is_empty());
    }

    #[test]
    fn the_index_answers_as_the_scans() {
        let s = set();
        let index = EndpointIndex::new(&s, "default");
        for dest in [
            kuma_model::tags::tags_of([("kuma.io/service", "web")]),
            kuma_model::tags::tags_of([("kuma.io/service", "web"), ("version", "v2")]),
            kuma_model::tags::tags_of([("kuma.io/service", "httpbin")]),
            kuma_model::tags::tags_of([("kuma.io/service", "none")]),
        ] {
            let a: Vec<_> = index.endpoints(&dest).iter().map(|e| (e.address, e.port)).collect();
            let b: Vec<_> = mesh_endpoints(&s, "default", &dest).iter().map(|e| (e.address, e.port)).collect();
            assert_eq!(a, b);
            assert_eq!(index.external_services(&dest).len(), external_services(&s, "default", &dest).len());
            let svc = dest["kuma.io/service"].as_str();
            assert_eq!(index.is_external_service(svc), is_external_service(&s, "default", svc));
        }
    }

    #[test]
    fn external_services_and_protocols() {
        let s = set();
        assert!(is_external_service(&s, "default", "httpbin"));
        assert!(!is_external_service(&s, "default", "web"));
        let dest = kuma_model::tags::tags_of([("kuma.io/service", "httpbin")]);
        assert_eq!(external_services(&s, "default", &dest).len(), 1);
        assert_eq!(service_protocol(&s, "default", &dest), Some("http"));
        assert_eq!(
            service_protocol(&s, "default", &kuma_model::tags::tags_of([("kuma.io/service", "web")])),
            Some("http")
        );
        assert_eq!(service_protocol(&s, "default", &kuma_model::tags::tags_of([("kuma.io/service", "none")])), None);
    }
}
