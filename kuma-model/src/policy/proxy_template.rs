//! `ProxyTemplate`: raw Envoy resources and modifications applied to generated config.

use super::*;

/// `ProxyTemplate` spec: `selectors` + `conf`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyTemplateSpec {
    /// Data planes (matched by their tags) the template applies to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<Selector>,
    /// Imports, raw resources and modifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<ProxyTemplateConf>,
}

/// `ProxyTemplate.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyTemplateConf {
    /// Profiles to start from (`gateway-proxy` for gateways).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
    /// Extra raw Envoy resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<RawResource>,
    /// Changes to the generated resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modifications: Vec<Modification>,
}

/// A raw Envoy resource (YAML with `@type`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawResource {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
}

/// One modification: a oneof of the five kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Modification {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ModificationOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<ModificationOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_filter: Option<ModificationOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_filter: Option<ModificationOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_host: Option<ModificationOp>,
}

/// `match`, `operation` and `value` of a modification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModificationOp {
    /// Which generated resources to change.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<ModificationMatch>,
    /// `add`, `patch`, `remove` (filters also `addFirst`, `addLast`,
    /// `addBefore`, `addAfter`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub operation: String,
    /// YAML of the Envoy resource to add or merge.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// Every match field any modification kind has; the validator checks that
/// each kind only uses its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ModificationMatch {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub origin: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub listener_name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub listener_tags: Tags,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub route_configuration_name: String,
}

/// Profiles a ProxyTemplate may import.
pub const PROXY_TEMPLATE_PROFILES: [&str; 4] = ["default-proxy", "egress-proxy", "gateway-proxy", "ingress-proxy"];

impl ProxyTemplateSpec {
    /// Kuma's `ProxyTemplate` validation (Envoy resource bodies are checked
    /// when they are applied, by the translator).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        validate_selectors(
            &FieldPath::root().field("selectors"),
            &self.selectors,
            TagRules { require_at_least_one_selector: false, ..TagRules::SELECTORS },
            &mut out,
        );
        let Some(conf) = &self.conf else { return out };
        let path = FieldPath::root().field("conf");
        for (i, import) in conf.imports.iter().enumerate() {
            if import.is_empty() {
                out.add(path.field("imports").index(i), "cannot be empty");
            } else if !PROXY_TEMPLATE_PROFILES.contains(&import.as_str()) {
                out.add(
                    path.field("imports").index(i),
                    format!("profile not found. Available profiles: {}", PROXY_TEMPLATE_PROFILES.join(",")),
                );
            }
        }
        for (i, r) in conf.resources.iter().enumerate() {
            let p = path.field("resources").index(i);
            for (field, value) in [("name", &r.name), ("version", &r.version), ("resource", &r.resource)] {
                if value.is_empty() {
                    out.add(p.field(field), "cannot be empty");
                }
            }
        }
        for (i, m) in conf.modifications.iter().enumerate() {
            let p = path.field("modifications").index(i);
            let kinds = [
                ("cluster", &m.cluster),
                ("listener", &m.listener),
                ("networkFilter", &m.network_filter),
                ("httpFilter", &m.http_filter),
                ("virtualHost", &m.virtual_host),
            ];
            if kinds.iter().filter(|(_, op)| op.is_some()).count() > 1 {
                out.add_extra(&p, "only one of cluster, listener, networkFilter, httpFilter or virtualHost can be set");
            }
            for (kind, op) in kinds {
                if let Some(op) = op {
                    validate_modification(&p.field(kind), kind, op, &mut out);
                }
            }
        }
        out
    }
}

fn validate_modification(path: &FieldPath, kind: &str, op: &ModificationOp, out: &mut Violations) {
    let name = op.match_.as_ref().map_or("", |m| m.name.as_str());
    match kind {
        "cluster" | "listener" | "virtualHost" => match op.operation.as_str() {
            "add" => {
                if kind == "virtualHost" {
                    if !name.is_empty() {
                        out.add(path.field("match").field("name"), "cannot be defined");
                    }
                } else if op.match_.is_some() {
                    out.add(path.field("match"), "cannot be defined");
                }
            }
            "patch" | "remove" => {}
            _ => out.add(
                path.field("operation"),
                "invalid operation. Available operations: \"add\", \"patch\", \"remove\"",
            ),
        },
        _ => match op.operation.as_str() {
            "addFirst" | "addLast" | "remove" => {}
            "addBefore" if name.is_empty() => out.add(
                path.field("match").field("name"),
                "cannot be empty. You need to pick a filter before which this one will be added",
            ),
            "addAfter" if name.is_empty() => out.add(
                path.field("match").field("name"),
                "cannot be empty. You need to pick a filter after which this one will be added",
            ),
            "patch" if name.is_empty() => out.add(path.field("match").field("name"), "cannot be empty"),
            "addBefore" | "addAfter" | "patch" => {}
            _ => out.add(
                path.field("operation"),
                "invalid operation. Available operations: \"addFirst\", \"addLast\", \"addBefore\", \"addAfter\", \"patch\", \"remove\"",
            ),
        },
    }
    if matches!(op.operation.as_str(), "add" | "addFirst" | "addLast" | "addBefore" | "addAfter" | "patch")
        && op.value.trim().is_empty()
    {
        out.add(path.field("value"), "native Envoy resource is not valid: unexpected EOF");
    }
}
