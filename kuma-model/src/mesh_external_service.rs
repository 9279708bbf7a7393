//! `MeshExternalService`: a Kuma 2.x service outside the mesh as a
//! resource (a hostname match, endpoints, TLS). Read and validated here;
//! `backendRef`s of this kind are refused by this gateway (see
//! `docs/kuma2.md`), so a route never goes somewhere else than written.

use serde::{Deserialize, Serialize};

use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshExternalService`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshExternalServiceSpec {
    /// The port and protocol clients use.
    #[serde(rename = "match")]
    pub matcher: ExternalMatch,
    /// Where the traffic goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<ExternalEndpoint>>,
    /// TLS to the endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<serde_json::Value>,
    /// An extension that supplies endpoints and TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<Extension>,
}

/// `match`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalMatch {
    /// `HostnameGenerator` (or unset).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The port.
    pub port: u32,
    /// `tcp` (default), `grpc`, `http`, `http2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// An endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalEndpoint {
    /// An IP address or hostname.
    pub address: String,
    /// The port.
    pub port: u32,
    /// Lower is preferred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
}

/// `extension`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Extension {
    /// The extension's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

const PROTOCOLS: [&str; 4] = ["tcp", "grpc", "http", "http2"];

fn is_ip(a: &str) -> bool {
    a.parse::<std::net::IpAddr>().is_ok()
}

/// A DNS name as Go's `govalidator.IsDNSName` takes it.
fn is_dns_name(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 255
        && !is_ip(a)
        && a.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl MeshExternalServiceSpec {
    /// Kuma's validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        let m = root.field("match");
        if let Some(t) = self.matcher.kind.as_deref().filter(|t| !t.is_empty() && *t != "HostnameGenerator") {
            out.add(m.field("type"), format!("unrecognized type '{t}' - only 'HostnameGenerator' is supported"));
        }
        if self.matcher.port == 0 || self.matcher.port > 65_535 {
            out.add(m.field("port"), "port must be a valid (1-65535)");
        }
        if !PROTOCOLS.contains(&self.matcher.protocol.as_deref().unwrap_or("tcp")) {
            let quoted: Vec<String> = PROTOCOLS.iter().map(|p| format!("{p:?}")).collect();
            out.add(m.field("protocol"), format!("\"protocol\" must be one of [{}]", quoted.join(", ")));
        }
        match &self.extension {
            None => {
                for (i, e) in self.endpoints.iter().flatten().enumerate() {
                    let p = root.field("endpoints").index(i);
                    if !is_ip(&e.address) && !is_dns_name(&e.address) {
                        out.add(p.field("address"), "address has to be a valid IP or hostname");
                    } else if e.port == 0 || e.port > 65_535 {
                        out.add(p.field("port"), "port must be a valid (1-65535)");
                    }
                }
            }
            Some(x) if x.kind.is_empty() => out.add(root.field("extension").field("type"), "must not be empty"),
            Some(_) => {}
        }
        out
    }
}
