//! `MeshTrafficPermission`: Kuma 2.x access control, enforced by the
//! destination's sidecar on its inbound traffic. A gateway is never its
//! target (Kuma allows no `MeshGateway` top level), so the gateway reads
//! and validates it and the sidecars it forwards to apply it.

use serde::{Deserialize, Serialize};

use crate::target_ref::{TargetKind, TargetRef, TargetRules, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshTrafficPermission`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshTrafficPermissionSpec {
    /// Which proxies' inbounds (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Actions per client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<PermissionFrom>>,
    /// Actions by client identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<PermissionRule>>,
}

/// A `from` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PermissionFrom {
    /// Which clients.
    pub target_ref: TargetRef,
    /// The action.
    #[serde(default)]
    pub default: PermissionConf,
}

/// `from[].default`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PermissionConf {
    /// What happens to their requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// A permission action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Let the traffic through.
    Allow,
    /// Refuse it.
    Deny,
    /// Let it through, logging what a deny would do.
    AllowWithShadowDeny,
}

/// A `rules` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PermissionRule {
    /// The matches per action.
    pub default: RuleConf,
}

/// `rules[].default`: client identities per action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleConf {
    /// Refused clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<IdentityMatch>>,
    /// Allowed clients, denials logged only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_with_shadow_deny: Option<Vec<IdentityMatch>>,
    /// Allowed clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<IdentityMatch>>,
}

/// A client identity match: SPIFFE id or SNI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityMatch {
    /// The client's SPIFFE id.
    #[serde(rename = "spiffeID", skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<ValueMatch>,
    /// The SNI the client sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<ValueMatch>,
}

/// `{type, value}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueMatch {
    /// `Exact` or `Prefix` (SPIFFE ids), `Exact` (SNI).
    #[serde(rename = "type")]
    pub kind: String,
    /// The value.
    pub value: String,
}

/// Why `id` is not a SPIFFE id, in go-spiffe's words (what Kuma reports).
fn spiffe_id_error(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        return Some("cannot be empty");
    }
    let Some(rest) = id.strip_prefix("spiffe://") else { return Some("scheme is missing or invalid") };
    let (domain, path) = rest.find('/').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
    if domain.is_empty() {
        return Some("trust domain is missing");
    }
    if !domain.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c)) {
        return Some(
            "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores",
        );
    }
    if path.is_empty() {
        return None;
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, s) in segments.iter().enumerate() {
        if s.is_empty() {
            return Some(if i + 1 == segments.len() {
                "path cannot have a trailing slash"
            } else {
                "path cannot contain empty segments"
            });
        }
        if *s == "." || *s == ".." {
            return Some("path cannot contain dot segments");
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)) {
            return Some("path segment characters are limited to letters, numbers, dots, dashes, and underscores");
        }
    }
    None
}

/// Kubernetes' RFC 1123 subdomain rule, in its words.
fn dns1123_subdomain_errors(value: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if value.len() > 253 {
        out.push("must be no more than 253 characters");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !value.split('.').all(label_ok) {
        out.push("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
    }
    out
}

fn validate_match(path: &FieldPath, m: &IdentityMatch, out: &mut Violations) {
    if let Some(id) = &m.spiffe_id
        && let Some(e) = spiffe_id_error(&id.value)
    {
        out.add(path.field("spiffeID"), format!("must be a valid Spiffe ID: {e}"));
    }
    if let Some(sni) = &m.sni {
        match sni.kind.as_str() {
            "Exact" => {}
            "" => out.add(path.field("sni").field("type"), "must be set"),
            other => out.add(
                path.field("sni").field("type"),
                format!("unrecognized type {other:?}, supported values are: Exact"),
            ),
        }
        if sni.value.is_empty() {
            out.add(path.field("sni").field("value"), "must be set");
        } else {
            for e in dns1123_subdomain_errors(&sni.value) {
                out.add(path.field("sni").field("value"), e);
            }
        }
    }
}

impl MeshTrafficPermissionSpec {
    /// Kuma's validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        let clients =
            [TargetKind::Mesh, TargetKind::MeshSubset, TargetKind::MeshService, TargetKind::MeshServiceSubset];
        if let Some(t) = &self.target_ref {
            let kinds = [
                TargetKind::Mesh,
                TargetKind::MeshSubset,
                TargetKind::MeshService,
                TargetKind::MeshServiceSubset,
                TargetKind::Dataplane,
            ];
            validate_target_ref(&root.field("targetRef"), t, TargetRules::kinds(&kinds), &mut out);
        }
        let from = self.from.as_deref().unwrap_or_default();
        let rules = self.rules.as_deref().unwrap_or_default();
        if !from.is_empty() && !rules.is_empty() {
            out.add(&root, "field 'from' must be empty when 'rules' is defined");
        }
        if from.is_empty() && rules.is_empty() {
            out.add(&root, "at least one of 'from' or 'rules' has to be defined");
        }
        for (i, r) in rules.iter().enumerate() {
            let p = root.field("rules").index(i);
            let d = &r.default;
            let lists = [("allow", &d.allow), ("allowWithShadowDeny", &d.allow_with_shadow_deny), ("deny", &d.deny)];
            if lists.iter().all(|(_, l)| l.as_deref().unwrap_or_default().is_empty()) {
                out.add(&p, "at least one of 'allow', 'allowWithShadowDeny', 'deny' has to be defined");
            }
            for (name, list) in lists {
                for (j, m) in list.iter().flatten().enumerate() {
                    validate_match(&p.field(name).index(j), m, &mut out);
                }
            }
        }
        for (i, f) in from.iter().enumerate() {
            let p = root.field("from").index(i);
            validate_target_ref(&p.field("targetRef"), &f.target_ref, TargetRules::kinds(&clients), &mut out);
            if f.default.action.is_none() {
                out.add(p.field("default").field("action"), "must be defined");
            }
        }
        out
    }
}
