//! Rules beyond Kuma's that keep Envoy from rejecting generated config
//! (each was a NACK that Kuma's validation let through).

use kuma_model::{ResourceSet, UnknownFields};

fn errors(yaml: &str) -> Vec<String> {
    match ResourceSet::load([("r.yaml", yaml)], UnknownFields::Reject) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics.iter().map(ToString::to_string).collect(),
    }
}

const TIMEOUT: &str = "type: Timeout\nname: t\nsources: [{match: {kuma.io/service: '*'}}]\ndestinations: [{match: {kuma.io/service: '*'}}]\n";

#[test]
fn connect_timeouts_are_positive_and_no_timeout_is_negative() {
    assert_eq!(
        errors(&format!("{TIMEOUT}conf: {{connectTimeout: 0s}}\n")),
        ["r.yaml:5: Timeout default/t: conf.connectTimeout: has to be greater than 0"]
    );
    assert_eq!(
        errors(&format!("{TIMEOUT}conf: {{connectTimeout: -5s, http: {{requestTimeout: -1s}}}}\n")),
        [
            "r.yaml:5: Timeout default/t: conf.connectTimeout: must not be negative",
            "r.yaml:5: Timeout default/t: conf.http.requestTimeout: must not be negative",
        ]
    );
    assert!(
        errors(&format!("{TIMEOUT}conf: {{connectTimeout: 1s, http: {{requestTimeout: 0s, idleTimeout: 5s}}}}\n"))
            .iter()
            .all(|e| !e.contains("negative"))
    );
}

#[test]
fn backend_weights_fit_in_what_envoy_adds_up() {
    let route = |weights: [u64; 2]| {
        format!(
            "type: MeshGatewayRoute\nname: r\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf:\n  http:\n    rules:\n    - matches: [{{path: {{match: PREFIX, value: /}}}}]\n      backends:\n      - {{weight: {}, destination: {{kuma.io/service: a}}}}\n      - {{weight: {}, destination: {{kuma.io/service: b}}}}\n",
            weights[0], weights[1]
        )
    };
    assert!(errors(&route([4_000_000_000, 294_967_295])).is_empty(), "exactly u32::MAX is fine");
    assert_eq!(
        errors(&route([4_000_000_000, 294_967_296])),
        [
            "r.yaml:8: MeshGatewayRoute default/r: conf.http.rules[0].backends: the weights add up to 4294967296; Envoy allows at most 4294967295"
        ]
    );
}

#[test]
fn header_filters_stay_within_what_envoy_takes() {
    let filter = |f: &str| {
        format!(
            "type: MeshGatewayRoute\nname: r\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf:\n  http:\n    rules:\n    - matches: [{{path: {{match: PREFIX, value: /}}}}]\n      filters: [{f}]\n      backends: [{{destination: {{kuma.io/service: a}}}}]\n"
        )
    };
    let only = |f: &str| {
        errors(&filter(f)).into_iter().map(|e| e.split(": ").skip(2).collect::<Vec<_>>().join(": ")).collect::<Vec<_>>()
    };
    assert!(only("{requestHeader: {set: [{name: host, value: b.example.com}]}}").is_empty(), "a host rewrite");
    assert!(
        only("{requestHeader: {set: [{name: x-a, value: '%%50 %REQ(x-id)% %DOWNSTREAM_REMOTE_ADDRESS%'}]}}").is_empty()
    );
    assert_eq!(
        only("{requestHeader: {add: [{name: ':path', value: /x}]}}"),
        ["conf.http.rules[0].filters[0].request_header.add[0].name: pseudo-headers and host may not be modified here"]
    );
    assert_eq!(
        only("{responseHeader: {remove: [host]}}"),
        ["conf.http.rules[0].filters[0].response_header.remove[0]: pseudo-headers and host may not be removed"]
    );
    assert_eq!(
        only("{requestHeader: {set: [{name: x-a, value: '50%'}]}}"),
        [
            "conf.http.rules[0].filters[0].request_header.set[0].value: a % starts an Envoy substitution (%DOWNSTREAM_REMOTE_ADDRESS%, %REQ(x-id)%, …); write %% for a literal %"
        ]
    );
    assert_eq!(
        only("{requestHeader: {set: [{name: x-a, value: \"a\\r\\nb\"}]}}"),
        ["conf.http.rules[0].filters[0].request_header.set[0].value: must not contain NUL, CR or LF"]
    );
}

