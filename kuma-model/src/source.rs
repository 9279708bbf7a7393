//! YAML/JSON documents with the line of every node, so that a violation found
//! on the typed resource can point back at the line the user wrote.
//!
//! serde_yaml drops positions once a document is deserialised, so documents
//! are read with yaml-rust2's event parser into a small marked tree, which is
//! then turned into a `serde_json::Value` for typed deserialisation.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A node of a parsed document and the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Marked {
    pub(crate) line: usize,
    pub(crate) node: Node,
}

/// The shape of a parsed node. Scalars are resolved with the YAML 1.2 core
/// schema, which is also what JSON means.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Marked>),
    /// Entries with the line of their key.
    Map(Vec<(String, usize, Marked)>),
}

/// A syntax error with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// Parses every document of a YAML (or JSON) stream. Empty documents
/// (for example a trailing `---`) are skipped.
pub(crate) fn parse_documents(text: &str) -> Result<Vec<Marked>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, true)
        .map_err(|e| SyntaxError { line: e.marker().line(), message: e.info().to_string() })?;
    if let Some(message) = builder.error {
        return Err(message);
    }
    Ok(builder.docs.into_iter().filter(|d| d.node != Node::Null).collect())
}

/// Equal nodes, wherever they are written.
fn same_content(a: &Marked, b: &Marked) -> bool {
    match (&a.node, &b.node) {
        (Node::Seq(x), Node::Seq(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_content(p, q)),
        (Node::Map(x), Node::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, _, p), (l, _, q))| k == l && same_content(p, q))
        }
        (x, y) => x == y,
    }
}

#[derive(Default)]
struct Builder {
    docs: Vec<Marked>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Marked>,
    error: Option<SyntaxError>,
}

enum Frame {
    Seq { line: usize, anchor: usize, items: Vec<Marked> },
    Map { line: usize, anchor: usize, entries: Vec<(String, usize, Marked)>, key: Option<(String, usize)> },
}

impl Builder {
    fn push_value(&mut self, value: Marked, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some((k, key_line)) => match entries.iter().find(|(existing, _, _)| *existing == k) {
                    // A key repeated with the same value means one thing
                    // (Kuma's own test data has one); with another value,
                    // YAML parsers disagree on which wins, so it is an error.
                    Some((_, _, first)) if same_content(first, &value) => {}
                    Some(_) => {
                        if self.error.is_none() {
                            self.error = Some(SyntaxError {
                                line: key_line,
                                message: format!("duplicate key {k:?} with a different value"),
                            });
                        }
                    }
                    None => entries.push((k, key_line, value)),
                },
                None => {
                    let key_line = value.line;
                    let k = match value.node {
                        Node::Str(s) => s,
                        Node::Int(i) => i.to_string(),
                        Node::Bool(b) => b.to_string(),
                        Node::Float(f) => f.to_string(),
                        Node::Null => String::new(),
                        Node::Seq(_) | Node::Map(_) => {
                            if self.error.is_none() {
                                self.error = Some(SyntaxError {
                                    line: value.line,
                                    message: "a mapping key must be a scalar".into(),
                                });
                            }
                            String::new()
                        }
                    };
                    *key = Some((k, key_line));
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq { line, anchor, items: Vec::new() }),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map { line, anchor, entries: Vec::new(), key: None })
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { line, anchor, items }) => (Marked { line, node: Node::Seq(items) }, anchor),
                    Some(Frame::Map { line, anchor, entries, .. }) => {
                        (Marked { line, node: Node::Map(entries) }, anchor)
                    }
                    None => return,
                };
                self.push_value(value, anchor);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = resolve_scalar(text, style, tag.as_ref().map(|t| t.suffix.as_str()));
                self.push_value(Marked { line, node }, anchor);
            }
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned().unwrap_or(Marked { line, node: Node::Null });
                self.push_value(value, 0);
            }
            Event::DocumentStart => {}
            Event::DocumentEnd => {
                // A document that held only a scalar or nothing leaves no
                // value on the stack; a document holding `null` is skipped.
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
}

fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&str>) -> Node {
    if style != TScalarStyle::Plain || tag == Some("str") {
        return Node::Str(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Node::Null,
        "true" | "True" | "TRUE" => return Node::Bool(true),
        "false" | "False" | "FALSE" => return Node::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Node::Int(i);
    }
    let looks_numeric = text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric && let Ok(f) = text.parse::<f64>() {
        return Node::Float(f);
    }
    Node::Str(text)
}

impl Marked {
    /// The line of the deepest node on a Kuma field path such as
    /// `conf.listeners[0].tags["kuma.io/service"]`. Keys are compared
    /// ignoring case and underscores, so `query_parameters` finds
    /// `queryParameters`.
    pub(crate) fn line_of(&self, path: &str) -> usize {
        let mut node = self;
        let mut line = self.line;
        for segment in path_segments(path) {
            let next = match (&node.node, segment) {
                (Node::Map(entries), Segment::Key(key)) => entries
                    .iter()
                    .find(|(k, _, _)| k == key || same_field(k, key))
                    .map(|(_, key_line, v)| (*key_line, v)),
                (Node::Seq(items), Segment::Index(i)) => items.get(i).map(|v| (v.line, v)),
                _ => None,
            };
            match next {
                Some((l, n)) => {
                    line = l;
                    node = n;
                }
                None => break,
            }
        }
        line
    }

    /// Converts to a JSON value for serde. Mapping entries whose value is
    /// null are dropped: in proto JSON a null field means "not set".
    pub(crate) fn to_value(&self) -> Value {
        match &self.node {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Number((*i).into()),
            Node::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(Marked::to_value).collect()),
            Node::Map(entries) => {
                let mut map = Map::new();
                for (k, _, v) in entries {
                    if v.node != Node::Null {
                        map.insert(k.clone(), v.to_value());
                    }
                }
                Value::Object(map)
            }
        }
    }
}

fn same_field(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.chars().filter(|c| *c != '_').map(|c| c.to_ascii_lowercase()).collect::<String>();
    norm(a) == norm(b)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[0]["x.y"].c` into segments.
fn path_segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("[\"") {
            let end = r.find("\"]").unwrap_or(r.len());
            out.push(Segment::Key(&r[..end]));
            rest = r.get(end + 2..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            if let Ok(i) = r[..end].parse() {
                out.push(Segment::Index(i));
            }
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Segment::Key(&rest[..end]));
            rest = &rest[end..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_source() {
        let docs = parse_documents(
            "---\ntype: MeshGateway\nconf:\n  listeners:\n  - port: 0\n    tags:\n      kuma.io/service: x\n---\n\n---\na: 1\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        let gw = &docs[0];
        assert_eq!(gw.line_of("conf.listeners[0].port"), 5);
        assert_eq!(gw.line_of("conf.listeners[0].tags[\"kuma.io/service\"]"), 7);
        assert_eq!(gw.line_of("conf.listeners[3].port"), 4, "the deepest existing node: the key");
        assert_eq!(gw.line_of("conf"), 3);
        assert_eq!(docs[1].line_of("a"), 11);
    }

    #[test]
    fn snake_and_camel_keys_find_each_other() {
        let docs = parse_documents("x:\n  query_parameters:\n  - a\n").unwrap();
        assert_eq!(docs[0].line_of("x.queryParameters[0]"), 3);
    }

    #[test]
    fn scalars_resolve_like_json() {
        let docs = parse_documents("a: 1\nb: '1'\nc: 1.5\nd: true\ne:\nf: -2e3\ng: 1.2.3\n").unwrap();
        let v = docs[0].to_value();
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"], "1");
        assert_eq!(v["c"], 1.5);
        assert_eq!(v["d"], true);
        assert!(v.get("e").is_none());
        assert_eq!(v["f"], -2000.0);
        assert_eq!(v["g"], "1.2.3");
    }

    #[test]
    fn json_is_yaml() {
        let docs = parse_documents("{\"a\": [1, {\"b\": \"c\"}]}").unwrap();
        assert_eq!(docs[0].to_value()["a"][1]["b"], "c");
    }

    #[test]
    fn repeated_keys_must_agree() {
        let docs = parse_documents("a:\n  b: [1]\nc: 2\na:\n  b: [1]\n").unwrap();
        assert_eq!(docs[0].to_value(), serde_json::json!({"a": {"b": [1]}, "c": 2}));
        let err = parse_documents("a: 1\nc: 2\na: 3\n").unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (3, "duplicate key \"a\" with a different value"));
    }

    #[test]
    fn syntax_errors_have_lines() {
        let err = parse_documents("a: 1\nb:\n  - x\n - y\n").unwrap_err();
        assert_eq!(err.line, 4);
        let dup = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!(dup.line, 2);
    }
}
