//! `MeshGateway`: the listeners of a builtin gateway, and Kuma's rules for them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::datasource::DataSource;
use crate::tags::{RESERVED_GATEWAY_TAGS, Selector, TagRules, Tags, validate_selectors, validate_tags};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshGateway`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshGatewaySpec {
    /// Which BUILTIN data planes serve this gateway.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<Selector>,
    /// Tags common to every listener.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    /// The listeners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<MeshGatewayConf>,
}

/// `conf` of a `MeshGateway`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshGatewayConf {
    /// The listeners, in the order written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
}

/// A listener: a port, a protocol and optionally a hostname.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Listener {
    /// `""` and `"*"` mean every host; `*.example.com` is a wildcard.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// The port to bind.
    #[serde(skip_serializing_if = "is_zero")]
    pub port: u32,
    /// The protocol spoken on the port.
    #[serde(skip_serializing_if = "Protocol::is_none")]
    pub protocol: Protocol,
    /// TLS settings (HTTPS and TLS listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    /// Tags of this listener, merged over the gateway's tags.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    /// Reachable only from other meshes, over mesh mTLS.
    #[serde(rename = "crossMesh", skip_serializing_if = "is_false")]
    pub cross_mesh: bool,
    /// Resource limits of the listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ListenerResources>,
}

impl Listener {
    /// The hostname with `""` read as `"*"`, as Kuma's `GetNonEmptyHostname`.
    pub fn effective_hostname(&self) -> &str {
        if self.hostname.is_empty() { "*" } else { &self.hostname }
    }
}

/// A listener protocol. UDP is not supported by Kuma and is not accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Protocol {
    /// Not set: rejected by validation.
    #[default]
    #[serde(rename = "NONE")]
    None,
    /// Plain TCP proxying.
    #[serde(rename = "TCP")]
    Tcp,
    /// TLS, passed through or terminated.
    #[serde(rename = "TLS")]
    Tls,
    /// HTTP/1.1 and h2c.
    #[serde(rename = "HTTP")]
    Http,
    /// HTTP over TLS, terminated at the gateway.
    #[serde(rename = "HTTPS")]
    Https,
}

impl Protocol {
    fn is_none(&self) -> bool {
        *self == Protocol::None
    }

    /// The name Kuma uses in listener names (`HTTP`, `HTTPS`, `TCP`, `TLS`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::None => "NONE",
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
        }
    }

    /// True for HTTP and HTTPS, which take http routes.
    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Https)
    }
}

/// `tls` of a listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerTls {
    /// Terminate or pass through.
    #[serde(skip_serializing_if = "TlsMode::is_none")]
    pub mode: TlsMode,
    /// Certificates (PEM bundles: key and chain), at most one RSA and one ECDSA.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<DataSource>,
    /// Reserved by Kuma; it has no fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<TlsOptions>,
}

/// The TLS mode of a listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TlsMode {
    /// Not set.
    #[default]
    #[serde(rename = "NONE")]
    None,
    /// The gateway terminates TLS with the listener's certificates.
    #[serde(rename = "TERMINATE")]
    Terminate,
    /// TLS is forwarded untouched; routing by SNI only.
    #[serde(rename = "PASSTHROUGH")]
    Passthrough,
}

impl TlsMode {
    fn is_none(&self) -> bool {
        *self == TlsMode::None
    }
}

/// `tls.options`: an empty message in Kuma.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {}

/// `resources` of a listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerResources {
    /// Maximum concurrent connections on the listener's port (0: unlimited).
    #[serde(alias = "connection_limit", skip_serializing_if = "is_zero")]
    pub connection_limit: u32,
}

pub(crate) fn is_zero(v: &u32) -> bool {
    *v == 0
}

pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}

const LISTENER_TAG_RULES: TagRules<'static> = TagRules { forbidden_keys: &RESERVED_GATEWAY_TAGS, ..TagRules::NONE };

impl MeshGatewaySpec {
    /// True when any listener is cross-mesh.
    pub fn is_cross_mesh(&self) -> bool {
        self.conf.as_ref().is_some_and(|c| c.listeners.iter().any(|l| l.cross_mesh))
    }

    /// Kuma's `MeshGateway` validation, plus the checks that keep Envoy from
    /// rejecting the generated config later (TLS listener without `tls`,
    /// crossMesh on TCP/TLS).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        validate_selectors(
            &FieldPath::root().field("selectors"),
            &self.selectors,
            TagRules { require_at_most_one_selector: self.is_cross_mesh(), ..TagRules::SELECTORS },
            &mut out,
        );
        validate_tags(&FieldPath::root().field("tags"), &self.tags, LISTENER_TAG_RULES, &mut out);
        let conf_path = FieldPath::root().field("conf");
        let Some(conf) = &self.conf else {
            out.add(conf_path, "cannot be empty");
            return out;
        };
        let path = conf_path.field("listeners");
        if conf.listeners.is_empty() {
            out.add(&path, "cannot be empty");
        }
        for (i, listener) in conf.listeners.iter().enumerate() {
            validate_listener(&path.index(i), listener, &mut out);
        }
        validate_collapsibility(&path, &conf.listeners, &mut out);
        out
    }
}

fn validate_listener(path: &FieldPath, l: &Listener, out: &mut Violations) {
    if !l.hostname.is_empty() {
        validate_hostname(&path.field("hostname"), &l.hostname, out);
    }
    validate_port(&path.field("port"), l.port, out);
    match l.protocol {
        Protocol::None => out.add(path.field("protocol"), "cannot be empty"),
        Protocol::Https if l.cross_mesh => out.add(path.field("protocol"), "protocol is not supported with crossMesh"),
        Protocol::Https if l.tls.is_none() => out.add(path.field("tls"), "cannot be empty"),
        Protocol::Https if l.tls.as_ref().is_some_and(|t| t.mode == TlsMode::Passthrough) => {
            out.add(path.field("tls").field("mode"), "mode is not supported on HTTPS listeners")
        }
        // Kuma accepts these, then fails (TLS without tls) or silently builds
        // an HTTPS chain (crossMesh TCP/TLS) at generation time.
        Protocol::Tcp | Protocol::Tls if l.cross_mesh => {
            out.add_extra(path.field("protocol"), "protocol is not supported with crossMesh")
        }
        Protocol::Tls if l.tls.is_none() => out.add_extra(path.field("tls"), "cannot be empty"),
        _ => {}
    }
    if let Some(tls) = &l.tls {
        let tls_path = path.field("tls");
        if l.cross_mesh {
            if tls.mode != TlsMode::None || !tls.certificates.is_empty() {
                out.add(tls_path, "must be empty with crossMesh");
            }
        } else {
            match tls.mode {
                TlsMode::None => out.add(tls_path.field("mode"), "cannot be empty"),
                TlsMode::Terminate => match tls.certificates.len() {
                    0 => out.add(tls_path.field("certificates"), "cannot be empty in TLS termination mode"),
                    1 | 2 => {}
                    _ => out.add(tls_path.field("certificates"), "cannot have more than 2 certificates"),
                },
                TlsMode::Passthrough => {}
            }
        }
    }
    validate_tags(&path.field("tags"), &l.tags, LISTENER_TAG_RULES, out);
}

/// Listeners that share a port must collapse into one Envoy listener: one
/// protocol, distinct hostnames, one connection limit.
fn validate_collapsibility(path: &FieldPath, listeners: &[Listener], out: &mut Violations) {
    #[derive(Default)]
    struct Port<'a> {
        protocols: BTreeMap<Protocol, Vec<usize>>,
        hostnames: BTreeMap<&'a str, Vec<usize>>,
        limits: BTreeSet<u32>,
        limited: Vec<usize>,
    }
    let mut ports: BTreeMap<u32, Port<'_>> = BTreeMap::new();
    for (i, l) in listeners.iter().enumerate() {
        let port = ports.entry(l.port).or_default();
        port.protocols.entry(l.protocol).or_default().push(i);
        port.hostnames.entry(l.effective_hostname()).or_default().push(i);
        let limit = l.resources.as_ref().map_or(0, |r| r.connection_limit);
        if limit != 0 {
            port.limits.insert(limit);
            port.limited.push(i);
        }
    }
    for port in ports.values() {
        if port.protocols.len() > 1 {
            for i in port.protocols.values().flatten() {
                out.add(path.index(*i), "protocol conflicts with other listeners on this port");
            }
        }
        for indexes in port.hostnames.values().filter(|ix| ix.len() > 1) {
            for i in indexes {
                out.add(path.index(*i), "multiple listeners for hostname on this port");
            }
        }
        if port.limits.len() > 1 {
            for i in &port.limited {
                out.add(path.index(*i).field("resources").field("connectionLimit"), "conflicting values for this port");
            }
        }
    }
}

/// Kuma's `ValidatePort`.
pub(crate) fn validate_port(path: &FieldPath, port: u32, out: &mut Violations) {
    if port == 0 || port > 65535 {
        out.add(path, "port must be in the range [1, 65535]");
    }
}

/// Kuma's `ValidateHostname`: `*`, `*.domain` or a lower-case DNS name.
pub(crate) fn validate_hostname(path: &FieldPath, hostname: &str, out: &mut Violations) {
    if hostname == "*" {
        return;
    }
    if hostname.len() > 253 {
        out.add(path, "must be at most 253 characters");
    }
    if let Some(domain) = hostname.strip_prefix("*.") {
        if !is_dns_domain(domain) {
            out.add(path, "invalid wildcard domain");
        }
        return;
    }
    if !is_dns_domain(hostname) {
        out.add(path, "invalid hostname");
    }
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
pub(crate) fn is_dns_domain(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty() && edge(&b[0]) && edge(&b[b.len() - 1]) && b.iter().all(|c| edge(c) || *c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns_domain("foo.example.com"));
        assert!(is_dns_domain("a-1.b"));
        assert!(!is_dns_domain("foo.example$.com"));
        assert!(!is_dns_domain("Foo.com"));
        assert!(!is_dns_domain("-a.com"));
        assert!(!is_dns_domain("a..com"));
        assert!(!is_dns_domain("foo.*.example.com"));
    }
}
