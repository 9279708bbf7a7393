//! `targetRef`: how Kuma 2.x policies and routes name what they apply to
//! (`Mesh`, a `MeshGateway` and its listeners, a `MeshService`, ...), and
//! `backendRef`: a weighted destination of a route.
//!
//! Validation follows Kuma's `ValidateTargetRef`: which fields each kind
//! allows and which kinds a given place accepts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tags::{TagRules, Tags, validate_tags};
use crate::violation::{FieldPath, Violations};

/// The kinds a `targetRef` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TargetKind {
    /// The whole mesh (optionally only proxies of `proxyTypes`).
    Mesh,
    /// Data planes whose tags match `tags`.
    MeshSubset,
    /// A builtin gateway by name, optionally only listeners matching `tags`.
    MeshGateway,
    /// A service by name (`kuma.io/service` when no MeshService resource exists).
    MeshService,
    /// A service by name, restricted to endpoints with `tags`.
    MeshServiceSubset,
    /// A `MeshExternalService` resource.
    MeshExternalService,
    /// A `MeshMultiZoneService` resource.
    MeshMultiZoneService,
    /// The rules of a `MeshHTTPRoute`.
    #[serde(rename = "MeshHTTPRoute")]
    MeshHttpRoute,
    /// A data plane by name or labels.
    Dataplane,
}

impl TargetKind {
    /// The kind as written (`MeshHTTPRoute`).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Mesh => "Mesh",
            TargetKind::MeshSubset => "MeshSubset",
            TargetKind::MeshGateway => "MeshGateway",
            TargetKind::MeshService => "MeshService",
            TargetKind::MeshServiceSubset => "MeshServiceSubset",
            TargetKind::MeshExternalService => "MeshExternalService",
            TargetKind::MeshMultiZoneService => "MeshMultiZoneService",
            TargetKind::MeshHttpRoute => "MeshHTTPRoute",
            TargetKind::Dataplane => "Dataplane",
        }
    }
}

/// Proxy types a `Mesh` or `MeshSubset` target may be narrowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProxyType {
    /// Sidecars (not this gateway).
    Sidecar,
    /// Gateways, builtin ones included.
    Gateway,
}

/// A `targetRef`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetRef {
    /// What is targeted.
    pub kind: TargetKind,
    /// The name of the targeted resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The targeted resource's mesh (not allowed on most kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    /// The targeted resource's namespace (Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels selecting resources instead of a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Data plane tags (`MeshSubset`) or gateway listener tags (`MeshGateway`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// Narrows `Mesh` and `MeshSubset` to proxy types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_types: Option<Vec<ProxyType>>,
    /// A port or section of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

impl TargetRef {
    /// `{kind: Mesh}`.
    pub fn mesh() -> Self {
        TargetRef {
            kind: TargetKind::Mesh,
            name: None,
            mesh: None,
            namespace: None,
            labels: None,
            tags: None,
            proxy_types: None,
            section_name: None,
        }
    }

    /// The name, or `""`.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The tags, or none.
    pub fn tags(&self) -> &Tags {
        static EMPTY: Tags = Tags::new();
        self.tags.as_ref().unwrap_or(&EMPTY)
    }

    /// Kuma's `IncludesGateways`: the target can select a gateway.
    pub fn includes_gateways(&self) -> bool {
        match self.kind {
            TargetKind::MeshGateway | TargetKind::MeshHttpRoute => true,
            TargetKind::Mesh | TargetKind::MeshSubset => {
                self.proxy_types.as_ref().is_none_or(|t| t.is_empty() || t.contains(&ProxyType::Gateway))
            }
            _ => false,
        }
    }
}

/// A weighted destination: a `targetRef` plus `port` and `weight`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendRef {
    /// The destination.
    #[serde(flatten)]
    pub target: TargetRef,
    /// The destination port (required for `MeshMultiZoneService`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Relative weight (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

impl BackendRef {
    /// The weight, 1 when unset.
    pub fn weight(&self) -> u32 {
        self.weight.unwrap_or(1)
    }
}

/// The top-level kinds of `MeshHTTPRoute` and `MeshTCPRoute` (system role).
pub const ROUTE_TOP_KINDS: &[TargetKind] = &[
    TargetKind::Mesh,
    TargetKind::MeshGateway,
    TargetKind::MeshSubset,
    TargetKind::MeshService,
    TargetKind::MeshServiceSubset,
    TargetKind::Dataplane,
];

/// The `to[].targetRef` kinds of a route: `Mesh` under a `MeshGateway`,
/// the destination service otherwise.
pub fn route_to_kinds(top: TargetKind) -> &'static [TargetKind] {
    if top == TargetKind::MeshGateway {
        &[TargetKind::Mesh]
    } else {
        &[TargetKind::MeshService, TargetKind::MeshExternalService, TargetKind::MeshMultiZoneService]
    }
}

