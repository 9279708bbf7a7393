//! `Dataplane`: a proxy. Gateways are data planes with `networking.gateway`:
//! `BUILTIN` (configured from MeshGateway) or `DELEGATED` (a third-party
//! gateway with a sidecar that has only outbounds).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::gateway::{is_zero, validate_port};
use crate::tags::{PROTOCOL_TAG, SERVICE_TAG, TagRules, TagValues, Tags, validate_tags};
use crate::violation::{FieldPath, Violations};

/// The spec of a `Dataplane`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataplaneSpec {
    /// Addresses, gateway mode, inbounds and outbounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking: Option<Networking>,
    /// Per-proxy metrics backend (kept as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Value>,
    /// Deprecated virtual probes (kept as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<Value>,
}

/// `networking`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Networking {
    /// The proxy's address (IP or host name).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// Address other proxies use to reach this one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub advertised_address: String,
    /// Gateway mode, if this proxy is a gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayMode>,
    /// Inbound interfaces (sidecars only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inbound: Vec<Inbound>,
    /// Outbound interfaces (sidecars and delegated gateways).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outbound: Vec<Outbound>,
    /// Transparent proxying settings (kept as written).
    #[serde(alias = "transparent_proxying", skip_serializing_if = "Option::is_none")]
    pub transparent_proxying: Option<Value>,
    /// Envoy admin settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<Admin>,
    /// Zone proxy listeners (kept as written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Value>,
}

/// `networking.admin`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    /// Admin port.
    #[serde(skip_serializing_if = "is_zero")]
    pub port: u32,
}

/// `networking.gateway`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayMode {
    /// `DELEGATED` (the default) or `BUILTIN`.
    #[serde(rename = "type", skip_serializing_if = "GatewayType::is_delegated")]
    pub kind: GatewayType,
    /// The gateway's tags (`kuma.io/service` names it).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
}

/// How a gateway is implemented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GatewayType {
    /// A third-party gateway beside a sidecar; the proto default.
    #[default]
    #[serde(rename = "DELEGATED")]
    Delegated,
    /// Kuma's own gateway, configured by MeshGateway and MeshGatewayRoute.
    #[serde(rename = "BUILTIN")]
    Builtin,
}

impl GatewayType {
    fn is_delegated(&self) -> bool {
        *self == GatewayType::Delegated
    }
}

/// An inbound interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Inbound {
    /// Port the proxy listens on.
    #[serde(skip_serializing_if = "is_zero")]
    pub port: u32,
    /// Port of the workload (default: `port`).
    #[serde(skip_serializing_if = "is_zero")]
    pub service_port: u32,
    /// Address of the workload (default: the inbound address).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service_address: String,
    /// Address the proxy listens on (default: `networking.address`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// The service's tags.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    /// Readiness; absent means ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Active probing of the workload (kept as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_probe: Option<Value>,
    /// `Ready`, `NotReady` or `Ignored`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<InboundState>,
    /// Section name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Application protocol.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
}

impl Inbound {
    /// The address endpoints of this inbound are reached at.
    pub fn endpoint_address<'a>(&'a self, networking: &'a Networking) -> &'a str {
        if !self.address.is_empty() {
            &self.address
        } else if !networking.advertised_address.is_empty() {
            &networking.advertised_address
        } else {
            &networking.address
        }
    }

    /// False when the inbound is marked not ready or ignored.
    pub fn is_ready(&self) -> bool {
        self.health.as_ref().is_none_or(|h| h.ready)
            && !matches!(self.state, Some(InboundState::NotReady | InboundState::Ignored))
    }
}

/// `health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Health {
    /// Whether the inbound receives traffic.
    pub ready: bool,
}

/// Inbound state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum InboundState {
    Ready,
    NotReady,
    Ignored,
}

/// An outbound: a local port that reaches a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Outbound {
    /// Local address (default `127.0.0.1`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// Local port.
    #[serde(skip_serializing_if = "is_zero")]
    pub port: u32,
    /// The destination's tags (`kuma.io/service`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
    /// A new-style backend reference (kept as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<Value>,
}

impl Outbound {
    /// The local address, `127.0.0.1` when unset.
    pub fn local_address(&self) -> &str {
        if self.address.is_empty() { "127.0.0.1" } else { &self.address }
    }
}

/// Protocols Kuma accepts in `kuma.io/protocol`.
pub const KNOWN_PROTOCOLS: [&str; 7] = ["http", "http2", "tcp", "tls", "grpc", "kafka", "mysql"];

impl DataplaneSpec {
    /// The gateway mode, if this data plane is a gateway.
    pub fn gateway(&self) -> Option<&GatewayMode> {
        self.networking.as_ref()?.gateway.as_ref()
    }

    /// True for a BUILTIN gateway.
    pub fn is_builtin_gateway(&self) -> bool {
        self.gateway().is_some_and(|g| g.kind == GatewayType::Builtin)
    }

    /// True for a DELEGATED gateway.
    pub fn is_delegated_gateway(&self) -> bool {
        self.gateway().is_some_and(|g| g.kind == GatewayType::Delegated)
    }

