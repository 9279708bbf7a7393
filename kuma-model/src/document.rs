//! A resource written back as a document: what a store keeps and what
//! `export` prints, read back by [`crate::parse_file`] to an equal resource.

use serde_json::{Map, Value};

use crate::meta::Timestamp;
use crate::resource::{Kind, Resource};

/// The pieces of a document, as a store keeps them: written out by
/// [`DocumentParts::into_document`] in the form [`crate::parse_file`] reads.
/// Pieces that are not what their kind expects (an unknown type, a spec
/// that is not a mapping) are written as they are, for the parser to report.
#[derive(Debug, Clone)]
pub struct DocumentParts<'a> {
    /// The type (`MeshGateway`, ...).
    pub kind: &'a str,
    /// The mesh; empty for a Mesh.
    pub mesh: &'a str,
    /// The name (`<name>.<namespace>` when `namespace` is set).
    pub name: &'a str,
    /// The Kubernetes namespace: the document is then in that form.
    pub namespace: Option<&'a str>,
    /// The creation time.
    pub creation_time: Option<Timestamp>,
    /// The labels (a mapping; left out when empty or null).
    pub labels: Value,
    /// The spec as Kuma's JSON.
    pub spec: Value,
}

impl DocumentParts<'_> {
    /// The document: Kuma's Universal form (`type`, `name`, `mesh`,
    /// `creationTime`, `labels`, then the spec), or the Kubernetes form
    /// inside a namespace.
    pub fn into_document(self) -> Value {
        let labels = match self.labels {
            Value::Null => None,
            Value::Object(m) if m.is_empty() => None,
            other => Some(other),
        };
        let mut doc = Map::new();
        if let Some(namespace) = self.namespace {
            let name = self.name.strip_suffix(&format!(".{namespace}")).unwrap_or(self.name);
            let mut metadata = Map::new();
            metadata.insert("name".into(), name.into());
            metadata.insert("namespace".into(), namespace.into());
            if let Some(t) = self.creation_time {
                metadata.insert("creationTimestamp".into(), t.to_string().into());
            }
            if let Some(labels) = labels {
                metadata.insert("labels".into(), labels);
            }
            doc.insert("apiVersion".into(), "kuma.io/v1alpha1".into());
            doc.insert("kind".into(), self.kind.into());
            if !self.mesh.is_empty() {
                doc.insert("mesh".into(), self.mesh.into());
            }
            doc.insert("metadata".into(), Value::Object(metadata));
            doc.insert("spec".into(), self.spec);
            return Value::Object(doc);
        }
        doc.insert("type".into(), self.kind.into());
        doc.insert("name".into(), self.name.into());
        if !self.mesh.is_empty() {
            doc.insert("mesh".into(), self.mesh.into());
        }
        if let Some(t) = self.creation_time {
            doc.insert("creationTime".into(), t.to_string().into());
        }
        if let Some(labels) = labels {
            doc.insert("labels".into(), labels);
        }
        match self.spec {
            Value::Object(fields) if !Kind::parse(self.kind).is_some_and(Kind::has_spec_field) => doc.extend(fields),
            spec => {
                doc.insert("spec".into(), spec);
            }
        }
        Value::Object(doc)
    }
}

impl Resource {
    /// The resource as one YAML/JSON document in Kuma's Universal form
    /// (`type`, `name`, `mesh`, `creationTime`, `labels`, then the spec), or
    /// in the Kubernetes form when it was read from that form inside a
    /// namespace (the namespace names it, as in Kuma). Reading the document
    /// back gives the same metadata and spec.
    ///
    /// ```
    /// use kuma_model::{parse_file, UnknownFields};
    /// let text = "type: MeshGateway\nname: edge\nmesh: default\nselectors:\n- match:\n    kuma.io/service: edge\nconf:\n  listeners:\n  - port: 8080\n    protocol: HTTP\n";
    /// let parsed = parse_file("gw.yaml", text, UnknownFields::Reject);
    /// let resource = &parsed.resources()[0];
    /// let document = resource.to_document();
    /// assert_eq!(document["type"], "MeshGateway");
    /// let again = parse_file("again.json", &document.to_string(), UnknownFields::Reject);
    /// assert_eq!(again.resources()[0].spec, resource.spec);
    /// ```
    pub fn to_document(&self) -> Value {
        let labels =
            Value::Object(self.meta.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect());
        DocumentParts {
            kind: self.spec.kind().as_str(),
            mesh: &self.meta.mesh,
            name: &self.meta.name,
            namespace: self.meta.namespace.as_deref(),
            creation_time: self.meta.creation_time,
            labels,
            spec: self.spec.to_json(),
        }
        .into_document()
    }
}