/// The messages of `yaml`'s errors, without file, line and resource.
fn messages(yaml: &str) -> Vec<String> {
    errors(yaml).into_iter().map(|e| e.split(": ").skip(2).collect::<Vec<_>>().join(": ")).collect()
}

fn policy(kind: &str, conf: &str) -> String {
    let protocol = if kind == "FaultInjection" { ", kuma.io/protocol: http" } else { "" };
    format!(
        "type: {kind}\nname: p\nsources: [{{match: {{kuma.io/service: '*'}}}}]\ndestinations: [{{match: {{kuma.io/service: web{protocol}}}}}]\nconf: {conf}\n"
    )
}

// Found by the whole-set differential test (kuma-xds-gen/tests/envoy_differential_sets.rs).

#[test]
fn route_hostnames_can_name_a_virtual_host() {
    let route = |hostnames: &str| {
        format!(
            "type: MeshGatewayRoute\nname: r\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf:\n  http:\n    hostnames: {hostnames}\n    rules:\n    - matches: [{{path: {{match: PREFIX, value: /}}}}]\n      backends: [{{destination: {{kuma.io/service: a}}}}]\n"
        )
    };
    assert!(messages(&route("['*.example.com', Example.COM, foo_bar.internal]")).is_empty());
    assert_eq!(messages(&route("['']")), ["conf.http.hostnames[0]: cannot be empty"]);
    assert_eq!(
        messages(&route("['a b', \"a\\tb\"]")),
        [
            "conf.http.hostnames[0]: must not contain whitespace or control characters",
            "conf.http.hostnames[1]: must not contain whitespace or control characters"
        ]
    );
}

#[test]
fn health_checks_send_what_envoy_takes() {
    let hc = |http: &str| {
        policy(
            "HealthCheck",
            &format!("{{interval: 1s, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1, http: {http}}}"),
        )
    };
    assert!(
        messages(&hc("{path: \"/health\\tz\", requestHeadersToAdd: [{header: {key: x-a, value: '%%'}}]}")).is_empty()
    );
    assert_eq!(messages(&hc("{path: \"/a\\nb\"}")), ["conf.http.path: must not contain control characters"]);
    assert_eq!(
        messages(&hc(
            "{path: /, requestHeadersToAdd: [{header: {key: ':path', value: /x}}, {header: {key: x-b, value: '5%'}}]}"
        )),
        [
            "conf.http.requestHeadersToAdd[0].header.key: pseudo-headers and host may not be added",
            "conf.http.requestHeadersToAdd[1].header.value: a % starts an Envoy substitution (%DOWNSTREAM_REMOTE_ADDRESS%, %REQ(x-id)%, …); write %% for a literal %"
        ]
    );
    assert_eq!(
        messages(&policy(
            "HealthCheck",
            "{interval: -1s, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1, tcp: {}}"
        )),
        ["conf.interval: must have a positive value"]
    );
}

#[test]
fn rate_limits_refill_and_answer_as_envoy_can() {
    let rl = |conf: &str| messages(&policy("RateLimit", conf));
    assert!(
        rl("{http: {requests: 1, interval: 50ms, onRateLimit: {headers: [{key: x-limited, value: 'yes'}]}}}")
            .is_empty()
    );
    assert_eq!(rl("{http: {requests: 1, interval: 49ms}}"), ["conf.http.interval: must be at least 50ms"]);
    assert_eq!(
        rl(
            "{http: {requests: 1, interval: 1s, onRateLimit: {headers: [{key: Host, value: x}, {key: \"x\\r\", value: y}]}}}"
        ),
        [
            "conf.http.onRateLimit.header[\"0\"].key: pseudo-headers and host may not be added",
            "conf.http.onRateLimit.header[\"1\"].key: must not contain NUL, CR or LF"
        ]
    );
}

