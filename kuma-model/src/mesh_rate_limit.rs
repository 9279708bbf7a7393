//! `MeshRateLimit`: Kuma 2.x local rate limits. On a builtin gateway its
//! `to` entries (kind `Mesh`) limit the requests of each route.

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::mesh_http_route::HeaderValue;
use crate::target_ref::{TargetKind, TargetRef, TargetRules, validate_sections, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshRateLimit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshRateLimitSpec {
    /// What the policy applies to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Limits on gateway routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<RateLimitEntry>>,
    /// Limits of incoming traffic (sidecars; read, not applied to gateways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<serde_json::Value>>,
    /// Inbound rules (sidecars; read, not applied to gateways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<serde_json::Value>>,
}

/// A `to` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitEntry {
    /// `Mesh`.
    pub target_ref: TargetRef,
    /// The limits.
    #[serde(default)]
    pub default: RateLimitConf,
}

/// `default`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConf {
    /// Limits Envoy enforces itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalRateLimit>,
}

/// `local`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalRateLimit {
    /// Requests per interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpRateLimit>,
    /// Connections per interval (sidecars; not applied to gateways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpRateLimit>,
}

/// `local.http`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRateLimit {
    /// No limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// The token bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<Rate>,
    /// The answer when limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_rate_limit: Option<OnRateLimit>,
}

/// `num` per `interval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Tokens per interval.
    pub num: u32,
    /// The interval.
    pub interval: Duration,
}

/// `onRateLimit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnRateLimit {
    /// Status (429 when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
    /// Response headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<HeadersToAdd>,
}

/// `set` and `add` headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadersToAdd {
    /// Replace (comma-separated values each replace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<Vec<HeaderValue>>,
    /// Append.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<Vec<HeaderValue>>,
}

/// `local.tcp`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpRateLimit {
    /// No limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// The token bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_rate: Option<Rate>,
}

impl HeadersToAdd {
    /// This gateway's checks of headers Envoy adds (Envoy refuses empty
    /// names, pseudo-headers, `host`, NUL/CR/LF and a stray `%`).
    pub(crate) fn validate(&self, path: &FieldPath, out: &mut Violations) {
        for (field, list) in [("add", &self.add), ("set", &self.set)] {
            for (j, v) in list.iter().flatten().enumerate() {
                let p = path.field(field).index(j);
                if v.name.is_empty() {
                    out.add_extra(p.field("name"), "cannot be empty");
                }
                crate::policy::validate_added_header(&p.field("name"), &p.field("value"), &v.name, &v.value, out);
            }
        }
    }
}

impl RateLimitConf {
    /// `other` over `self`, field by field.
    pub fn merge(&mut self, other: &RateLimitConf) {
        let Some(o) = &other.local else { return };
        let l = self.local.get_or_insert_with(LocalRateLimit::default);
        if let Some(oh) = &o.http {
            let h = l.http.get_or_insert_with(HttpRateLimit::default);
            if oh.disabled.is_some() {
                h.disabled = oh.disabled;
            }
            if oh.request_rate.is_some() {
                h.request_rate.clone_from(&oh.request_rate);
            }
            if let Some(orl) = &oh.on_rate_limit {
                let r = h.on_rate_limit.get_or_insert_with(OnRateLimit::default);
                if orl.status.is_some() {
                    r.status = orl.status;
                }
                if orl.headers.is_some() {
                    r.headers.clone_from(&orl.headers);
                }
            }
        }
        if o.tcp.is_some() {
            l.tcp.clone_from(&o.tcp);
        }
    }
}

impl MeshRateLimitSpec {
    /// The `to` entries: target and conf.
    pub fn to_confs(&self) -> Vec<(&TargetRef, &RateLimitConf)> {
        self.to.as_deref().unwrap_or_default().iter().map(|e| (&e.target_ref, &e.default)).collect()
    }

    /// Kuma's validation (system role).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        let top = self.target_ref.clone().unwrap_or_else(TargetRef::mesh);
        if let Some(t) = &self.target_ref {
            let kinds = [
                TargetKind::Mesh,
                TargetKind::MeshSubset,
                TargetKind::MeshGateway,
                TargetKind::MeshService,
                TargetKind::MeshServiceSubset,
                TargetKind::MeshHttpRoute,
                TargetKind::Dataplane,
            ];
            validate_target_ref(&root.field("targetRef"), t, TargetRules::with_listener_tags(&kinds), &mut out);
        }
        let (to, from) = (self.to.as_deref().unwrap_or_default(), self.from.as_deref().unwrap_or_default());
        let rules = self.rules.as_deref().unwrap_or_default();
        validate_sections(&root, to.len(), from.len(), rules.len(), false, &mut out);
        if !rules.is_empty() && (top.includes_gateways() || top.kind == TargetKind::MeshHttpRoute) {
            out.add(root.field("rules"), "must not be defined");
        }
        if !from.is_empty() && top.includes_gateways() && top.kind != TargetKind::MeshHttpRoute {
            out.add(
                root.field("from"),
                "must not be defined when the scope includes a Gateway, select only proxyType Sidecar or select only gateways and use spec.to",
            );
        }
        if !from.is_empty() && top.kind == TargetKind::MeshHttpRoute {
            out.add(root.field("from"), "must not be defined when spec.kind is MeshHTTPRoute");
        }
        if !to.is_empty() && !top.includes_gateways() {
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
            let dp = p.field("default");
            let Some(local) = &e.default.local else {
                out.add(dp.field("local"), "must be defined");
                continue;
            };
            if local.http.is_none() && local.tcp.is_none() {
                out.add(dp.field("local"), "must have at least one defined: tcp, http");
            }
            if let Some(h) = &local.http {
                let hp = dp.field("local").field("http");
                if h.disabled.is_none() && h.request_rate.is_none() && h.on_rate_limit.is_none() {
                    out.add(&hp, "must have at least one defined: disabled, requestRate, onRateLimit");
                }
                if let Some(r) = &h.request_rate {
                    rate(&hp.field("requestRate"), r, &mut out);
                }
                if let Some(status) = h.on_rate_limit.as_ref().and_then(|o| o.status)
                    && status != 0
                    && !crate::policy::ENVOY_STATUS_CODES.contains(&status)
                {
                    out.add_extra(
                        hp.field("onRateLimit").field("status"),
                        "must be an HTTP status Envoy knows (its StatusCode list: 100, 200-208, 226, 300-305, 307, 308, 400-417, 421-424, 426, 428, 429, 431, 500-508, 510, 511)",
                    );
                }
                if let Some(headers) = h.on_rate_limit.as_ref().and_then(|o| o.headers.as_ref()) {
                    headers.validate(&hp.field("onRateLimit").field("headers"), &mut out);
                }
            }
            if let Some(t) = &local.tcp
                && let Some(r) = &t.connection_rate
            {
                rate(&dp.field("local").field("tcp").field("connectionRate"), r, &mut out);
            }
        }
        out
    }
}

fn rate(path: &FieldPath, r: &Rate, out: &mut Violations) {
    if r.num == 0 {
        out.add(path.field("num"), "must be greater than 0");
    }
    if r.interval < Duration::from_millis(50) {
        out.add(path.field("interval"), "must be greater than: 50ms");
    }
}
