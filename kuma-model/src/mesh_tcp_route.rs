//! `MeshTCPRoute`: Kuma 2.x TCP routes. On a builtin gateway they target a
//! `MeshGateway` and send each TCP listener's connections to weighted
//! backends.

use serde::{Deserialize, Serialize};

use crate::mesh_http_route::{BACKEND_KINDS, UNRESOLVED_BACKEND};
use crate::target_ref::{
    BackendRef, ROUTE_TOP_KINDS, TargetRef, TargetRules, route_to_kinds, validate_backend_ref, validate_target_ref,
};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshTCPRoute`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshTcpRouteSpec {
    /// What the route attaches to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Destinations and their rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<TcpRouteTo>,
}

/// One `to` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpRouteTo {
    /// `Mesh` on a gateway; the destination service otherwise.
    pub target_ref: TargetRef,
    /// At most one rule.
    #[serde(default)]
    pub rules: Vec<TcpRouteRule>,
}

/// A TCP rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpRouteRule {
    /// Its backends.
    pub default: TcpRouteConf,
}

/// Where connections go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpRouteConf {
    /// Weighted backends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<BackendRef>,
}

impl MeshTcpRouteSpec {
    /// The top-level target (`Mesh` when unset).
    pub fn top(&self) -> TargetRef {
        self.target_ref.clone().unwrap_or_else(TargetRef::mesh)
    }

    /// Kuma's validation (system role).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        if let Some(t) = &self.target_ref {
            validate_target_ref(
                &root.field("targetRef"),
                t,
                TargetRules::with_listener_tags(ROUTE_TOP_KINDS),
                &mut out,
            );
        }
        let top = self.top();
        for (i, to) in self.to.iter().enumerate() {
            let path = root.field("to").index(i);
            let to_kinds = route_to_kinds(top.kind);
            validate_target_ref(&path.field("targetRef"), &to.target_ref, TargetRules::kinds(to_kinds), &mut out);
            if to.rules.len() > 1 {
                out.add(path.field("rules"), "must have at most 1 items");
            }
            for (j, rule) in to.rules.iter().enumerate() {
                let bp = path.field("rules").index(j).field("default").field("backendRefs");
                if rule.default.backend_refs.is_empty() {
                    out.add(&bp, "must be defined");
                }
                let rules =
                    TargetRules { allowed_invalid_names: &[UNRESOLVED_BACKEND], ..TargetRules::kinds(BACKEND_KINDS) };
                for (k, b) in rule.default.backend_refs.iter().enumerate() {
                    validate_backend_ref(&bp.index(k), b, rules, &mut out);
                    if let Err(message) = crate::mesh_http_route::lower_backend(b) {
                        out.add_extra(bp.index(k), message);
                    }
                }
            }
        }
        out
    }
}

impl TcpRouteRule {
    /// This rule in the form `MeshGatewayRoute` TCP rules take.
    pub fn lower(&self) -> Result<crate::route::TcpRule, String> {
        let backends = self
            .default
            .backend_refs
            .iter()
            .map(crate::mesh_http_route::lower_backend)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::route::TcpRule { backends })
    }
}
