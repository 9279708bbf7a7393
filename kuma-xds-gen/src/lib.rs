//! Pure, deterministic translation of Kuma gateway resources into Envoy
//! configuration.
//!
//! [`translate`] takes a validated [`ResourceSet`] and the name of a gateway
//! `Dataplane` and returns a [`GatewaySnapshot`] of `envoy-types` protos:
//! listeners, route configurations, clusters, endpoints, secrets and the
//! runtime layer. [`render`] turns any snapshot into canonical proto3 JSON or
//! YAML, and into a static bootstrap that `envoy -c` runs as is. No I/O: the
//! same resources, in any order, give byte-identical output.
//!
//! ```
//! use kuma_model::{ResourceSet, UnknownFields};
//! let yaml = "type: Dataplane\nname: gw-1\nnetworking:\n  address: 127.0.0.1\n  gateway: {type: BUILTIN, tags: {kuma.io/service: edge}}\n---\ntype: MeshGateway\nname: edge\nselectors: [{match: {kuma.io/service: edge}}]\nconf: {listeners: [{port: 8080, protocol: HTTP}]}\n";
//! let (set, _) = ResourceSet::load([("gw.yaml", yaml)], UnknownFields::Reject).unwrap();
//! let snapshot = kuma_xds_gen::translate(&set, "default", "gw-1").unwrap();
//! assert!(snapshot.listeners.contains_key("edge:HTTP:8080"));
//! let yaml = kuma_xds_gen::render::snapshot_yaml(&snapshot).unwrap();
//! assert!(yaml.contains("This is a Kuma MeshGateway. No routes match this MeshGateway!"));
//! ```

mod builtin;
mod canonical;
mod clusters;
mod defaults;
mod delegated;
mod encoded;
pub mod explain;
mod json;
mod mtls;
mod names;
mod pb;
mod policy;
pub mod render;
mod reuse;
mod routes;
mod schema;
mod snapshot;
mod tls;
mod yaml;

use builtin::VirtualHosts;
use kuma_model::{Kind, ResourceKey, ResourceSet, Spec};

/// The Envoy protos this crate emits; use them through this re-export so
/// that your only pins are this project's crates.
pub use envoy_types;
/// The resource model this crate translates.
pub use kuma_model;
/// The matching and the route table this crate renders.
pub use kuma_policy;

pub use builtin::LISTENER_RUNTIME;
pub use encoded::{EncodedResource, EncodedResources, EncodedSnapshot};
pub use policy::ignored as ignored_resources;
pub use policy::traffic_log::TCP_ADDRESS_ATTRIBUTE as TCP_LOG_ADDRESS_ATTRIBUTE;
pub use policy::traffic_log::TCP_DATAPLANE_ATTRIBUTE as TCP_LOG_DATAPLANE_ATTRIBUTE;
pub use policy::traffic_log::TCP_MESH_ATTRIBUTE as TCP_LOG_MESH_ATTRIBUTE;
pub use reuse::{HostReuse, SharedHosts};
pub use snapshot::{GatewaySnapshot, ResourceType, version_of};

/// Why a data plane's config could not be generated. Each variant names
/// the resource at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// No `Dataplane` (or `MeshGatewayInstance`) of that name in that mesh.
    #[error("{dataplane} not found")]
    NoDataplane {
        /// The data plane asked for (kind `Dataplane`).
        dataplane: ResourceKey,
    },
    /// The data plane is an ordinary sidecar.
    #[error("{dataplane}: networking.gateway: not a gateway (BUILTIN or DELEGATED)")]
    NotAGateway {
        /// The data plane.
        dataplane: ResourceKey,
    },
    /// A listener certificate could not be turned into a secret.
    #[error("{gateway}: {field}: {message}")]
    Certificate {
        /// The `MeshGateway`.
        gateway: ResourceKey,
        /// The field path of the certificate.
        field: String,
        /// What is wrong (never the key material).
        message: String,
    },
    /// A ProxyTemplate could not be applied.
    #[error("{template}: {field}: {message}")]
    ProxyTemplate {
        /// The `ProxyTemplate`.
        template: ResourceKey,
        /// The field path of the failing part.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A backend's TLS material could not be found or used.
    #[error("{resource}: {message}")]
    Backend {
        /// The resource whose TLS material it is (an `ExternalService`), or
        /// the data plane being generated.
        resource: ResourceKey,
        /// What is wrong.
        message: String,
    },
    /// The mesh has mTLS on but the gateway's identity cannot be issued
    /// (the CA is missing or unusable).
    #[error("{mesh}: mtls: {message}")]
    Mtls {
        /// The `Mesh`.
        mesh: ResourceKey,
        /// What is wrong.
        message: String,
    },
}

