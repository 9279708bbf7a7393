//! `MeshLoadBalancingStrategy`: Kuma 2.x load balancing of upstream
//! clusters (round robin, least request, ring hash, random, Maglev) and the
//! hash policies of the routes to them.

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::target_ref::{POLICY_TOP_KINDS, TargetKind, TargetRef, TargetRules, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshLoadBalancingStrategy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshLoadBalancingStrategySpec {
    /// What the policy applies to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Strategies towards destinations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<LoadBalancingEntry>,
}

/// A `to` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancingEntry {
    /// Which destinations.
    pub target_ref: TargetRef,
    /// The strategy.
    #[serde(default)]
    pub default: LoadBalancingConf,
}

/// `default`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancingConf {
    /// The cluster's load balancer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// Route hash policies (for ring hash and Maglev).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_policies: Option<Vec<HashPolicy>>,
    /// Zone-aware routing (multi-zone; not served by this gateway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality_awareness: Option<serde_json::Value>,
}

/// `loadBalancer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancer {
    /// `RoundRobin`, `LeastRequest`, `RingHash`, `Random` or `Maglev`.
    #[serde(rename = "type")]
    pub kind: LoadBalancerType,
    /// `RoundRobin` settings (none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_robin: Option<serde_json::Value>,
    /// `Random` settings (none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<serde_json::Value>,
    /// `LeastRequest` settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub least_request: Option<LeastRequest>,
    /// `RingHash` settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_hash: Option<RingHash>,
    /// `Maglev` settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maglev: Option<Maglev>,
}

/// Load balancer types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum LoadBalancerType {
    RoundRobin,
    LeastRequest,
    RingHash,
    Random,
    Maglev,
}

/// `leastRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct LeastRequest {
    /// Hosts sampled per pick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choice_count: Option<u32>,
    /// Weight of active requests (number or decimal string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_request_bias: Option<serde_json::Value>,
}

/// `ringHash`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RingHash {
    /// `XXHash` or `MurmurHash2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_function: Option<HashFunction>,
    /// Smallest ring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ring_size: Option<u64>,
    /// Largest ring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ring_size: Option<u64>,
    /// Deprecated place of the route hash policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_policies: Option<Vec<HashPolicy>>,
}

/// Ring hash functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum HashFunction {
    XXHash,
    MurmurHash2,
}

/// `maglev`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Maglev {
    /// Lookup table size (a prime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_size: Option<u64>,
    /// Deprecated place of the route hash policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_policies: Option<Vec<HashPolicy>>,
}

/// A route hash policy: `type` names which field applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HashPolicy {
    /// `Header`, `Cookie`, `Connection`, `SourceIP`, `QueryParameter` or `FilterState`.
    #[serde(rename = "type")]
    pub kind: HashPolicyType,
    /// Stop at this policy when it yields a hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<bool>,
    /// `{name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Named>,
    /// `{name, ttl, path}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<Cookie>,
    /// `{sourceIP}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Connection>,
    /// `{name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_parameter: Option<Named>,
    /// `{key}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_state: Option<FilterStateKey>,
}

/// Hash policy types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum HashPolicyType {
    Header,
    Cookie,
    Connection,
    #[serde(rename = "SourceIP")]
    SourceIp,
    QueryParameter,
    FilterState,
}

/// `{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    /// The header or parameter.
    pub name: String,
}

/// `cookie`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cookie {
    /// The cookie.
    pub name: String,
    /// Generate it with this lifetime when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Its path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `connection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Connection {
    /// Hash the source address.
    #[serde(rename = "sourceIP", skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<bool>,
}

/// `filterState`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterStateKey {
    /// The key.
    pub key: String,
}

impl LoadBalancingConf {
    /// `other` over `self`: each field it sets replaces this one's.
    pub fn merge(&mut self, other: &LoadBalancingConf) {
        if other.load_balancer.is_some() {
            self.load_balancer.clone_from(&other.load_balancer);
        }
        if other.hash_policies.is_some() {
            self.hash_policies.clone_from(&other.hash_policies);
        }
        if other.locality_awareness.is_some() {
            self.locality_awareness.clone_from(&other.locality_awareness);
        }
    }

    /// The route hash policies: `hashPolicies`, else the deprecated ones
    /// under `ringHash` or `maglev`.
    pub fn route_hash_policies(&self) -> &[HashPolicy] {
        let lb = self.load_balancer.as_ref();
        self.hash_policies
            .as_deref()
            .or_else(|| lb.and_then(|l| l.ring_hash.as_ref()).and_then(|r| r.hash_policies.as_deref()))
            .or_else(|| lb.and_then(|l| l.maglev.as_ref()).and_then(|m| m.hash_policies.as_deref()))
            .unwrap_or_default()
    }
}

