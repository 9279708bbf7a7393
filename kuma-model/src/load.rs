//! Reading resources from YAML or JSON text in Kuma's two forms.
//!
//! **Universal**: `type`, `name`, `mesh` (and `creationTime`, `labels`)
//! beside the spec fields. **Kubernetes**: `apiVersion: kuma.io/v1alpha1`,
//! `kind`, `metadata`, a top-level `mesh` (or the `kuma.io/mesh` label) and
//! `spec`. A file may hold many documents of either form.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Severity};
use crate::marked_de::MarkedDe;
use crate::meta::{Location, Meta, Timestamp};
use crate::resource::{Kind, Resource, ResourceKey, Spec};
use crate::source::{Entry, Marked, Node, parse_documents};
use crate::violation::Origin;

/// The mesh a resource belongs to when it names none.
pub const DEFAULT_MESH: &str = "default";

/// What to do with fields the schema does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownFields {
    /// An error, as `kumactl apply` and Kuma's API server do.
    #[default]
    Reject,
    /// A warning, and the field is dropped: what Kuma's own validator test
    /// helper (`util_proto.FromYAML`) does. Meant for comparing with it.
    Ignore,
}

/// The resources and problems found in one file. Read-only: a
/// [`crate::ResourceSet`] assembled from it validates whatever
/// [`read_file`] left unvalidated.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    resources: Vec<std::sync::Arc<Resource>>,
    diagnostics: Vec<Diagnostic>,
    /// True when every resource passed Kuma's validation ([`parse_file`]).
    validated: bool,
}

impl ParsedFile {
    /// Resources that parsed (and, from [`parse_file`], validated), in
    /// document order.
    pub fn resources(&self) -> &[std::sync::Arc<Resource>] {
        &self.resources
    }

    /// Errors and warnings, in line order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }

    /// True when the resources passed Kuma's validation.
    pub(crate) fn is_validated(&self) -> bool {
        self.validated
    }
}

/// Parses and validates every document of `text`, read from `file`.
///
/// ```
/// use kuma_model::{parse_file, UnknownFields, Kind};
/// let parsed = parse_file("gw.yaml", "type: MeshGateway\nname: edge\nmesh: default\nselectors:\n- match:\n    kuma.io/service: edge\nconf:\n  listeners:\n  - port: 8080\n    protocol: HTTP\n", UnknownFields::Reject);
/// assert!(parsed.diagnostics().is_empty());
/// assert_eq!(parsed.resources()[0].spec.kind(), Kind::MeshGateway);
/// ```
pub fn parse_file(file: &str, text: &str, unknown: UnknownFields) -> ParsedFile {
    read(file, text, unknown, true)
}

/// [`parse_file`] for the bytes of a file as read from disk: text that is
/// not UTF-8 is reported with the line of its first bad byte.
///
/// ```
/// use kuma_model::{parse_bytes, UnknownFields};
/// let parsed = parse_bytes("m.yaml", b"type: Mesh\nname: \xff\n", UnknownFields::Reject);
/// assert_eq!(parsed.diagnostics()[0].to_string(), "m.yaml:2: not UTF-8 text (byte 17 of the file)");
/// ```
pub fn parse_bytes(file: &str, bytes: &[u8], unknown: UnknownFields) -> ParsedFile {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_file(file, text, unknown),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
            let mut out = ParsedFile { validated: true, ..ParsedFile::default() };
            out.diagnostics.push(Diagnostic {
                location: Location { file: Arc::from(file), line },
                resource: None,
                field: String::new(),
                message: format!("not UTF-8 text (byte {} of the file)", e.valid_up_to()),
                origin: Origin::Extra,
                severity: Severity::Error,
            });
            out
        }
    }
}

/// Parses every document of `text` into typed resources without Kuma's
/// validation: for tools that inspect or rewrite resources as written.
/// Syntax and type errors are still reported.
pub fn read_file(file: &str, text: &str, unknown: UnknownFields) -> ParsedFile {
    read(file, text, unknown, false)
}

