//! A DELEGATED gateway is a sidecar without inbounds: its outbounds are
//! resolved to services and endpoints like any sidecar's, and policies match
//! it through its gateway tags.

use kuma_model::dataplane::{DataplaneSpec, Outbound};
use kuma_model::external_service::ExternalServiceSpec;
use kuma_model::{Resource, ResourceSet, SERVICE_TAG, Tags};

use crate::endpoints::{Endpoint, external_services, mesh_endpoints, service_protocol};

/// An outbound of a delegated gateway with what it reaches.
#[derive(Debug, Clone)]
pub struct ResolvedOutbound<'a> {
    /// Index in `networking.outbound`.
    pub index: usize,
    /// The outbound as written.
    pub outbound: &'a Outbound,
    /// Its `kuma.io/service`.
    pub service: &'a str,
    /// The service's protocol (`tcp` when its endpoints do not say).
    pub protocol: &'a str,
    /// Data plane inbounds that provide it.
    pub endpoints: Vec<Endpoint<'a>>,
    /// `ExternalService`s that provide it.
    pub external: Vec<(&'a Resource, &'a ExternalServiceSpec)>,
}

/// The tags policies match a delegated gateway by (`sources`): its gateway tags.
pub fn source_tags(dataplane: &DataplaneSpec) -> Option<&Tags> {
    dataplane.gateway().map(|g| &g.tags)
}

/// The data plane's outbounds in the order written, each resolved against `mesh`.
///
/// ```
/// use kuma_model::{ResourceSet, Spec, UnknownFields};
/// let yaml = "type: Dataplane\nname: kong\nnetworking:\n  address: 10.0.0.9\n  gateway: {type: DELEGATED, tags: {kuma.io/service: kong}}\n  outbound: [{port: 33033, tags: {kuma.io/service: backend}}]\n---\ntype: Dataplane\nname: backend-1\nnetworking:\n  address: 10.0.0.1\n  inbound: [{port: 8080, tags: {kuma.io/service: backend, kuma.io/protocol: http}}]\n";
/// let (set, _) = ResourceSet::load([("d.yaml", yaml)], UnknownFields::Reject).unwrap();
/// let Spec::Dataplane(dp) = &set.get(kuma_model::Kind::Dataplane, "default", "kong").unwrap().spec else { unreachable!() };
/// let out = kuma_policy::delegated::outbounds(&set, "default", dp);
/// assert_eq!((out[0].service, out[0].protocol, out[0].endpoints.len()), ("backend", "http", 1));
/// ```
pub fn outbounds<'a>(set: &'a ResourceSet, mesh: &str, dataplane: &'a DataplaneSpec) -> Vec<ResolvedOutbound<'a>> {
    let Some(networking) = &dataplane.networking else { return Vec::new() };
    networking
        .outbound
        .iter()
        .enumerate()
        .map(|(index, outbound)| ResolvedOutbound {
            index,
            outbound,
            service: outbound.tags.get(SERVICE_TAG).map_or("", String::as_str),
            protocol: service_protocol(set, mesh, &outbound.tags).unwrap_or("tcp"),
            endpoints: mesh_endpoints(set, mesh, &outbound.tags),
            external: external_services(set, mesh, &outbound.tags),
        })
        .collect()
}