impl MeshLoadBalancingStrategySpec {
    /// The `to` entries: target and conf.
    pub fn to_confs(&self) -> Vec<(&TargetRef, &LoadBalancingConf)> {
        self.to.iter().map(|e| (&e.target_ref, &e.default)).collect()
    }

    /// Kuma's validation, and this gateway's refusal of what it does not serve.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        let top = self.target_ref.as_ref().map_or(TargetKind::Mesh, |t| t.kind);
        if let Some(t) = &self.target_ref {
            validate_target_ref(
                &root.field("targetRef"),
                t,
                TargetRules::with_listener_tags(POLICY_TOP_KINDS),
                &mut out,
            );
        }
        for (i, e) in self.to.iter().enumerate() {
            let p = root.field("to").index(i);
            let c = &e.default;
            if top == TargetKind::MeshGateway && c.load_balancer.is_some() && e.target_ref.kind != TargetKind::Mesh {
                out.add(
                    p.field("targetRef").field("kind"),
                    format!("value '{}' is not supported, only Mesh is allowed if loadBalancer is set", top.as_str()),
                );
            } else {
                let kinds: &[TargetKind] = if top == TargetKind::MeshGateway {
                    &[TargetKind::Mesh, TargetKind::MeshService, TargetKind::MeshMultiZoneService]
                } else {
                    &[
                        TargetKind::Mesh,
                        TargetKind::MeshService,
                        TargetKind::MeshExternalService,
                        TargetKind::MeshMultiZoneService,
                        TargetKind::MeshHttpRoute,
                    ]
                };
                validate_target_ref(&p.field("targetRef"), &e.target_ref, TargetRules::kinds(kinds), &mut out);
                if e.target_ref.kind == TargetKind::MeshExternalService && top != TargetKind::Mesh {
                    out.add(
                        p.field("targetRef").field("kind"),
                        "kind MeshExternalService is only allowed with targetRef.kind: Mesh as it is configured on the Zone Egress and shared by all clients in the mesh",
                    );
                }
            }
            let dp = p.field("default");
            if c.locality_awareness.is_some() {
                out.add_extra(
                    dp.field("localityAwareness"),
                    "zone-aware load balancing is not supported by this gateway (one zone); leave it out",
                );
            }
            if let Some(lb) = &c.load_balancer {
                let lp = dp.field("loadBalancer");
                if let Some(r) = &lb.ring_hash
                    && let (Some(min), Some(max)) = (r.min_ring_size, r.max_ring_size)
                    && min > max
                {
                    out.add_extra(lp.field("ringHash").field("minRingSize"), "must not be larger than maxRingSize");
                }
                for (field, size) in [
                    ("minRingSize", lb.ring_hash.as_ref().and_then(|r| r.min_ring_size)),
                    ("maxRingSize", lb.ring_hash.as_ref().and_then(|r| r.max_ring_size)),
                ] {
                    if size.is_some_and(|s| s == 0 || s > 8_388_608) {
                        out.add_extra(lp.field("ringHash").field(field), "must be from 1 to 8388608 (Envoy's limit)");
                    }
                }
                if let Some(t) = lb.maglev.as_ref().and_then(|m| m.table_size)
                    && (t > 5_000_011 || !is_prime(t))
                {
                    out.add_extra(
                        lp.field("maglev").field("tableSize"),
                        "must be a prime number up to 5000011 (Envoy's rule)",
                    );
                }
                if lb.least_request.as_ref().and_then(|l| l.choice_count).is_some_and(|c| c < 2) {
                    out.add_extra(lp.field("leastRequest").field("choiceCount"), "must be at least 2 (Envoy's rule)");
                }
            }
            for (j, h) in c.route_hash_policies().iter().enumerate() {
                let hp = dp.field("hashPolicies").index(j);
                let missing = match h.kind {
                    HashPolicyType::Header => h.header.as_ref().is_none_or(|n| n.name.is_empty()).then_some("header"),
                    HashPolicyType::Cookie => h.cookie.as_ref().is_none_or(|n| n.name.is_empty()).then_some("cookie"),
                    HashPolicyType::QueryParameter => {
                        h.query_parameter.as_ref().is_none_or(|n| n.name.is_empty()).then_some("queryParameter")
                    }
                    HashPolicyType::FilterState => {
                        h.filter_state.as_ref().is_none_or(|n| n.key.is_empty()).then_some("filterState")
                    }
                    HashPolicyType::Connection | HashPolicyType::SourceIp => None,
                };
                if let Some(field) = missing {
                    out.add_extra(hp.field(field), "must be defined with a name");
                }
            }
        }
        out
    }
}

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| !n.is_multiple_of(d))
}
