//! Kuma v2.14.3's validator rules for the Kuma 2.x kinds (MeshHTTPRoute,
//! MeshTCPRoute, MeshTimeout, MeshRetry, MeshCircuitBreaker and their
//! `targetRef`s), with Kuma's exact fields (relative to `spec`) and
//! messages, from the rules listed in
//! `../shared/peer/kuma-policies/README.md` and Kuma's validator sources.

use kuma_model::{Origin, Severity, UnknownFields, parse_file};

/// Kuma's violations for one document, `field: message`, in the loader's
/// order (by line, then field).
fn kuma(doc: &str) -> Vec<String> {
    let parsed = parse_file("t.yaml", doc, UnknownFields::Reject);
    parsed
        .diagnostics()
        .iter()
        .filter(|d| d.severity == Severity::Error && d.origin == Origin::Kuma)
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect()
}

fn doc(kind: &str, spec: &str) -> String {
    format!("type: {kind}\nname: p\nmesh: default\nspec:\n{spec}")
}

fn assert_valid(kind: &str, spec: &str) {
    let parsed = parse_file("t.yaml", &doc(kind, spec), UnknownFields::Reject);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics());
    assert_eq!(parsed.resources().len(), 1);
}

const GATEWAY: &str = "  targetRef: {kind: MeshGateway, name: edge}\n";

#[test]
fn target_refs() {
    assert_eq!(
        kuma(&doc("MeshHTTPRoute", "  targetRef: {kind: MeshGateway}\n")),
        ["targetRef.name: must be set when kind is MeshGateway"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTimeout",
            "  targetRef: {kind: Mesh, name: x}\n  to: [{targetRef: {kind: Mesh}, default: {idleTimeout: 1s}}]\n"
        )),
        ["targetRef.name: using name with kind Mesh is not yet supported"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshRetry",
            "  targetRef: {kind: Mesh, proxyTypes: []}\n  to: [{targetRef: {kind: Mesh}, default: {tcp: {maxConnectAttempt: 1}}}]\n"
        )),
        ["targetRef.proxyTypes: must be undefined or have at least one element"]
    );
    assert_eq!(
        kuma(&doc("MeshHTTPRoute", "  targetRef: {kind: MeshGateway, name: edge, mesh: other}\n")),
        ["targetRef.mesh: must not be set with kind MeshGateway"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTimeout",
            "  targetRef: {kind: MeshService}\n  to: [{targetRef: {kind: Mesh}, default: {idleTimeout: 1s}}]\n"
        )),
        ["targetRef: name or labels must be set when kind is MeshService"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshCircuitBreaker",
            "  targetRef: {kind: MeshHTTPRoute, name: r}\n  to: [{targetRef: {kind: Mesh}, default: {connectionLimits: {maxConnections: 1}}}]\n"
        )),
        ["targetRef.kind: value 'MeshHTTPRoute' is not supported"]
    );
    // Listener tags are allowed on a MeshGateway target.
    assert_valid(
        "MeshTimeout",
        "  targetRef: {kind: MeshGateway, name: edge, tags: {port: http}}\n  to: [{targetRef: {kind: Mesh}, default: {idleTimeout: 1s}}]\n",
    );
}

