//! `MeshService`: a Kuma 2.x service as a resource (its data planes by
//! selector, its ports and identities). Read and validated here. As in
//! Kuma, a `backendRef` of kind `MeshService` with a name only means the
//! `kuma.io/service` of that name; one with a `port` or `sectionName`
//! references the resource, which this gateway refuses (not yet resolved)
//! rather than route it elsewhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshService`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshServiceSpec {
    /// Which data planes serve it.
    pub selector: ServiceSelector,
    /// Its ports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// Its identities (`ServiceTag` or `SpiffeID`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<ServiceIdentity>,
    /// `Available` or `Unavailable` (computed by Kuma).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `selector`: one of data plane tags, a data plane by name, or labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSelector {
    /// Inbound tags the data planes have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataplane_tags: Option<BTreeMap<String, String>>,
    /// One data plane by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataplane_ref: Option<DataplaneRef>,
    /// Data plane labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataplane_labels: Option<serde_json::Value>,
}

/// `selector.dataplaneRef`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataplaneRef {
    /// The data plane's name.
    pub name: String,
}

/// A port of the service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePort {
    /// The service's port.
    pub port: u32,
    /// The data planes' port: a number or an inbound's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_port: Option<serde_json::Value>,
    /// `http`, `tcp`, `grpc`, `http2` …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// The port's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An identity of the service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceIdentity {
    /// `ServiceTag` or `SpiffeID`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value.
    pub value: String,
}

impl MeshServiceSpec {
    /// Kuma's validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let s = &self.selector;
        let set = [s.dataplane_tags.is_some(), s.dataplane_ref.is_some(), s.dataplane_labels.is_some()];
        if set.iter().filter(|b| **b).count() > 1 {
            out.add(
                FieldPath::root().field("selector"),
                "must specify only one of: dataplaneTags, dataplaneRef, or dataplaneLabels",
            );
        }
        for (i, id) in self.identities.iter().enumerate() {
            if !["ServiceTag", "SpiffeID"].contains(&id.kind.as_str()) {
                out.add_extra(
                    FieldPath::root().field("identities").index(i).field("type"),
                    "must be ServiceTag or SpiffeID",
                );
            }
        }
        out
    }
}
