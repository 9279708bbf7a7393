//! Which Kuma 2.x resources (`MeshHTTPRoute`, `MeshTimeout`, ...) select a
//! listener of a builtin gateway through their top-level `targetRef`, and
//! the order their confs merge in: least specific first, so that the last
//! one wins, as in Kuma.

use std::cmp::Ordering;

use kuma_model::target_ref::{TargetKind, TargetRef};
use kuma_model::{Kind, Resource, ResourceSet, Tags};

/// The builtin gateway a listener belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Gateway<'a> {
    /// Its mesh.
    pub mesh: &'a str,
    /// The `MeshGateway`'s name.
    pub name: &'a str,
    /// The data plane's gateway tags.
    pub dataplane_tags: &'a Tags,
}

/// How specifically a top-level `targetRef` selects a listener; greater is
/// more specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    level: u8,
    tags: usize,
}

/// Whether `top` selects the listener with its own `listener_tags` on
/// `gateway`, and how specifically:
/// - `Mesh` selects every gateway listener (unless `proxyTypes` leaves out
///   `Gateway`);
/// - `MeshSubset` selects every listener of a data plane whose tags it
///   matches;
/// - `MeshGateway` selects listeners of that gateway whose tags hold its
///   `tags`.
///
/// Other kinds select sidecars or routes, never a listener.
pub fn selects(top: &TargetRef, gateway: Gateway<'_>, listener_tags: &Tags) -> Option<Specificity> {
    let subset = |wanted: &Tags, have: &Tags| wanted.iter().all(|(k, v)| have.get(k) == Some(v));
    let level = match top.kind {
        TargetKind::Mesh if top.includes_gateways() => 1,
        TargetKind::MeshSubset if top.includes_gateways() && subset(top.tags(), gateway.dataplane_tags) => 2,
        TargetKind::MeshGateway if top.name() == gateway.name && subset(top.tags(), listener_tags) => 3,
        _ => return None,
    };
    Some(Specificity { level, tags: top.tags().len() })
}

/// The resources of `kind` in the gateway's mesh whose top-level target
/// (`top`; `None` reads as `Mesh`) selects the listener, least specific
/// first; on a tie the greater name comes first, so that of two equally
/// specific policies the one whose name sorts first wins.
pub fn selecting<'a>(
    set: &'a ResourceSet,
    kind: Kind,
    gateway: Gateway<'_>,
    listener_tags: &Tags,
    top: impl Fn(&'a Resource) -> Option<&'a TargetRef>,
) -> Vec<&'a Resource> {
    let mesh = TargetRef::mesh();
    let mut found: Vec<(Specificity, &'a Resource)> = set
        .in_mesh(kind, gateway.mesh)
        .filter_map(|r| selects(top(r).unwrap_or(&mesh), gateway, listener_tags).map(|s| (s, r)))
        .collect();
    found.sort_by(|(sa, a), (sb, b)| sa.cmp(sb).then_with(|| by_name(a, b)));
    found.into_iter().map(|(_, r)| r).collect()
}

fn by_name(a: &Resource, b: &Resource) -> Ordering {
    b.meta.name.cmp(&a.meta.name)
}