#[test]
fn faults_and_retries_stay_within_envoys_ranges() {
    let fi = |conf: &str| messages(&policy("FaultInjection", conf));
    assert_eq!(
        fi("{abort: {httpStatus: 100, percentage: 50}}"),
        ["conf.abort.httpStatus: must be in the range [200, 600) (Envoy cannot abort with 1xx)"]
    );
    assert_eq!(
        fi("{responseBandwidth: {limit: 0kbps, percentage: 50}}"),
        ["conf.responseBandwidth.limit: must be at least 1kbps"]
    );
    assert_eq!(
        fi("{responseBandwidth: {limit: 99999999999999999999gbps, percentage: 50}}"),
        ["conf.responseBandwidth.limit: has to be in kbps/mbps/gbps units"],
        "an overflowing limit is an error, not a crash"
    );
    assert!(fi("{responseBandwidth: {limit: 1kbps, percentage: 50}}").is_empty());
    let retry =
        |back_off: &str| messages(&policy("Retry", &format!("{{http: {{numRetries: 1, backOff: {back_off}}}}}")));
    assert!(retry("{baseInterval: 1s, maxInterval: 1s}").is_empty());
    assert_eq!(
        retry("{baseInterval: 1s, maxInterval: 500ms}"),
        ["conf.http.backOff.maxInterval: cannot be less than baseInterval"]
    );
    assert_eq!(retry("{baseInterval: -1s}"), ["conf.http.backOff.baseInterval: has to be greater than 0"]);
    let cb = |conf: &str| messages(&policy("CircuitBreaker", conf));
    assert_eq!(
        cb("{interval: 0s, baseEjectionTime: -1s, detectors: {totalErrors: {consecutive: 1}}}"),
        ["conf.baseEjectionTime: must be greater than 0s", "conf.interval: must be greater than 0s"]
    );
}

#[test]
fn external_service_server_names_hold_no_control_characters() {
    let es = |sni: &str| {
        messages(&format!(
            "type: ExternalService\nname: e\nnetworking:\n  address: example.com:443\n  tls: {{enabled: true, serverName: {sni}}}\ntags: {{kuma.io/service: e}}\n"
        ))
    };
    assert!(es("example.com").is_empty());
    assert_eq!(es("\"a\\u0000b\""), ["networking.tls.serverName: must not contain whitespace or control characters"]);
}

#[test]
fn redirects_rewrites_and_rate_limit_answers_hold_what_envoy_takes() {
    let rule = |f: &str, backends: bool| {
        let backends = if backends { "\n      backends: [{destination: {kuma.io/service: a}}]" } else { "" };
        messages(&format!(
            "type: MeshGatewayRoute\nname: r\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf:\n  http:\n    rules:\n    - matches: [{{path: {{match: PREFIX, value: /}}}}]\n      filters: [{f}]{backends}\n"
        ))
    };
    assert_eq!(
        rule("{redirect: {hostname: \"a\\nb\", statusCode: 301, path: {replaceFull: \"/x\\r\"}}}", false),
        [
            "conf.http.rules[0].filters[0].redirect.hostname: must not contain NUL, CR or LF",
            "conf.http.rules[0].filters[0].redirect.path.replaceFull: must not contain NUL, CR or LF"
        ]
    );
    assert_eq!(
        rule("{rewrite: {replacePrefixMatch: \"/\\u0000\"}}", true),
        ["conf.http.rules[0].filters[0].rewrite.replacePrefixMatch: must not contain NUL, CR or LF"]
    );
    let rl = |status: u32| {
        messages(&policy(
            "RateLimit",
            &format!("{{http: {{requests: 1, interval: 1s, onRateLimit: {{status: {status}}}}}}}"),
        ))
    };
    assert!(rl(429).is_empty() && rl(503).is_empty());
    for status in [0, 101, 418, 599] {
        assert_eq!(rl(status).len(), 1, "status {status}");
    }
    assert_eq!(
        messages(&policy("FaultInjection", "{delay: {value: 0s, percentage: 50}}")),
        ["conf.delay.value: must be greater than 0s"]
    );
}

