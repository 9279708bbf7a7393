//! `Mesh`: mTLS, logging and tracing backends a gateway uses.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::gateway::is_false;
use crate::tags::{TagRules, Tags, validate_tags};
use crate::violation::{FieldPath, Violations};

/// The spec of a `Mesh`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshSpec {
    /// Mesh mTLS: the certificate authority backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtls: Option<Mtls>,
    /// Tracing backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Backends>,
    /// Access-log backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Backends>,
    /// Metrics backends (kept as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Value>,
    /// Mesh networking (outbound passthrough).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking: Option<Value>,
    /// Routing settings (locality awareness, zone egress).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
    /// Data plane membership constraints (kept as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Value>,
    /// Default policies not to create.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skip_creating_initial_policies: Vec<String>,
    /// MeshService generation mode (kept as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh_services: Option<Value>,
}

/// `mtls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Mtls {
    /// The backend in use; empty means mTLS is off.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub enabled_backend: String,
    /// CA backends (Kuma allows one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<CaBackend>,
    /// Skip the CA plugin's own checks.
    #[serde(skip_serializing_if = "is_false")]
    pub skip_validation: bool,
}

/// A certificate authority backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CaBackend {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `builtin` or `provided`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp_cert: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_chain: Option<Value>,
}

/// `logging` or `tracing`: named backends and a default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Backends {
    /// The backend used when a policy names none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_backend: String,
    /// The backends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Backend>,
}

/// A logging or tracing backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Backend {
    /// Name, referred to by TrafficLog/TrafficTrace.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Logging: `file` or `tcp`. Tracing: `zipkin` or `datadog`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Logging: the Envoy access-log format.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub format: String,
    /// Tracing: sampling percentage (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<f64>,
    /// Type-specific settings (`path`, `address`, `url`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<Map<String, Value>>,
}

impl Backend {
    /// A string setting of `conf`, or `""`.
    pub fn conf_str(&self, key: &str) -> &str {
        self.conf.as_ref().and_then(|c| c.get(key)).and_then(Value::as_str).unwrap_or("")
    }
}

/// `routing`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Routing {
    #[serde(skip_serializing_if = "is_false")]
    pub locality_aware_load_balancing: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub zone_egress: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub default_forbid_mesh_external_service_access: bool,
}

impl MeshSpec {
    /// True when a CA backend is enabled.
    pub fn mtls_enabled(&self) -> bool {
        self.mtls.as_ref().is_some_and(|m| !m.enabled_backend.is_empty())
    }

    /// The logging backend named `name`, or the default one for `""`.
    pub fn logging_backend(&self, name: &str) -> Option<&Backend> {
        let logging = self.logging.as_ref()?;
        let name = if name.is_empty() { logging.default_backend.as_str() } else { name };
        logging.backends.iter().find(|b| b.name == name)
    }

    /// Kuma's `Mesh` validation of mtls, logging, tracing and zone egress.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        if let Some(mtls) = &self.mtls {
            let p = FieldPath::root().field("mtls");
            if mtls.backends.len() > 1 {
                out.add(p.field("backends"), "cannot have more than 1 backends");
            }
            let mut names = BTreeSet::new();
            for (i, b) in mtls.backends.iter().enumerate() {
                if !names.insert(b.name.as_str()) {
                    out.add(
                        p.field("backends").index(i).field("name"),
                        format!("{:?} name is already used for another backend", b.name),
                    );
                }
                if !matches!(b.kind.as_str(), "builtin" | "provided") {
                    out.add(
                        p.field("backends").index(i).field("type"),
                        "could not find installed plugin for this type",
                    );
                }
            }
            if !mtls.enabled_backend.is_empty() && !names.contains(mtls.enabled_backend.as_str()) {
                out.add(p.field("enabledBackend"), "has to be set to one of the backends in the mesh");
            }
        }
        if let Some(logging) = &self.logging {
            validate_backends(&FieldPath::root().field("logging"), logging, BackendKind::Logging, &mut out);
        }
        if let Some(tracing) = &self.tracing {
            validate_backends(&FieldPath::root().field("tracing"), tracing, BackendKind::Tracing, &mut out);
        }
        if let Some(c) = self.constraints.as_ref().and_then(|c| c.get("dataplaneProxy")) {
            for list in ["requirements", "restrictions"] {
                for (i, rule) in c.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
                    let tags: Tags =
                        rule.get("tags").and_then(|t| serde_json::from_value(t.clone()).ok()).unwrap_or_default();
                    validate_tags(
                        &FieldPath::root()
                            .field("constraints")
                            .field("dataplaneProxy")
                            .field(list)
                            .index(i)
                            .field("tags"),
                        &tags,
                        TagRules { require_at_least_one_tag: true, ..TagRules::default() },
                        &mut out,
                    );
                }
            }
        }
        if self.routing.as_ref().is_some_and(|r| r.zone_egress) && !self.mtls_enabled() {
            out.add(FieldPath::root().field("mtls"), "has to be set when zoneEgress enabled");
        }
        out
    }
}

#[derive(Clone, Copy, PartialEq)]
enum BackendKind {
    Logging,
    Tracing,
}

fn validate_backends(path: &FieldPath, backends: &Backends, kind: BackendKind, out: &mut Violations) {
    let mut names = BTreeSet::new();
    for (i, b) in backends.backends.iter().enumerate() {
        let p = path.field("backends").index(i);
        if b.name.is_empty() {
            out.add(p.field("name"), "cannot be empty");
        }
        // Kuma reports conf problems under `config`, not `conf`.
        let conf = p.field("config");
        match (kind, b.kind.as_str()) {
            (BackendKind::Logging, "file") => {
                if b.conf_str("path").is_empty() {
                    out.add(conf.field("path"), "cannot be empty");
                }
            }
            (BackendKind::Logging, "tcp") => {
                let address = b.conf_str("address");
                if address.is_empty() {
                    out.add(conf.field("address"), "cannot be empty");
                } else if !address.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && !p.is_empty()) {
                    out.add(conf.field("address"), "has to be in format of HOST:PORT");
                }
            }
            (BackendKind::Logging, _) => {
                out.add(p.field("type"), "unknown backend type. Available backends: \"tcp\", \"file\"")
            }
            (BackendKind::Tracing, t) => {
                if b.sampling.is_some_and(|s| !(0.0..=100.0).contains(&s)) {
                    out.add(p.field("sampling"), "has to be in [0.0 - 100.0] range");
                }
                match t {
                    "zipkin" => {
                        if b.conf_str("url").is_empty() {
                            out.add(conf.field("url"), "cannot be empty");
                        }
                    }
                    "datadog" => {
                        if b.conf_str("address").is_empty() {
                            out.add(conf.field("address"), "cannot be empty");
                        }
                    }
                    _ => out.add(p.field("type"), "unknown backend type. Available backends: \"zipkin\", \"datadog\""),
                }
            }
        }
        if !b.name.is_empty() && !names.insert(b.name.as_str()) {
            out.add(p.field("name"), format!("{:?} name is already used for another backend", b.name));
        }
    }
    if !backends.default_backend.is_empty() && !names.contains(backends.default_backend.as_str()) {
        let what = if kind == BackendKind::Logging { "logging" } else { "tracing" };
        out.add(path.field("defaultBackend"), format!("has to be set to one of the {what} backend in mesh"));
    }
}