impl TranslateError {
    /// The resource at fault, to point at its file and line.
    pub fn resource(&self) -> &ResourceKey {
        match self {
            Self::NoDataplane { dataplane } | Self::NotAGateway { dataplane } => dataplane,
            Self::Certificate { gateway, .. } => gateway,
            Self::ProxyTemplate { template, .. } => template,
            Self::Backend { resource, .. } => resource,
            Self::Mtls { mesh, .. } => mesh,
        }
    }
}

/// The Envoy config of gateway data plane `dataplane` in `mesh`.
///
/// `dataplane` names a `Dataplane`, or a `MeshGatewayInstance` whose
/// Dataplane Kuma's controller would make (see
/// [`kuma_model::instance::MeshGatewayInstanceSpec::dataplane`]).
/// A BUILTIN data plane gets the listeners of the `MeshGateway` that selects
/// it (an empty snapshot, apart from the runtime layer, when none does); a
/// DELEGATED one gets its outbound listeners.
///
/// A mesh identity certificate in it is issued as of the start of the mesh
/// CA's validity, so the output depends on the resources only (snapshot
/// tests); a control plane serving Envoys uses [`translate_at`] with the
/// current time.
pub fn translate(set: &ResourceSet, mesh: &str, dataplane: &str) -> Result<GatewaySnapshot, TranslateError> {
    generate(set, mesh, dataplane, None)
}

/// [`translate`] at instant `at`: a mesh identity certificate in the
/// snapshot is the one of `at`'s issuance window (valid for 24 h, or the CA
/// backend's `dpCert.rotation.expiration`, and due anew at 80 % of its
/// life: [`GatewaySnapshot::refresh_at`]). The same resources and any
/// instant of the same window give the same bytes.
pub fn translate_at(
    set: &ResourceSet,
    mesh: &str,
    dataplane: &str,
    at: std::time::SystemTime,
) -> Result<GatewaySnapshot, TranslateError> {
    generate(set, mesh, dataplane, Some(at))
}

/// What [`translate`] would report for gateway data plane `dataplane` in
/// `mesh`, without keeping what it builds: certificate and key contents,
/// CAs, ProxyTemplate patches, backends' TLS material. `Ok` exactly when
/// [`translate`] is; for a validator, which wants the errors and not the
/// config. Virtual hosts are not built (only the clusters their routes send
/// to are registered), and nothing is encoded.
///
/// ```
/// use kuma_model::{ResourceSet, UnknownFields};
/// let gateway = "type: Dataplane\nname: gw\nnetworking:\n  address: 10.0.0.1\n  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge\n";
/// let (set, _warnings) = ResourceSet::load([("gw.yaml", gateway)], UnknownFields::Reject).unwrap();
/// assert!(kuma_xds_gen::check(&set, "default", "gw").is_ok());
/// assert!(kuma_xds_gen::check(&set, "default", "missing").is_err());
/// ```
pub fn check(set: &ResourceSet, mesh: &str, dataplane: &str) -> Result<(), TranslateError> {
    // A ProxyTemplate's patches may match any virtual host: those are kept
    // for it to find.
    let hosts = if uses_template(set, mesh, dataplane) { VirtualHosts::Keep } else { VirtualHosts::Drop };
    generate_with(set, mesh, dataplane, None, hosts).map(drop)
}

/// True when a ProxyTemplate applies to gateway data plane `dataplane`.
fn uses_template(set: &ResourceSet, mesh: &str, dataplane: &str) -> bool {
    gateway_dataplane(set, mesh, dataplane).ok().is_some_and(|r| match &r.spec {
        Spec::Dataplane(spec) => {
            spec.gateway().is_some_and(|g| policy::proxy_template::select(set, mesh, &g.tags).is_some())
        }
        _ => false,
    })
}

/// [`translate_with_reads`], packed ([`EncodedSnapshot::encode`]), building
/// only the virtual hosts whose inputs changed since the translation `reuse`
/// remembers, and remembering this one for the next (see [`HostReuse`]).
/// The bytes are those of a whole translation; what a control plane calls
/// on each change of the resources.
pub fn translate_encoded(
    set: &ResourceSet,
    mesh: &str,
    dataplane: &str,
    at: std::time::SystemTime,
    reuse: &mut HostReuse,
) -> (Result<EncodedSnapshot, TranslateError>, kuma_model::reads::Reads) {
    kuma_model::reads::record(|| packed(set, mesh, dataplane, Some(at), reuse))
}

