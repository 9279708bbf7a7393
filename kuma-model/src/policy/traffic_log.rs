//! `TrafficLog`: which access-log backend traffic between services goes to.

use super::*;

/// `TrafficLog` spec.
pub type TrafficLogSpec = ConnectionPolicy<TrafficLogConf>;

/// `TrafficLog.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficLogConf {
    /// A logging backend of the mesh; empty means the mesh's default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub backend: String,
}

impl TrafficLogSpec {
    /// Kuma's `TrafficLog` validation (selectors only).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(&SERVICE_SOURCES, &mut out);
        out
    }
}
