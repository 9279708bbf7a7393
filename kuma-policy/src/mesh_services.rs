//! Real `MeshService` backends: a `backendRef` of kind `MeshService` with a
//! `port` or `sectionName` references the resource (Kuma's rule; by name
//! only it means the `kuma.io/service` of that name). It resolves to the
//! service's port and is routed as a destination named as Kuma names it
//! (`<mesh>_<name>_<namespace>_<zone>_msvc_<port>`), whose endpoints are the
//! selected data planes' inbounds on the target port.

use kuma_model::mesh_service::{MeshServiceSpec, ServicePort};
use kuma_model::target_ref::{BackendRef, TargetKind};
use kuma_model::{Kind, Resource, ResourceSet, Spec};

use crate::endpoints::Endpoint;

/// One port of a `MeshService`, as a destination.
#[derive(Debug, Clone)]
pub struct RealService<'a> {
    /// The `MeshService`.
    pub resource: &'a Resource,
    /// Its spec.
    pub spec: &'a MeshServiceSpec,
    /// The port.
    pub port: &'a ServicePort,
    /// Kuma's destination name for it (its clusters' service name).
    pub name: String,
}

/// The name and namespace Kuma identifies a `MeshService` by: read in the
/// Kubernetes form, the resource is named `<name>.<namespace>` here.
fn identity(resource: &Resource) -> (&str, &str) {
    let name = resource.meta.name.as_str();
    if let Some(namespace) = resource.meta.namespace.as_deref()
        && let Some(short) = name.strip_suffix(namespace).and_then(|n| n.strip_suffix('.'))
    {
        return (short, namespace);
    }
    (name, "")
}

/// Kuma's legacy destination name of a service port (one zone, unnamed).
pub fn destination_name(mesh: &str, name: &str, namespace: &str, port: u32) -> String {
    format!("{mesh}_{name}_{namespace}__msvc_{port}")
}

/// Kuma's SNI for a `MeshService` port (`SNIForResource`): a version
/// letter and the FNV-1a hash of name and mesh, then name, port and mesh.
pub fn sni(name: &str, mesh: &str, port: u32) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{name};{mesh};").bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let cut = |s: &str| if s.len() > 62 { format!("{}x", &s[..62]) } else { s.to_string() };
    format!("a{hash:x}.{}.{port}.{}.ms", cut(name), cut(mesh))
}

/// Whether a backendRef references a `MeshService` resource.
pub fn references_resource(b: &BackendRef) -> bool {
    b.target.kind == TargetKind::MeshService
        && (b.port.is_some() || b.target.section_name.as_deref().is_some_and(|s| !s.is_empty()))
}

/// The `MeshService` port a backendRef references, if it exists.
pub fn resolve<'a>(set: &'a ResourceSet, mesh: &str, b: &BackendRef) -> Option<RealService<'a>> {
    let name = b.target.name();
    let namespace = b.target.namespace.as_deref().unwrap_or_default();
    let resource = if namespace.is_empty() {
        set.get(Kind::MeshService, mesh, name)
    } else {
        set.get(Kind::MeshService, mesh, &format!("{name}.{namespace}"))
            .or_else(|| set.get(Kind::MeshService, mesh, name))
    }?;
    let Spec::MeshService(spec) = &resource.spec else { return None };
    let section = b.target.section_name.as_deref().filter(|s| !s.is_empty());
    let port = spec.ports.iter().find(|p| match (b.port, section) {
        (Some(n), _) => p.port == n,
        (None, Some(s)) => p.name.as_deref() == Some(s) || p.port.to_string() == s,
        (None, None) => false,
    })?;
    let (short, ns) = identity(resource);
    Some(RealService { resource, spec, port, name: destination_name(mesh, short, ns, port.port) })
}

/// Every port of every `MeshService` of `mesh`.
pub fn all<'a>(set: &'a ResourceSet, mesh: &str) -> Vec<RealService<'a>> {
    let mut out = Vec::new();
    for resource in set.in_mesh(Kind::MeshService, mesh) {
        let Spec::MeshService(spec) = &resource.spec else { continue };
        let (short, ns) = identity(resource);
        for port in &spec.ports {
            out.push(RealService { resource, spec, port, name: destination_name(mesh, short, ns, port.port) });
        }
    }
    out
}

