//! Which `MeshGateway` serves a builtin data plane, its listeners with their
//! merged tags, and which `MeshGatewayRoute`s attach to each listener.

use kuma_model::gateway::{Listener, MeshGatewaySpec};
use kuma_model::route::MeshGatewayRouteSpec;
use kuma_model::{Kind, Resource, ResourceSet, Spec, Tags};

use crate::selector::best_match;

/// The `MeshGateway` that serves a data plane with gateway tags `tags` in
/// `mesh`: the best-ranked selector match, the newest gateway on a tie
/// (Kuma's `SelectGateway`). `None` when no gateway selects it.
///
/// ```
/// use kuma_model::{ResourceSet, UnknownFields, Tags};
/// let (set, _) = ResourceSet::load([("gw.yaml", "type: MeshGateway\nname: edge\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 80, protocol: HTTP}]}\n")], UnknownFields::Reject).unwrap();
/// let tags: Tags = [("kuma.io/service".to_string(), "edge".to_string())].into();
/// let (gw, _) = kuma_policy::gateway::select_gateway(&set, "default", &tags).unwrap();
/// assert_eq!(gw.meta.name, "edge");
/// ```
pub fn select_gateway<'a>(
    set: &'a ResourceSet,
    mesh: &str,
    tags: &Tags,
) -> Option<(&'a Resource, &'a MeshGatewaySpec)> {
    let gateways = set.in_mesh(Kind::MeshGateway, mesh).filter_map(|r| match &r.spec {
        Spec::MeshGateway(gw) => Some((r, &gw.selectors[..], gw)),
        _ => None,
    });
    best_match(gateways, tags)
}

/// A listener of the selected gateway with its effective tags.
#[derive(Debug, Clone)]
pub struct GatewayListener<'a> {
    /// Index in `conf.listeners`.
    pub index: usize,
    /// The listener as written.
    pub listener: &'a Listener,
    /// `dataplane.gateway.tags` ⊕ `gateway.tags` ⊕ `listener.tags` (later wins).
    pub tags: Tags,
}

/// The gateway's listeners with their merged tags, in the order written.
pub fn listeners<'a>(dataplane_tags: &Tags, gateway: &'a MeshGatewaySpec) -> Vec<GatewayListener<'a>> {
    gateway
        .conf
        .iter()
        .flat_map(|c| c.listeners.iter())
        .enumerate()
        .map(|(index, listener)| {
            let mut tags = dataplane_tags.clone();
            tags.extend(gateway.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            tags.extend(listener.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            GatewayListener { index, listener, tags }
        })
        .collect()
}

/// The routes that attach to a listener: any selector matches the merged
/// listener tags, and the route's kind suits the protocol (http routes on
/// HTTP/HTTPS, tcp routes on TCP/TLS). In name order.
pub fn attached_routes<'a>(
    set: &'a ResourceSet,
    mesh: &str,
    listener: &GatewayListener<'_>,
) -> Vec<(&'a Resource, &'a MeshGatewayRouteSpec)> {
    let http = listener.listener.protocol.is_http();
    set.in_mesh(Kind::MeshGatewayRoute, mesh)
        .filter_map(|r| match &r.spec {
            Spec::MeshGatewayRoute(route) => Some((r, route)),
            _ => None,
        })
        .filter(|(_, route)| {
            let conf = route.conf.as_ref();
            let suits =
                if http { conf.is_some_and(|c| c.http.is_some()) } else { conf.is_some_and(|c| c.tcp.is_some()) };
            suits && route.selectors.iter().any(|s| crate::selector::rank(s, &listener.tags).is_some())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuma_model::UnknownFields;

    fn load(text: &str) -> ResourceSet {
        ResourceSet::load([("t.yaml", text)], UnknownFields::Reject).unwrap().0
    }

    const GATEWAYS: &str = "type: MeshGateway\nname: a\nselectors: [{match: {kuma.io/service: '*'}}]\nconf: {listeners: [{port: 80, protocol: HTTP}]}\n---\ntype: MeshGateway\nname: b\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 80, protocol: HTTP}]}\n---\ntype: MeshGateway\nname: c\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 81, protocol: HTTP}]}\n";

    fn tags(service: &str) -> Tags {
        [("kuma.io/service".to_string(), service.to_string())].into()
    }

    #[test]
    fn best_rank_then_newest() {
        let set = load(GATEWAYS);
        // b and c tie on rank; c was loaded later, so it is newer.
        assert_eq!(select_gateway(&set, "default", &tags("edge")).unwrap().0.meta.name, "c");
        assert_eq!(select_gateway(&set, "default", &tags("other")).unwrap().0.meta.name, "a");
        assert!(select_gateway(&set, "elsewhere", &tags("edge")).is_none());
    }

    #[test]
    fn listener_tags_merge_and_routes_attach() {
        let set = load(
            "type: MeshGateway\nname: gw\ntags: {zone: z, port: gw}\nselectors: [{match: {kuma.io/service: edge}}]\nconf:\n  listeners:\n  - {port: 80, protocol: HTTP, tags: {port: http/80}}\n  - {port: 90, protocol: TCP}\n---\ntype: MeshGatewayRoute\nname: http-80\nselectors: [{match: {kuma.io/service: edge, port: http/80}}]\nconf: {http: {rules: [{matches: [{path: {value: /}}], backends: [{destination: {kuma.io/service: web}}]}]}}\n---\ntype: MeshGatewayRoute\nname: tcp-any\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {tcp: {rules: [{backends: [{destination: {kuma.io/service: db}}]}]}}\n",
        );
        let (_, gw) = select_gateway(&set, "default", &tags("edge")).unwrap();
        let ls = listeners(&tags("edge"), gw);
        assert_eq!(ls[0].tags.get("port").unwrap(), "http/80");
        assert_eq!(ls[1].tags.get("port").unwrap(), "gw");
        assert_eq!(ls[1].tags.get("zone").unwrap(), "z");
        let names =
            |l| attached_routes(&set, "default", l).iter().map(|(r, _)| r.meta.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&ls[0]), ["http-80"]);
        assert_eq!(names(&ls[1]), ["tcp-any"]);
    }
}
