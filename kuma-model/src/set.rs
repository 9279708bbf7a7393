//! `ResourceSet`: everything loaded, keyed by (kind, mesh, name), iterated in
//! key order, with load order kept for "oldest wins" rules.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::datasource::DataSource;
use crate::diagnostic::{Diagnostic, LoadError, Severity};
use crate::load::{ParsedFile, UnknownFields, parse_file};
use crate::resource::{Kind, Resource, ResourceKey, Spec};
use crate::violation::{FieldPath, Origin};

/// The resources of a control plane, validated: every way to build one
/// ([`ResourceSet::load`], [`ResourceSet::assemble`],
/// [`ResourceSet::from_resources`]) runs Kuma's validation of each resource
/// and the cross-resource checks, so a translator can rely on it.
///
/// ```
/// use kuma_model::{ResourceSet, UnknownFields, Kind};
/// let (set, _warnings) = ResourceSet::load(
///     [("mesh.yaml", "type: Mesh\nname: default\n")],
///     UnknownFields::Reject,
/// ).unwrap();
/// assert!(set.get(Kind::Mesh, "", "default").is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ResourceSet {
    /// Shared with the parsed files they came from, and with earlier sets:
    /// a set made again after one file changed copies no resource.
    resources: BTreeMap<ResourceKey, Arc<Resource>>,
}

