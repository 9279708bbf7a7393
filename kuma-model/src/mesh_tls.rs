//! `MeshTLS`: Kuma 2.x mesh TLS settings (mode, TLS versions, ciphers). On
//! a builtin gateway, with mesh mTLS on, the TLS versions and ciphers of a
//! mesh-wide policy apply to the gateway's mTLS clusters to mesh services.

use serde::{Deserialize, Serialize};

use crate::target_ref::{TargetKind, TargetRef, TargetRules, validate_target_ref};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshTLS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshTlsSpec {
    /// Which proxies (`Mesh`, `MeshSubset` or `Dataplane`; `Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Settings for traffic from clients (kind `Mesh`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<TlsFrom>>,
    /// Settings for all incoming traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<TlsRule>>,
}

/// A `from` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsFrom {
    /// Which clients (`Mesh`).
    pub target_ref: TargetRef,
    /// The settings.
    #[serde(default)]
    pub default: TlsConf,
}

/// A `rules` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsRule {
    /// The settings.
    pub default: TlsConf,
}

/// TLS settings; unset fields keep what a less specific policy set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsConf {
    /// `Strict` or `Permissive` (inbound listeners of sidecars).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Allowed TLS versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<TlsVersion>,
    /// Allowed cipher suites.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ciphers: Option<Vec<String>>,
}

/// `tlsVersion`: `TLSAuto`, `TLS10` … `TLS13`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsVersion {
    /// The lowest version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    /// The highest version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
}

/// The TLS versions Kuma knows, in order.
pub const TLS_VERSIONS: [&str; 5] = ["TLSAuto", "TLS10", "TLS11", "TLS12", "TLS13"];

/// The cipher suites Kuma allows.
pub const TLS_CIPHERS: [&str; 6] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305",
];

impl TlsConf {
    /// `other` over `self`.
    pub fn merge(&mut self, other: &TlsConf) {
        if other.mode.is_some() {
            self.mode.clone_from(&other.mode);
        }
        if let Some(v) = &other.tls_version {
            let mine = self.tls_version.get_or_insert_with(TlsVersion::default);
            if v.min.is_some() {
                mine.min.clone_from(&v.min);
            }
            if v.max.is_some() {
                mine.max.clone_from(&v.max);
            }
        }
        if other.tls_ciphers.is_some() {
            self.tls_ciphers.clone_from(&other.tls_ciphers);
        }
    }
}

impl MeshTlsSpec {
    /// The confs that apply to all of a proxy's incoming traffic, in order:
    /// `from` entries of kind `Mesh`, then `rules`.
    pub fn confs(&self) -> impl Iterator<Item = &TlsConf> {
        let from = self.from.iter().flatten().filter(|f| f.target_ref.kind == TargetKind::Mesh).map(|f| &f.default);
        from.chain(self.rules.iter().flatten().map(|r| &r.default))
    }

    /// Kuma's validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        let kinds = [TargetKind::Mesh, TargetKind::MeshSubset, TargetKind::Dataplane];
        if let Some(t) = &self.target_ref {
            validate_target_ref(&root.field("targetRef"), t, TargetRules::kinds(&kinds), &mut out);
        }
        let rules = self.rules.as_deref().unwrap_or_default();
        let from = self.from.as_deref().unwrap_or_default();
        if !rules.is_empty() && !from.is_empty() {
            out.add(&root, "field 'from' must be empty when 'rules' is defined");
        }
        let top = self.target_ref.as_ref().map_or(TargetKind::Mesh, |t| t.kind);
        for (i, r) in rules.iter().enumerate() {
            validate_conf(&root.field("rules").index(i).field("default"), &r.default, top, &mut out);
        }
        for (i, f) in from.iter().enumerate() {
            let p = root.field("from").index(i);
            validate_target_ref(
                &p.field("targetRef"),
                &f.target_ref,
                TargetRules::kinds(&[TargetKind::Mesh]),
                &mut out,
            );
            validate_conf(&p.field("default"), &f.default, top, &mut out);
        }
        out
    }
}

fn one_of(field: &str, allowed: &[&str]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    format!("{field:?} must be one of [{}]", quoted.join(", "))
}

fn validate_conf(path: &FieldPath, conf: &TlsConf, top: TargetKind, out: &mut Violations) {
    if let Some(mode) = &conf.mode
        && !["Strict", "Permissive"].contains(&mode.as_str())
    {
        out.add(path.field("mode"), one_of("mode", &["Strict", "Permissive"]));
    }
    let ciphers = conf.tls_ciphers.as_deref().unwrap_or_default();
    if !ciphers.is_empty() && top != TargetKind::Mesh {
        out.add(path.field("tlsCiphers"), "tlsCiphers can only be defined with top level targetRef kind: Mesh");
    } else if ciphers.iter().any(|c| !TLS_CIPHERS.contains(&c.as_str())) {
        out.add(path.field("tlsCiphers"), one_of("tlsCiphers", &TLS_CIPHERS));
    }
    if let Some(v) = &conf.tls_version {
        let p = path.field("tlsVersion");
        if top != TargetKind::Mesh {
            out.add(&p, "tlsVersion can only be defined with top level targetRef kind: Mesh");
            return;
        }
        let order = |v: &Option<String>, name: &str, out: &mut Violations| match v {
            None => None,
            Some(v) => match TLS_VERSIONS.iter().position(|t| t == v) {
                None => {
                    out.add(p.field(name), one_of(name, &TLS_VERSIONS));
                    None
                }
                Some(0) => None,
                Some(i) => Some(i),
            },
        };
        let (min, max) = (order(&v.min, "min", out), order(&v.max, "max", out));
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            out.add(p.field("min"), "min version must be lower than max");
        }
    }
}
