//! `MeshGatewayRoute`: HTTP and TCP routes attached to gateway listeners,
//! and Kuma's rules for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::gateway::{is_false, is_zero, validate_port};
use crate::tags::{Selector, TagRules, Tags, validate_selectors, validate_tags};
use crate::violation::{FieldPath, Violations};

/// The spec of a `MeshGatewayRoute`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshGatewayRouteSpec {
    /// Matched against the merged listener tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<Selector>,
    /// The route itself: `http` or `tcp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf: Option<RouteConf>,
}

/// `conf`: a oneof of `tcp` and `http`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConf {
    /// A TCP route (TCP and TLS listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpRoute>,
    /// An HTTP route (HTTP and HTTPS listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpRoute>,
}

/// `conf.tcp`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpRoute {
    /// Rules; each only lists backends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<TcpRule>,
}

/// A TCP rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpRule {
    /// Where connections go, by weight.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Backend>,
}

/// A weighted destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backend {
    /// Relative weight; Kuma leaves 0 as written.
    #[serde(skip_serializing_if = "is_zero")]
    pub weight: u32,
    /// Tags of the destination; must include `kuma.io/service`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub destination: Tags,
}

/// `conf.http`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpRoute {
    /// Hostnames the route serves (matched against the listener hostname).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Rules, in the order written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<HttpRule>,
}

/// An HTTP rule: matches (ORed), filters and backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpRule {
    /// Any one of these selects the rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpMatch>,
    /// Request and response transformations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HttpFilter>,
    /// Where the request goes, by weight.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Backend>,
    /// The Envoy route name: Kuma names routes lowered from a
    /// `MeshHTTPRoute` rule by the hash of its matches. Never read from
    /// a `MeshGatewayRoute`.
    #[serde(skip)]
    pub name: Option<String>,
}

/// One match: every condition given must hold.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpMatch {
    /// The path condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
    /// The request method.
    #[serde(skip_serializing_if = "HttpMethod::is_none")]
    pub method: HttpMethod,
    /// Header conditions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions.
    #[serde(alias = "query_parameters", skip_serializing_if = "Vec::is_empty")]
    pub query_parameters: Vec<QueryMatch>,
}

/// `path {match, value}`.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathMatch {
    /// EXACT (default), PREFIX (whole segments) or REGEX.
    #[serde(rename = "match")]
    pub kind: PathMatchKind,
    /// The path, prefix or regular expression.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// How a path is compared.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PathMatchKind {
    /// The whole path.
    #[default]
    #[serde(rename = "EXACT")]
    Exact,
    /// A prefix of whole path segments.
    #[serde(rename = "PREFIX")]
    Prefix,
    /// An RE2 regular expression over the whole path.
    #[serde(rename = "REGEX")]
    Regex,
}

/// An HTTP method, or none.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum HttpMethod {
    #[default]
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "CONNECT")]
    Connect,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
    #[serde(rename = "OPTIONS")]
    Options,
    #[serde(rename = "PATCH")]
    Patch,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "TRACE")]
    Trace,
}

impl HttpMethod {
    fn is_none(&self) -> bool {
        *self == HttpMethod::None
    }

    /// The method as sent on the wire (`GET`), or `None` when unset.
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            HttpMethod::None => return None,
            HttpMethod::Connect => "CONNECT",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Trace => "TRACE",
        })
    }
}

/// A header condition.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeaderMatch {
    /// EXACT (default), REGEX, ABSENT or PRESENT.
    #[serde(rename = "match")]
    pub kind: HeaderMatchKind,
    /// The header name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The value or expression (empty for ABSENT/PRESENT).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// How a header is compared.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum HeaderMatchKind {
    #[default]
    #[serde(rename = "EXACT")]
    Exact,
    #[serde(rename = "REGEX")]
    Regex,
    #[serde(rename = "ABSENT")]
    Absent,
    #[serde(rename = "PRESENT")]
    Present,
    /// A value prefix: `MeshHTTPRoute` only (`MeshGatewayRoute` has none).
    #[serde(skip)]
    Prefix,
}

/// A query parameter condition.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryMatch {
    /// EXACT (default) or REGEX.
    #[serde(rename = "match")]
    pub kind: QueryMatchKind,
    /// The parameter name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The value or expression.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// How a query parameter is compared.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum QueryMatchKind {
    #[default]
    #[serde(rename = "EXACT")]
    Exact,
    #[serde(rename = "REGEX")]
    Regex,
}

