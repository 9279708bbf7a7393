//! `TrafficTrace`: which tracing backend a data plane reports spans to.

use super::*;

/// `TrafficTrace` spec: data planes (by their tags) and the mesh tracing
/// backend their spans go to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficTraceSpec {
    /// Data planes the policy applies to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<Selector>,
    /// The backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<TrafficTraceConf>,
}

/// `TrafficTrace.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficTraceConf {
    /// A tracing backend of the mesh; empty for its default backend.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub backend: String,
}

impl TrafficTraceSpec {
    /// Kuma's `TrafficTrace` validation: at least one selector, tags as usual.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        validate_selectors(&FieldPath::root().field("selectors"), &self.selectors, AT_LEAST_ONE, &mut out);
        out
    }
}