fn read(file: &str, text: &str, unknown: UnknownFields, validate: bool) -> ParsedFile {
    let file: Arc<str> = Arc::from(file);
    let mut out = ParsedFile { validated: validate, ..ParsedFile::default() };
    // A byte-order mark, as some Windows editors write, is not content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let docs = match parse_documents(text) {
        Ok(docs) => docs,
        Err(e) => {
            out.diagnostics.push(Diagnostic {
                location: Location { file, line: e.line },
                resource: None,
                field: String::new(),
                message: format!("invalid YAML: {}", e.message),
                origin: Origin::Kuma,
                severity: Severity::Error,
            });
            return out;
        }
    };
    for doc in &docs {
        let mut reader =
            DocReader { file: file.clone(), doc, diagnostics: &mut out.diagnostics, resource: None, spec_prefix: "" };
        if let Some(resource) = reader.read(unknown, validate) {
            out.resources.push(std::sync::Arc::new(resource));
        }
    }
    out.diagnostics.sort();
    out
}

struct DocReader<'a> {
    file: Arc<str>,
    doc: &'a Marked<'a>,
    diagnostics: &'a mut Vec<Diagnostic>,
    resource: Option<ResourceKey>,
    /// `spec.` for the Kubernetes form, where spec fields live under `spec`.
    spec_prefix: &'static str,
}

struct Header<'d> {
    kind: Kind,
    meta: Meta,
    spec: SpecInput<'d>,
}

/// The keys of a Universal resource's envelope, beside its spec fields.
const UNIVERSAL_ENVELOPE: &[&str] = &["type", "name", "mesh", "creationTime", "modificationTime", "kri", "labels"];

/// Where a document's spec is read from: a node of the document (at the top
/// of a Universal resource, without the envelope), or a tree made for it (a
/// Kubernetes Secret's, or one edited to drop ignored unknown fields).
enum SpecInput<'d> {
    Borrowed(MarkedDe<'d>),
    Owned(Marked<'d>),
}

impl<'d> SpecInput<'d> {
    fn de(&self) -> MarkedDe<'_> {
        match self {
            SpecInput::Borrowed(de) => *de,
            SpecInput::Owned(tree) => MarkedDe::new(tree),
        }
    }

    fn into_owned(self) -> Marked<'d> {
        match self {
            SpecInput::Borrowed(de) => de.owned(),
            SpecInput::Owned(tree) => tree,
        }
    }
}

/// The entries of a mapping that `keep` keeps, as the JSON object the
/// envelope is read from (null values left out, as everywhere).
fn envelope(entries: &[Entry<'_>], keep: impl Fn(&str) -> bool) -> Map<String, Value> {
    entries
        .iter()
        .filter(|(k, _, v)| v.node != Node::Null && keep(k))
        .map(|(k, _, v)| (k.to_string(), v.to_value()))
        .collect()
}

/// The node of non-null entry `key`.
fn entry<'d>(entries: &'d [Entry<'d>], key: &str) -> Option<&'d Marked<'d>> {
    entries.iter().find(|(k, _, v)| k == key && v.node != Node::Null).map(|(_, _, v)| v)
}

/// A spec with no fields (`spec` left out).
fn empty_spec(line: usize) -> SpecInput<'static> {
    SpecInput::Owned(Marked { line, node: Node::Map(Vec::new()) })
}

impl<'a> DocReader<'a> {
    fn error(&mut self, field: &str, message: impl Into<String>, origin: Origin, severity: Severity) {
        let full = if field.is_empty() {
            self.spec_prefix.trim_end_matches('.').to_string()
        } else {
            format!("{}{field}", self.spec_prefix)
        };
        let line = if full.is_empty() { self.doc.line } else { self.doc.line_of(&full) };
        self.diagnostics.push(Diagnostic {
            location: Location { file: self.file.clone(), line },
            resource: self.resource.clone(),
            field: field.to_string(),
            message: message.into(),
            origin,
            severity,
        });
    }