/// A filter: a oneof, so exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpFilter {
    /// Set, add or remove request headers.
    #[serde(alias = "request_header", skip_serializing_if = "Option::is_none")]
    pub request_header: Option<HeaderFilter>,
    /// Set, add or remove response headers.
    #[serde(alias = "response_header", skip_serializing_if = "Option::is_none")]
    pub response_header: Option<HeaderFilter>,
    /// Copy a share of the requests to another backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Mirror>,
    /// Answer with a redirect instead of forwarding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    /// Rewrite the path or host before forwarding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
}

impl HttpFilter {
    fn set_count(&self) -> usize {
        usize::from(self.request_header.is_some())
            + usize::from(self.response_header.is_some())
            + usize::from(self.mirror.is_some())
            + usize::from(self.redirect.is_some())
            + usize::from(self.rewrite.is_some())
    }
}

/// Header changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeaderFilter {
    /// Replace (or add) these headers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<HeaderValue>,
    /// Append these headers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<HeaderValue>,
    /// Remove these headers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// A header name and value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeaderValue {
    /// The header name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The header value.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// `mirror {backend, percentage}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mirror {
    /// The mirror destination (its weight is ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// Share of requests to mirror, 0 to 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
}

/// `redirect {scheme, hostname, port, status_code, path}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Redirect {
    /// `http` or `https`; empty keeps the request's.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scheme: String,
    /// New host; empty keeps the request's.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// New port; 0 keeps Kuma's default (the listener port).
    #[serde(skip_serializing_if = "is_zero")]
    pub port: u32,
    /// 301, 302, 303, 307 or 308.
    #[serde(alias = "status_code", skip_serializing_if = "is_zero")]
    pub status_code: u32,
    /// Optional path rewrite of the redirect target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Rewrite>,
}

/// `rewrite`: a path rewrite (oneof) and the host rewrite flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Rewrite {
    /// Replace the whole path.
    #[serde(alias = "replace_full", skip_serializing_if = "Option::is_none")]
    pub replace_full: Option<String>,
    /// Replace the matched prefix.
    #[serde(alias = "replace_prefix_match", skip_serializing_if = "Option::is_none")]
    pub replace_prefix_match: Option<String>,
    /// Send the backend's hostname as `Host`.
    #[serde(alias = "host_to_backend_hostname", skip_serializing_if = "is_false")]
    pub host_to_backend_hostname: bool,
    /// A literal new `Host`: `MeshHTTPRoute`'s `urlRewrite.hostname` only.
    #[serde(skip)]
    pub hostname: Option<String>,
}

const BACKEND_TAG_RULES: TagRules<'static> =
    TagRules { require_at_least_one_tag: true, require_service: true, ..TagRules::NONE };

/// Redirect statuses Envoy's `RedirectAction` can express.
pub const REDIRECT_STATUSES: [u32; 5] = [301, 302, 303, 307, 308];

impl MeshGatewayRouteSpec {
    /// Kuma's `MeshGatewayRoute` validation, plus the checks that keep Envoy
    /// from rejecting the generated config (redirect statuses Envoy cannot
    /// express, regexes RE2 refuses, empty TCP routes, oneof violations).
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        validate_selectors(&FieldPath::root().field("selectors"), &self.selectors, TagRules::SELECTORS, &mut out);
        let path = FieldPath::root().field("conf");
        let default = Default::default();
        let conf = self.conf.as_ref().unwrap_or(&default);
        match (&conf.tcp, &conf.http) {
            (None, None) => out.add(&path, "cannot be empty"),
            (Some(_), Some(_)) => out.add_extra(&path, "only one of tcp or http can be set"),
            _ => {}
        }
        if let Some(tcp) = &conf.tcp {
            validate_tcp(&path.field("tcp"), tcp, &mut out);
        }
        if let Some(http) = &conf.http {
            validate_http(&path.field("http"), http, &mut out);
        }
        out
    }
}

// Kuma checks nothing here; an empty TCP route would give Envoy a tcp_proxy
// with no cluster.
fn validate_tcp(path: &FieldPath, tcp: &TcpRoute, out: &mut Violations) {
    if tcp.rules.is_empty() {
        out.add_extra(path.field("rules"), "cannot be empty");
    }
    for (i, rule) in tcp.rules.iter().enumerate() {
        let path = path.field("rules").index(i).field("backends");
        if rule.backends.is_empty() {
            out.add_extra(&path, "cannot be empty");
        }
        for (b, backend) in rule.backends.iter().enumerate() {
            let mut found = Violations::new();
            validate_tags(&path.index(b), &backend.destination, BACKEND_TAG_RULES, &mut found);
            out.extend_as_extra(found);
        }
        validate_weight_sum(&path, &rule.backends, out);
    }
}

