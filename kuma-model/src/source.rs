//! YAML/JSON documents with the line of every node, so that a violation found
//! on the typed resource can point back at the line the user wrote.
//!
//! serde_yaml drops positions once a document is deserialised, so documents
//! are read as events into a small marked tree, from which typed specs are
//! deserialised directly (`marked_de`), read as its JSON value would be
//! (`Marked::to_value`, which the envelope is read from). The events come from the
//! quick reader (`quick_yaml`) for the YAML resource files are nearly always
//! written in, and from yaml-rust2's event parser for the rest: both build the
//! same tree.
//!
//! Parsing is bounded, so that no file can hang or exhaust the process:
//! the text's size, the nesting depth, and how far aliases may expand (a
//! "billion laughs" document expands a few hundred bytes into billions of
//! nodes) are limited, and repeated keys are found in linear time.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use crate::quick_yaml;

/// A node of a parsed document and the 1-based line where it starts.
/// Strings borrow the document's text (`'t`) where it holds them as
/// written; escaped ones are owned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Marked<'t> {
    pub(crate) line: usize,
    pub(crate) node: Node<'t>,
}

/// A mapping entry: key, the key's line, value.
pub(crate) type Entry<'t> = (Cow<'t, str>, usize, Marked<'t>);

/// The shape of a parsed node. Scalars are resolved with the YAML 1.2 core
/// schema, which is also what JSON means.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'t> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'t, str>),
    Seq(Vec<Marked<'t>>),
    /// Entries with the line of their key.
    Map(Vec<Entry<'t>>),
}

/// A syntax error with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// The largest resource file read, in bytes: far above any real one
/// (10,000 resources take about 2 MB).
pub const MAX_TEXT_BYTES: usize = 32 << 20;
/// The deepest nesting of sequences and mappings; Kuma resources, raw Envoy
/// config in ProxyTemplates included, stay well under it.
pub(crate) const MAX_DEPTH: usize = 100;
/// Mappings with up to this many entries find repeated keys by search.
const SMALL_MAP: usize = 16;
/// How many nodes aliases may add beyond the nodes written, per file.
pub(crate) const MAX_ALIAS_EXPANSION: usize = 100_000;

/// Parses every document of a YAML (or JSON) stream. Empty documents
/// (for example a trailing `---`) are skipped.
pub(crate) fn parse_documents(text: &str) -> Result<Vec<Marked<'_>>, SyntaxError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(SyntaxError {
            line: 1,
            message: format!("the file is larger than {} MiB, the most a resource file may be", MAX_TEXT_BYTES >> 20),
        });
    }
    quick(text).map_or_else(|| full(text), Ok)
}

/// The documents as the quick reader reads them, or `None` when it leaves
/// the text to yaml-rust2 (including every text with an error).
pub(crate) fn quick(text: &str) -> Option<Vec<Marked<'_>>> {
    let mut builder = Builder::default();
    quick_yaml::read(text, MAX_DEPTH, |token, line| {
        match token {
            quick_yaml::Token::Event(event) => builder.event(event, line),
            quick_yaml::Token::Scalar(text, style) => builder.scalar(text, style, None, 0, line),
        }
        if builder.error.is_some() { Err(quick_yaml::GiveUp) } else { Ok(()) }
    })
    .ok()?;
    Some(builder.documents())
}

/// The documents as yaml-rust2 reads them.
pub(crate) fn full(text: &str) -> Result<Vec<Marked<'_>>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    // Events one by one (yaml-rust2's `load` recurses once per nesting
    // level): the first problem stops the parse.
    loop {
        let (event, mark) =
            parser.next_token().map_err(|e| SyntaxError { line: e.marker().line(), message: e.info().to_string() })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.event(event, mark.line());
        if let Some(error) = builder.error.take() {
            return Err(error);
        }
    }
    Ok(builder.documents())
}

/// Equal nodes, wherever they are written.
fn same_content(a: &Marked<'_>, b: &Marked<'_>) -> bool {
    match (&a.node, &b.node) {
        (Node::Seq(x), Node::Seq(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_content(p, q)),
        (Node::Map(x), Node::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, _, p), (l, _, q))| k == l && same_content(p, q))
        }
        (x, y) => x == y,
    }
}

#[derive(Default)]
struct Builder<'t> {
    docs: Vec<Marked<'t>>,
    stack: Vec<Frame<'t>>,
    /// Anchored nodes and their sizes in nodes.
    anchors: HashMap<usize, (Marked<'t>, usize)>,
    /// Nodes added by aliases so far.
    expanded: usize,
    error: Option<SyntaxError>,
}