    /// A problem with the document's envelope (not the spec): the field is
    /// a top-level key, so no spec prefix applies.
    fn envelope_error(&mut self, field: &str, message: impl Into<String>) {
        let prefix = std::mem::take(&mut self.spec_prefix);
        self.error(field, message, Origin::Kuma, Severity::Error);
        self.spec_prefix = prefix;
    }

    fn read(&mut self, unknown: UnknownFields, validate: bool) -> Option<Resource> {
        let doc = self.doc;
        let Node::Map(entries) = &doc.node else {
            self.envelope_error("", "a resource must be a mapping");
            return None;
        };
        let header = if entry(entries, "apiVersion").is_some() || entry(entries, "kind").is_some() {
            self.read_kubernetes(entries)?
        } else {
            self.read_universal(entries)?
        };
        let Header { kind, mut meta, spec } = header;
        meta.location = Location { file: self.file.clone(), line: self.doc.line };
        self.resource = Some(ResourceKey { kind, mesh: meta.mesh.clone(), name: meta.name.clone() });
        let spec = self.read_spec(kind, spec, unknown)?;
        if !validate {
            return Some(Resource { meta, spec });
        }
        let mut violations = spec.validate();
        violations.extend(crate::policy_role::violations(&spec, &meta.labels));
        let ok = violations.is_empty();
        for v in violations.into_vec() {
            self.error(&v.field, v.message, v.origin, Severity::Error);
        }
        ok.then_some(Resource { meta, spec })
    }

    fn read_spec(&mut self, kind: Kind, mut spec: SpecInput<'_>, unknown: UnknownFields) -> Option<Spec> {
        // Each pass drops one unknown field when told to ignore them; the
        // bound only guards against a deserialiser that keeps failing.
        for _ in 0..64 {
            // Read in place, from the parsed tree: a copy of every spec cost
            // as much as reading it.
            match Spec::deserialize(kind, spec.de()) {
                Ok(s) => return Some(s),
                Err(e) if unknown == UnknownFields::Ignore && e.message.starts_with("unknown field") => {
                    let Some(key) = unknown_key(&e.message) else {
                        break;
                    };
                    let container = parent_path(&e.field, &key);
                    let field = join_path(&container, &key);
                    let mut edited = spec.into_owned();
                    let removed = remove_at(&mut edited, &container, &key);
                    spec = SpecInput::Owned(edited);
                    if !removed {
                        self.error(&e.field, e.message, Origin::Kuma, Severity::Error);
                        return None;
                    }
                    self.error(&field, "unknown field ignored", Origin::Kuma, Severity::Warning);
                }
                Err(e) => {
                    self.error(&e.field, e.message, Origin::Kuma, Severity::Error);
                    return None;
                }
            }
        }
        self.error("", "too many unknown fields", Origin::Kuma, Severity::Error);
        None
    }