#[test]
fn mesh_http_route() {
    let rule = "    rules: [{matches: [{path: {type: PathPrefix, value: /}}], default: {backendRefs: [{kind: MeshService, name: web}]}}]\n";
    assert_valid(
        "MeshHTTPRoute",
        &format!("{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    hostnames: [a.example.com]\n{rule}"),
    );
    assert_eq!(
        kuma(&doc(
            "MeshHTTPRoute",
            &format!("{GATEWAY}  to:\n  - targetRef: {{kind: MeshService, name: web}}\n{rule}")
        )),
        ["to[0].targetRef.kind: value 'MeshService' is not supported"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshHTTPRoute",
            &format!(
                "  targetRef: {{kind: Mesh}}\n  to:\n  - targetRef: {{kind: MeshService, name: web}}\n    hostnames: [a]\n{rule}"
            )
        )),
        ["to[0].hostnames: must not be defined"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshHTTPRoute",
            &format!(
                "{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules: [{{matches: [{{path: {{type: PathPrefix, value: /a}}}}], default: {{}}}}]\n"
            )
        )),
        ["to[0].rules[0].default.backendRefs: must not be empty"]
    );
    // A redirect needs no backend.
    assert_valid(
        "MeshHTTPRoute",
        &format!(
            "{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules: [{{matches: [{{path: {{type: Exact, value: /a}}}}], default: {{filters: [{{type: RequestRedirect, requestRedirect: {{statusCode: 301}}}}]}}}}]\n"
        ),
    );
    assert_eq!(
        kuma(&doc(
            "MeshHTTPRoute",
            &format!(
                "{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules: [{{matches: [{{path: {{type: PathPrefix, value: /a/}}}}, {{path: {{type: Exact, value: b}}}}], default: {{backendRefs: [{{kind: MeshService, name: web}}]}}}}]\n"
            )
        )),
        [
            "to[0].rules[0].matches[0].path.value: does not need a trailing slash because only a `/`-separated prefix or an entire path is matched",
            "to[0].rules[0].matches[1].path.value: must be an absolute path",
        ]
    );
    assert_eq!(
        kuma(&doc(
            "MeshHTTPRoute",
            "  targetRef: {kind: Mesh}\n  to:\n  - targetRef: {kind: MeshService, name: web}\n    rules: [{matches: [{path: {type: PathPrefix, value: /a}}], default: {filters: [{type: URLRewrite, urlRewrite: {hostToBackendHostname: true, hostname: x.example.com}}], backendRefs: [{kind: MeshService, name: web}]}}]\n"
        )),
        [
            "to[0].rules[0].default.filters[0].urlRewrite.hostToBackendHostname: can only be set with MeshGateway",
            "to[0].rules[0].default.filters[0].urlRewrite.hostToBackendHostname: cannot be set together with hostname",
        ]
    );
    assert_eq!(
        kuma(&doc(
            "MeshHTTPRoute",
            &format!(
                "{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules: [{{matches: [{{path: {{type: Exact, value: /a}}}}], default: {{filters: [{{type: RequestRedirect, requestRedirect: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /b}}}}}}]}}}}]\n"
            )
        )),
        [
            "to[0].rules[0].default.filters[0].requestRedirect.path.replacePrefixMatch: can only appear if all matches match a path prefix"
        ]
    );
    assert_eq!(
        kuma(&doc(
            "MeshHTTPRoute",
            &format!(
                "{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules: [{{matches: [{{headers: [{{type: Present, name: x, value: y}}], queryParams: [{{type: Exact, name: q, value: a}}, {{type: Exact, name: q, value: b}}]}}], default: {{backendRefs: [{{kind: MeshService, name: web}}]}}}}]\n"
            )
        )),
        [
            "to[0].rules[0].matches[0].headers[0].value: must not be defined",
            "to[0].rules[0].matches[0].queryParams[1].name: multiple entries for name q",
        ]
    );
    assert_eq!(
        kuma(&doc(
            "MeshHTTPRoute",
            &format!(
                "{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules: [{{matches: [{{path: {{type: Exact, value: /a}}}}], default: {{filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {{}}}}], backendRefs: [{{kind: MeshMultiZoneService, name: web}}]}}}}]\n"
            )
        )),
        [
            "to[0].rules[0].default.backendRefs[0].port: must be defined with kind MeshMultiZoneService",
            "to[0].rules[0].default.filters[0].requestHeaderModifier: must have at least one defined: set, add, remove",
        ]
    );
}

#[test]
fn mesh_http_route_backends_this_gateway_cannot_serve_are_refused() {
    let parsed = parse_file(
        "t.yaml",
        &doc(
            "MeshHTTPRoute",
            &format!(
                "{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules: [{{matches: [{{path: {{type: Exact, value: /a}}}}], default: {{backendRefs: [{{kind: MeshExternalService, name: httpbin}}]}}}}]\n"
            ),
        ),
        UnknownFields::Reject,
    );
    let extra: Vec<String> =
        parsed.diagnostics().iter().filter(|d| d.origin == Origin::Extra).map(|d| d.to_string()).collect();
    assert_eq!(extra.len(), 1, "{extra:?}");
    assert!(
        extra[0].contains("to[0].rules[0].default.backendRefs[0]: MeshExternalService backends are not supported"),
        "{extra:?}"
    );
}