/// The `to[].targetRef` kinds of `MeshTimeout` and `MeshRetry`: under a
/// `MeshGateway` or `MeshHTTPRoute` only `Mesh` and `MeshExternalService`.
pub fn policy_to_kinds(top: TargetKind) -> &'static [TargetKind] {
    if matches!(top, TargetKind::MeshGateway | TargetKind::MeshHttpRoute) {
        &[TargetKind::Mesh, TargetKind::MeshExternalService]
    } else {
        &[
            TargetKind::Mesh,
            TargetKind::MeshService,
            TargetKind::MeshExternalService,
            TargetKind::MeshMultiZoneService,
            TargetKind::MeshHttpRoute,
        ]
    }
}

/// The top-level kinds most targetRef policies accept (system role);
/// `MeshHTTPRoute` is added by those that can target a route's rules.
pub const POLICY_TOP_KINDS: &[TargetKind] = &[
    TargetKind::Mesh,
    TargetKind::MeshSubset,
    TargetKind::MeshGateway,
    TargetKind::MeshService,
    TargetKind::MeshServiceSubset,
    TargetKind::Dataplane,
];

/// Kuma's checks of a policy's sections: `rules` excludes `to` and `from`,
/// and (when `required`) one of them must be there.
pub fn validate_sections(path: &FieldPath, to: usize, from: usize, rules: usize, required: bool, out: &mut Violations) {
    if rules > 0 && (to > 0 || from > 0) {
        out.add(path, "fields 'to' and 'from' must be empty when 'rules' is defined");
    }
    if required && rules == 0 && to == 0 && from == 0 {
        out.add(path, "at least one of 'from', 'to' or 'rules' has to be defined");
    }
}

/// Options of [`validate_target_ref`], after Kuma's `ValidateTargetRefOpts`.
#[derive(Debug, Clone, Copy)]
pub struct TargetRules<'a> {
    /// The kinds this place accepts.
    pub kinds: &'a [TargetKind],
    /// A `MeshGateway` target may carry listener `tags`.
    pub listener_tags: bool,
    /// Names Kuma accepts although they break the name charset.
    pub allowed_invalid_names: &'a [&'a str],
}

impl<'a> TargetRules<'a> {
    /// These kinds, no listener tags.
    pub const fn kinds(kinds: &'a [TargetKind]) -> Self {
        TargetRules { kinds, listener_tags: false, allowed_invalid_names: &[] }
    }