impl<'a> RealService<'a> {
    /// The `MeshService`'s name (Kuma's, without a Kubernetes namespace).
    pub fn service_name(&self) -> &'a str {
        identity(self.resource).0
    }

    /// The selected data planes' ready inbounds on the target port (by
    /// number, or by the inbound's name): data planes with every one of
    /// `dataplaneTags` on the inbound, the one `dataplaneRef` names, or
    /// those with every label of `dataplaneLabels.matchLabels`. An empty
    /// selector selects none.
    pub fn endpoints(&self, set: &'a ResourceSet, mesh: &str) -> Vec<Endpoint<'a>> {
        let selector = &self.spec.selector;
        let target = self.port.target_port.clone().unwrap_or_else(|| serde_json::Value::from(self.port.port));
        crate::endpoints::ready_inbounds(set, mesh, |dataplane, ib| {
            let by_ref = selector.dataplane_ref.as_ref().is_some_and(|r| r.name == dataplane.meta.name);
            let by_labels =
                selector.dataplane_labels.as_ref().and_then(|l| l.get("matchLabels")?.as_object()).is_some_and(|m| {
                    !m.is_empty()
                        && m.iter().all(|(k, v)| {
                            v.as_str().is_some_and(|v| dataplane.meta.labels.get(k).is_some_and(|l| l == v))
                        })
                });
            let by_tags = selector
                .dataplane_tags
                .as_ref()
                .is_some_and(|t| !t.is_empty() && t.iter().all(|(k, v)| ib.tags.get(k) == Some(v)));
            let on_port = match &target {
                serde_json::Value::Number(n) => n.as_u64() == Some(u64::from(ib.port)),
                serde_json::Value::String(s) => *s == ib.name || s.parse::<u32>().ok() == Some(ib.port),
                _ => false,
            };
            (by_ref || by_labels || by_tags) && on_port
        })
    }

    /// The SPIFFE ids its data planes present: `ServiceTag` identities in
    /// the mesh's trust domain, `SpiffeID` ones as written.
    pub fn identities(&self, mesh: &str) -> Vec<String> {
        self.spec
            .identities
            .iter()
            .map(|i| if i.kind == "SpiffeID" { i.value.clone() } else { format!("spiffe://{mesh}/{}", i.value) })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuma_model::UnknownFields;

    const SET: &str = "type: Dataplane\nname: a\nlabels: {team: shop}\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - {port: 8080, name: http, tags: {kuma.io/service: api, version: v1}}\n  - {port: 9090, tags: {kuma.io/service: api-admin}}\n---\ntype: Dataplane\nname: b\nnetworking:\n  address: 10.0.0.2\n  inbound:\n  - {port: 8080, tags: {kuma.io/service: api, version: v2}, health: {ready: false}}\n---\ntype: MeshService\nname: api\nspec:\n  selector: {dataplaneTags: {kuma.io/service: api}}\n  ports: [{port: 80, targetPort: http}, {port: 81, targetPort: 8080}, {port: 82}]\n---\ntype: MeshService\nname: by-ref\nspec:\n  selector: {dataplaneRef: {name: a}}\n  ports: [{port: 90, targetPort: 9090}]\n---\ntype: MeshService\nname: by-labels\nspec:\n  selector: {dataplaneLabels: {matchLabels: {team: shop}}}\n  ports: [{port: 80, targetPort: 8080}]\n---\ntype: MeshService\nname: empty\nspec:\n  selector: {}\n  ports: [{port: 80, targetPort: 8080}]\n";

    fn endpoints(set: &ResourceSet, service: &str) -> Vec<(String, u32)> {
        let real = all(set, "default").into_iter().find(|r| r.name == service).expect(service);
        real.endpoints(set, "default").iter().map(|e| (e.address.to_string(), e.port)).collect()
    }

    #[test]
    fn a_kubernetes_meshservice_is_named_by_name_and_namespace() {
        let yaml = "apiVersion: kuma.io/v1alpha1\nkind: MeshService\nmetadata: {name: backend, namespace: kuma-demo, labels: {kuma.io/mesh: default}}\nspec:\n  selector: {dataplaneTags: {app: backend}}\n  ports: [{port: 80, targetPort: 5000}]\n";
        let set = ResourceSet::load([("t.yaml", yaml)], UnknownFields::Reject).unwrap().0;
        let names: Vec<String> = all(&set, "default").into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["default_backend_kuma-demo__msvc_80"]);
        let b: BackendRef = serde_json::from_value(
            serde_json::json!({"kind": "MeshService", "name": "backend", "namespace": "kuma-demo", "port": 80}),
        )
        .unwrap();
        assert_eq!(resolve(&set, "default", &b).map(|r| r.name).as_deref(), Some("default_backend_kuma-demo__msvc_80"));
    }

    #[test]
    fn names_and_sni_are_kumas() {
        assert_eq!(destination_name("default", "backend", "", 80), "default_backend___msvc_80");
        // Kuma's golden (meshtls, tls-version-and-cypher-on-gateway-with-meshservice).
        assert_eq!(sni("backend", "default", 80), "a601e0c00295a9fbe.backend.80.default.ms");
    }

    #[test]
    fn selected_ready_inbounds_on_the_target_port() {
        let set = ResourceSet::load([("t.yaml", SET)], UnknownFields::Reject).unwrap().0;
        let a = |port| vec![("10.0.0.1".to_string(), port)];
        // By inbound name, by number; the unready inbound of `b` is left out.
        assert_eq!(endpoints(&set, "default_api___msvc_80"), a(8080));
        assert_eq!(endpoints(&set, "default_api___msvc_81"), a(8080));
        // No targetPort: the port itself, which no inbound has.
        assert!(endpoints(&set, "default_api___msvc_82").is_empty());
        assert_eq!(endpoints(&set, "default_by-ref___msvc_90"), a(9090));
        assert_eq!(endpoints(&set, "default_by-labels___msvc_80"), a(8080));
        assert!(endpoints(&set, "default_empty___msvc_80").is_empty());
    }
}