#[test]
fn mesh_tcp_route() {
    assert_valid(
        "MeshTCPRoute",
        &format!(
            "{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules: [{{default: {{backendRefs: [{{kind: MeshService, name: db}}]}}}}]\n"
        ),
    );
    assert_eq!(
        kuma(&doc(
            "MeshTCPRoute",
            &format!("{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules: [{{default: {{}}}}]\n")
        )),
        ["to[0].rules[0].default.backendRefs: must be defined"]
    );
}

#[test]
fn mesh_timeout() {
    assert_eq!(kuma(&doc("MeshTimeout", GATEWAY)), [": at least one of 'from', 'to' or 'rules' has to be defined"]);
    assert_eq!(
        kuma(&doc(
            "MeshTimeout",
            &format!("{GATEWAY}  from: [{{targetRef: {{kind: Mesh}}, default: {{idleTimeout: 1s}}}}]\n")
        )),
        ["from: must not be defined"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTimeout",
            &format!(
                "{GATEWAY}  to: [{{targetRef: {{kind: MeshService, name: web}}, default: {{idleTimeout: 1s}}}}]\n"
            )
        )),
        ["to[0].targetRef.kind: value 'MeshService' is not supported"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTimeout",
            "  targetRef: {kind: MeshHTTPRoute, name: r}\n  to: [{targetRef: {kind: Mesh}, default: {idleTimeout: 1s, http: {requestTimeout: 1s}}}]\n"
        )),
        ["to[0].default.idleTimeout: can't be specified when top-level TargetRef is referencing MeshHTTPRoute"]
    );
    assert_eq!(
        kuma(&doc("MeshTimeout", "  targetRef: {kind: Mesh}\n  to: [{targetRef: {kind: Mesh}, default: {}}]\n")),
        ["to[0].default: at least one timeout should be configured"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTimeout",
            "  targetRef: {kind: Mesh}\n  to: [{targetRef: {kind: Mesh}, default: {connectionTimeout: 0s, http: {requestTimeout: -1s}}}]\n"
        )),
        [
            "to[0].default.connectionTimeout: must be greater than zero when defined",
            "to[0].default.http.requestTimeout: must not be negative when defined",
        ]
    );
}

#[test]
fn mesh_retry() {
    assert_eq!(
        kuma(&doc("MeshRetry", &format!("{GATEWAY}  to: [{{targetRef: {{kind: Mesh}}, default: {{}}}}]\n"))),
        ["to[0].default.conf: at least one of the 'tcp', 'http', 'grpc' must be specified"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshRetry",
            &format!(
                "{GATEWAY}  to: [{{targetRef: {{kind: Mesh}}, default: {{tcp: {{maxConnectAttempt: 0}}, http: {{retryOn: [teapot]}}}}}}]\n"
            )
        )),
        [
            "to[0].default.conf.http.retryOn[0]: unknown item 'teapot'",
            "to[0].default.conf.tcp.maxConnectAttempt: must be greater than 0",
        ]
    );
}

#[test]
fn mesh_circuit_breaker() {
    assert_eq!(
        kuma(&doc("MeshCircuitBreaker", "  targetRef: {kind: Mesh}\n  to: [{targetRef: {kind: Mesh}, default: {}}]\n")),
        ["to[0].default: at least one of: 'connectionLimits' or 'outlierDetection' should be configured"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshCircuitBreaker",
            "  targetRef: {kind: Mesh}\n  to: [{targetRef: {kind: Mesh}, default: {outlierDetection: {interval: 1s}}}]\n"
        )),
        ["to[0].default.outlierDetection.detectors: must be defined"]
    );
    assert_valid(
        "MeshCircuitBreaker",
        "  targetRef: {kind: MeshGateway, name: edge}\n  to: [{targetRef: {kind: MeshService, name: web}, default: {connectionLimits: {maxConnections: 2}, outlierDetection: {detectors: {totalFailures: {consecutive: 3}}}}}]\n",
    );
}

