//! `ExternalService`: a service outside the mesh, reached by host and port.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::dataplane::{KNOWN_PROTOCOLS, is_dns_name};
use crate::datasource::DataSource;
use crate::gateway::{is_false, validate_port};
use crate::tags::{PROTOCOL_TAG, SERVICE_TAG, TagRules, TagValues, Tags, validate_tags};
use crate::violation::{FieldPath, Violations};

/// The spec of an `ExternalService`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalServiceSpec {
    /// Address and TLS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking: Option<ExternalNetworking>,
    /// Tags; `kuma.io/service` names the service.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: Tags,
}

/// `networking`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalNetworking {
    /// `host:port`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// TLS origination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ExternalTls>,
    /// Do not add a DNS entry for the host.
    #[serde(skip_serializing_if = "is_false")]
    pub disable_host_dns_entry: bool,
}

/// `networking.tls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalTls {
    /// Originate TLS.
    #[serde(skip_serializing_if = "is_false")]
    pub enabled: bool,
    /// CA bundle that verifies the server.
    #[serde(alias = "ca_cert", skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<DataSource>,
    /// Client certificate.
    #[serde(alias = "client_cert", skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<DataSource>,
    /// Client key.
    #[serde(alias = "client_key", skip_serializing_if = "Option::is_none")]
    pub client_key: Option<DataSource>,
    /// Allow TLS renegotiation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_renegotiation: Option<bool>,
    /// SNI and verified name (default: the address host).
    #[serde(alias = "server_name", skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Do not verify the server's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_hostname_verification: Option<bool>,
}

impl ExternalServiceSpec {
    /// `(host, port)` of the address, when it parses.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        let address = &self.networking.as_ref()?.address;
        let (host, port) = address.rsplit_once(':')?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        Some((host, port.parse().ok()?))
    }

    /// The `kuma.io/service` tag.
    pub fn service(&self) -> &str {
        self.tags.get(SERVICE_TAG).map_or("", String::as_str)
    }

    /// Kuma's `ExternalService` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let np = FieldPath::root().field("networking");
        match &self.networking {
            None => out.add(&np, "should have networking"),
            Some(n) => {
                let ap = np.field("address");
                if n.address.is_empty() {
                    out.add(&ap, "address can't be empty");
                } else {
                    match n.address.rsplit_once(':') {
                        None => {
                            out.add(&ap, "unable to parse address");
                        }
                        Some((host, port)) => {
                            let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
                            if host.contains(':') && bare.is_none() {
                                out.add(&ap, "unable to parse address");
                            }
                            let host = bare.unwrap_or(host);
                            if host.parse::<IpAddr>().is_err() && !is_dns_name(host) {
                                out.add(&ap, "address has to be a valid IP address or a domain name");
                            }
                            match port.parse::<u32>() {
                                Err(_) => out.add(&ap, "unable to parse port in address"),
                                Ok(p) => validate_port(&ap, p, &mut out),
                            }
                        }
                    }
                }
                if let Some(tls) = &n.tls {
                    let tp = np.field("tls");
                    match tls.server_name.as_deref() {
                        Some("") => out.add(tp.field("serverName"), "cannot be empty"),
                        // Envoy refuses a NUL in an SNI name; no server name
                        // holds control characters or whitespace.
                        Some(name) if name.chars().any(|c| c.is_control() || c.is_whitespace()) => {
                            out.add_extra(tp.field("serverName"), "must not contain whitespace or control characters")
                        }
                        _ => {}
                    }
                    for (name, ds) in
                        [("caCert", &tls.ca_cert), ("clientCert", &tls.client_cert), ("clientKey", &tls.client_key)]
                    {
                        let empty = match ds {
                            Some(DataSource::Secret(s) | DataSource::File(s) | DataSource::InlineString(s)) => {
                                s.is_empty()
                            }
                            Some(DataSource::Inline(b)) => b.is_empty(),
                            None => false,
                        };
                        if empty {
                            out.add(tp.field(name), "data source cannot be empty");
                        }
                    }
                }
            }
        }
        let tags = FieldPath::root().field("tags");
        if let Some(proto) = self.tags.get(PROTOCOL_TAG)
            && !KNOWN_PROTOCOLS.contains(&proto.to_ascii_lowercase().as_str())
        {
            out.add(
                tags.key(PROTOCOL_TAG),
                format!(
                    "tag {PROTOCOL_TAG:?} has an invalid value {proto:?}. Allowed values: grpc, http, http2, kafka, tcp"
                ),
            );
        }
        validate_tags(
            &tags,
            &self.tags,
            TagRules { require_service: true, values: TagValues::Concrete, ..TagRules::default() },
            &mut out,
        );
        if let Some((host, _)) = self.host_port()
            && !self.service().is_empty()
            && host == self.service()
        {
            out.add(tags.key(SERVICE_TAG), "cannot be the same as networking.address");
        }
        out
    }
}
