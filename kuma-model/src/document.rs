//! A resource written back as a document: what a store keeps and what
//! `export` prints, read back by [`crate::parse_file`] to an equal resource.

use serde_json::{Map, Value};

use crate::resource::Resource;

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
        let kind = self.spec.kind();
        let spec = self.spec.to_json();
        let mut doc = Map::new();
        if let Some(namespace) = &self.meta.namespace {
            let name = self.meta.name.strip_suffix(&format!(".{namespace}")).unwrap_or(&self.meta.name);
            let mut metadata = Map::new();
            metadata.insert("name".into(), name.into());
            metadata.insert("namespace".into(), namespace.as_str().into());
            if let Some(t) = self.meta.creation_time {
                metadata.insert("creationTimestamp".into(), t.to_string().into());
            }
            if !self.meta.labels.is_empty() {
                metadata.insert("labels".into(), labels(self));
            }
            doc.insert("apiVersion".into(), "kuma.io/v1alpha1".into());
            doc.insert("kind".into(), kind.as_str().into());
            if kind.is_mesh_scoped() {
                doc.insert("mesh".into(), self.meta.mesh.as_str().into());
            }
            doc.insert("metadata".into(), Value::Object(metadata));
            doc.insert("spec".into(), spec);
            return Value::Object(doc);
        }
        doc.insert("type".into(), kind.as_str().into());
        doc.insert("name".into(), self.meta.name.as_str().into());
        if kind.is_mesh_scoped() {
            doc.insert("mesh".into(), self.meta.mesh.as_str().into());
        }
        if let Some(t) = self.meta.creation_time {
            doc.insert("creationTime".into(), t.to_string().into());
        }
        if !self.meta.labels.is_empty() {
            doc.insert("labels".into(), labels(self));
        }
        if kind.has_spec_field() {
            doc.insert("spec".into(), spec);
        } else if let Value::Object(fields) = spec {
            doc.extend(fields);
        }
        Value::Object(doc)
    }
}

fn labels(resource: &Resource) -> Value {
    Value::Object(resource.meta.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}