#[test]
fn kubernetes_form_is_namespaced() {
    let yaml = "apiVersion: kuma.io/v1alpha1\nkind: MeshTimeout\nmetadata:\n  name: t\n  namespace: kuma-system\n  labels: {kuma.io/mesh: default}\nspec:\n  targetRef: {kind: Mesh}\n  to: [{targetRef: {kind: Mesh}, default: {idleTimeout: 1s}}]\n";
    let parsed = parse_file("k.yaml", yaml, UnknownFields::Reject);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics());
    assert_eq!(parsed.resources()[0].meta.name, "t.kuma-system");
    let bad = yaml.replace("idleTimeout: 1s", "");
    let errors: Vec<String> =
        parse_file("k.yaml", &bad, UnknownFields::Reject).diagnostics().iter().map(|d| d.to_string()).collect();
    assert_eq!(
        errors,
        ["k.yaml:9: MeshTimeout default/t.kuma-system: to[0].default: at least one timeout should be configured"]
    );
}

#[test]
fn mesh_fault_injection() {
    assert_valid(
        "MeshFaultInjection",
        &format!(
            "{GATEWAY}  to: [{{targetRef: {{kind: Mesh}}, default: {{http: [{{abort: {{httpStatus: 503, percentage: \"12.5\"}}}}]}}}}]\n"
        ),
    );
    assert_eq!(
        kuma(&doc("MeshFaultInjection", &format!("{GATEWAY}  from: [{{targetRef: {{kind: Mesh}}}}]\n"))),
        [
            "from: must not be defined when the scope includes a Gateway, select only proxyType Sidecar or select only gateways and use spec.to"
        ]
    );
    assert_eq!(
        kuma(&doc(
            "MeshFaultInjection",
            &format!(
                "{GATEWAY}  to: [{{targetRef: {{kind: Mesh}}, default: {{http: [{{abort: {{httpStatus: 700, percentage: 101}}, responseBandwidth: {{limit: 10xbps, percentage: 1}}}}]}}}}]\n"
            )
        )),
        [
            "to[0].default.http[0].abort.httpStatus: must be in inclusive range [100, 599]",
            "to[0].default.http[0].abort.percentage: must be in inclusive range [0.0, 100.0]",
            "to[0].default.http[0].responseBandwidth.limit: must be in kbps/Mbps/Gbps units",
        ]
    );
}

#[test]
fn mesh_rate_limit() {
    assert_valid(
        "MeshRateLimit",
        "  targetRef: {kind: MeshHTTPRoute, name: r}\n  to: [{targetRef: {kind: Mesh}, default: {local: {http: {requestRate: {num: 5, interval: 1s}}}}}]\n",
    );
    assert_eq!(
        kuma(&doc(
            "MeshRateLimit",
            &format!(
                "{GATEWAY}  to: [{{targetRef: {{kind: MeshService, name: x}}, default: {{local: {{http: {{requestRate: {{num: 0, interval: 10ms}}}}}}}}}}]\n"
            )
        )),
        [
            "to[0].default.local.http.requestRate.interval: must be greater than: 50ms",
            "to[0].default.local.http.requestRate.num: must be greater than 0",
            "to[0].targetRef.kind: value 'MeshService' is not supported",
        ]
    );
    assert_eq!(
        kuma(&doc(
            "MeshRateLimit",
            "  targetRef: {kind: MeshService, name: web}\n  to: [{targetRef: {kind: Mesh}, default: {local: {http: {disabled: true}}}}]\n"
        )),
        ["to: must not be defined"]
    );
}

#[test]
fn mesh_health_check() {
    assert_eq!(
        kuma(&doc(
            "MeshHealthCheck",
            &format!("{GATEWAY}  to: [{{targetRef: {{kind: Mesh}}, default: {{interval: 0s}}}}]\n")
        )),
        [
            "to[0].default: must have at least one defined: http, tcp, grpc",
            "to[0].default.interval: must be greater than zero when defined"
        ]
    );
    assert_valid(
        "MeshHealthCheck",
        &format!(
            "{GATEWAY}  to: [{{targetRef: {{kind: MeshService, name: web}}, default: {{http: {{path: /health, expectedStatuses: [200]}}}}}}]\n"
        ),
    );
}

