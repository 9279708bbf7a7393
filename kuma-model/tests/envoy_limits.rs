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
