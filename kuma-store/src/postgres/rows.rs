//! A row of `kuma_gateway_resources` as a document `kuma-model` reads, so
//! a row is validated by the same rules, and reported with the same
//! messages, as a file.

use std::time::SystemTime;

use kuma_model::{DocumentParts, Kind, ResourceKey, Timestamp};
use serde_json::Value;

/// The columns of one row.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) kind: String,
    pub(crate) mesh: String,
    pub(crate) name: String,
    pub(crate) spec: String,
    pub(crate) labels: String,
    pub(crate) namespace: Option<String>,
    pub(crate) creation_time: SystemTime,
}

impl Row {
    /// The resource the row's key names, when its type is known.
    pub(crate) fn key(&self) -> Option<ResourceKey> {
        let kind = Kind::parse(&self.kind)?;
        Some(ResourceKey { kind, mesh: self.mesh.clone(), name: self.name.clone() })
    }

    /// What diagnostics name the row by: `postgres:<type>/<mesh>/<name>`.
    pub(crate) fn location(&self) -> String {
        if self.mesh.is_empty() {
            format!("postgres:{}/{}", self.kind, self.name)
        } else {
            format!("postgres:{}/{}/{}", self.kind, self.mesh, self.name)
        }
    }

    /// The row as the document [`kuma_model::Resource::to_document`] would
    /// write, pretty-printed so that a diagnostic's line points at the field.
    /// Columns that do not parse are passed on as they are, for the parser
    /// to report.
    pub(crate) fn document(&self) -> String {
        let document = DocumentParts {
            kind: &self.kind,
            mesh: &self.mesh,
            name: &self.name,
            namespace: self.namespace.as_deref(),
            creation_time: Some(Timestamp::from_system_time(self.creation_time)),
            labels: serde_json::from_str(&self.labels).unwrap_or(Value::Null),
            spec: serde_json::from_str(&self.spec).unwrap_or(Value::String(self.spec.clone())),
        }
        .into_document();
        serde_json::to_string_pretty(&document).unwrap_or_default()
    }
}