#[test]
fn mesh_access_log() {
    assert_valid(
        "MeshAccessLog",
        &format!(
            "{GATEWAY}  from: [{{targetRef: {{kind: Mesh}}, default: {{backends: [{{type: File, file: {{path: /tmp/log}}}}]}}}}]\n"
        ),
    );
    assert_eq!(
        kuma(&doc(
            "MeshAccessLog",
            &format!(
                "{GATEWAY}  to: [{{targetRef: {{kind: Mesh}}, default: {{backends: [{{type: File, file: {{path: relative}}}}, {{type: Tcp, tcp: {{address: nowhere}}}}]}}}}]\n"
            )
        )),
        [
            "to[0].default.backends[0].file.path: file backend requires a valid path",
            "to[0].default.backends[1].tcp.address: tcp backend requires valid address",
        ]
    );
    assert_eq!(
        kuma(&doc("MeshAccessLog", &format!("{GATEWAY}  to: [{{targetRef: {{kind: Mesh}}, default: {{}}}}]\n"))),
        ["to[0].default.backends: must be defined"]
    );
}

#[test]
fn mesh_load_balancing_strategy() {
    assert_valid(
        "MeshLoadBalancingStrategy",
        &format!(
            "{GATEWAY}  to: [{{targetRef: {{kind: Mesh}}, default: {{loadBalancer: {{type: RingHash, ringHash: {{minRingSize: 64}}}}, hashPolicies: [{{type: Header, header: {{name: x-user}}}}]}}}}]\n"
        ),
    );
    assert_eq!(
        kuma(&doc(
            "MeshLoadBalancingStrategy",
            &format!(
                "{GATEWAY}  to: [{{targetRef: {{kind: MeshService, name: web}}, default: {{loadBalancer: {{type: Random}}}}}}]\n"
            )
        )),
        ["to[0].targetRef.kind: value 'MeshGateway' is not supported, only Mesh is allowed if loadBalancer is set"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshLoadBalancingStrategy",
            "  targetRef: {kind: MeshService, name: web}\n  to: [{targetRef: {kind: MeshExternalService, name: ext}, default: {loadBalancer: {type: Random}}}]\n"
        )),
        [
            "to[0].targetRef.kind: kind MeshExternalService is only allowed with targetRef.kind: Mesh as it is configured on the Zone Egress and shared by all clients in the mesh"
        ]
    );
}

#[test]
fn mesh_trace() {
    assert_valid(
        "MeshTrace",
        "  targetRef: {kind: MeshGateway, name: edge}\n  default:\n    backends: [{type: Zipkin, zipkin: {url: 'http://jaeger:9411/api/v2/spans'}}]\n    sampling: {overall: 80, random: '50.5'}\n    tags: [{name: team, literal: core}, {name: ua, header: {name: user-agent}}]\n",
    );
    assert_valid(
        "MeshTrace",
        "  default:\n    backends: [{type: OpenTelemetry, openTelemetry: {endpoint: 'otel:4317'}}]\n",
    );
    assert_eq!(
        kuma(&doc(
            "MeshTrace",
            "  targetRef: {kind: MeshGateway, name: edge, tags: {port: http}}\n  default: {backends: []}\n"
        )),
        ["targetRef.tags: must not be set with kind MeshGateway"]
    );
    assert_eq!(kuma(&doc("MeshTrace", "  default: {}\n")), ["default.backends: must be defined"]);
    assert_eq!(
        kuma(&doc(
            "MeshTrace",
            "  default:\n    backends: [{type: Zipkin, zipkin: {url: 'http://a:1/'}}, {type: Zipkin, zipkin: {url: 'http://b:1/'}}]\n"
        )),
        ["default.backends: must have zero or one backend defined"]
    );
    assert_eq!(
        kuma(&doc("MeshTrace", "  default:\n    backends: [{type: Zipkin}]\n")),
        ["default.backends[0].zipkin: must be defined"]
    );
    assert_eq!(
        kuma(&doc("MeshTrace", "  default:\n    backends: [{type: Datadog, datadog: {url: 'https://dd/x'}}]\n")),
        [
            "default.backends[0].datadog.url: path must not be defined",
            "default.backends[0].datadog.url: port must be defined",
            "default.backends[0].datadog.url: scheme must be http"
        ]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTrace",
            "  default:\n    backends: [{type: OpenTelemetry, openTelemetry: {endpoint: 'http://otel:4317/v1'}}]\n"
        )),
        ["default.backends[0].openTelemetry.endpoint: must be in host:port format, not a URL"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTrace",
            "  default:\n    backends: []\n    tags: [{name: '', literal: x, header: {name: h}}]\n    sampling: {overall: 101, client: abc}\n"
        )),
        [
            "default.tags[0]: tag must have only one type defined: header, literal",
            "default.tags[0].name: must not be empty",
            "default.sampling.client: string is not a number",
            "default.sampling.overall: must be between 0 and 100"
        ]
    );
}