/// Envoy refuses weighted clusters whose weights add up past `u32::MAX`.
fn validate_weight_sum(path: &FieldPath, backends: &[Backend], out: &mut Violations) {
    let sum: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    if sum > u64::from(u32::MAX) {
        out.add_extra(path, format!("the weights add up to {sum}; Envoy allows at most {}", u32::MAX));
    }
}

fn validate_http(path: &FieldPath, http: &HttpRoute, out: &mut Violations) {
    // Kuma leaves route hostnames unchecked; each becomes an Envoy virtual
    // host's name and domain, which must not be empty, and a Host header
    // can never hold whitespace or control characters.
    for (i, hostname) in http.hostnames.iter().enumerate() {
        if hostname.is_empty() {
            out.add_extra(path.field("hostnames").index(i), "cannot be empty");
        } else if hostname.chars().any(|c| c.is_whitespace() || c.is_control()) {
            out.add_extra(path.field("hostnames").index(i), "must not contain whitespace or control characters");
        }
    }
    if http.rules.is_empty() {
        out.add(path.field("rules"), "cannot be empty");
        return;
    }
    for (i, rule) in http.rules.iter().enumerate() {
        validate_http_rule(&path.field("rules").index(i), rule, out);
    }
}

/// The checks that keep a rule's Envoy config acceptable to Envoy, for a
/// rule lowered from a `MeshHTTPRoute`: this gateway's own rules (origin
/// `Extra`, regular expressions among them), with `path` naming the MeshHTTPRoute
/// rule. Kuma's `MeshGatewayRoute` rules do not apply to it.
pub(crate) fn envoy_checks(path: &FieldPath, rule: &HttpRule, out: &mut Violations) {
    let mut all = Violations::new();
    validate_http_rule(path, rule, &mut all);
    validate_weight_sum(&path.field("default").field("backendRefs"), &rule.backends, &mut all);
    for v in all.into_vec() {
        if v.origin == crate::violation::Origin::Extra {
            out.add_extra(v.field, v.message);
        }
    }
}

fn validate_http_rule(path: &FieldPath, rule: &HttpRule, out: &mut Violations) {
    if rule.matches.is_empty() {
        out.add(path.field("matches"), "cannot be empty");
        return;
    }
    let mut has_prefix_match = false;
    for (i, m) in rule.matches.iter().enumerate() {
        validate_match(&path.field("matches").index(i), m, out);
        has_prefix_match |= m.path.as_ref().is_some_and(|p| p.kind == PathMatchKind::Prefix);
    }

    // Kuma drops host-rewrite filters before numbering the others.
    let host_rewrite = rule.filters.iter().any(|f| f.rewrite.as_ref().is_some_and(|r| r.host_to_backend_hostname));
    let numbered = rule.filters.iter().filter(|f| !f.rewrite.as_ref().is_some_and(|r| r.host_to_backend_hostname));
    let mut has_redirect = false;
    for (i, filter) in numbered.enumerate() {
        has_redirect |= filter.redirect.is_some();
        validate_filter(&path.field("filters").index(i), filter, has_prefix_match, host_rewrite, out);
    }
    if has_redirect && rule.filters.len() != 1 {
        out.add(path.field("filters"), "redirects cannot be used with other filters");
        return;
    }
    match (rule.backends.is_empty(), has_redirect) {
        (true, false) => out.add(path.field("backends"), "cannot be empty"),
        (false, true) => out.add(path.field("backends"), "must be empty when using redirect filters"),
        _ => {}
    }
    for (i, backend) in rule.backends.iter().enumerate() {
        validate_tags(&path.field("backends").index(i), &backend.destination, BACKEND_TAG_RULES, out);
    }
    validate_weight_sum(&path.field("backends"), &rule.backends, out);
}

