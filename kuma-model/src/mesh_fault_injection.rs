//! `MeshFaultInjection`: Kuma 2.x fault injection. On a builtin gateway its
//! `to` entries (kind `Mesh`) add fault filters to the HTTP listeners.

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::target_ref::{POLICY_TOP_KINDS, TargetKind, TargetRef, TargetRules, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshFaultInjection`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshFaultInjectionSpec {
    /// What the policy applies to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Faults towards destinations (gateways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<FaultEntry>>,
    /// Faults of incoming traffic (sidecars; read, not applied to gateways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<serde_json::Value>>,
    /// Inbound rules (sidecars; read, not applied to gateways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<serde_json::Value>>,
}

/// A `to` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultEntry {
    /// Which destinations (`Mesh` on gateways).
    pub target_ref: TargetRef,
    /// The faults.
    #[serde(default)]
    pub default: FaultConf,
}

/// The faults of an entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConf {
    /// One Envoy fault filter each, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Vec<HttpFault>>,
}

/// One fault filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpFault {
    /// Answer with a status instead of proxying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<Abort>,
    /// Wait before proxying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
    /// Limit the response bandwidth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_bandwidth: Option<Bandwidth>,
}

/// `abort`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Abort {
    /// The status answered.
    pub http_status: i32,
    /// Share of requests, in percent (number or decimal string).
    pub percentage: serde_json::Value,
}

/// `delay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delay {
    /// How long.
    pub value: Duration,
    /// Share of requests, in percent.
    pub percentage: serde_json::Value,
}

/// `responseBandwidth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bandwidth {
    /// `<n>kbps`, `<n>Mbps` or `<n>Gbps`.
    pub limit: String,
    /// Share of requests, in percent.
    pub percentage: serde_json::Value,
}

impl FaultConf {
    /// `other` over `self`: its `http` list replaces this one (Kuma's merge
    /// replaces lists).
    pub fn merge(&mut self, other: &FaultConf) {
        if other.http.is_some() {
            self.http.clone_from(&other.http);
        }
    }
}

/// A percentage as Kuma reads it (an integer, or a decimal in a string).
pub fn percentage(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A bandwidth limit in kbps (`10kbps`, `2Mbps`, `1Gbps`).
pub fn kbps(limit: &str) -> Option<u64> {
    let (number, factor) = if let Some(n) = limit.strip_suffix("Gbps") {
        (n, 1_000_000)
    } else if let Some(n) = limit.strip_suffix("Mbps") {
        (n, 1_000)
    } else {
        (limit.strip_suffix("kbps")?, 1)
    };
    number.parse::<u64>().ok()?.checked_mul(factor)
}

fn validate_percentage(path: &FieldPath, v: &serde_json::Value, out: &mut Violations) {
    match percentage(v) {
        None => out.add(path, "string must be a valid number"),
        Some(p) if !(0.0..=100.0).contains(&p) => out.add(path, "must be in inclusive range [0.0, 100.0]"),
        Some(_) => {}
    }
}

impl MeshFaultInjectionSpec {
    /// The `to` entries: target and conf.
    pub fn to_confs(&self) -> Vec<(&TargetRef, &FaultConf)> {
        self.to.as_deref().unwrap_or_default().iter().map(|e| (&e.target_ref, &e.default)).collect()
    }

    /// Kuma's validation (system role).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        let top = self.target_ref.clone().unwrap_or_else(TargetRef::mesh);
        if let Some(t) = &self.target_ref {
            validate_target_ref(
                &root.field("targetRef"),
                t,
                TargetRules::with_listener_tags(POLICY_TOP_KINDS),
                &mut out,
            );
        }
        if self.rules.as_ref().is_some_and(|r| !r.is_empty()) && self.from.as_ref().is_some_and(|f| !f.is_empty()) {
            out.add(&root, "field 'from' must be empty when 'rules' is defined");
        }
        if top.includes_gateways() && self.from.as_ref().is_some_and(|f| !f.is_empty()) {
            out.add(
                root.field("from"),
                "must not be defined when the scope includes a Gateway, select only proxyType Sidecar or select only gateways and use spec.to",
            );
        }
        let to = self.to.as_deref().unwrap_or_default();
        if !top.includes_gateways() && !to.is_empty() {
            out.add(root.field("to"), "must not be defined");
        }
        for (i, e) in to.iter().enumerate() {
            let p = root.field("to").index(i);
            validate_target_ref(
                &p.field("targetRef"),
                &e.target_ref,
                TargetRules::kinds(&[TargetKind::Mesh]),
                &mut out,
            );
            for (j, f) in e.default.http.iter().flatten().enumerate() {
                let fp = p.field("default").field("http").index(j);
                if let Some(a) = &f.abort {
                    if !(100..=599).contains(&a.http_status) {
                        out.add(fp.field("abort").field("httpStatus"), "must be in inclusive range [100, 599]");
                    }
                    validate_percentage(&fp.field("abort").field("percentage"), &a.percentage, &mut out);
                }
                if let Some(d) = &f.delay {
                    validate_percentage(&fp.field("delay").field("percentage"), &d.percentage, &mut out);
                    if !d.value.is_positive() {
                        out.add_extra(
                            fp.field("delay").field("value"),
                            "must be greater than 0: Envoy takes no empty delay",
                        );
                    }
                }
                if let Some(b) = &f.response_bandwidth {
                    validate_percentage(&fp.field("responseBandwidth").field("percentage"), &b.percentage, &mut out);
                    match kbps(&b.limit) {
                        None if !["kbps", "Mbps", "Gbps"].iter().any(|u| b.limit.ends_with(u)) => {
                            out.add(fp.field("responseBandwidth").field("limit"), "must be in kbps/Mbps/Gbps units")
                        }
                        None | Some(0) => out.add_extra(
                            fp.field("responseBandwidth").field("limit"),
                            "must be a positive whole number of kbps, Mbps or Gbps",
                        ),
                        Some(_) => {}
                    }
                }
                if (100..200).contains(&f.abort.as_ref().map_or(0, |a| a.http_status)) {
                    out.add_extra(
                        fp.field("abort").field("httpStatus"),
                        "must be 200 or more: Envoy aborts with a final status",
                    );
                }
            }
        }
        out
    }
}