/// Found by the whole-set differential test over Kuma 2.x resources.
#[test]
fn kuma2_resources_envoy_would_refuse() {
    let doc = |kind: &str, spec: &str| {
        format!("type: {kind}\nname: p\nspec:\n  targetRef: {{kind: MeshGateway, name: gw}}\n{spec}")
    };
    let route = |to: &str| doc("MeshHTTPRoute", &format!("  to:\n  - targetRef: {{kind: Mesh}}\n{to}"));
    let rule = "    rules: [{matches: [{path: {type: Exact, value: /}}], default: {backendRefs: [{kind: MeshService, name: web}]}}]\n";
    let e = errors(&route(&format!("    hostnames: [\"a\\r\\nb\", \"\"]\n{rule}")));
    assert!(
        e.iter().any(|e| e.contains("to[0].hostnames[0]: must not contain whitespace or control characters")),
        "{e:?}"
    );
    assert!(e.iter().any(|e| e.contains("to[0].hostnames[1]: cannot be empty")), "{e:?}");
    let e = errors(&route(
        "    rules: [{matches: [{path: {type: RegularExpression, value: ''}, headers: [{name: '', value: x}]}], default: {filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: '', value: v}]}}], backendRefs: [{kind: MeshService, name: web}]}}]\n",
    ));
    assert!(e.iter().any(|e| e.contains("matches[0].path.value: cannot be empty")), "{e:?}");
    assert!(e.iter().any(|e| e.contains("matches[0].headers[0].name: cannot be empty")), "{e:?}");
    assert!(e.iter().any(|e| e.contains("requestHeaderModifier.set[0].name: cannot be empty")), "{e:?}");
    let e = errors(&doc(
        "MeshRetry",
        "  to: [{targetRef: {kind: Mesh}, default: {http: {backOff: {baseInterval: 0s, maxInterval: 10ms}, perTryTimeout: -1s}}}]\n",
    ));
    assert!(e.iter().any(|e| e.contains("backOff.baseInterval: must be greater than 0")), "{e:?}");
    assert!(e.iter().any(|e| e.contains("perTryTimeout: must not be negative")), "{e:?}");
    let e = errors(&doc(
        "MeshRetry",
        "  to: [{targetRef: {kind: Mesh}, default: {http: {backOff: {maxInterval: 10ms}}}}]\n",
    ));
    assert!(e.iter().any(|e| e.contains("maxInterval: cannot be less than baseInterval (25ms when unset)")), "{e:?}");
    let e = errors(&doc(
        "MeshHealthCheck",
        "  to: [{targetRef: {kind: Mesh}, default: {healthyPanicThreshold: 101, http: {requestHeadersToAdd: {add: [{name: ':path', value: '50%'}]}}}}]\n",
    ));
    assert!(e.iter().any(|e| e.contains("healthyPanicThreshold: must be in inclusive range [0.0, 100.0]")), "{e:?}");
    assert!(e.iter().any(|e| e.contains("add[0].name: pseudo-headers and host may not be added")), "{e:?}");
    assert!(e.iter().any(|e| e.contains("add[0].value: a % starts an Envoy substitution")), "{e:?}");
    let e = errors(&doc(
        "MeshRateLimit",
        "  to: [{targetRef: {kind: Mesh}, default: {local: {http: {requestRate: {num: 1, interval: 1s}, onRateLimit: {status: 599, headers: {set: [{name: \"x\\r\", value: v}]}}}}}}]\n",
    ));
    assert!(e.iter().any(|e| e.contains("onRateLimit.status: must be an HTTP status Envoy knows")), "{e:?}");
    assert!(e.iter().any(|e| e.contains("set[0].name: must not contain NUL, CR or LF")), "{e:?}");
    let e = errors(&doc(
        "MeshAccessLog",
        "  to: [{targetRef: {kind: Mesh}, default: {backends: [{type: File, file: {path: /tmp/l, format: {type: Plain, plain: '%START_TIME% 50% %NOPE%'}}}]}}]\n",
    ));
    assert!(e.iter().any(|e| e.contains("format.plain: a % starts an Envoy command operator")), "{e:?}");
    // Known operators, arguments, lengths and Kuma's placeholders pass.
    let ok = doc(
        "MeshAccessLog",
        "  to: [{targetRef: {kind: Mesh}, default: {backends: [{type: File, file: {path: /tmp/l, format: {type: Plain, plain: '%START_TIME(%s)% %REQ(X-ID):10% %KUMA_MESH% 100%%'}}}]}}]\n",
    );
    assert!(errors(&ok).is_empty(), "{:?}", errors(&ok));
}