    fn read_universal(&mut self, entries: &'a [Entry<'a>]) -> Option<Header<'a>> {
        let mut top = envelope(entries, |k| UNIVERSAL_ENVELOPE.contains(&k));
        let type_name = match top.remove("type") {
            Some(Value::String(t)) => t,
            Some(_) => {
                self.envelope_error("type", "must be a string");
                return None;
            }
            None => {
                self.envelope_error("", "missing `type` (Universal form) or `kind` (Kubernetes form)");
                return None;
            }
        };
        let Some(kind) = Kind::parse(&type_name) else {
            self.envelope_error("type", unknown_kind(&type_name));
            return None;
        };
        let name = self.take_string(&mut top, "name").unwrap_or_default();
        let mesh = self.take_string(&mut top, "mesh");
        let creation = self.take_string(&mut top, "creationTime");
        top.remove("modificationTime");
        top.remove("kri");
        let labels = self.take_labels(&mut top, "labels");
        let mut meta = Meta { name, labels, ..Meta::default() };
        meta.creation_time = self.timestamp("creationTime", creation);
        meta.mesh = self.mesh_of(kind, mesh, &meta.labels);
        if meta.name.is_empty() {
            self.envelope_error("name", "cannot be empty");
            return None;
        }
        if kind.has_spec_field() {
            // `status` and `snis` are computed by the control plane (VIPs,
            // SNI names, state): an export carries them, and they are not
            // configuration.
            let known = |k: &str| UNIVERSAL_ENVELOPE.contains(&k) || ["spec", "status", "snis"].contains(&k);
            if let Some((extra, _, _)) = entries.iter().find(|(k, _, v)| v.node != Node::Null && !known(k)) {
                self.envelope_error(extra, "unknown field");
                return None;
            }
            let spec = entry(entries, "spec")
                .map_or_else(|| empty_spec(self.doc.line), |spec| SpecInput::Borrowed(MarkedDe::new(spec)));
            self.spec_prefix = "spec.";
            return Some(Header { kind, meta, spec });
        }
        // The spec fields are beside the envelope's (a Universal secret
        // carries its payload in `data` beside `type`).
        Some(Header { kind, meta, spec: SpecInput::Borrowed(MarkedDe::without(self.doc, UNIVERSAL_ENVELOPE)) })
    }

    fn read_kubernetes(&mut self, entries: &'a [Entry<'a>]) -> Option<Header<'a>> {
        let mut top = envelope(entries, |k| k != "spec");
        let api_version = self.take_string(&mut top, "apiVersion").unwrap_or_default();
        let kind_name = self.take_string(&mut top, "kind").unwrap_or_default();
        let Some(kind) = Kind::parse(&kind_name) else {
            self.envelope_error("kind", unknown_kind(&kind_name));
            return None;
        };
        // Kuma keeps its secrets in core Kubernetes Secrets of a special type.
        let core_secret = kind == Kind::Secret && api_version == "v1";
        if !core_secret && api_version != "kuma.io/v1alpha1" {
            self.envelope_error("apiVersion", format!("must be \"kuma.io/v1alpha1\" (got {api_version:?})"));
            return None;
        }
        let mut metadata = match top.remove("metadata") {
            Some(Value::Object(m)) => m,
            _ => {
                self.envelope_error("metadata", "cannot be empty");
                return None;
            }
        };
        let name = self.take_string(&mut metadata, "name").unwrap_or_default();
        let namespace = self.take_string(&mut metadata, "namespace");
        let creation = self.take_string(&mut metadata, "creationTimestamp");
        let labels = self.take_labels(&mut metadata, "labels");
        let mesh = self.take_string(&mut top, "mesh");
        top.remove("status");
        let spec = if core_secret {
            self.kubernetes_secret(&mut top, entries)?
        } else {
            entry(entries, "spec").map_or_else(|| empty_spec(self.doc.line), |s| SpecInput::Borrowed(MarkedDe::new(s)))
        };
        if let Some(extra) = top.keys().next() {
            let extra = extra.clone();
            self.envelope_error(&extra, "unknown field");
            return None;
        }
        let namespace = namespace.filter(|ns| kind.is_namespaced() && !ns.is_empty());
        let name = match &namespace {
            Some(ns) => format!("{name}.{ns}"),
            None => name,
        };
        let mut meta = Meta { name, labels, namespace, ..Meta::default() };
        meta.creation_time = self.timestamp("metadata.creationTimestamp", creation);
        meta.mesh = self.mesh_of(kind, mesh, &meta.labels);
        if meta.name.is_empty() {
            self.envelope_error("metadata.name", "cannot be empty");
            return None;
        }
        if !core_secret {
            self.spec_prefix = "spec.";
        }
        Some(Header { kind, meta, spec })
    }

    /// `type: system.kuma.io/secret` and `data.value` (base64).
    fn kubernetes_secret(&mut self, top: &mut Map<String, Value>, entries: &'a [Entry<'a>]) -> Option<SpecInput<'a>> {
        match top.remove("type") {
            Some(Value::String(t)) if t == "system.kuma.io/secret" => {}
            _ => {
                self.envelope_error("type", "must be \"system.kuma.io/secret\"");
                return None;
            }
        }
        top.remove("data");
        let value = match entry(entries, "data").map(|d| &d.node) {
            Some(Node::Map(data)) => data.iter().find(|(k, _, v)| k == "value" && v.node != Node::Null),
            _ => None,
        };
        let data = value.map(|(_, line, v)| (Cow::Borrowed("data"), *line, v.clone()));
        Some(SpecInput::Owned(Marked { line: self.doc.line, node: Node::Map(data.into_iter().collect()) }))
    }

    fn take_string(&mut self, map: &mut Map<String, Value>, key: &str) -> Option<String> {
        match map.remove(key)? {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                self.envelope_error(key, "must be a string");
                None
            }
        }
    }

    fn take_labels(&mut self, map: &mut Map<String, Value>, key: &str) -> BTreeMap<String, String> {
        match map.remove(key) {
            Some(Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    fn timestamp(&mut self, field: &str, text: Option<String>) -> Option<Timestamp> {
        let text = text?;
        let ts = Timestamp::parse(&text);
        if ts.is_none() {
            self.envelope_error(field, format!("invalid RFC 3339 time {text:?}"));
        }
        ts
    }

    fn mesh_of(&mut self, kind: Kind, mesh: Option<String>, labels: &BTreeMap<String, String>) -> String {
        if !kind.is_mesh_scoped() {
            if mesh.is_some() {
                self.envelope_error("mesh", "a Mesh is not inside a mesh");
            }
            return String::new();
        }
        mesh.or_else(|| labels.get("kuma.io/mesh").cloned())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| DEFAULT_MESH.to_string())
    }
}

fn unknown_kind(name: &str) -> String {
    let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    format!("unknown resource type {name:?}; expected one of {}", known.join(", "))
}

/// The key named in serde's "unknown field `x`, expected ..." message.
fn unknown_key(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// serde_path_to_error reports an unknown field at the path of the field
/// itself; the containing object is that path minus its last segment.
fn parent_path(path: &str, key: &str) -> String {
    let quoted = format!("[{key:?}]");
    path.strip_suffix(&quoted)
        .or_else(|| path.strip_suffix(key))
        .map(|p| p.trim_end_matches('.').to_string())
        .unwrap_or_else(|| path.to_string())
}

fn join_path(container: &str, key: &str) -> String {
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!("{container}[{key:?}]")
    } else if container.is_empty() {
        key.to_string()
    } else {
        format!("{container}.{key}")
    }
}

/// Removes `key` from the mapping at `container` (a path of `.field` and
/// `[i]` segments).
fn remove_at(tree: &mut Marked<'_>, container: &str, key: &str) -> bool {
    let mut node = tree;
    for segment in container.split('.').filter(|s| !s.is_empty()) {
        let (name, indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !name.is_empty() {
            node = match &mut node.node {
                Node::Map(entries) => match entries.iter_mut().find(|(k, _, _)| k == name) {
                    Some((_, _, v)) => v,
                    None => return false,
                },
                _ => return false,
            };
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let Ok(i) = idx.trim_end_matches(']').parse::<usize>() else {
                return false;
            };
            node = match &mut node.node {
                Node::Seq(items) => match items.get_mut(i) {
                    Some(n) => n,
                    None => return false,
                },
                _ => return false,
            };
        }
    }
    match &mut node.node {
        Node::Map(entries) => {
            let before = entries.len();
            entries.retain(|(k, _, _)| k != key);
            entries.len() < before
        }
        _ => false,
    }
}