#[test]
fn mesh_tls() {
    let versions = "      tlsVersion: {min: TLS12, max: TLS13}\n      tlsCiphers: [ECDHE-RSA-AES128-GCM-SHA256]\n";
    assert_valid(
        "MeshTLS",
        &format!("  targetRef: {{kind: Mesh}}\n  from:\n  - targetRef: {{kind: Mesh}}\n    default:\n{versions}"),
    );
    assert_eq!(
        kuma(&doc("MeshTLS", "  targetRef: {kind: MeshGateway, name: edge}\n  from: []\n")),
        ["targetRef.kind: value 'MeshGateway' is not supported"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTLS",
            &format!(
                "  targetRef: {{kind: MeshSubset, tags: {{a: b}}}}\n  from:\n  - targetRef: {{kind: Mesh}}\n    default:\n{versions}"
            )
        )),
        [
            "from[0].default.tlsVersion: tlsVersion can only be defined with top level targetRef kind: Mesh",
            "from[0].default.tlsCiphers: tlsCiphers can only be defined with top level targetRef kind: Mesh"
        ]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTLS",
            "  rules:\n  - default: {mode: Loose, tlsVersion: {min: TLS13, max: TLS12}, tlsCiphers: [RC4]}\n  from: [{targetRef: {kind: MeshService, name: a}}]\n"
        )),
        [
            ": field 'from' must be empty when 'rules' is defined",
            r#"rules[0].default.mode: "mode" must be one of ["Strict", "Permissive"]"#,
            r#"rules[0].default.tlsCiphers: "tlsCiphers" must be one of ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"]"#,
            "rules[0].default.tlsVersion.min: min version must be lower than max",
            "from[0].targetRef.kind: value 'MeshService' is not supported"
        ]
    );
}

#[test]
fn mesh_traffic_permission() {
    assert_valid(
        "MeshTrafficPermission",
        "  targetRef: {kind: MeshService, name: web}\n  from:\n  - targetRef: {kind: MeshSubset, tags: {kuma.io/service: edge}}\n    default: {action: Allow}\n",
    );
    assert_valid(
        "MeshTrafficPermission",
        "  rules:\n  - default: {allow: [{spiffeID: {type: Exact, value: 'spiffe://default/edge'}}], deny: [{sni: {type: Exact, value: a.example.com}}]}\n",
    );
    assert_eq!(
        kuma(&doc("MeshTrafficPermission", "  targetRef: {kind: MeshGateway, name: edge}\n")),
        [
            ": at least one of 'from' or 'rules' has to be defined",
            "targetRef.kind: value 'MeshGateway' is not supported"
        ]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTrafficPermission",
            "  from:\n  - targetRef: {kind: MeshGateway, name: edge}\n    default: {}\n"
        )),
        ["from[0].targetRef.kind: value 'MeshGateway' is not supported", "from[0].default.action: must be defined"]
    );
    assert_eq!(
        kuma(&doc(
            "MeshTrafficPermission",
            "  rules:\n  - default: {allow: [{spiffeID: {type: Exact, value: 'http://x'}}, {sni: {type: Prefix, value: 'A_b'}}]}\n  - default: {}\n"
        )),
        [
            "rules[0].allow[0].spiffeID: must be a valid Spiffe ID: scheme is missing or invalid",
            r#"rules[0].allow[1].sni.type: unrecognized type "Prefix", supported values are: Exact"#,
            "rules[0].allow[1].sni.value: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            "rules[1]: at least one of 'allow', 'allowWithShadowDeny', 'deny' has to be defined"
        ]
    );
}

