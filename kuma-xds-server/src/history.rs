//! What the Envoys of one data plane accepted and rejected, per resource
//! type, shared by all their streams and kept across reconnects: a version
//! any Envoy rejected (NACK) is never sent again, and an Envoy that
//! (re)connects while the current config is one that was rejected gets the
//! last config an Envoy accepted instead.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use kuma_xds_gen::{EncodedResources, ResourceType};

#[derive(Debug, Default)]
struct TypeHistory {
    /// Versions an Envoy rejected.
    rejected: BTreeSet<String>,
    /// The last list an Envoy accepted (shared with the snapshot it came
    /// from, not copied).
    accepted: Option<Arc<EncodedResources>>,
    /// Rejections so far.
    rejections: u64,
}

/// The shared accept/reject record of one data plane. Cloning shares it.
#[derive(Debug, Default, Clone)]
pub struct NodeHistory {
    types: Arc<Mutex<BTreeMap<ResourceType, TypeHistory>>>,
}

impl NodeHistory {
    /// A record with nothing accepted or rejected.
    pub fn new() -> Self {
        NodeHistory::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<ResourceType, TypeHistory>) -> R) -> R {
        f(&mut self.types.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records that an Envoy accepted `resources` of type `t`.
    pub(crate) fn accept(&self, t: ResourceType, resources: &Arc<EncodedResources>) {
        self.with(|types| {
            let h = types.entry(t).or_default();
            if h.accepted.as_ref().is_none_or(|a| !Arc::ptr_eq(a, resources)) {
                h.accepted = Some(resources.clone());
            }
        });
    }

    /// Records that an Envoy rejected `version` of `t`.
    pub(crate) fn reject(&self, t: ResourceType, version: &str) {
        self.with(|types| {
            let h = types.entry(t).or_default();
            h.rejected.insert(version.to_string());
            h.rejections += 1;
        });
    }

    /// What to send for `t` when the current config is `resources`: those,
    /// unless an Envoy rejected their version and another one was accepted,
    /// which is then sent instead.
    pub(crate) fn servable(&self, t: ResourceType, resources: Arc<EncodedResources>) -> Arc<EncodedResources> {
        self.with(|types| match types.get(&t) {
            Some(TypeHistory { rejected, accepted: Some(good), .. }) if rejected.contains(resources.version()) => {
                good.clone()
            }
            _ => resources,
        })
    }

    /// How many times Envoys rejected a config of this data plane, by type.
    pub fn rejections(&self) -> BTreeMap<ResourceType, u64> {
        self.with(|types| types.iter().map(|(t, h)| (*t, h.rejections)).filter(|(_, n)| *n > 0).collect())
    }
}
