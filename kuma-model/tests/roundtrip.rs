//! Any resource serialises and parses back to the same value, in the
//! Universal and Kubernetes forms, with camelCase and snake_case keys.

use kuma_model::gateway::{
    Listener, ListenerResources, ListenerTls, MeshGatewayConf, MeshGatewaySpec, Protocol, TlsMode,
};
use kuma_model::policy::{ConnectionPolicy, RetryConf, RetryHttp, TimeoutConf, TimeoutHttp};
use kuma_model::route::{
    Backend, HeaderFilter, HeaderMatch, HeaderMatchKind, HeaderValue, HttpFilter, HttpMatch, HttpMethod, HttpRoute,
    HttpRule, MeshGatewayRouteSpec, Mirror, PathMatch, PathMatchKind, QueryMatch, QueryMatchKind, Redirect, Rewrite,
    RouteConf, TcpRoute, TcpRule,
};
use kuma_model::{DataSource, Duration, Kind, Selector, Spec, Tags, UnknownFields, read_file};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn word() -> impl Strategy<Value = String> + Clone {
    "[a-z][a-z0-9-]{0,8}"
}

fn tags() -> impl Strategy<Value = Tags> {
    prop::collection::btree_map(
        prop_oneof![Just("kuma.io/service".to_string()), Just("version".into()), word()],
        prop_oneof![word(), Just("*".to_string()), Just("http/8080".to_string())],
        0..3,
    )
}

fn selectors() -> impl Strategy<Value = Vec<Selector>> {
    prop::collection::vec(tags().prop_map(|match_tags| Selector { match_tags }), 0..3)
}

fn listener() -> impl Strategy<Value = Listener> {
    (
        prop_oneof![Just(String::new()), Just("*".to_string()), word().prop_map(|w| format!("{w}.example.com"))],
        0u32..70000,
        prop_oneof![
            Just(Protocol::None),
            Just(Protocol::Http),
            Just(Protocol::Https),
            Just(Protocol::Tcp),
            Just(Protocol::Tls)
        ],
        prop::option::of((
            prop_oneof![Just(TlsMode::None), Just(TlsMode::Terminate), Just(TlsMode::Passthrough)],
            prop::collection::vec(
                prop_oneof![
                    word().prop_map(DataSource::Secret),
                    word().prop_map(DataSource::File),
                    prop::collection::vec(any::<u8>(), 1..16).prop_map(DataSource::Inline),
                    word().prop_map(DataSource::InlineString),
                ],
                0..3,
            ),
        )),
        tags(),
        any::<bool>(),
        prop::option::of(0u32..100),
    )
        .prop_map(|(hostname, port, protocol, tls, tags, cross_mesh, limit)| Listener {
            hostname,
            port,
            protocol,
            tls: tls.map(|(mode, certificates)| ListenerTls { mode, certificates, options: None }),
            tags,
            cross_mesh,
            resources: limit.map(|connection_limit| ListenerResources { connection_limit }),
        })
}

fn gateway() -> impl Strategy<Value = Spec> {
    (selectors(), tags(), prop::option::of(prop::collection::vec(listener(), 0..4))).prop_map(
        |(selectors, tags, listeners)| {
            Spec::MeshGateway(MeshGatewaySpec {
                selectors,
                tags,
                conf: listeners.map(|listeners| MeshGatewayConf { listeners }),
            })
        },
    )
}

fn backend() -> impl Strategy<Value = Backend> {
    (0u32..5, tags()).prop_map(|(weight, destination)| Backend { weight, destination })
}

