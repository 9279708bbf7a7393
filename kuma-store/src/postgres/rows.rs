//! A row of `kuma_gateway_resources` as a document `kuma-model` reads, so
//! a row is validated by the same rules, and reported with the same
//! messages, as a file.

use std::time::SystemTime;

use kuma_model::{Kind, ResourceKey, Timestamp};
use serde_json::{Map, Value};

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
        let spec: Value = serde_json::from_str(&self.spec).unwrap_or(Value::String(self.spec.clone()));
        let labels: Value = serde_json::from_str(&self.labels).unwrap_or(Value::Null);
        let labels = match labels {
            Value::Object(m) if m.is_empty() => None,
            Value::Null => None,
            other => Some(other),
        };
        let created = Timestamp::from_unix_nanos(
            self.creation_time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0),
        )
        .to_string();
        let kind = Kind::parse(&self.kind);
        let mut doc = Map::new();
        if let Some(namespace) = &self.namespace {
            let name = self.name.strip_suffix(&format!(".{namespace}")).unwrap_or(&self.name);
            let mut metadata = Map::new();
            metadata.insert("name".into(), name.into());
            metadata.insert("namespace".into(), namespace.as_str().into());
            metadata.insert("creationTimestamp".into(), created.into());
            if let Some(labels) = labels {
                metadata.insert("labels".into(), labels);
            }
            doc.insert("apiVersion".into(), "kuma.io/v1alpha1".into());
            doc.insert("kind".into(), self.kind.as_str().into());
            if !self.mesh.is_empty() {
                doc.insert("mesh".into(), self.mesh.as_str().into());
            }
            doc.insert("metadata".into(), Value::Object(metadata));
            doc.insert("spec".into(), spec);
        } else {
            doc.insert("type".into(), self.kind.as_str().into());
            doc.insert("name".into(), self.name.as_str().into());
            if !self.mesh.is_empty() {
                doc.insert("mesh".into(), self.mesh.as_str().into());
            }
            doc.insert("creationTime".into(), created.into());
            if let Some(labels) = labels {
                doc.insert("labels".into(), labels);
            }
            match spec {
                Value::Object(fields) if !kind.is_some_and(Kind::has_spec_field) => doc.extend(fields),
                spec => {
                    doc.insert("spec".into(), spec);
                }
            }
        }
        serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default()
    }
}
