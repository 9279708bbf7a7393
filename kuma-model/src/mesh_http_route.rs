//! `MeshHTTPRoute`: Kuma 2.x HTTP routes. On a builtin gateway they target a
//! `MeshGateway` (optionally listeners by `tags`), and each `to` entry adds
//! rules for its `hostnames`.

use serde::{Deserialize, Serialize};

use crate::target_ref::{
    BackendRef, ROUTE_TOP_KINDS, TargetKind, TargetRef, TargetRules, route_to_kinds, validate_backend_ref,
    validate_target_ref,
};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshHTTPRoute`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshHttpRouteSpec {
    /// What the route attaches to (`Mesh` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Destinations and their rules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<HttpRouteTo>,
}

/// One `to` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRouteTo {
    /// `Mesh` on a gateway; the destination service otherwise.
    pub target_ref: TargetRef,
    /// Hostnames the rules serve (gateways only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

/// A rule: matches (any one selects it) and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRouteRule {
    /// The matches; rules with equal matches merge.
    pub matches: Vec<RouteMatch>,
    /// Filters and backends.
    pub default: HttpRouteConf,
}

/// One match. Field order is Kuma's: the rule hash is computed over this
/// struct's JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteMatch {
    /// Path condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
    /// Method condition (`GET`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Query parameter conditions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_params: Option<Vec<QueryParamsMatch>>,
    /// Header conditions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<HeaderMatch>>,
}

/// `path {value, type}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathMatch {
    /// The path, prefix or expression.
    pub value: String,
    /// `Exact`, `PathPrefix` or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: PathMatchType,
}

/// How a path is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum PathMatchType {
    Exact,
    PathPrefix,
    RegularExpression,
}

/// A query parameter condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryParamsMatch {
    /// `Exact` or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: QueryMatchType,
    /// The parameter.
    pub name: String,
    /// The value or expression.
    pub value: String,
}

/// How a query parameter is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum QueryMatchType {
    Exact,
    RegularExpression,
}

/// A header condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// `Exact` (the schema's default), `Present`, `RegularExpression`, `Absent` or `Prefix`.
    #[serde(rename = "type", default = "exact_header")]
    pub kind: HeaderMatchType,
    /// The header.
    pub name: String,
    /// The value, prefix or expression.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

fn exact_header() -> HeaderMatchType {
    HeaderMatchType::Exact
}

/// How a header is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum HeaderMatchType {
    Exact,
    Present,
    RegularExpression,
    Absent,
    Prefix,
}

/// What a rule does: filters, then backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRouteConf {
    /// Filters, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<HttpRouteFilter>>,
    /// Weighted backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_refs: Option<Vec<BackendRef>>,
}

/// A filter: `type` names which of the other fields applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRouteFilter {
    /// The filter type.
    #[serde(rename = "type")]
    pub kind: FilterType,
    /// `RequestHeaderModifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_modifier: Option<HeaderModifier>,
    /// `ResponseHeaderModifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_modifier: Option<HeaderModifier>,
    /// `RequestRedirect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_redirect: Option<RequestRedirect>,
    /// `URLRewrite`.
    #[serde(default, rename = "urlRewrite", skip_serializing_if = "Option::is_none")]
    pub url_rewrite: Option<UrlRewrite>,
    /// `RequestMirror`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_mirror: Option<RequestMirror>,
}

/// Filter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum FilterType {
    RequestHeaderModifier,
    ResponseHeaderModifier,
    RequestRedirect,
    #[serde(rename = "URLRewrite")]
    UrlRewrite,
    RequestMirror,
}

/// Set, add or remove headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeaderModifier {
    /// Replace these headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<Vec<HeaderValue>>,
    /// Append these headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<Vec<HeaderValue>>,
    /// Remove these headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove: Option<Vec<String>>,
}

/// A header and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderValue {
    /// The header.
    pub name: String,
    /// Its value (comma-separated values for `set`/`add`).
    pub value: String,
}

/// Redirect instead of proxying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestRedirect {
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The new host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The new path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathRewrite>,
    /// The new port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// 301, 302 (default), 303, 307 or 308.
    #[serde(default = "found")]
    pub status_code: u32,
}

fn found() -> u32 {
    302
}

/// A path rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PathRewrite {
    /// `ReplaceFullPath` or `ReplacePrefixMatch`.
    #[serde(rename = "type")]
    pub kind: PathRewriteType,
    /// The whole new path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_full_path: Option<String>,
    /// What replaces the matched prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_prefix_match: Option<String>,
}

