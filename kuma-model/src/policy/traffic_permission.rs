//! `TrafficPermission`: which services may talk to which.

use super::*;

/// `TrafficPermission` spec: who may reach whom. It has no `conf`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficPermissionSpec {
    /// Allowed clients.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Selector>,
    /// Services they may reach.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Selector>,
}

impl TrafficPermissionSpec {
    /// Kuma's `TrafficPermission` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        validate_selectors(&FieldPath::root().field("sources"), &self.sources, AT_LEAST_ONE, &mut out);
        validate_selectors(&FieldPath::root().field("destinations"), &self.destinations, AT_LEAST_ONE, &mut out);
        out
    }
}