/// [`translate`] (or, with `at`, [`translate_at`]), packed as
/// [`EncodedSnapshot::encode`] packs it. Each virtual host is encoded as
/// soon as it is built, so a large gateway's route configurations are never
/// all held as messages at once: what `kuma-gateway render` uses.
pub fn translate_packed(
    set: &ResourceSet,
    mesh: &str,
    dataplane: &str,
    at: Option<std::time::SystemTime>,
) -> Result<EncodedSnapshot, TranslateError> {
    packed(set, mesh, dataplane, at, &mut HostReuse::default())
}

fn packed(
    set: &ResourceSet,
    mesh: &str,
    dataplane: &str,
    at: Option<std::time::SystemTime>,
    reuse: &mut HostReuse,
) -> Result<EncodedSnapshot, TranslateError> {
    if uses_template(set, mesh, dataplane) {
        // A ProxyTemplate may rewrite any virtual host: built whole.
        reuse.clear();
        return generate(set, mesh, dataplane, at).map(|s| EncodedSnapshot::encode(&s));
    }
    let pass = std::cell::RefCell::new(reuse::Pass::start(reuse, set, mesh, dataplane));
    let result = generate_with(set, mesh, dataplane, at, VirtualHosts::Reuse(&pass));
    let encoded_hosts = pass.into_inner().finish(reuse);
    match result {
        Ok(snapshot) => Ok(EncodedSnapshot::encode_with_hosts(&snapshot, &encoded_hosts)),
        Err(e) => {
            reuse.clear();
            Err(e)
        }
    }
}

fn generate(
    set: &ResourceSet,
    mesh: &str,
    dataplane: &str,
    at: Option<std::time::SystemTime>,
) -> Result<GatewaySnapshot, TranslateError> {
    generate_with(set, mesh, dataplane, at, VirtualHosts::Keep)
}

fn generate_with(
    set: &ResourceSet,
    mesh: &str,
    dataplane: &str,
    at: Option<std::time::SystemTime>,
    hosts: VirtualHosts<'_>,
) -> Result<GatewaySnapshot, TranslateError> {
    let resource = gateway_dataplane(set, mesh, dataplane)?;
    let resource = resource.as_ref();
    let key = resource.key();
    let no_dataplane = || TranslateError::NoDataplane { dataplane: key.clone() };
    let Spec::Dataplane(spec) = &resource.spec else { return Err(no_dataplane()) };
    let not_gateway = || TranslateError::NotAGateway { dataplane: key.clone() };
    let gateway = spec.gateway().ok_or_else(not_gateway)?;
    let mut snapshot = if spec.is_delegated_gateway() {
        delegated::generate(set, mesh, resource, spec, at)?
    } else {
        builtin_snapshot(set, mesh, resource, spec, &gateway.tags, at, hosts)?
    };
    if let Some((template, t)) = policy::proxy_template::select(set, mesh, &gateway.tags) {
        let listener_tags = |name: &str| listener_tags(set, mesh, &gateway.tags, name);
        policy::proxy_template::apply(template, t, &mut snapshot, spec.is_delegated_gateway(), &listener_tags)
            .map_err(|e| TranslateError::ProxyTemplate { template: e.template, field: e.field, message: e.message })?;
    }
    Ok(snapshot)
}

/// The `Dataplane` named `dataplane` in `mesh`, or the one Kuma's controller
/// makes for the `MeshGatewayInstance` of that name (on Kubernetes).
fn gateway_dataplane<'a>(
    set: &'a ResourceSet,
    mesh: &str,
    dataplane: &str,
) -> Result<std::borrow::Cow<'a, kuma_model::Resource>, TranslateError> {
    if let Some(r) = set.get(Kind::Dataplane, mesh, dataplane) {
        return Ok(std::borrow::Cow::Borrowed(r));
    }
    match set.get(Kind::MeshGatewayInstance, mesh, dataplane) {
        Some(r @ kuma_model::Resource { spec: Spec::MeshGatewayInstance(instance), .. }) => {
            Ok(std::borrow::Cow::Owned(kuma_model::Resource {
                meta: r.meta.clone(),
                spec: Spec::Dataplane(instance.dataplane(dataplane)),
            }))
        }
        _ => Err(TranslateError::NoDataplane {
            dataplane: ResourceKey { kind: Kind::Dataplane, mesh: mesh.into(), name: dataplane.into() },
        }),
    }
}