/// Path rewrite types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum PathRewriteType {
    ReplaceFullPath,
    ReplacePrefixMatch,
}

/// Rewrite the request before proxying.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct UrlRewrite {
    /// The new `Host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The new path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathRewrite>,
    /// Set `Host` to the chosen backend's hostname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_to_backend_hostname: Option<bool>,
}

/// Copy requests to another backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestMirror {
    /// Percentage of requests (`"12.5"` or `12`; default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<serde_json::Value>,
    /// Where copies go.
    pub backend_ref: BackendRef,
}

impl RequestMirror {
    /// The percentage as a number, `None` when it is not one.
    pub fn percent(&self) -> Option<f64> {
        self.percentage.as_ref().map_or(Some(100.0), crate::mesh_fault_injection::percentage)
    }
}

/// The backend kinds a route may name.
pub const BACKEND_KINDS: &[TargetKind] = &[
    TargetKind::MeshService,
    TargetKind::MeshServiceSubset,
    TargetKind::MeshExternalService,
    TargetKind::MeshMultiZoneService,
];

/// The service name Kuma gives a backend it could not resolve (Kuma's
/// Gateway API conversion writes it into MeshHTTPRoutes); allowed although
/// it breaks the name charset. Routes to it get no cluster, so Envoy
/// answers 500 (cluster not found).
pub const UNRESOLVED_BACKEND: &str = "kuma.io/unresolved-backend";

impl MeshHttpRouteSpec {
    /// The top-level target (`Mesh` when unset).
    pub fn top(&self) -> TargetRef {
        self.target_ref.clone().unwrap_or_else(TargetRef::mesh)
    }

    /// Kuma's validation (system role).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        let root = FieldPath::root();
        if let Some(t) = &self.target_ref {
            validate_target_ref(
                &root.field("targetRef"),
                t,
                TargetRules::with_listener_tags(ROUTE_TOP_KINDS),
                &mut out,
            );
        }
        let top = self.top();
        let gateway = top.kind == TargetKind::MeshGateway;
        for (i, to) in self.to.iter().enumerate() {
            let path = root.field("to").index(i);
            let to_kinds = route_to_kinds(top.kind);
            validate_target_ref(&path.field("targetRef"), &to.target_ref, TargetRules::kinds(to_kinds), &mut out);
            for (j, rule) in to.rules.iter().enumerate() {
                validate_rule(&path.field("rules").index(j), gateway, rule, &mut out);
            }
            if !gateway && !to.hostnames.is_empty() {
                out.add(path.field("hostnames"), "must not be defined");
            }
            // Each hostname names an Envoy virtual host and is its domain.
            for (j, h) in to.hostnames.iter().enumerate() {
                if h.is_empty() {
                    out.add_extra(path.field("hostnames").index(j), "cannot be empty");
                } else if h.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    out.add_extra(
                        path.field("hostnames").index(j),
                        "must not contain whitespace or control characters",
                    );
                }
            }
        }
        out
    }
}