fn validate_match(path: &FieldPath, m: &HttpMatch, out: &mut Violations) {
    if m.path.is_none() && m.method == HttpMethod::None && m.headers.is_empty() && m.query_parameters.is_empty() {
        out.add(path, "cannot be empty");
    }
    if let Some(p) = &m.path {
        // Kuma reports path problems at `matches[i].value`, without `.path`.
        match p.kind {
            PathMatchKind::Regex => {
                if p.value.is_empty() {
                    out.add(path.field("value"), "cannot be empty");
                } else {
                    validate_regex(&path.field("value"), &p.value, out);
                }
            }
            PathMatchKind::Prefix if p.value == "/" => {}
            PathMatchKind::Prefix | PathMatchKind::Exact => {
                if !p.value.starts_with('/') {
                    out.add(path.field("value"), "must be an absolute path");
                }
            }
        }
    }
    for (i, h) in m.headers.iter().enumerate() {
        let path = path.field("headers").index(i);
        if h.name.is_empty() {
            out.add(path.field("name"), "cannot be empty");
        }
        validate_header_text(&path.field("name"), &h.name, out);
        match h.kind {
            HeaderMatchKind::Absent | HeaderMatchKind::Present => {
                if !h.value.is_empty() {
                    out.add(path.field("value"), "cannot be set");
                }
            }
            HeaderMatchKind::Exact | HeaderMatchKind::Regex | HeaderMatchKind::Prefix => {
                if h.value.is_empty() {
                    out.add(path.field("value"), "cannot be empty");
                } else if h.kind == HeaderMatchKind::Regex {
                    validate_regex(&path.field("value"), &h.value, out);
                }
            }
        }
    }
    for (i, q) in m.query_parameters.iter().enumerate() {
        let path = path.field("query_parameters").index(i);
        if q.name.is_empty() {
            out.add(path.field("name"), "cannot be empty");
        }
        if q.value.is_empty() {
            out.add(path.field("value"), "cannot be empty");
        } else if q.kind == QueryMatchKind::Regex {
            validate_regex(&path.field("value"), &q.value, out);
        }
    }
}

fn validate_filter(path: &FieldPath, f: &HttpFilter, has_prefix_match: bool, host_rewrite: bool, out: &mut Violations) {
    match f.set_count() {
        0 => out.add_extra(path, "cannot be empty"),
        1 => {}
        _ => out.add_extra(path, "only one filter type can be set"),
    }
    if let Some(r) = &f.request_header {
        validate_header_filter(&path.field("request_header"), r, true, host_rewrite, out);
    }
    // Kuma leaves response headers unchecked; Envoy rejects empty names.
    if let Some(r) = &f.response_header {
        let mut found = Violations::new();
        validate_header_filter(&path.field("response_header"), r, false, false, &mut found);
        out.extend_as_extra(found);
    }
    if let Some(r) = &f.redirect {
        let path = path.field("redirect");
        if r.port > 0 {
            validate_port(&path.field("port"), r.port, out);
        }
        // Envoy puts these in the Location header: no NUL, CR or LF.
        validate_header_text(&path.field("hostname"), &r.hostname, out);
        if let Some(rewrite) = &r.path {
            validate_rewrite_text(&path.field("path"), rewrite, out);
        }
        if !(300..=308).contains(&r.status_code) {
            out.add(path.field("status_code"), "must be in the range [300, 308]");
        } else if !REDIRECT_STATUSES.contains(&r.status_code) {
            out.add_extra(
                path.field("status_code"),
                "must be one of 301, 302, 303, 307 or 308 (Envoy cannot send other redirects)",
            );
        }
    }
    if let Some(m) = &f.mirror {
        let path = path.field("mirror");
        match m.percentage {
            None => out.add(path.field("percentage"), "cannot be empty"),
            Some(p) if !(0.0..=100.0).contains(&p) => {
                out.add(path.field("percentage"), "has to be in [0.0 - 100.0] range")
            }
            Some(_) => {}
        }
        match &m.backend {
            None => out.add(path.field("backend"), "cannot be empty"),
            Some(b) => validate_tags(&path.field("backend"), &b.destination, BACKEND_TAG_RULES, out),
        }
    }
    if let Some(r) = &f.rewrite {
        validate_rewrite_text(&path.field("rewrite"), r, out);
        if r.replace_prefix_match.is_some() && !has_prefix_match {
            out.add(path.field("rewrite").field("replacePrefixMatch"), "cannot be used without a match on path prefix");
        }
        if r.replace_full.is_some() && r.replace_prefix_match.is_some() {
            out.add_extra(path.field("rewrite"), "only one of replaceFull or replacePrefixMatch can be set");
        }
    }
}

/// Envoy refuses NUL, CR and LF in header names and values.
pub(crate) fn validate_header_text(path: &FieldPath, text: &str, out: &mut Violations) {
    if text.contains(['\0', '\r', '\n']) {
        out.add_extra(path, "must not contain NUL, CR or LF");
    }
}

