//! Validation results: a list of `field: message` violations, as Kuma
//! reports them, with field paths built the way Kuma's `PathBuilder` does.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One broken rule: the field path (`conf.listeners[0].port`) and Kuma's
/// message for it (`port must be in the range [1, 65535]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Violation {
    /// Kuma field path of the offending field, relative to the resource spec.
    pub field: String,
    /// Human-readable message, identical to Kuma's where Kuma has the rule.
    pub message: String,
    /// Whether Kuma has this rule too, or this gateway adds it.
    #[serde(default, skip_serializing_if = "Origin::is_kuma")]
    pub origin: Origin,
}

/// Where a rule comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Origin {
    /// Kuma v2.14.3 has the same rule with the same field and message.
    #[default]
    Kuma,
    /// Kuma accepts this input, but Envoy would reject (or silently
    /// mis-serve) the config generated from it, so this gateway refuses it.
    Extra,
}

impl Origin {
    fn is_kuma(&self) -> bool {
        *self == Origin::Kuma
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.field, self.message) }
    }
}

/// An accumulator of violations; validators push into it and never stop at
/// the first problem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation of one of Kuma's rules.
    pub fn add(&mut self, field: impl fmt::Display, message: impl Into<String>) {
        self.0.push(Violation { field: field.to_string(), message: message.into(), origin: Origin::Kuma });
    }

    /// Records a violation of a rule Kuma lacks (see [`Origin::Extra`]).
    pub fn add_extra(&mut self, field: impl fmt::Display, message: impl Into<String>) {
        self.0.push(Violation { field: field.to_string(), message: message.into(), origin: Origin::Extra });
    }

    /// Appends every violation of `other`.
    pub fn extend(&mut self, other: Violations) {
        self.0.extend(other.0);
    }

    /// Appends every violation of `other`, marked as [`Origin::Extra`].
    pub fn extend_as_extra(&mut self, other: Violations) {
        self.0.extend(other.0.into_iter().map(|v| Violation { origin: Origin::Extra, ..v }));
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded violations in the order they were found.
    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }

    /// Borrowed view of the violations.
    pub fn as_slice(&self) -> &[Violation] {
        &self.0
    }
}

/// A field path under construction, printed like Kuma's:
/// `conf.listeners[0].tags["kuma.io/service"]`.
///
/// ```
/// use kuma_model::FieldPath;
/// let p = FieldPath::root().field("conf").field("listeners").index(0).key("kuma.io/service");
/// assert_eq!(p.to_string(), r#"conf.listeners[0]["kuma.io/service"]"#);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    /// The empty path (the resource spec itself).
    pub fn root() -> Self {
        Self::default()
    }

    /// `self.name`
    #[must_use]
    pub fn field(&self, name: &str) -> Self {
        if self.0.is_empty() { Self(name.to_string()) } else { Self(format!("{}.{name}", self.0)) }
    }

    /// `self[i]`
    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    /// `self["key"]`
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key:?}]", self.0))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