fn http_match() -> impl Strategy<Value = HttpMatch> {
    (
        prop::option::of((
            prop_oneof![Just(PathMatchKind::Exact), Just(PathMatchKind::Prefix), Just(PathMatchKind::Regex)],
            "/[a-z/]{0,6}",
        )),
        prop_oneof![Just(HttpMethod::None), Just(HttpMethod::Get), Just(HttpMethod::Post)],
        prop::collection::vec(
            (
                prop_oneof![Just(HeaderMatchKind::Exact), Just(HeaderMatchKind::Regex), Just(HeaderMatchKind::Present)],
                word(),
                word(),
            ),
            0..2,
        ),
        prop::collection::vec((any::<bool>(), word(), word()), 0..2),
    )
        .prop_map(|(path, method, headers, query)| HttpMatch {
            path: path.map(|(kind, value)| PathMatch { kind, value }),
            method,
            headers: headers.into_iter().map(|(kind, name, value)| HeaderMatch { kind, name, value }).collect(),
            query_parameters: query
                .into_iter()
                .map(|(regex, name, value)| QueryMatch {
                    kind: if regex { QueryMatchKind::Regex } else { QueryMatchKind::Exact },
                    name,
                    value,
                })
                .collect(),
        })
}

fn header_filter() -> impl Strategy<Value = HeaderFilter> {
    (prop::collection::vec((word(), word()), 0..2), prop::collection::vec(word(), 0..2)).prop_map(|(set, remove)| {
        HeaderFilter {
            set: set.into_iter().map(|(name, value)| HeaderValue { name, value }).collect(),
            add: Vec::new(),
            remove,
        }
    })
}

fn filter() -> impl Strategy<Value = HttpFilter> {
    prop_oneof![
        header_filter().prop_map(|h| HttpFilter { request_header: Some(h), ..HttpFilter::default() }),
        header_filter().prop_map(|h| HttpFilter { response_header: Some(h), ..HttpFilter::default() }),
        (prop::option::of(backend()), prop::option::of(0u32..800)).prop_map(|(backend, p)| HttpFilter {
            mirror: Some(Mirror { backend, percentage: p.map(|p| f64::from(p) / 8.0) }),
            ..HttpFilter::default()
        }),
        (word(), 0u32..70000, 300u32..310, prop::option::of("/[a-z]{0,4}")).prop_map(
            |(hostname, port, status_code, full)| {
                HttpFilter {
                    redirect: Some(Redirect {
                        scheme: "https".into(),
                        hostname,
                        port,
                        status_code,
                        path: full.map(|f| Rewrite { replace_full: Some(f), ..Rewrite::default() }),
                    }),
                    ..HttpFilter::default()
                }
            }
        ),
        (prop::option::of("/[a-z]{0,4}"), any::<bool>()).prop_map(|(prefix, host)| HttpFilter {
            rewrite: Some(Rewrite {
                replace_prefix_match: prefix,
                host_to_backend_hostname: host,
                ..Rewrite::default()
            }),
            ..HttpFilter::default()
        }),
    ]
}

fn route() -> impl Strategy<Value = Spec> {
    let http = (
        prop::collection::vec(word(), 0..2),
        prop::collection::vec(
            (
                prop::collection::vec(http_match(), 0..3),
                prop::collection::vec(filter(), 0..3),
                prop::collection::vec(backend(), 0..3),
            )
                .prop_map(|(matches, filters, backends)| HttpRule {
                    matches,
                    filters,
                    backends,
                    name: None,
                }),
            0..3,
        ),
    )
        .prop_map(|(hostnames, rules)| RouteConf { http: Some(HttpRoute { hostnames, rules }), tcp: None });
    let tcp =
        prop::collection::vec(prop::collection::vec(backend(), 0..3).prop_map(|backends| TcpRule { backends }), 0..3)
            .prop_map(|rules| RouteConf { tcp: Some(TcpRoute { rules }), http: None });
    (selectors(), prop::option::of(prop_oneof![http, tcp]))
        .prop_map(|(selectors, conf)| Spec::MeshGatewayRoute(MeshGatewayRouteSpec { selectors, conf }))
}

fn duration() -> impl Strategy<Value = Duration> {
    (0i64..100_000).prop_map(Duration::from_millis)
}

