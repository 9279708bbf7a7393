//! Generators of Kuma 2.x documents for the whole-set differential test
//! (`envoy_differential_sets.rs`): MeshHTTPRoutes with generated matches,
//! filters and weighted backends, a MeshTCPRoute, and the targetRef
//! policies with generated durations, counts, statuses, percentages and
//! headers. Valid values most of the time, hostile ones otherwise, as the
//! legacy generators there.

use proptest::prelude::*;

use super::{INDEX, NAME, count, duration, host, mostly, path, percent, port_number, q, status};

/// Header names as MeshHTTPRoute and the policies take them.
const NAMES: &[&str] = &["x-a", "x-b", "X-C", ":path", "host", "x y", "x\r", "x\u{0}", "te", ""];
const VALUES: &[&str] = &["v", "", " v ", "é", "%%", "50%", "%START_TIME%", "%NOPE%", "a\nb", "\u{7f}", "a,b"];

fn header_name() -> impl Strategy<Value = &'static str> {
    mostly(prop::sample::select(&["x-a", "x-b", "x-c"][..]), prop::sample::select(NAMES))
}

fn header_value() -> impl Strategy<Value = &'static str> {
    mostly(prop::sample::select(&["v", "1", "a,b"][..]), prop::sample::select(VALUES))
}

/// `{name: N, value: V}`.
fn name_value() -> impl Strategy<Value = String> {
    (header_name(), header_value()).prop_map(|(n, v)| format!("{{name: {}, value: {}}}", q(n), q(v)))
}

fn backend_ref() -> impl Strategy<Value = String> {
    (prop::sample::select(&["web", "web-v2", "ext", "gone"][..]), prop::option::of(count())).prop_map(|(s, w)| {
        let target = match s {
            "web-v2" => format!("kind: MeshServiceSubset, name: web{INDEX}, tags: {{version: v2}}"),
            s => format!("kind: MeshService, name: {s}{INDEX}"),
        };
        match w {
            Some(w) => format!("{{{target}, weight: {w}}}"),
            None => format!("{{{target}}}"),
        }
    })
}

fn route_match() -> impl Strategy<Value = String> {
    (
        prop::option::weighted(0.9, (prop::sample::select(&["Exact", "PathPrefix", "RegularExpression"][..]), path())),
        prop::option::of(prop::sample::select(&["GET", "POST", "CONNECT"][..])),
        prop::option::weighted(
            0.3,
            (
                prop::sample::select(&["Exact", "Prefix", "RegularExpression", "Present", "Absent"][..]),
                header_name(),
                header_value(),
            ),
        ),
        prop::option::weighted(0.2, (prop::sample::select(&["Exact", "RegularExpression"][..]), header_value())),
    )
        .prop_map(|(p, method, header, query)| {
            let mut fields = Vec::new();
            if let Some((kind, value)) = p {
                let value = if kind == "RegularExpression" { regex::escape(&value) } else { value };
                fields.push(format!("path: {{type: {kind}, value: {}}}", q(&value)));
            }
            if let Some(m) = method {
                fields.push(format!("method: {m}"));
            }
            if let Some((kind, name, value)) = header {
                let value = match kind {
                    "Present" | "Absent" => String::new(),
                    "RegularExpression" => format!(", value: {}", q(&regex::escape(value))),
                    _ => format!(", value: {}", q(value)),
                };
                fields.push(format!("headers: [{{type: {kind}, name: {}{value}}}]", q(name)));
            }
            if let Some((kind, value)) = query {
                let value = if kind == "RegularExpression" { regex::escape(value) } else { value.to_string() };
                fields.push(format!("queryParams: [{{type: {kind}, name: q, value: {}}}]", q(&value)));
            }
            format!("{{{}}}", fields.join(", "))
        })
}

fn path_rewrite() -> impl Strategy<Value = String> {
    (prop::bool::ANY, path()).prop_map(|(full, p)| {
        if full {
            format!("{{type: ReplaceFullPath, replaceFullPath: {}}}", q(&p))
        } else {
            format!("{{type: ReplacePrefixMatch, replacePrefixMatch: {}}}", q(&p))
        }
    })
}

