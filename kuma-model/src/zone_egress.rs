//! `ZoneEgress`: the zone's egress proxy. With mesh mTLS and
//! `routing.zoneEgress` on, traffic to `ExternalService`s leaves through it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::violation::{FieldPath, Violations};

/// The spec of a `ZoneEgress`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneEgressSpec {
    /// The zone it serves (empty on a standalone control plane).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub zone: String,
    /// Where it listens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking: Option<ZoneEgressNetworking>,
}

/// `networking`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ZoneEgressNetworking {
    /// The address it listens on.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// The port it listens on.
    #[serde(skip_serializing_if = "crate::gateway::is_zero")]
    pub port: u32,
    /// Envoy admin settings (kept as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<Value>,
}

impl ZoneEgressSpec {
    /// Kuma's checks: an address and a port.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let path = FieldPath::root().field("networking");
        match &self.networking {
            None => out.add(&path, "cannot be empty"),
            Some(n) => {
                if n.address.is_empty() {
                    out.add(path.field("address"), "cannot be empty");
                }
                crate::gateway::validate_port(&path.field("port"), n.port, &mut out);
            }
        }
        out
    }

    /// The `address:port` it is reached at.
    pub fn endpoint(&self) -> Option<(&str, u32)> {
        self.networking.as_ref().map(|n| (n.address.as_str(), n.port))
    }
}