    /// Kuma's `Dataplane` validation (gateway, address, inbound, outbound).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let net_path = FieldPath::root().field("networking");
        let Some(net) = &self.networking else {
            out.add(&net_path, "must be defined");
            return out;
        };
        match net.gateway.as_ref().map(|g| g.kind) {
            Some(GatewayType::Delegated) => {
                if !net.inbound.is_empty() {
                    out.add(net_path.field("inbound"), "inbound cannot be defined for delegated gateways");
                }
                if !net.listeners.is_empty() {
                    out.add(net_path.field("listeners"), "listeners cannot be defined for delegated gateways");
                }
                validate_gateway(&net_path.field("gateway"), net.gateway.as_ref(), &mut out);
                validate_networking(&net_path, net, &mut out);
            }
            Some(GatewayType::Builtin) => {
                if !net.inbound.is_empty() {
                    out.add(net_path.field("inbound"), "inbound cannot be defined for builtin gateways");
                }
                if !net.outbound.is_empty() {
                    out.add(net_path.field("outbound"), "outbound cannot be defined for builtin gateways");
                }
                if !net.listeners.is_empty() {
                    out.add(net_path.field("listeners"), "listeners cannot be defined for builtin gateways");
                }
                if self.probes.is_some() {
                    out.add(net_path.field("probes"), "probes cannot be defined for builtin gateways");
                }
                validate_gateway(&net_path.field("gateway"), net.gateway.as_ref(), &mut out);
                validate_networking(&net_path, net, &mut out);
            }
            None => validate_networking(&net_path, net, &mut out),
        }
        out
    }
}

fn validate_gateway(path: &FieldPath, gateway: Option<&GatewayMode>, out: &mut Violations) {
    let Some(gateway) = gateway else { return };
    let tags_path = path.field("tags");
    if let Some(p) = gateway.tags.get(PROTOCOL_TAG)
        && !p.eq_ignore_ascii_case("tcp")
    {
        out.add(tags_path.key(PROTOCOL_TAG), format!("other values than tcp are not allowed, provided value {p:?}"));
    }
    validate_tags(
        &tags_path,
        &gateway.tags,
        TagRules { require_service: !gateway.tags.is_empty(), values: TagValues::Concrete, ..TagRules::default() },
        out,
    );
}

fn validate_networking(path: &FieldPath, net: &Networking, out: &mut Violations) {
    let address = path.field("address");
    if net.address.is_empty() {
        out.add(&address, "address can't be empty");
    } else if net.address == "0.0.0.0" || net.address == "::" {
        out.add(&address, "must not be 0.0.0.0 or ::");
    } else if net.address.parse::<IpAddr>().is_err() && !is_dns_name(&net.address) {
        out.add(&address, "address has to be valid IP address or domain name");
    }
    for (i, inbound) in net.inbound.iter().enumerate() {
        let p = path.field("inbound").index(i);
        validate_port(&p.field("port"), inbound.port, out);
        if inbound.service_port != 0 {
            validate_port(&p.field("servicePort"), inbound.service_port, out);
        }
        if !inbound.service_address.is_empty() && inbound.service_address.parse::<IpAddr>().is_err() {
            out.add(p.field("serviceAddress"), "serviceAddress has to be valid IP address");
        }
        if !inbound.address.is_empty() && inbound.address.parse::<IpAddr>().is_err() {
            out.add(p.field("address"), "address has to be valid IP address");
        }
        if let Some(proto) = inbound.tags.get(PROTOCOL_TAG)
            && !KNOWN_PROTOCOLS.contains(&proto.to_ascii_lowercase().as_str())
        {
            out.add(
                p.field("tags").key(PROTOCOL_TAG),
                format!(
                    "tag {PROTOCOL_TAG:?} has an invalid value {proto:?}. Allowed values: grpc, http, http2, kafka, tcp"
                ),
            );
        }
        validate_tags(
            &p.field("tags"),
            &inbound.tags,
            TagRules { values: TagValues::Concrete, ..TagRules::default() },
            out,
        );
        if !inbound.tags.is_empty() && !inbound.tags.contains_key(SERVICE_TAG) {
            out.add(p.field("tags").key(SERVICE_TAG), "tag has to exist");
        }
    }
    for (i, outbound) in net.outbound.iter().enumerate() {
        let p = path.field("outbound").index(i);
        validate_port(&p.field("port"), outbound.port, out);
        if !outbound.address.is_empty() && outbound.address.parse::<IpAddr>().is_err() {
            out.add(p.field("address"), "address has to be valid IP address");
        }
        if outbound.backend_ref.is_none() {
            if outbound.tags.is_empty() {
                out.add(p.field("tags"), format!("mandatory tag {SERVICE_TAG:?} is missing"));
            } else {
                validate_tags(
                    &p.field("tags"),
                    &outbound.tags,
                    TagRules { require_service: true, values: TagValues::Concrete, ..TagRules::default() },
                    out,
                );
            }
        } else if !outbound.tags.is_empty() {
            out.add(p.field("backendRef"), "both backendRef and tags/service cannot be defined");
        }
    }
}

/// govalidator's `IsDNSName`, which Kuma uses for addresses.
pub(crate) fn is_dns_name(name: &str) -> bool {
    if name.is_empty() || name.replace('.', "").len() > 255 || name.parse::<IpAddr>().is_ok() {
        return false;
    }
    let trimmed = name.strip_suffix(['.', '_']).unwrap_or(name);
    !trimmed.is_empty()
        && trimmed.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        })
}
