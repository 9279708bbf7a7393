//! Problems found while loading resources, each pinned to a file, a line,
//! a resource and a field.

use std::fmt;

use crate::meta::Location;
use crate::resource::ResourceKey;
use crate::violation::Origin;

/// One problem with the input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// File and line.
    pub location: Location,
    /// The resource, when the document got far enough to name one.
    pub resource: Option<ResourceKey>,
    /// Kuma field path inside the spec (`conf.listeners[0].port`), or empty.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// Kuma's rule, or one this gateway adds.
    pub origin: Origin,
    /// Warnings do not stop a load (ignored fields, policies gateways ignore).
    pub severity: Severity,
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum Severity {
    /// The input is refused.
    #[default]
    Error,
    /// The input is accepted; the user should know.
    Warning,
}

impl fmt::Display for Diagnostic {
    /// `file:line: Type mesh/name: field.path: message` (without
    /// `file:line: ` for resources that were not read from a file)
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.location.file.is_empty() {
            write!(f, "{}: ", self.location)?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(r) = &self.resource {
            write!(f, "{r}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// A load that failed: every problem found, in file and line order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct LoadError {
    /// The problems (errors; warnings too when they were found alongside).
    pub diagnostics: Vec<Diagnostic>,
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}