fn filter() -> impl Strategy<Value = String> {
    let modifier = |kind: &'static str, field: &'static str| {
        (
            prop::collection::vec(name_value(), 0..2),
            prop::collection::vec(name_value(), 0..2),
            prop::option::of(header_name()),
        )
            .prop_map(move |(set, add, remove)| {
                let mut fields = vec![format!("set: [{}]", set.join(", ")), format!("add: [{}]", add.join(", "))];
                if let Some(r) = remove {
                    fields.push(format!("remove: [{}]", q(r)));
                }
                format!("{{type: {kind}, {field}: {{{}}}}}", fields.join(", "))
            })
    };
    prop_oneof![
        modifier("RequestHeaderModifier", "requestHeaderModifier"),
        modifier("ResponseHeaderModifier", "responseHeaderModifier"),
        (
            prop::option::of(prop::sample::select(&["http", "https"][..])),
            prop::option::of(host()),
            prop::option::of(port_number()),
            prop::option::of(status()),
            prop::option::of(path_rewrite()),
        )
            .prop_map(|(scheme, hostname, port, code, p)| {
                let mut fields = Vec::new();
                if let Some(s) = scheme {
                    fields.push(format!("scheme: {s}"));
                }
                if let Some(h) = hostname {
                    fields.push(format!("hostname: {}", q(&h)));
                }
                if let Some(p) = port {
                    fields.push(format!("port: {p}"));
                }
                if let Some(c) = code {
                    fields.push(format!("statusCode: {c}"));
                }
                if let Some(p) = p {
                    fields.push(format!("path: {p}"));
                }
                format!("{{type: RequestRedirect, requestRedirect: {{{}}}}}", fields.join(", "))
            }),
        (prop::option::of(host()), prop::option::of(path_rewrite()), prop::bool::ANY).prop_map(|(h, p, to_backend)| {
            let mut fields = Vec::new();
            if let Some(h) = h {
                fields.push(format!("hostname: {}", q(&h)));
            }
            if let Some(p) = p {
                fields.push(format!("path: {p}"));
            }
            if to_backend {
                fields.push("hostToBackendHostname: true".into());
            }
            format!("{{type: URLRewrite, urlRewrite: {{{}}}}}", fields.join(", "))
        }),
        (backend_ref(), prop::option::of(percent())).prop_map(|(b, p)| {
            let pct = p.map(|p| format!(", percentage: {}", q(p))).unwrap_or_default();
            format!("{{type: RequestMirror, requestMirror: {{backendRef: {b}{pct}}}}}")
        }),
    ]
}

fn rule() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(route_match(), 1..3),
        prop::collection::vec(filter(), 0..2),
        prop::collection::vec(backend_ref(), 0..3),
    )
        .prop_map(|(matches, filters, backends)| {
            format!(
                "    - matches: [{}]\n      default: {{filters: [{}], backendRefs: [{}]}}\n",
                matches.join(", "),
                filters.join(", "),
                backends.join(", ")
            )
        })
}

/// A MeshHTTPRoute on the set's gateway (one `to` entry per hostnames set).
pub(super) fn http_route() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::collection::vec(host(), 0..3), prop::collection::vec(rule(), 1..3)), 1..3).prop_map(
        |entries| {
            let mut out = format!(
                "type: MeshHTTPRoute\nmesh: m{INDEX}\nname: http{INDEX}\nspec:\n  targetRef: {{kind: MeshGateway, name: gw{INDEX}}}\n  to:\n"
            );
            for (hosts, rules) in entries {
                let hosts: Vec<String> = hosts.iter().map(|h| q(h)).collect();
                out += &format!("  - targetRef: {{kind: Mesh}}\n    hostnames: [{}]\n    rules:\n{}", hosts.join(", "), rules.concat());
            }
            out
        },
    )
}

/// A MeshTCPRoute on the set's gateway.
pub(super) fn tcp_route() -> impl Strategy<Value = String> {
    prop::collection::vec(backend_ref(), 1..3).prop_map(|b| {
        format!(
            "type: MeshTCPRoute\nmesh: m{INDEX}\nname: tcp{INDEX}\nspec:\n  targetRef: {{kind: MeshGateway, name: gw{INDEX}}}\n  to:\n  - targetRef: {{kind: Mesh}}\n    rules: [{{default: {{backendRefs: [{}]}}}}]\n",
            b.join(", ")
        )
    })
}

