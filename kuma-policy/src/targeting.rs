//! Which Kuma 2.x resources (`MeshHTTPRoute`, `MeshTimeout`, ...) select a
//! listener of a builtin gateway through their top-level `targetRef`, and
//! the order their confs merge in: least specific first, so that the last
//! one wins, as in Kuma.

use kuma_model::target_ref::{TargetKind, TargetRef};
use kuma_model::{Kind, Resource, ResourceSet, SERVICE_TAG, Tags};

/// The builtin gateway a listener belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Gateway<'a> {
    /// Its mesh.
    pub mesh: &'a str,
    /// The `MeshGateway`'s name.
    pub name: &'a str,
}

/// How specifically a top-level `targetRef` selects a listener; greater is
/// more specific (Kuma's kind ranks: Mesh, MeshSubset, MeshGateway —
/// more listener tags ranking higher —, MeshService, MeshServiceSubset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    rank: u8,
    gateway_tags: usize,
}

/// Whether `top` selects a listener whose merged tags (data plane gateway
/// tags, then the gateway's, then the listener's) are `listener_tags`, and
/// how specifically:
/// - `Mesh` selects every gateway listener (unless `proxyTypes` leaves out
///   `Gateway`);
/// - `MeshSubset` selects listeners whose merged tags hold its `tags`;
/// - `MeshGateway` selects listeners of that gateway whose merged tags hold
///   its `tags`;
/// - `MeshService` and `MeshServiceSubset` select listeners whose
///   `kuma.io/service` is that name (and whose tags hold the subset's).
///
/// `Dataplane` targets and route targets select no listener here.
pub fn selects(top: &TargetRef, gateway: Gateway<'_>, listener_tags: &Tags) -> Option<Specificity> {
    let holds = |wanted: &Tags| wanted.iter().all(|(k, v)| listener_tags.get(k) == Some(v));
    let service = || listener_tags.get(SERVICE_TAG).is_some_and(|s| s == top.name());
    let rank = match top.kind {
        TargetKind::Mesh if top.includes_gateways() => 1,
        TargetKind::MeshSubset if top.includes_gateways() && holds(top.tags()) => 3,
        TargetKind::MeshGateway if top.name() == gateway.name && holds(top.tags()) => 4,
        TargetKind::MeshService if service() => 5,
        TargetKind::MeshServiceSubset if service() && holds(top.tags()) => 8,
        _ => return None,
    };
    let gateway_tags = if top.kind == TargetKind::MeshGateway { top.tags().len() } else { 0 };
    Some(Specificity { rank, gateway_tags })
}

/// The `candidates` (policies of one kind in the gateway's mesh) whose
/// top-level target (`top`; `None` reads as `Mesh`) selects the listener,
/// in the order Kuma merges their confs: least specific first and, among
/// equals, the greater name first — so the most specific one, and of
/// equals the one whose name sorts first, is applied last and wins.
pub fn policies<'a>(
    candidates: impl IntoIterator<Item = &'a Resource>,
    gateway: Gateway<'_>,
    listener_tags: &Tags,
    top: impl Fn(&'a Resource) -> Option<&'a TargetRef>,
) -> Vec<&'a Resource> {
    let mesh = TargetRef::mesh();
    let mut found: Vec<(Specificity, &'a Resource)> = candidates
        .into_iter()
        .filter_map(|r| selects(top(r).unwrap_or(&mesh), gateway, listener_tags).map(|s| (s, r)))
        .collect();
    found.sort_by(|(sa, a), (sb, b)| sa.cmp(sb).then_with(|| b.meta.name.cmp(&a.meta.name)));
    found.into_iter().map(|(_, r)| r).collect()
}

/// The routes of `kind` (`MeshHTTPRoute`, `MeshTCPRoute`) whose top-level
/// target selects the listener, in the order Kuma merges their rules: by
/// name, so that of two routes with equal matches the one whose name sorts
/// last wins. (Kuma keeps route rules per listener and hostname in the
/// store's name order, without the specificity sort policies get.)
pub fn routes<'a>(
    set: &'a ResourceSet,
    kind: Kind,
    gateway: Gateway<'_>,
    listener_tags: &Tags,
    top: impl Fn(&'a Resource) -> Option<&'a TargetRef>,
) -> Vec<&'a Resource> {
    let mesh = TargetRef::mesh();
    let mut found: Vec<&'a Resource> = set
        .in_mesh(kind, gateway.mesh)
        .filter(|r| selects(top(r).unwrap_or(&mesh), gateway, listener_tags).is_some())
        .collect();
    found.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
    found
}