/// A rewritten path becomes the request's `:path`: no NUL, CR or LF.
fn validate_rewrite_text(path: &FieldPath, r: &Rewrite, out: &mut Violations) {
    if let Some(full) = &r.replace_full {
        validate_header_text(&path.field("replaceFull"), full, out);
    }
    if let Some(prefix) = &r.replace_prefix_match {
        validate_header_text(&path.field("replacePrefixMatch"), prefix, out);
    }
}

/// Envoy's substitutions in added header values that this gateway accepts;
/// any other `%` must be written `%%`.
const HEADER_SUBSTITUTIONS: [&str; 8] = [
    "DOWNSTREAM_REMOTE_ADDRESS",
    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_LOCAL_ADDRESS",
    "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_LOCAL_PORT",
    "HOSTNAME",
    "PROTOCOL",
    "START_TIME",
];

/// Envoy reads `%...%` in added header values as a substitution and
/// refuses the route when it does not know the command.
pub(crate) fn validate_header_value_format(path: &FieldPath, value: &str, out: &mut Violations) {
    let mut rest = value;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            rest = tail;
            continue;
        }
        let command = after.find('%').map(|end| &after[..end]);
        let known = command.is_some_and(|c| {
            HEADER_SUBSTITUTIONS.contains(&c)
                || c.strip_prefix("REQ(").and_then(|h| h.strip_suffix(')')).is_some_and(|h| {
                    !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        });
        match (known, command) {
            (true, Some(c)) => rest = &after[c.len() + 1..],
            _ => {
                out.add_extra(
                    path,
                    "a % starts an Envoy substitution (%DOWNSTREAM_REMOTE_ADDRESS%, %REQ(x-id)%, …); write %% for a literal %",
                );
                return;
            }
        }
    }
}

/// `host` (in any case) or `:authority`: a request header filter's `set` of
/// it rewrites the request's host rather than adding a header.
pub fn is_host_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("host") || name == ":authority"
}

fn validate_header_filter(path: &FieldPath, r: &HeaderFilter, request: bool, host_rewrite: bool, out: &mut Violations) {
    if r.set.is_empty() && r.add.is_empty() && r.remove.is_empty() {
        out.add(path, "cannot be empty");
    }
    // Envoy refuses routes that modify or remove pseudo-headers or `host`;
    // only a request filter's `set` of the host is allowed (it becomes the
    // route's host rewrite).
    let protected = |name: &str| name.starts_with(':') || name.eq_ignore_ascii_case("host");
    for (field, headers) in [("set", &r.set), ("add", &r.add)] {
        let path = path.field(field);
        for (i, h) in headers.iter().enumerate() {
            let allowed = request && field == "set" && is_host_header(&h.name);
            if protected(&h.name) && !allowed {
                out.add_extra(path.index(i).field("name"), "pseudo-headers and host may not be modified here");
            }
            validate_header_text(&path.index(i).field("name"), &h.name, out);
            validate_header_text(&path.index(i).field("value"), &h.value, out);
            if !allowed {
                validate_header_value_format(&path.index(i).field("value"), &h.value, out);
            }
            match h.name.as_str() {
                ":authority" | "Host" | "host" if host_rewrite => out.add(
                    path.index(i),
                    format!(
                        "cannot modify '{}' header, when route has set 'rewrite.host_to_backend_hostname' option",
                        h.name
                    ),
                ),
                "" => out.add(path.index(i).field("name"), "cannot be empty"),
                _ => {}
            }
            if h.value.is_empty() {
                out.add(path.index(i).field("value"), "cannot be empty");
            }
        }
    }
    for (i, h) in r.remove.iter().enumerate() {
        if h.is_empty() {
            out.add(path.field("remove").index(i), "cannot be empty");
        }
        if protected(h) {
            out.add_extra(path.field("remove").index(i), "pseudo-headers and host may not be removed");
        }
        validate_header_text(&path.field("remove").index(i), h, out);
    }
}

/// Envoy compiles `safe_regex` with RE2; refuse what RE2 or Envoy would
/// refuse: syntax errors (backreferences and look-around are not RE2),
/// repetition counts over 1,000, and programs over Envoy's size limit.
fn validate_regex(path: &FieldPath, expr: &str, out: &mut Violations) {
    if let Err(e) = crate::re2::check(expr) {
        out.add_extra(path, e);
    }
}
