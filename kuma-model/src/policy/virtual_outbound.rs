//! `VirtualOutbound`: virtual hostnames for outbounds (read; ignored by gateways).

use super::*;

/// `VirtualOutbound` spec (accepted, ignored by gateways).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VirtualOutboundSpec {
    /// Data planes the virtual outbounds are for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<Selector>,
    /// Host and port templates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<VirtualOutboundConf>,
}

/// `VirtualOutbound.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VirtualOutboundConf {
    /// Go template of the host name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Go template of the port.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub port: String,
    /// Template parameters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<TemplateParameter>,
}

/// A template parameter bound to a tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateParameter {
    /// Name used in the template.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The tag it reads (default: `name`).
    #[serde(alias = "tag_key", skip_serializing_if = "String::is_empty")]
    pub tag_key: String,
}

impl VirtualOutboundSpec {
    /// Kuma's `VirtualOutbound` validation, without evaluating the Go
    /// templates (gateways ignore this policy).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        validate_selectors(&FieldPath::root().field("selectors"), &self.selectors, AT_LEAST_ONE, &mut out);
        let path = FieldPath::root().field("conf");
        let Some(conf) = &self.conf else {
            out.add(&path, "has to be defined");
            return out;
        };
        let is_tag_name = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:/".contains(c));
        let mut names = std::collections::BTreeSet::new();
        let mut has_service = false;
        for (i, p) in conf.parameters.iter().enumerate() {
            let pp = path.field("parameters").index(i);
            if !names.insert(p.name.as_str()) {
                out.add(pp.field("name"), "name is already used");
            }
            if !p.tag_key.is_empty() {
                has_service |= p.tag_key == SERVICE_TAG;
                if !is_tag_name(&p.tag_key) {
                    out.add(pp.field("tagKey"), "must be a valid tag name");
                }
            } else if !is_tag_name(&p.name) {
                out.add(pp.field("name"), "must be a valid tag name if you are not setting tagKey");
            }
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric()) {
                out.add(pp.field("name"), "must consist of alphanumeric characters to be used as a gotemplate key");
            }
        }
        if !has_service {
            out.add(path.field("parameters"), "must contain a parameter with kuma.io/service as a tagKey");
        }
        if conf.host.is_empty() {
            out.add(path.field("host"), "has to be defined");
        }
        if conf.port.is_empty() {
            out.add(path.field("port"), "has to be defined");
        }
        out
    }
}