/// The route table ([`kuma_policy::route_table`]) that [`translate`]
/// renders for gateway data plane `dataplane` in `mesh`: `None` for a
/// DELEGATED gateway or a BUILTIN one no `MeshGateway` selects.
pub fn route_table<'a>(
    set: &'a ResourceSet,
    mesh: &str,
    dataplane: &str,
) -> Result<Option<kuma_policy::route_table::RouteTable<'a>>, TranslateError> {
    let resource = gateway_dataplane(set, mesh, dataplane)?;
    let Spec::Dataplane(spec) = &resource.spec else {
        return Err(TranslateError::NoDataplane { dataplane: resource.key() });
    };
    let gateway = spec.gateway().ok_or_else(|| TranslateError::NotAGateway { dataplane: resource.key() })?;
    if spec.is_delegated_gateway() {
        return Ok(None);
    }
    let Some((gw, gw_spec)) = kuma_policy::gateway::select_gateway(set, mesh, &gateway.tags) else { return Ok(None) };
    Ok(Some(kuma_policy::route_table::RouteTable::build(set, mesh, &gateway.tags, &gw.meta.name, gw_spec)))
}

/// [`translate_at`], with every resource it read: a change to a resource the
/// [`Reads`](kuma_model::reads::Reads) are not
/// [affected by](kuma_model::reads::Reads::affected_by) cannot change the
/// snapshot, so a control plane need not translate again for it.
pub fn translate_with_reads(
    set: &ResourceSet,
    mesh: &str,
    dataplane: &str,
    at: std::time::SystemTime,
) -> (Result<GatewaySnapshot, TranslateError>, kuma_model::reads::Reads) {
    kuma_model::reads::record(|| translate_at(set, mesh, dataplane, at))
}

/// The key of the `Mesh` named `mesh`.
fn mesh_key(mesh: &str) -> ResourceKey {
    ResourceKey { kind: Kind::Mesh, mesh: String::new(), name: mesh.into() }
}

/// The merged tags of the builtin listener named `name`.
fn listener_tags(set: &ResourceSet, mesh: &str, tags: &kuma_model::Tags, name: &str) -> Option<kuma_model::Tags> {
    let (gw, spec) = kuma_policy::gateway::select_gateway(set, mesh, tags)?;
    kuma_policy::gateway::listeners(tags, spec)
        .into_iter()
        .find(|l| names::listener(&gw.meta.name, l.listener.protocol.as_str(), l.listener.port) == name)
        .map(|l| l.tags)
}

fn builtin_snapshot(
    set: &ResourceSet,
    mesh: &str,
    resource: &kuma_model::Resource,
    spec: &kuma_model::dataplane::DataplaneSpec,
    tags: &kuma_model::Tags,
    at: Option<std::time::SystemTime>,
    hosts: VirtualHosts<'_>,
) -> Result<GatewaySnapshot, TranslateError> {
    let Some((gw, gw_spec)) = kuma_policy::gateway::select_gateway(set, mesh, tags) else {
        let mut empty = GatewaySnapshot::default();
        empty.runtimes.insert(
            LISTENER_RUNTIME.into(),
            envoy_types::pb::envoy::service::runtime::v3::Runtime {
                name: LISTENER_RUNTIME.into(),
                layer: Some(Default::default()),
            },
        );
        return Ok(empty);
    };
    let address = spec.networking.as_ref().map_or("", |n| n.address.as_str());
    builtin::Builtin { set, mesh, dataplane: resource, address, tags, gateway: gw, spec: gw_spec, at, hosts }.generate()
}

/// The examples and cases the integration tests read (`tests/common`).
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod common;

#[cfg(test)]
mod tests {
    use super::*;

    /// What `check` builds (no virtual hosts) is what `translate` builds,
    /// virtual hosts apart: the same clusters, endpoints, secrets and
    /// listeners, for every example and case.
    #[test]
    fn a_check_registers_the_clusters_a_translation_does() {
        let mut compared = 0;
        for case in common::cases() {
            let set = case.load();
            for (mesh, dataplane) in &case.gateways {
                let at = format!("{} {mesh}/{dataplane}", case.name);
                let whole = generate_with(&set, mesh, dataplane, None, VirtualHosts::Keep).expect(&at);
                let checked = generate_with(&set, mesh, dataplane, None, VirtualHosts::Drop).expect(&at);
                assert_eq!(checked.clusters, whole.clusters, "{at}");
                assert_eq!(checked.endpoints, whole.endpoints, "{at}");
                assert_eq!(checked.secrets, whole.secrets, "{at}");
                // Canonical bytes: access log formats hold maps, in no order.
                let listeners =
                    |s: &GatewaySnapshot| -> Vec<Vec<u8>> { s.listeners.values().map(canonical::bytes).collect() };
                assert_eq!(listeners(&checked), listeners(&whole), "{at}");
                assert!(checked.routes.keys().eq(whole.routes.keys()), "{at}");
                compared += usize::from(!whole.clusters.is_empty());
            }
        }
        assert!(compared >= 10, "only {compared} gateways with clusters");
    }
}