/// A sequence or mapping being read, with its size in nodes so far.
enum Frame<'t> {
    Seq {
        line: usize,
        anchor: usize,
        size: usize,
        items: Vec<Marked<'t>>,
    },
    Map {
        line: usize,
        anchor: usize,
        size: usize,
        entries: Vec<Entry<'t>>,
        /// Entry index by key, once the mapping has more than
        /// [`SMALL_MAP`] entries: repeated keys are found in constant time.
        /// Boxed: nearly every mapping is small, and frames are moved on
        /// every push and pop.
        #[expect(clippy::box_collection, reason = "a pointer in the frame, not a map's 48 bytes")]
        index: Option<Box<HashMap<Cow<'t, str>, usize>>>,
        key: Option<(Cow<'t, str>, usize)>,
    },
}

impl<'t> Builder<'t> {
    /// The documents read, without empty ones.
    fn documents(self) -> Vec<Marked<'t>> {
        self.docs.into_iter().filter(|d| d.node != Node::Null).collect()
    }

    fn fail(&mut self, line: usize, message: String) {
        first_error(&mut self.error, line, message);
    }

    /// Adds a finished node of `size` nodes to its parent.
    fn push_value(&mut self, mut value: Marked<'t>, anchor: usize, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(value),
            Some(Frame::Seq { items, size: parent, .. }) => {
                *parent += size;
                items.push(value);
            }
            Some(Frame::Map { entries, index, key, size: parent, .. }) => match key.take() {
                Some((k, key_line)) => {
                    *parent += size;
                    // An empty value gets its key's line. yaml-rust2 gives
                    // it the position of whatever follows, which may be
                    // lines below; nothing reads that line, and this way
                    // both readers agree.
                    if value.node == Node::Null {
                        value.line = key_line;
                    }
                    // Small mappings (nearly all) are searched in place: a
                    // hash map for each would cost more than the search.
                    let found = if entries.len() <= SMALL_MAP {
                        entries.iter().position(|(key, _, _)| *key == k)
                    } else {
                        let index = index.get_or_insert_with(|| {
                            Box::new(entries.iter().enumerate().map(|(i, (key, _, _))| (key.clone(), i)).collect())
                        });
                        index.get(&k).copied()
                    };
                    match found {
                        // A key repeated with the same value means one thing
                        // (Kuma's own test data has one); with another value,
                        // YAML parsers disagree on which wins, so it is an error.
                        Some(i) if same_content(&entries[i].2, &value) => {}
                        Some(_) => first_error(
                            &mut self.error,
                            key_line,
                            format!("duplicate key {k:?} with a different value"),
                        ),
                        None => {
                            if let Some(index) = index {
                                index.insert(k.clone(), entries.len());
                            }
                            entries.push((k, key_line, value));
                        }
                    }
                }
                None => {
                    let key_line = value.line;
                    let k = match value.node {
                        Node::Str(s) => s,
                        Node::Int(i) => Cow::Owned(i.to_string()),
                        Node::Bool(b) => Cow::Owned(b.to_string()),
                        Node::Float(f) => Cow::Owned(f.to_string()),
                        Node::Null => Cow::Borrowed(""),
                        Node::Seq(_) | Node::Map(_) => {
                            first_error(&mut self.error, value.line, "a mapping key must be a scalar".into());
                            Cow::Borrowed("")
                        }
                    };
                    *key = Some((k, key_line));
                }
            },
        }
    }
}

/// Keeps the first problem found: the one the user should fix first.
fn first_error(slot: &mut Option<SyntaxError>, line: usize, message: String) {
    if slot.is_none() {
        *slot = Some(SyntaxError { line, message });
    }
}