#[test]
fn mesh_service_and_mesh_external_service() {
    // An export's computed fields (`status`, `snis`, `kri`) are read and dropped.
    let export = "type: MeshService\nname: backend\nmesh: default\nkri: kri_msvc_default___backend_\nspec:\n  selector: {dataplaneTags: {kuma.io/service: backend}}\n  ports: [{port: 80, targetPort: 8080, appProtocol: http}]\n  identities: [{type: ServiceTag, value: backend}]\nstatus:\n  vips: [{ip: 241.0.0.1}]\n";
    let parsed = parse_file("t.yaml", export, UnknownFields::Reject);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics());
    assert_eq!(
        kuma(&doc("MeshService", "  selector: {dataplaneTags: {a: b}, dataplaneRef: {name: x}}\n")),
        ["selector: must specify only one of: dataplaneTags, dataplaneRef, or dataplaneLabels"]
    );
    assert_valid(
        "MeshExternalService",
        "  match: {type: HostnameGenerator, port: 443, protocol: http}\n  endpoints: [{address: httpbin.org, port: 443}]\n  tls: {enabled: true}\n",
    );
    assert_eq!(
        kuma(&doc(
            "MeshExternalService",
            "  match: {type: Other, port: 0, protocol: udp}\n  endpoints: [{address: 'not a host', port: 1}, {address: 10.0.0.1, port: 0}]\n"
        )),
        [
            "match.port: port must be a valid (1-65535)",
            r#"match.protocol: "protocol" must be one of ["tcp", "grpc", "http", "http2"]"#,
            "match.type: unrecognized type 'Other' - only 'HostnameGenerator' is supported",
            "endpoints[0].address: address has to be a valid IP or hostname",
            "endpoints[1].port: port must be a valid (1-65535)"
        ]
    );
}

#[test]
fn non_system_policies_cannot_target_gateways() {
    // Kubernetes labels policies outside Kuma's system namespace with their role.
    let k8s = |kind: &str, top: &str| {
        format!(
            "apiVersion: kuma.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: p\n  namespace: shop\n  labels: {{kuma.io/mesh: default, kuma.io/policy-role: workload-owner}}\nspec:\n  targetRef: {top}\n  to: [{{targetRef: {{kind: Mesh}}, default: {{http: {{numRetries: 1}}}}}}]\n"
        )
    };
    assert_eq!(
        kuma(&k8s("MeshRetry", "{kind: MeshGateway, name: edge}")),
        ["targetRef.kind: value 'MeshGateway' is not supported"]
    );
    assert_eq!(kuma(&k8s("MeshRetry", "{kind: Mesh}")), Vec::<String>::new());
    // The system role (no label, or `system`) may.
    let system = k8s("MeshRetry", "{kind: MeshGateway, name: edge}").replace("workload-owner", "system");
    assert_eq!(kuma(&system), Vec::<String>::new());
}

#[test]
fn the_unresolved_backend_name_kumas_gateway_api_conversion_writes_is_valid() {
    assert_valid(
        "MeshHTTPRoute",
        &format!(
            "{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules:\n    - matches: [{{path: {{type: PathPrefix, value: /}}}}]\n      default: {{backendRefs: [{{kind: MeshService, name: kuma.io/unresolved-backend}}]}}\n"
        ),
    );
    assert_eq!(
        kuma(&doc(
            "MeshHTTPRoute",
            &format!(
                "{GATEWAY}  to:\n  - targetRef: {{kind: Mesh}}\n    rules:\n    - matches: [{{path: {{type: PathPrefix, value: /}}}}]\n      default: {{backendRefs: [{{kind: MeshService, name: kuma/other}}]}}\n"
            )
        )),
        [
            "to[0].rules[0].default.backendRefs[0].name: invalid characters: must consist of lower case alphanumeric characters, '-', '.' and '_'."
        ]
    );
}