impl ResourceSet {
    /// An empty set (valid).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses, validates and cross-checks `files` (name, text). All or
    /// nothing: any error fails the whole load, with every problem found.
    /// Warnings come back beside the set.
    pub fn load<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        unknown: UnknownFields,
    ) -> Result<(ResourceSet, Vec<Diagnostic>), LoadError> {
        let parsed: Vec<ParsedFile> = files.into_iter().map(|(name, text)| parse_file(name, text, unknown)).collect();
        Self::assemble(&parsed)
    }

    /// Builds a set from files parsed earlier ([`parse_file`]), with the same
    /// all-or-nothing rules as [`ResourceSet::load`]: duplicates and missing
    /// references are errors. A watcher re-parses only the files that changed
    /// and assembles the set again from the rest.
    pub fn assemble<'p>(
        files: impl IntoIterator<Item = &'p ParsedFile>,
    ) -> Result<(ResourceSet, Vec<Diagnostic>), LoadError> {
        let mut set = ResourceSet::new();
        let mut diagnostics = Vec::new();
        for parsed in files {
            diagnostics.extend(parsed.diagnostics().iter().cloned());
            for resource in parsed.resources() {
                if !parsed.is_validated() && !validate(resource, &mut diagnostics) {
                    continue;
                }
                if let Err(d) = set.insert(Arc::clone(resource)) {
                    diagnostics.push(*d);
                }
            }
        }
        set.finish(diagnostics)
    }

    /// Builds a set from typed resources (a Kubernetes watcher's, a
    /// database's, or edits of another set's), with the same rules as
    /// [`ResourceSet::load`]: each resource is validated, duplicates and
    /// missing references are errors, all or nothing. Resources keep their
    /// creation times; the iteration order breaks ties between equal ones.
    ///
    /// ```
    /// use kuma_model::{ResourceSet, UnknownFields};
    /// let (set, _) = ResourceSet::load([("m.yaml", "type: Mesh\nname: a\n")], UnknownFields::Reject).unwrap();
    /// let mut resources: Vec<_> = set.iter().cloned().collect();
    /// resources[0].meta.mesh = "default".into();
    /// let err = ResourceSet::from_resources(resources).unwrap_err();
    /// assert_eq!(err.to_string(), "m.yaml:1: Mesh a: mesh: a Mesh is not inside a mesh");
    /// ```
    pub fn from_resources(
        resources: impl IntoIterator<Item = Resource>,
    ) -> Result<(ResourceSet, Vec<Diagnostic>), LoadError> {
        let mut set = ResourceSet::new();
        let mut diagnostics = Vec::new();
        for resource in resources {
            if !validate(&resource, &mut diagnostics) {
                continue;
            }
            if let Err(d) = set.insert(Arc::new(resource)) {
                diagnostics.push(*d);
            }
        }
        set.finish(diagnostics)
    }

    /// The cross-resource checks, then the set or every problem found.
    fn finish(self, mut diagnostics: Vec<Diagnostic>) -> Result<(ResourceSet, Vec<Diagnostic>), LoadError> {
        diagnostics.extend(self.check_references());
        if diagnostics.iter().any(|d| d.severity == Severity::Error) {
            diagnostics.sort();
            return Err(LoadError { diagnostics });
        }
        Ok((self, diagnostics))
    }

    /// Adds a resource; a second resource with the same key is an error.
    fn insert(&mut self, resource: Arc<Resource>) -> Result<(), Box<Diagnostic>> {
        let key = resource.key();
        if let Some(existing) = self.resources.get(&key) {
            return Err(Box::new(Diagnostic {
                location: resource.meta.location.clone(),
                resource: Some(key),
                field: "name".into(),
                message: format!("duplicate resource: also defined at {}", existing.meta.location),
                origin: Origin::Extra,
                severity: Severity::Error,
            }));
        }
        self.resources.insert(key, resource);
        Ok(())
    }

    /// The resource of `kind` named `name` in `mesh` (`""` for meshes).
    pub fn get(&self, kind: Kind, mesh: &str, name: &str) -> Option<&Resource> {
        let key = ResourceKey { kind, mesh: mesh.to_string(), name: name.to_string() };
        crate::reads::note_key(&key);
        self.resources.get(&key).map(|r| &**r)
    }

    /// The resource of `kind` named `name` in `mesh`, shared: equal (the
    /// same allocation) in two sets made from the same parsed file.
    pub fn get_shared(&self, kind: Kind, mesh: &str, name: &str) -> Option<&Arc<Resource>> {
        let key = ResourceKey { kind, mesh: mesh.to_string(), name: name.to_string() };
        crate::reads::note_key(&key);
        self.resources.get(&key)
    }

    /// Every resource, shared, in (kind, mesh, name) order. Not recorded
    /// in [`crate::reads`]: it is for comparing sets by identity (caches),
    /// never for deciding what a translation outputs.
    pub fn iter_shared(&self) -> impl Iterator<Item = &Arc<Resource>> {
        self.resources.values()
    }

    /// Every resource, in (kind, mesh, name) order.
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        crate::reads::note_everything();
        self.resources.values().map(|r| &**r)
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// Resources of `kind` in `mesh`, in name order.
    pub fn in_mesh<'s>(&'s self, kind: Kind, mesh: &str) -> impl Iterator<Item = &'s Resource> + use<'s> {
        crate::reads::note_in_mesh(kind, mesh);
        let mesh = mesh.to_string();
        let start = ResourceKey { kind, mesh: mesh.clone(), name: String::new() };
        self.resources
            .range((Bound::Included(start), Bound::Unbounded))
            .take_while(move |(k, _)| k.kind == kind && k.mesh == mesh)
            .map(|(_, r)| &**r)
    }

    /// Resources of `kind` in every mesh.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Resource> {
        crate::reads::note_of_kind(kind);
        self.resources.iter().filter(move |(k, _)| k.kind == kind).map(|(_, r)| &**r)
    }

    /// The `Mesh` named `mesh`. A mesh that is not loaded behaves as a
    /// default mesh (no mTLS, no backends).
    pub fn mesh(&self, mesh: &str) -> Option<&crate::mesh::MeshSpec> {
        match &self.get(Kind::Mesh, "", mesh)?.spec {
            Spec::Mesh(m) => Some(m),
            _ => None,
        }
    }

    /// Cross-resource checks Kuma leaves to generation time: secrets named
    /// by gateways and external services exist in their mesh, and
    /// cross-mesh listeners are in a mesh with mTLS.
    fn check_references(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for r in self.resources.values() {
            let mut refs: Vec<(FieldPath, &str)> = Vec::new();
            match &r.spec {
                Spec::MeshGateway(gw) => {
                    let listeners = gw.conf.iter().flat_map(|c| c.listeners.iter()).enumerate();
                    let mtls = self.mesh(&r.meta.mesh).is_some_and(crate::mesh::MeshSpec::mtls_enabled);
                    for (i, l) in listeners {
                        if l.cross_mesh && !mtls {
                            // Kuma refuses to generate such a gateway: its
                            // listener is reachable only over mesh mTLS.
                            out.push(Diagnostic {
                                location: r.meta.location.clone(),
                                resource: Some(r.key()),
                                field: FieldPath::root()
                                    .field("conf")
                                    .field("listeners")
                                    .index(i)
                                    .field("crossMesh")
                                    .to_string(),
                                message: "mTLS must be enabled for crossMesh-enabled MeshGateways".into(),
                                origin: Origin::Extra,
                                severity: Severity::Error,
                            });
                        }
                        for (j, cert) in l.tls.iter().flat_map(|t| t.certificates.iter()).enumerate() {
                            if let DataSource::Secret(name) = cert {
                                let p = FieldPath::root()
                                    .field("conf")
                                    .field("listeners")
                                    .index(i)
                                    .field("tls")
                                    .field("certificates")
                                    .index(j)
                                    .field("secret");
                                refs.push((p, name));
                            }
                        }
                    }
                }
                Spec::ExternalService(es) => {
                    if let Some(tls) = es.networking.as_ref().and_then(|n| n.tls.as_ref()) {
                        for (field, ds) in
                            [("caCert", &tls.ca_cert), ("clientCert", &tls.client_cert), ("clientKey", &tls.client_key)]
                        {
                            if let Some(DataSource::Secret(name)) = ds {
                                let p = FieldPath::root().field("networking").field("tls").field(field).field("secret");
                                refs.push((p, name));
                            }
                        }
                    }
                }
                _ => {}
            }
            for (path, name) in refs {
                if self.get(Kind::Secret, &r.meta.mesh, name).is_none() {
                    out.push(Diagnostic {
                        location: r.meta.location.clone(),
                        resource: Some(r.key()),
                        field: path.to_string(),
                        message: format!("Secret {:?} not found in mesh {:?}", name, r.meta.mesh),
                        origin: Origin::Extra,
                        severity: Severity::Error,
                    });
                }
            }
        }
        out
    }
}

/// Kuma's validation of one resource: its name and mesh, then its spec.
/// False (with the problems added to `out`) when it is invalid.
fn validate(resource: &Resource, out: &mut Vec<Diagnostic>) -> bool {
    let key = resource.key();
    let mut ok = true;
    let mut push = |field: String, message: String, origin: Origin| {
        ok = false;
        out.push(Diagnostic {
            location: resource.meta.location.clone(),
            resource: Some(key.clone()),
            field,
            message,
            origin,
            severity: Severity::Error,
        });
    };
    for problem in crate::meta::check_identity(&key) {
        push(problem.0.into(), problem.1, Origin::Extra);
    }
    let mut violations = resource.spec.validate();
    violations.extend(crate::policy_role::violations(&resource.spec, &resource.meta.labels));
    for v in violations.into_vec() {
        push(v.field.to_string(), v.message, v.origin);
    }
    ok
}