impl<'t> Builder<'t> {
    /// Adds one event read at 1-based `line`.
    fn event(&mut self, ev: Event, line: usize) {
        if matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..)) && self.stack.len() >= MAX_DEPTH {
            self.fail(line, format!("nested deeper than {MAX_DEPTH} levels"));
            return;
        }
        match ev {
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq { line, anchor, size: 1, items: Vec::new() }),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map { line, anchor, size: 1, entries: Vec::new(), index: None, key: None })
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor, size) = match self.stack.pop() {
                    Some(Frame::Seq { line, anchor, size, items }) => {
                        (Marked { line, node: Node::Seq(items) }, anchor, size)
                    }
                    Some(Frame::Map { line, anchor, size, entries, .. }) => {
                        (Marked { line, node: Node::Map(entries) }, anchor, size)
                    }
                    None => return,
                };
                self.push_value(value, anchor, size);
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.scalar(Cow::Owned(text), style, tag.as_ref().map(|t| t.suffix.as_str()), anchor, line);
            }
            Event::Alias(id) => {
                let (value, size) = match self.anchors.get(&id) {
                    Some((value, size)) => (value, *size),
                    None => return self.fail(line, "alias to an unknown anchor".into()),
                };
                // Checked before the copy is made: that copy is what a
                // "billion laughs" document would exhaust memory with.
                if self.expanded + size > MAX_ALIAS_EXPANSION {
                    return self.fail(
                        line,
                        format!(
                            "document contains excessive aliasing: aliases would add more than {MAX_ALIAS_EXPANSION} nodes"
                        ),
                    );
                }
                self.expanded += size;
                let value = value.clone();
                self.push_value(value, 0, size);
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

impl<'t> Builder<'t> {
    /// Adds one scalar read at 1-based `line`.
    fn scalar(&mut self, text: Cow<'t, str>, style: TScalarStyle, tag: Option<&str>, anchor: usize, line: usize) {
        let node = resolve_scalar(text, style, tag);
        self.push_value(Marked { line, node }, anchor, 1);
    }
}

fn resolve_scalar<'t>(text: Cow<'t, str>, style: TScalarStyle, tag: Option<&str>) -> Node<'t> {
    if style != TScalarStyle::Plain || tag == Some("str") {
        return Node::Str(text);
    }
    match &*text {
        "" | "~" | "null" | "Null" | "NULL" => return Node::Null,
        "true" | "True" | "TRUE" => return Node::Bool(true),
        "false" | "False" | "FALSE" => return Node::Bool(false),
        _ => {}
    }
    // A number starts with a digit, a sign or a point; most scalars are
    // names and paths, and go no further.
    if !text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
        return Node::Str(text);
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

impl Marked<'_> {
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
            Node::Str(s) => Value::String(s.to_string()),
            Node::Seq(items) => Value::Array(items.iter().map(Marked::to_value).collect()),
            Node::Map(entries) => {
                let mut map = Map::new();
                for (k, _, v) in entries {
                    if v.node != Node::Null {
                        map.insert(k.to_string(), v.to_value());
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

    proptest::proptest! {
        /// Only text starting with a digit, a sign or a point is tried as
        /// a number: the same nodes as trying every plain scalar.
        #[test]
        fn only_numbers_are_tried_as_numbers(text in "[0-9.+eEinfaNx -]{0,6}") {
            let tried_as_number = if let Ok(i) = text.parse::<i64>() {
                Node::Int(i)
            } else {
                let numeric = text.bytes().all(|b| b.is_ascii_digit() || b".-+eE".contains(&b))
                    && text.bytes().any(|b| b.is_ascii_digit());
                match text.parse::<f64>() {
                    Ok(f) if numeric => Node::Float(f),
                    _ => Node::Str(Cow::Borrowed(text.as_str())),
                }
            };
            let resolved = resolve_scalar(Cow::Borrowed(text.as_str()), TScalarStyle::Plain, None);
            if !matches!(resolved, Node::Null | Node::Bool(_)) {
                proptest::prop_assert_eq!(resolved, tried_as_number);
            }
        }
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
    fn alias_bombs_stop_at_the_budget() {
        // "Billion laughs": each level repeats the one before nine times.
        let mut text =
            String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (prev, name) in
            ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        assert!(text.len() < 600, "a few hundred bytes");
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.starts_with("document contains excessive aliasing"), "{}", err.message);
        assert!((5..=9).contains(&err.line), "the line of the alias that went over: {}", err.line);
        // Ordinary aliases are fine.
        let docs = parse_documents("base: &t {kuma.io/service: web}\nx: *t\ny: *t\n").unwrap();
        assert_eq!(docs[0].to_value()["y"]["kuma.io/service"], "web");
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        // Deep flow nesting stops in yaml-rust2's scanner already.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_documents(&deep).is_err());
        let block: String = (0..200).map(|depth| format!("{}a:\n", "  ".repeat(depth))).collect();
        let err = parse_documents(&block).unwrap_err();
        assert_eq!((err.line, err.message), (101, format!("nested deeper than {MAX_DEPTH} levels")));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_documents(&ok).is_ok());
        let big = " ".repeat(MAX_TEXT_BYTES + 1);
        assert!(parse_documents(&big).unwrap_err().message.contains("larger than 32 MiB"));
    }

    #[test]
    fn many_keys_are_read_and_repeats_found() {
        let mut text: String = (0..200_000).map(|i| format!("k{i}: {i}\n")).collect();
        assert_eq!(parse_documents(&text).unwrap()[0].to_value()["k199999"], 199_999);
        text.push_str("k7: 8\n");
        let err = parse_documents(&text).unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (200_001, "duplicate key \"k7\" with a different value"));
    }

    #[test]
    fn syntax_errors_have_lines() {
        let err = parse_documents("a: 1\nb:\n  - x\n - y\n").unwrap_err();
        assert_eq!(err.line, 4);
        let dup = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!(dup.line, 2);
    }
}