    /// These kinds, listener tags allowed on `MeshGateway`.
    pub const fn with_listener_tags(kinds: &'a [TargetKind]) -> Self {
        TargetRules { kinds, listener_tags: true, allowed_invalid_names: &[] }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
}

/// Checks a `targetRef` found at `path` the way Kuma's `ValidateTargetRef`
/// does; the first problem with `kind` stops the checks.
pub fn validate_target_ref(path: &FieldPath, t: &TargetRef, rules: TargetRules<'_>, out: &mut Violations) {
    if !rules.kinds.contains(&t.kind) {
        out.add(path.field("kind"), format!("value '{}' is not supported", t.kind.as_str()));
        return;
    }
    let kind = t.kind.as_str();
    let not_allowed = |field: &str, set: bool, out: &mut Violations| {
        if set {
            out.add(path.field(field), format!("must not be set with kind {kind}"));
        }
    };
    let name = t.name();
    let has_name = !name.is_empty();
    let has_mesh = t.mesh.as_deref().is_some_and(|m| !m.is_empty());
    let has_ns = t.namespace.as_deref().is_some_and(|m| !m.is_empty());
    let has_labels = t.labels.as_ref().is_some_and(|l| !l.is_empty());
    let has_tags = t.tags.as_ref().is_some_and(|l| !l.is_empty());
    let has_proxy_types = t.proxy_types.as_ref().is_some_and(|l| !l.is_empty());
    let has_section = t.section_name.as_deref().is_some_and(|m| !m.is_empty());
    let proxy_types = |out: &mut Violations| {
        if t.proxy_types.as_ref().is_some_and(Vec::is_empty) {
            out.add(path.field("proxyTypes"), "must be undefined or have at least one element");
        }
    };
    let valid_name = |out: &mut Violations| {
        if !rules.allowed_invalid_names.contains(&name) && !name.chars().all(is_name_char) {
            out.add(
                path.field("name"),
                "invalid characters: must consist of lower case alphanumeric characters, '-', '.' and '_'.",
            );
        }
    };
    let name_or_labels = |out: &mut Violations, labels_message: &str| {
        if !has_labels && !has_name {
            out.add(path, format!("name or labels must be set when kind is {kind}"));
        }
        if has_labels && (has_name || has_ns) {
            out.add(path.field("labels"), labels_message);
        }
    };
    match t.kind {
        TargetKind::Mesh => {
            if has_name {
                out.add(path.field("name"), format!("using name with kind {kind} is not yet supported"));
            }
            not_allowed("mesh", has_mesh, out);
            not_allowed("tags", has_tags, out);
            not_allowed("labels", has_labels, out);
            not_allowed("namespace", has_ns, out);
            not_allowed("sectionName", has_section, out);
            proxy_types(out);
        }
        TargetKind::Dataplane => {
            not_allowed("tags", has_tags, out);
            not_allowed("mesh", has_mesh, out);
            not_allowed("proxyTypes", has_proxy_types, out);
            if has_labels && (has_name || has_ns) {
                out.add(path.field("labels"), "either labels or name and namespace must be specified");
            }
        }
        TargetKind::MeshSubset => {
            not_allowed("name", has_name, out);
            not_allowed("mesh", has_mesh, out);
            validate_tags(&path.field("tags"), t.tags(), TagRules::NONE, out);
            not_allowed("labels", has_labels, out);
            not_allowed("namespace", has_ns, out);
            not_allowed("sectionName", has_section, out);
            proxy_types(out);
        }
        TargetKind::MeshService => {
            valid_name(out);
            not_allowed("mesh", has_mesh, out);
            not_allowed("tags", has_tags, out);
            not_allowed("proxyTypes", has_proxy_types, out);
            name_or_labels(out, "either labels or name and namespace must be specified");
        }
        TargetKind::MeshHttpRoute => {
            valid_name(out);
            not_allowed("mesh", has_mesh, out);
            not_allowed("tags", has_tags, out);
            not_allowed("proxyTypes", has_proxy_types, out);
            not_allowed("sectionName", has_section, out);
            name_or_labels(out, "either labels or name and namespace must be specified");
        }
        TargetKind::MeshServiceSubset | TargetKind::MeshGateway => {
            if !has_name {
                out.add(path.field("name"), format!("must be set when kind is {kind}"));
            }
            valid_name(out);
            not_allowed("mesh", has_mesh, out);
            not_allowed("proxyTypes", has_proxy_types, out);
            validate_tags(&path.field("tags"), t.tags(), TagRules::NONE, out);
            if t.kind == TargetKind::MeshGateway && has_tags && !rules.listener_tags {
                not_allowed("tags", true, out);
            }
            not_allowed("labels", has_labels, out);
            not_allowed("namespace", has_ns, out);
            not_allowed("sectionName", has_section, out);
        }
        TargetKind::MeshExternalService => {
            valid_name(out);
            not_allowed("mesh", has_mesh, out);
            not_allowed("tags", has_tags, out);
            not_allowed("proxyTypes", has_proxy_types, out);
            name_or_labels(out, "either labels or name must be specified");
            not_allowed("sectionName", has_section, out);
        }
        TargetKind::MeshMultiZoneService => {}
    }
}

/// Checks a `backendRef` at `path`: its target, and a port for
/// `MeshMultiZoneService` (Kuma's `ValidateBackendRef`).
pub fn validate_backend_ref(path: &FieldPath, b: &BackendRef, rules: TargetRules<'_>, out: &mut Violations) {
    validate_target_ref(path, &b.target, rules, out);
    if b.target.kind == TargetKind::MeshMultiZoneService && b.port.is_none() {
        out.add(path.field("port"), "must be defined with kind MeshMultiZoneService");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str, rules: TargetRules<'_>) -> Vec<String> {
        let t: TargetRef = serde_json::from_str(json).unwrap();
        let mut out = Violations::new();
        validate_target_ref(&FieldPath::root().field("targetRef"), &t, rules, &mut out);
        out.into_vec().into_iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn kuma_messages() {
        let gw = TargetRules::kinds(&[TargetKind::Mesh, TargetKind::MeshGateway]);
        assert_eq!(
            check(r#"{"kind":"MeshService","name":"a"}"#, gw),
            ["targetRef.kind: value 'MeshService' is not supported"]
        );
        assert_eq!(
            check(r#"{"kind":"Mesh","name":"a"}"#, gw),
            ["targetRef.name: using name with kind Mesh is not yet supported"]
        );
        assert_eq!(
            check(r#"{"kind":"Mesh","proxyTypes":[]}"#, gw),
            ["targetRef.proxyTypes: must be undefined or have at least one element"]
        );
        assert_eq!(
            check(r#"{"kind":"MeshGateway","tags":{"port":"http"}}"#, gw),
            [
                "targetRef.name: must be set when kind is MeshGateway",
                "targetRef.tags: must not be set with kind MeshGateway"
            ]
        );
        assert!(
            check(
                r#"{"kind":"MeshGateway","name":"edge","tags":{"port":"http"}}"#,
                TargetRules::with_listener_tags(gw.kinds)
            )
            .is_empty()
        );
        assert_eq!(
            check(r#"{"kind":"MeshGateway","name":"Edge"}"#, gw),
            [
                "targetRef.name: invalid characters: must consist of lower case alphanumeric characters, '-', '.' and '_'."
            ]
        );
    }
}
