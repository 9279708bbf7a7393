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
        // Built by hand, not with `format!`: validation makes a path for
        // every field it checks, valid or not.
        let mut path = String::with_capacity(self.0.len() + 1 + name.len());
        path.push_str(&self.0);
        if !self.0.is_empty() {
            path.push('.');
        }
        path.push_str(name);
        Self(path)
    }

    /// `self[i]`
    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = i;
        loop {
            start -= 1;
            // `rest % 10` is below 10, so the cast loses nothing.
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let mut path = String::with_capacity(self.0.len() + 2 + digits.len() - start);
        path.push_str(&self.0);
        path.push('[');
        path.extend(digits[start..].iter().copied().map(char::from));
        path.push(']');
        Self(path)
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

#[cfg(test)]
mod tests {
    use super::FieldPath;

    #[test]
    fn paths_print_as_format_would() {
        for i in [0, 7, 9, 10, 99, 100, 12_345, usize::MAX] {
            assert_eq!(FieldPath::root().index(i).to_string(), format!("[{i}]"));
            assert_eq!(FieldPath::root().field("rules").index(i).to_string(), format!("rules[{i}]"));
        }
        let p = FieldPath::root().field("conf").field("http").field("rules").index(3).field("matches").index(10);
        assert_eq!(p.to_string(), "conf.http.rules[3].matches[10]");
    }
}