/// One targetRef policy on the set's gateway (`to: Mesh`, or the web
/// service for the kinds that take one), named by its kind.
pub(super) fn policy() -> impl Strategy<Value = String> {
    let head = |kind: &str| {
        format!(
            "type: {kind}\nmesh: m{INDEX}\nname: {}-{INDEX}-{NAME}\nspec:\n  targetRef: {{kind: MeshGateway, name: gw{INDEX}}}\n",
            kind.to_lowercase()
        )
    };
    let to = |target: &str, conf: String| format!("  to:\n  - targetRef: {target}\n    default: {conf}\n");
    let web = format!("{{kind: MeshService, name: web{INDEX}}}");
    prop_oneof![
        (duration(), duration(), duration(), duration(), duration()).prop_map(move |(c, i, r, s, m)| head("MeshTimeout")
            + &to("{kind: Mesh}", format!(
                "{{connectionTimeout: {c}, idleTimeout: {i}, http: {{requestTimeout: {r}, streamIdleTimeout: {s}, maxStreamDuration: {m}, maxConnectionDuration: {m}}}}}"
            ))),
        (count(), duration(), duration(), duration(), status(), prop::sample::select(&["5xx", "GatewayError", "Reset", "HttpMethodGet", "EnvoyRatelimited"][..]))
            .prop_map(move |(n, per_try, base, max, code, on)| head("MeshRetry")
                + &to("{kind: Mesh}", format!(
                    "{{tcp: {{maxConnectAttempt: {n}}}, http: {{numRetries: {n}, perTryTimeout: {per_try}, backOff: {{baseInterval: {base}, maxInterval: {max}}}, retryOn: [{on}, '{code}']}}}}"
                ))),
        (duration(), duration(), count(), count(), count(), percent()).prop_map({
            let web = web.clone();
            move |(interval, ejection, pct, conns, consecutive, panic)| {
                head("MeshCircuitBreaker")
                    + &to(&web, format!(
                        "{{connectionLimits: {{maxConnections: {conns}, maxPendingRequests: {conns}, maxRequests: {conns}, maxRetries: {conns}}}, outlierDetection: {{interval: {interval}, baseEjectionTime: {ejection}, maxEjectionPercent: {pct}, healthyPanicThreshold: {}, detectors: {{totalFailures: {{consecutive: {consecutive}}}, failurePercentage: {{requestVolume: {conns}, minimumHosts: {consecutive}, threshold: {pct}}}}}}}}}",
                        q(panic)
                    ))
            }
        }),
        ((duration(), duration()), count(), path(), status(), prop::collection::vec(name_value(), 0..2)).prop_map({
            let web = web.clone();
            move |((interval, timeout), n, p, code, headers)| {
                head("MeshHealthCheck")
                    + &to(&web, format!(
                        "{{interval: {interval}, timeout: {timeout}, unhealthyThreshold: {n}, healthyThreshold: {n}, http: {{path: {}, expectedStatuses: [{code}], requestHeadersToAdd: {{set: [{}]}}}}, tcp: {{send: ping}}}}",
                        q(&p),
                        headers.join(", ")
                    ))
            }
        }),
        (count(), duration(), status(), prop::collection::vec(name_value(), 0..2)).prop_map(move |(n, interval, code, headers)| head("MeshRateLimit")
            + &to("{kind: Mesh}", format!(
                "{{local: {{http: {{requestRate: {{num: {n}, interval: {interval}}}, onRateLimit: {{status: {code}, headers: {{add: [{}]}}}}}}}}}}",
                headers.join(", ")
            ))),
        (status(), percent(), duration(), prop::sample::select(&["100Mbps", "1kbps", "0kbps", "1Gbps", "5xbps", "99999999999999999999Gbps"][..]))
            .prop_map(move |(code, pct, delay, limit)| head("MeshFaultInjection")
                + &to("{kind: Mesh}", format!(
                    "{{http: [{{abort: {{httpStatus: {code}, percentage: {}}}, delay: {{value: {delay}, percentage: {}}}, responseBandwidth: {{limit: {limit}, percentage: {}}}}}]}}",
                    q(pct), q(pct), q(pct)
                ))),
        header_value().prop_map(move |v| head("MeshAccessLog")
            + &to("{kind: Mesh}", format!(
                "{{backends: [{{type: File, file: {{path: /tmp/access.log, format: {{type: Plain, plain: {}}}}}}}]}}",
                q(&format!("%START_TIME% {v}"))
            ))),
    ]
}
