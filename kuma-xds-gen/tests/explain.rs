//! `explain` on the bundled example and the policy case.

mod common;

use kuma_xds_gen::explain::{Request, explain};

fn request(port: u32, host: &str, path: &str) -> Request {
    Request { port, host: host.into(), sni: None, path: path.into(), method: "GET".into(), headers: Vec::new() }
}

fn case(name: &str) -> kuma_model::ResourceSet {
    common::cases().into_iter().find(|c| c.name == name).unwrap().load()
}

#[test]
fn explains_the_seed_example() {
    let set = case("example-edge-gateway");
    let ex = explain(&set, "default", "gateway-instance-1", &request(8080, "foo.example.com", "/api/foo")).unwrap();
    let text = ex.to_string();
    assert!(ex.matched);
    assert!(text.contains("listener edge-gateway:HTTP:8080"), "{text}");
    assert!(text.contains("virtual host foo.example.com"), "{text}");
    assert!(
        text.contains("route #0 from edge-gateway-route/rules[1]/matches[0]: path is /api or starts with /api/"),
        "{text}"
    );
    assert!(text.contains("-> cluster api-3a816e1bbc4ae5db [127.0.0.1:18082]"), "{text}");
    assert!(text.contains("timeout 15s, retries 5 on gateway-error,connect-failure,refused-stream"), "{text}");

    // `/apiary` is not under `/api`: the next route, `/`, takes it.
    let apiary = explain(&set, "default", "gateway-instance-1", &request(8080, "foo.example.com", "/apiary")).unwrap();
    let text = apiary.to_string();
    assert!(
        text.contains("skipped edge-gateway-route/rules[1]/matches[0]: path is /api or starts with /api/"),
        "{text}"
    );
    assert!(text.contains("route #1 from edge-gateway-route/rules[0]/matches[0]: path starts with /"), "{text}");

    let other = explain(&set, "default", "gateway-instance-1", &request(8080, "bar.example.com", "/")).unwrap();
    assert!(!other.matched);
    assert!(other.to_string().contains("no virtual host for \"bar.example.com\""), "{other}");
    let port = explain(&set, "default", "gateway-instance-1", &request(81, "foo.example.com", "/")).unwrap();
    assert!(port.to_string().contains("no listener on port 81"), "{port}");
}

#[test]
fn explains_which_policies_apply() {
    let set = case("case-policies");
    let text = explain(&set, "default", "gateway", &request(8080, "any", "/both/x")).unwrap().to_string();
    assert!(text.contains("policy Retry everything (route)"), "{text}");
    assert!(text.contains("policy Timeout public-web (route)"), "{text}");
    assert!(text.contains("policy CircuitBreaker web (cluster of web)"), "{text}");
    let tcp = explain(&set, "default", "gateway", &request(9000, "any", "/")).unwrap().to_string();
    assert!(tcp.contains("tcp_proxy -> cluster db-"), "{tcp}");
}

#[test]
fn explains_kuma2_policies_and_meshhttproute_routes() {
    let set = case("example-edge-gateway-meshhttproute");
    let ex = explain(&set, "kuma2", "gateway-instance-1", &request(8080, "foo.example.com", "/api/foo")).unwrap();
    let text = ex.to_string();
    assert!(ex.matched, "{text}");
    assert!(text.contains("-> cluster api-"), "{text}");
    assert!(text.contains("timeout 10s, retries 3 on 5xx"), "{text}");
    // The policies that shaped the listener, the implied initial ones first.
    assert!(text.contains("policy MeshTimeout mesh-gateways-timeout-all-kuma2 (listener)"), "{text}");
    assert!(text.contains("policy MeshTimeout edge-gateway-timeouts (listener)"), "{text}");
    assert!(text.contains("policy MeshRetry edge-gateway-retries (listener)"), "{text}");
    assert!(!text.contains("mesh-timeout-all-kuma2"), "the sidecar timeouts do not select a gateway: {text}");
}

#[test]
fn explains_a_mesh_gateway_instance_with_its_policies() {
    let set = case("example-edge-gateway-kubernetes");
    let ex = explain(&set, "kubernetes-demo", "edge-gateway.default", &request(8080, "foo.example.com", "/x")).unwrap();
    let text = ex.to_string();
    assert!(ex.matched, "{text}");
    assert!(text.contains("rule: MeshGatewayRoute edge-gateway-route conf.http.rules[0].matches[0]"), "{text}");
    assert!(text.contains("policy MeshRetry mesh-retry-all-kubernetes-demo (listener)"), "{text}");
}

#[test]
fn explains_fault_injection_redirects_and_rule_origins() {
    let set = case("case-kuma2");
    let faults = explain(&set, "kuma2", "gateway", &request(8081, "any.example.com", "/")).unwrap().to_string();
    assert!(faults.contains("fault injection on every request: MeshFaultInjection"), "{faults}");
    assert!(faults.contains(r#""httpStatus":503"#), "{faults}");
    assert!(faults.contains(r#"tracing: MeshTrace {"backends":[{"type":"Zipkin""#), "{faults}");
    let old = explain(&set, "kuma2", "gateway", &request(8080, "shop.example.com", "/old")).unwrap().to_string();
    assert!(old.contains("rule: MeshHTTPRoute main spec.to[0].rules[5].matches[0]"), "{old}");
    assert!(old.contains("-> redirect"), "{old}");
    assert!(!old.contains("fault injection"), "port 8080 has no MeshFaultInjection: {old}");
}

#[test]
fn explains_a_misdirected_request() {
    let set = case("case-https");
    let ex = explain(&set, "default", "gateway", &request(8443, "any.example.com", "/")).unwrap();
    let text = ex.to_string();
    assert!(text.contains("filter chain for SNI *.example.com"), "{text}");
    // The SNI picks the wildcard chain, the Host names another listener's.
    let misdirected = Request { sni: Some("any.example.com".into()), ..request(8443, "secure.example.com", "/") };
    let ex = explain(&set, "default", "gateway", &misdirected).unwrap();
    let text = ex.to_string();
    assert!(text.contains("filter chain for SNI *.example.com"), "{text}");
    assert!(text.contains("-> direct response 421"), "{text}");
    let table = kuma_xds_gen::route_table(&set, "default", "gateway").unwrap().unwrap();
    let wildcard = table.ports[0].chains.iter().find(|c| c.key == "*.example.com").unwrap();
    assert_eq!(wildcard.misdirected, ["secure.example.com"]);
}
