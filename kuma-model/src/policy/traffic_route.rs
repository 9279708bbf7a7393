//! `TrafficRoute`: sidecar routing (read; gateways route with MeshGatewayRoute).

use super::*;

/// `TrafficRoute` spec (accepted, ignored by gateways).
pub type TrafficRouteSpec = ConnectionPolicy<TrafficRouteConf>;

/// `TrafficRoute.conf`, kept as written: gateways do not use it, so only
/// its outline is checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficRouteConf {
    /// Weighted destinations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<TrafficRouteSplit>,
    /// Load balancer settings (a oneof, kept as JSON).
    #[serde(alias = "load_balancer", skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<serde_json::Value>,
    /// A single destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Tags>,
    /// HTTP rules (kept as JSON).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<serde_json::Value>,
}

/// A weighted destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficRouteSplit {
    /// The weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// The destination tags.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub destination: Tags,
}

impl TrafficRouteSpec {
    /// Kuma's `TrafficRoute` validation of selectors, split and destination.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(&SERVICE_SOURCES, &mut out);
        let path = FieldPath::root().field("conf");
        let Some(conf) = &self.conf else {
            out.add(&path, "cannot be empty");
            return out;
        };
        let dest_rules = TagRules { require_at_least_one_tag: true, require_service: true, ..TagRules::default() };
        match (conf.split.is_empty(), &conf.destination) {
            (true, None) => out.add(&path, "requires either \"destination\" or \"split\""),
            (false, Some(_)) => out.add(&path, "\"split\" cannot be defined at the same time as \"destination\""),
            (false, None) => {
                let mut total: u32 = 0;
                for (i, s) in conf.split.iter().enumerate() {
                    let p = path.field("split").index(i);
                    match s.weight {
                        None => out.add(p.field("weight"), "needs to be defined"),
                        Some(w) => total = total.wrapping_add(w),
                    }
                    validate_tags(&p.field("destination"), &s.destination, dest_rules, &mut out);
                }
                if total == 0 {
                    out.add(path.field("split"), "there must be at least one split entry with weight above 0");
                }
            }
            (true, Some(d)) => validate_tags(&path.field("destination"), d, dest_rules, &mut out),
        }
        out
    }
}