fn validate_rule(path: &FieldPath, gateway: bool, rule: &HttpRouteRule, out: &mut Violations) {
    for (i, m) in rule.matches.iter().enumerate() {
        let mp = path.field("matches").index(i);
        if let Some(p) = &m.path {
            let vp = mp.field("path").field("value");
            match p.kind {
                PathMatchType::RegularExpression => {}
                PathMatchType::PathPrefix if p.value == "/" => {}
                PathMatchType::PathPrefix => {
                    if p.value.ends_with('/') {
                        out.add(&vp, "does not need a trailing slash because only a `/`-separated prefix or an entire path is matched");
                    }
                    if !p.value.starts_with('/') {
                        out.add(&vp, "must be an absolute path");
                    }
                }
                PathMatchType::Exact => {
                    if !p.value.starts_with('/') {
                        out.add(&vp, "must be an absolute path");
                    }
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (k, q) in m.query_params.iter().flatten().enumerate() {
            if !seen.insert(q.name.as_str()) {
                out.add(
                    mp.field("queryParams").index(k).field("name"),
                    format!("multiple entries for name {}", q.name),
                );
            }
        }
        for (k, h) in m.headers.iter().flatten().enumerate() {
            if matches!(h.kind, HeaderMatchType::Present | HeaderMatchType::Absent) && !h.value.is_empty() {
                out.add(mp.field("headers").index(k).field("value"), "must not be defined");
            }
            // The schema's minimum lengths, which Envoy relies on.
            if h.name.is_empty() {
                out.add_extra(mp.field("headers").index(k).field("name"), "cannot be empty");
            }
            if h.kind == HeaderMatchType::RegularExpression && h.value.is_empty() {
                out.add_extra(mp.field("headers").index(k).field("value"), EMPTY_REGEX);
            }
        }
        if m.path.as_ref().is_some_and(|p| p.value.is_empty()) {
            out.add_extra(mp.field("path").field("value"), "cannot be empty");
        }
        for (k, q) in m.query_params.iter().flatten().enumerate() {
            if q.name.is_empty() {
                out.add_extra(mp.field("queryParams").index(k).field("name"), "cannot be empty");
            }
            if q.kind == QueryMatchType::RegularExpression && q.value.is_empty() {
                out.add_extra(mp.field("queryParams").index(k).field("value"), EMPTY_REGEX);
            }
        }
    }
    let dp = path.field("default");
    let prefix_only = rule.matches.iter().all(|m| m.path.as_ref().is_some_and(|p| p.kind == PathMatchType::PathPrefix));
    let filters = rule.default.filters.as_deref().unwrap_or_default();
    for (i, f) in filters.iter().enumerate() {
        let fp = dp.field("filters").index(i);
        match f.kind {
            FilterType::RequestHeaderModifier => {
                header_modifier(&fp.field("requestHeaderModifier"), f.request_header_modifier.as_ref(), out)
            }
            FilterType::ResponseHeaderModifier => {
                header_modifier(&fp.field("responseHeaderModifier"), f.response_header_modifier.as_ref(), out)
            }
            FilterType::RequestRedirect => {
                let Some(r) = &f.request_redirect else {
                    out.add(fp.field("requestRedirect"), "must be defined");
                    continue;
                };
                if r.path.as_ref().is_some_and(|p| p.replace_prefix_match.is_some()) && !prefix_only {
                    out.add(
                        fp.field("requestRedirect").field("path").field("replacePrefixMatch"),
                        "can only appear if all matches match a path prefix",
                    );
                }
                precise_hostname(&fp.field("requestRedirect").field("hostname"), r.hostname.as_deref(), out);
            }
            FilterType::UrlRewrite => {
                let Some(r) = &f.url_rewrite else {
                    out.add(fp.field("urlRewrite"), "must be defined");
                    continue;
                };
                if r.path.as_ref().is_some_and(|p| p.replace_prefix_match.is_some()) && !prefix_only {
                    out.add(
                        fp.field("urlRewrite").field("path").field("replacePrefixMatch"),
                        "can only appear if all matches match a path prefix",
                    );
                }
                precise_hostname(&fp.field("urlRewrite").field("hostname"), r.hostname.as_deref(), out);
                if r.host_to_backend_hostname == Some(true) {
                    let hp = fp.field("urlRewrite").field("hostToBackendHostname");
                    if !gateway {
                        out.add(&hp, "can only be set with MeshGateway");
                    }
                    if r.hostname.is_some() {
                        out.add(&hp, "cannot be set together with hostname");
                    }
                }
            }
            FilterType::RequestMirror => {
                let Some(m) = &f.request_mirror else {
                    out.add(fp.field("requestMirror"), "must be defined");
                    continue;
                };
                validate_target_ref(
                    &fp.field("requestMirror").field("backendRef"),
                    &m.backend_ref.target,
                    TargetRules::kinds(&[TargetKind::MeshService, TargetKind::MeshServiceSubset]),
                    out,
                );
                if m.percent().is_none_or(|p| !(0.0..=100.0).contains(&p)) {
                    out.add_extra(fp.field("requestMirror").field("percentage"), "must be a number from 0 to 100");
                }
            }
        }
    }
    let backends = rule.default.backend_refs.as_deref().unwrap_or_default();
    if backends.is_empty() && gateway && !filters.iter().any(|f| f.kind == FilterType::RequestRedirect) {
        out.add(dp.field("backendRefs"), "must not be empty");
    }
    let rules = TargetRules { allowed_invalid_names: &[UNRESOLVED_BACKEND], ..TargetRules::kinds(BACKEND_KINDS) };
    for (i, b) in backends.iter().enumerate() {
        validate_backend_ref(&dp.field("backendRefs").index(i), b, rules, out);
    }
    if let Some(method) = rule.matches.iter().find_map(|m| m.method.as_deref().filter(|m| !METHODS.contains(m))) {
        out.add(path.field("matches"), format!("method {method:?} must be one of {}", METHODS.join(", ")));
        return;
    }
    match rule.lower() {
        Err(e) => out.add_extra(format!("{path}.{}", e.field), e.message),
        Ok(lowered) => crate::route::envoy_checks(path, &lowered, out),
    }
}

const EMPTY_REGEX: &str = "cannot be empty: Envoy takes no empty regular expression";

/// The methods a match may name (the schema's enum).
const METHODS: &[&str] = &["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"];

fn header_modifier(path: &FieldPath, m: Option<&HeaderModifier>, out: &mut Violations) {
    let Some(m) = m else {
        out.add(path, "must be defined");
        return;
    };
    if m.set.is_none() && m.add.is_none() && m.remove.is_none() {
        out.add(path, "must have at least one defined: set, add, remove");
        return;
    }
    let mut seen = std::collections::BTreeSet::new();
    let names = m.set.iter().flatten().enumerate().map(|(i, h)| (path.field("set").index(i), h.name.as_str()));
    let names =
        names.chain(m.add.iter().flatten().enumerate().map(|(i, h)| (path.field("add").index(i), h.name.as_str())));
    let names =
        names.chain(m.remove.iter().flatten().enumerate().map(|(i, h)| (path.field("remove").index(i), h.as_str())));
    for (p, name) in names {
        if !seen.insert(name.to_string()) {
            out.add(p.field("name"), "duplicate header name");
        }
        if name.is_empty() {
            out.add_extra(p.field("name"), "cannot be empty");
        }
    }
}

/// Kubernetes' `IsDNS1123Subdomain` plus "not an IP", as Kuma checks
/// redirect and rewrite hostnames.
fn precise_hostname(path: &FieldPath, hostname: Option<&str>, out: &mut Violations) {
    let Some(h) = hostname else { return };
    if h.parse::<std::net::IpAddr>().is_ok() {
        out.add(path, "cannot be an IP address");
        return;
    }
    if h.len() > 253 {
        out.add(path, "must be no more than 253 characters");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !h.split('.').all(label_ok) {
        out.add(
            path,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        );
    }
}

/// Why a rule cannot be served by this gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerError {
    /// The field, relative to the rule (`default.backendRefs[0]`).
    pub field: String,
    /// What is not supported.
    pub message: String,
}

impl HttpRouteRule {
    /// Kuma's name for the Envoy routes of this rule:
    /// `base64(sha256(json(matches)))`, with Go's JSON encoding.
    pub fn matches_hash(&self) -> String {
        matches_hash(&self.matches)
    }

    /// This rule in the form `MeshGatewayRoute` rules take, so that both
    /// route kinds share everything below (precedence, rendering). The
    /// rule's Envoy route name is its [`matches_hash`](Self::matches_hash).
    pub fn lower(&self) -> Result<crate::route::HttpRule, LowerError> {
        use crate::route::{HttpFilter, HttpRule};
        let matches = self.matches.iter().map(lower_match).collect::<Result<Vec<_>, _>>()?;
        let mut filters = Vec::new();
        for (i, f) in self.default.filters.iter().flatten().enumerate() {
            let field = format!("default.filters[{i}]");
            let mut out = HttpFilter::default();
            match f.kind {
                FilterType::RequestHeaderModifier => {
                    out.request_header = f.request_header_modifier.as_ref().map(lower_headers)
                }
                FilterType::ResponseHeaderModifier => {
                    out.response_header = f.response_header_modifier.as_ref().map(lower_headers)
                }
                FilterType::RequestRedirect => {
                    let Some(r) = &f.request_redirect else { continue };
                    out.redirect = Some(crate::route::Redirect {
                        scheme: r.scheme.clone().unwrap_or_default(),
                        hostname: r.hostname.clone().unwrap_or_default(),
                        port: r.port.unwrap_or_default(),
                        status_code: r.status_code,
                        path: r.path.as_ref().map(lower_path_rewrite),
                    });
                }
                FilterType::UrlRewrite => {
                    let Some(r) = &f.url_rewrite else { continue };
                    let mut rewrite = r.path.as_ref().map(lower_path_rewrite).unwrap_or_default();
                    rewrite.host_to_backend_hostname = r.host_to_backend_hostname == Some(true);
                    rewrite.hostname.clone_from(&r.hostname);
                    out.rewrite = Some(rewrite);
                }
                FilterType::RequestMirror => {
                    let Some(m) = &f.request_mirror else { continue };
                    let backend = lower_backend(&m.backend_ref).map_err(|message| LowerError {
                        field: format!("{field}.requestMirror.backendRef"),
                        message,
                    })?;
                    out.mirror = Some(crate::route::Mirror { backend: Some(backend), percentage: m.percent() });
                }
            }
            filters.push(out);
        }
        let mut backends = Vec::new();
        for (i, b) in self.default.backend_refs.iter().flatten().enumerate() {
            backends.push(
                lower_backend(b)
                    .map_err(|message| LowerError { field: format!("default.backendRefs[{i}]"), message })?,
            );
        }
        Ok(HttpRule { matches, filters, backends, name: Some(self.matches_hash()) })
    }
}

/// `base64(sha256(json(matches)))` as Kuma's `HashMatches` computes it.
pub fn matches_hash(matches: &[RouteMatch]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let json = go_json(&serde_json::to_string(matches).unwrap_or_default());
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(json.as_bytes()))
}

/// Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 in strings
/// (none of them can appear outside strings in this JSON).
fn go_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn lower_match(m: &RouteMatch) -> Result<crate::route::HttpMatch, LowerError> {
    use crate::route::{HeaderMatchKind, HttpMatch, PathMatchKind, QueryMatchKind};
    let path = m.path.as_ref().map(|p| crate::route::PathMatch {
        kind: match p.kind {
            PathMatchType::Exact => PathMatchKind::Exact,
            PathMatchType::PathPrefix => PathMatchKind::Prefix,
            PathMatchType::RegularExpression => PathMatchKind::Regex,
        },
        value: p.value.clone(),
    });
    let method = match &m.method {
        None => crate::route::HttpMethod::None,
        Some(name) => serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|_| LowerError { field: "matches.method".into(), message: format!("unknown method {name:?}") })?,
    };
    let headers = m
        .headers
        .iter()
        .flatten()
        .map(|h| crate::route::HeaderMatch {
            kind: match h.kind {
                HeaderMatchType::Exact => HeaderMatchKind::Exact,
                HeaderMatchType::RegularExpression => HeaderMatchKind::Regex,
                HeaderMatchType::Present => HeaderMatchKind::Present,
                HeaderMatchType::Absent => HeaderMatchKind::Absent,
                HeaderMatchType::Prefix => HeaderMatchKind::Prefix,
            },
            name: h.name.clone(),
            value: h.value.clone(),
        })
        .collect();
    let query_parameters = m
        .query_params
        .iter()
        .flatten()
        .map(|q| crate::route::QueryMatch {
            kind: match q.kind {
                QueryMatchType::Exact => QueryMatchKind::Exact,
                QueryMatchType::RegularExpression => QueryMatchKind::Regex,
            },
            name: q.name.clone(),
            value: q.value.clone(),
        })
        .collect();
    Ok(HttpMatch { path, method, headers, query_parameters })
}

fn lower_headers(m: &HeaderModifier) -> crate::route::HeaderFilter {
    let values = |v: &Option<Vec<HeaderValue>>| {
        v.iter().flatten().map(|h| crate::route::HeaderValue { name: h.name.clone(), value: h.value.clone() }).collect()
    };
    crate::route::HeaderFilter {
        set: values(&m.set),
        add: values(&m.add),
        remove: m.remove.clone().unwrap_or_default(),
    }
}

fn lower_path_rewrite(p: &PathRewrite) -> crate::route::Rewrite {
    crate::route::Rewrite {
        replace_full: if p.kind == PathRewriteType::ReplaceFullPath { p.replace_full_path.clone() } else { None },
        replace_prefix_match: if p.kind == PathRewriteType::ReplacePrefixMatch {
            p.replace_prefix_match.clone()
        } else {
            None
        },
        ..Default::default()
    }
}

/// A backend as `kuma.io/service` tags: `MeshService` by name (the service
/// of the data planes), `MeshServiceSubset` by name and tags. A
/// `MeshService` with a `port` or `sectionName` references a `MeshService`
/// resource; kuma-policy resolves such references to the destination Kuma
/// routes them as before lowering, so here it lowers as its name.
pub fn lower_backend(b: &BackendRef) -> Result<crate::route::Backend, String> {
    let t = &b.target;
    let service = || {
        let mut tags = crate::Tags::new();
        tags.insert(crate::SERVICE_TAG.to_string(), t.name().to_string());
        tags
    };
    let destination = match t.kind {
        TargetKind::MeshService if t.labels.is_none() => service(),
        TargetKind::MeshServiceSubset => {
            let mut tags = service();
            tags.extend(t.tags().iter().map(|(k, v)| (k.clone(), v.clone())));
            tags
        }
        _ => {
            return Err(format!(
                "{} backends{} are not supported by this gateway; name the service with kind MeshService, its `name` and, for a MeshService resource, its `port`",
                t.kind.as_str(),
                if t.kind == TargetKind::MeshService { " by labels" } else { "" }
            ));
        }
    };
    Ok(crate::route::Backend { weight: b.weight(), destination })
}
