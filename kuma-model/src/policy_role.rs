//! Kuma's policy roles. A policy whose `kuma.io/policy-role` label names
//! another role than `system` (on Kubernetes, Kuma labels policies outside
//! its system namespace so) may not configure gateways: for the route
//! kinds, `MeshTimeout`, `MeshRetry`, `MeshRateLimit`, `MeshFaultInjection`
//! and `MeshTrace`, Kuma drops `MeshGateway` and `MeshHTTPRoute` from the
//! top-level kinds it accepts.

use std::collections::BTreeMap;

use crate::Spec;
use crate::target_ref::TargetKind;
use crate::violation::{FieldPath, Violations};

/// The label holding a policy's role.
pub const POLICY_ROLE_LABEL: &str = "kuma.io/policy-role";

/// True when `labels` give the policy another role than `system`.
pub fn is_non_system(labels: &BTreeMap<String, String>) -> bool {
    labels.get(POLICY_ROLE_LABEL).is_some_and(|r| !r.is_empty() && r != "system")
}

/// Kuma's violations for a non-system policy's top-level target.
pub fn violations(spec: &Spec, labels: &BTreeMap<String, String>) -> Violations {
    let mut out = Violations::new();
    if !is_non_system(labels) {
        return out;
    }
    let top = match spec {
        Spec::MeshHTTPRoute(s) => s.target_ref.as_ref(),
        Spec::MeshTCPRoute(s) => s.target_ref.as_ref(),
        Spec::MeshTimeout(s) => s.target_ref.as_ref(),
        Spec::MeshRetry(s) => s.target_ref.as_ref(),
        Spec::MeshRateLimit(s) => s.target_ref.as_ref(),
        Spec::MeshFaultInjection(s) => s.target_ref.as_ref(),
        Spec::MeshTrace(s) => s.target_ref.as_ref(),
        _ => None,
    };
    if let Some(t) = top.filter(|t| matches!(t.kind, TargetKind::MeshGateway | TargetKind::MeshHttpRoute)) {
        out.add(
            FieldPath::root().field("targetRef").field("kind"),
            format!("value '{}' is not supported", t.kind.as_str()),
        );
    }
    out
}
