//! TrafficPermission as a gateway consults it: may traffic from a listener
//! (source tags) reach a destination (destination tags)?

use kuma_model::policy::TrafficPermissionSpec;
use kuma_model::{Kind, ResourceSet, Spec, Tags};

use crate::selector::best_rank;

/// The TrafficPermissions of a mesh.
#[derive(Debug, Clone, Default)]
pub struct Permissions<'a> {
    all: Vec<&'a TrafficPermissionSpec>,
}

impl<'a> Permissions<'a> {
    /// The permissions of `mesh`.
    pub fn new(set: &'a ResourceSet, mesh: &str) -> Self {
        let all = set
            .in_mesh(Kind::TrafficPermission, mesh)
            .filter_map(|r| match &r.spec {
                Spec::TrafficPermission(tp) => Some(tp),
                _ => None,
            })
            .collect();
        Permissions { all }
    }

    /// True when the mesh has none.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// True when some permission's sources match `source` and its
    /// destinations match `destination`.
    ///
    /// ```
    /// use kuma_model::{ResourceSet, UnknownFields, tags::tags_of};
    /// let (set, _) = ResourceSet::load([("tp.yaml", "type: TrafficPermission\nname: p\nsources: [{match: {kuma.io/service: gw}}]\ndestinations: [{match: {kuma.io/service: web}}]\n")], UnknownFields::Reject).unwrap();
    /// let p = kuma_policy::permission::Permissions::new(&set, "default");
    /// let gw = tags_of([("kuma.io/service", "gw")]);
    /// assert!(p.allows(&gw, &tags_of([("kuma.io/service", "web")])));
    /// assert!(!p.allows(&gw, &tags_of([("kuma.io/service", "db")])));
    /// ```
    pub fn allows(&self, source: &Tags, destination: &Tags) -> bool {
        self.all
            .iter()
            .any(|tp| best_rank(&tp.sources, source).is_some() && best_rank(&tp.destinations, destination).is_some())
    }
}