fn policies() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (selectors(), selectors(), prop::option::of(duration()), prop::option::of(duration())).prop_map(
            |(sources, destinations, connect, request)| Spec::Timeout(ConnectionPolicy {
                sources,
                destinations,
                conf: Some(TimeoutConf {
                    connect_timeout: connect,
                    http: request.map(|r| TimeoutHttp { request_timeout: Some(r), ..TimeoutHttp::default() }),
                    ..TimeoutConf::default()
                }),
            })
        ),
        (selectors(), selectors(), prop::option::of(0u32..10), prop::option::of(duration())).prop_map(
            |(sources, destinations, num_retries, per_try_timeout)| Spec::Retry(ConnectionPolicy {
                sources,
                destinations,
                conf: Some(RetryConf {
                    http: Some(RetryHttp {
                        num_retries,
                        per_try_timeout,
                        retriable_status_codes: vec![503],
                        ..RetryHttp::default()
                    }),
                    ..RetryConf::default()
                }),
            })
        ),
    ]
}

fn snake(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Rewrites field names to snake_case. Tag maps are left alone, and so are
/// the fields whose proto names are camelCase themselves (Kuma's protojson
/// only knows them that way).
fn to_snake(value: &Value, in_tags: bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let is_tags = matches!(k.as_str(), "tags" | "match" | "destination");
                    let key = if in_tags || matches!(k.as_str(), "crossMesh" | "inlineString") {
                        k.clone()
                    } else {
                        snake(k)
                    };
                    (key, to_snake(v, is_tags))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| to_snake(v, false)).collect()),
        other => other.clone(),
    }
}

fn document(spec: &Spec, kubernetes: bool, snake_case: bool) -> String {
    let mut body = spec.to_json();
    if snake_case {
        body = to_snake(&body, false);
    }
    let kind = spec.kind().as_str();
    let mut doc = Map::new();
    if kubernetes {
        doc.insert("apiVersion".into(), "kuma.io/v1alpha1".into());
        doc.insert("kind".into(), kind.into());
        doc.insert("mesh".into(), "demo".into());
        doc.insert("metadata".into(), serde_json::json!({"name": "res"}));
        doc.insert("spec".into(), body);
    } else {
        doc.insert("type".into(), kind.into());
        doc.insert("name".into(), "res".into());
        doc.insert("mesh".into(), "demo".into());
        if let Value::Object(fields) = body {
            doc.extend(fields);
        }
    }
    serde_yaml::to_string(&Value::Object(doc)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn resources_round_trip(
        spec in prop_oneof![gateway(), route(), policies()],
        kubernetes in any::<bool>(),
        snake_case in any::<bool>(),
    ) {
        let text = document(&spec, kubernetes, snake_case);
        let parsed = read_file("doc.yaml", &text, UnknownFields::Reject);
        prop_assert!(parsed.diagnostics().is_empty(), "{text}\n{:?}", parsed.diagnostics());
        prop_assert_eq!(parsed.resources().len(), 1);
        let r = &parsed.resources()[0];
        prop_assert_eq!(r.spec.kind(), spec.kind());
        prop_assert_eq!(&r.meta.name, "res");
        prop_assert_eq!(&r.meta.mesh, "demo");
        prop_assert_eq!(&r.spec, &spec, "{}", text);
        prop_assert!(Kind::parse(spec.kind().as_str()).is_some());
    }
}

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("type: MeshGateway\n"),
            Just("type: MeshGatewayRoute\n"),
            Just("apiVersion: kuma.io/v1alpha1\nkind: Dataplane\n"),
            Just("name: x\n"),
            Just("creationTime: 2024-01-01T00:00:00+0é:00\n"),
            Just("selectors:\n- match:\n    kuma.io/service: gw\n"),
            Just("conf:\n"),
            Just("  listeners:\n"),
            Just("  - port: "),
            Just("  http:\n    rules:\n    - matches:\n      - path: {match: REGEX, value: '(['}\n"),
            Just("99999999999999999999"),
            Just("-1"),
            Just("é"),
            Just("[{"),
            Just("}]"),
            Just("\n"),
            Just("---\n"),
            Just("  "),
            Just(": "),
            Just("&a "),
            Just("*a"),
            Just("'"),
            Just("\t"),
        ],
        0..30,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Broken input is reported, never a panic.
    #[test]
    fn any_text_is_reported_not_panicked(text in yamlish()) {
        let _ = kuma_model::ResourceSet::load([("x.yaml", text.as_str())], UnknownFields::Reject);
        let _ = kuma_model::ResourceSet::load([("x.yaml", text.as_str())], UnknownFields::Ignore);
    }
}
