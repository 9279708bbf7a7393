//! Kuma 2.x gateway configuration through a real Envoy: MeshHTTPRoute and
//! MeshTCPRoute targeting a MeshGateway, and the MeshTimeout, MeshRetry and
//! MeshCircuitBreaker policies, each shown by traffic.

mod support;

use std::time::{Duration, Instant};

use support::*;

#[test]
fn mesh_routes_and_policies_shape_traffic_through_envoy() {
    let (a, b) = (smart_backend("a", 200), smart_backend("b", 200));
    let (slow, flaky, cb) = (smart_backend("slow", 200), smart_backend("flaky", 200), smart_backend("cb", 200));
    let (http, tcp) = (free_port(), free_port());
    let dir = temp_dir("mesh-routes");
    let inbound = |port: u16, name: &str| {
        format!("  - {{port: {port}, tags: {{kuma.io/service: {name}, kuma.io/protocol: http}}}}\n")
    };
    let backend = |name: &str| format!("{{kind: MeshService, name: {name}}}");
    let yaml = [
        "type: Mesh\nname: default\n---\n".to_string(),
        "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {type: BUILTIN, tags: {kuma.io/service: gw}}\n---\n".into(),
        format!(
            "type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf:\n  listeners:\n  - {{port: {http}, protocol: HTTP}}\n  - {{port: {tcp}, protocol: TCP}}\n---\n"
        ),
        "type: Dataplane\nname: backends\nnetworking:\n  address: 127.0.0.1\n  inbound:\n".into(),
        inbound(a, "a"),
        inbound(b, "b"),
        inbound(slow, "slow"),
        inbound(flaky, "flaky"),
        inbound(cb, "cb"),
        format!(
            r#"---
type: MeshHTTPRoute
name: main
spec:
  targetRef: {{kind: MeshGateway, name: gw}}
  to:
  - targetRef: {{kind: Mesh}}
    rules:
    - matches: [{{path: {{type: PathPrefix, value: /split}}}}]
      default:
        backendRefs: [{{kind: MeshService, name: a, weight: 1}}, {{kind: MeshService, name: b, weight: 1}}]
    - matches: [{{path: {{type: PathPrefix, value: /variant}}, headers: [{{name: x-variant, value: b}}]}}]
      default:
        backendRefs: [{backend_b}]
    - matches: [{{path: {{type: PathPrefix, value: /variant}}}}]
      default:
        filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {{set: [{{name: x-added, value: "yes"}}]}}
        - type: ResponseHeaderModifier
          responseHeaderModifier: {{add: [{{name: x-resp, value: r}}]}}
        backendRefs: [{backend_a}]
    - matches: [{{path: {{type: Exact, value: /old}}}}]
      default:
        filters:
        - type: RequestRedirect
          requestRedirect: {{statusCode: 301, path: {{type: ReplaceFullPath, replaceFullPath: /new}}}}
    - matches: [{{path: {{type: PathPrefix, value: /flaky}}}}]
      default:
        backendRefs: [{backend_flaky}]
    - matches: [{{path: {{type: PathPrefix, value: /catalog}}}}]
      default:
        backendRefs: [{{kind: MeshService, name: catalog, port: 80}}]
    - matches: [{{path: {{type: PathPrefix, value: /cb}}}}]
      default:
        filters:
        - type: URLRewrite
          urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /sleep}}}}
        backendRefs: [{backend_cb}]
---
type: MeshHTTPRoute
name: slow-route
spec:
  targetRef: {{kind: MeshGateway, name: gw}}
  to:
  - targetRef: {{kind: Mesh}}
    rules:
    - matches: [{{path: {{type: PathPrefix, value: /sleep}}}}]
      default:
        backendRefs: [{backend_slow}]
---
type: MeshTCPRoute
name: tcp
spec:
  targetRef: {{kind: MeshGateway, name: gw}}
  to:
  - targetRef: {{kind: Mesh}}
    rules:
    - default:
        backendRefs: [{backend_b}]
---
type: MeshService
name: catalog
spec:
  selector: {{dataplaneTags: {{kuma.io/service: b}}}}
  ports: [{{port: 80, targetPort: {b}, appProtocol: http}}]
---
type: MeshTimeout
name: slow-route-timeout
spec:
  targetRef: {{kind: MeshHTTPRoute, name: slow-route}}
  to:
  - targetRef: {{kind: Mesh}}
    default: {{http: {{requestTimeout: 500ms}}}}
---
type: MeshRetry
name: retry-5xx
spec:
  targetRef: {{kind: MeshGateway, name: gw}}
  to:
  - targetRef: {{kind: Mesh}}
    default: {{http: {{numRetries: 3, retryOn: [5xx]}}}}
---
type: MeshCircuitBreaker
name: cb-limits
spec:
  targetRef: {{kind: Mesh}}
  to:
  - targetRef: {{kind: MeshService, name: cb}}
    default: {{connectionLimits: {{maxConnections: 1, maxPendingRequests: 1, maxRequests: 1}}}}
"#,
            backend_a = backend("a"),
            backend_b = backend("b"),
            backend_slow = backend("slow"),
            backend_flaky = backend("flaky"),
            backend_cb = backend("cb"),
        ),
    ]
    .concat();
    std::fs::write(dir.join("all.yaml"), yaml).unwrap();
    let gateway = Gateway::start(&dir, "gw", 51);
    // Its routes, not just the listener: a listener can answer 404 for the
    // moment before its route configuration arrives.
    gateway.wait_for("the routes", Duration::from_secs(10), || {
        http_get(http, "x", "/variant").is_some_and(|r| r.status == 200)
    });

    // Matches and filters: a header match wins over the same prefix without.
    let r = http_get(http, "x", "/variant").unwrap();
    assert_eq!((r.status, r.body.lines().next()), (200, Some("a /variant")), "{r:?}");
    assert!(r.body.contains("x-added: yes"), "{}", r.body);
    assert_eq!(r.header("x-resp"), Some("r"));
    let r = request(http, "/variant", &[("x-variant", "b")]);
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("\r\n\r\nb /variant"), "{r}");
    // Kuma redirects to the listener's port unless the filter names one.
    let r = http_get(http, "x", "/old").unwrap();
    assert_eq!((r.status, r.header("location")), (301, Some(format!("http://x:{http}/new").as_str())));

    // A MeshService resource by port: its selected inbound (b's) serves.
    let r = http_get(http, "x", "/catalog/1").unwrap();
    assert_eq!((r.status, r.body.lines().next()), (200, Some("b /catalog/1")), "{r:?}");

    // Weighted backends: both get requests.
    let bodies: Vec<String> = (0..40).filter_map(|_| http_get(http, "x", "/split")).map(|r| r.body).collect();
    assert!(bodies.iter().any(|b| b.starts_with("a ")) && bodies.iter().any(|b| b.starts_with("b ")));

    // MeshTimeout on one MeshHTTPRoute: the backend takes 2 s, the route allows 0.5 s.
    let start = Instant::now();
    assert_eq!(http_get(http, "x", "/sleep").unwrap().status, 504);
    assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());

    // MeshRetry: two 500s (not retried by default) become a 200.
    let r = http_get(http, "x", "/flaky/k").unwrap();
    assert_eq!((r.status, r.body.lines().next()), (200, Some("flaky /flaky/k")));

    // MeshCircuitBreaker: one request at a time and one waiting; the rest
    // overflow at once. The URL rewrite sends /cb to the backend's /sleep.
    let started = Instant::now();
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..4).map(|_| s.spawn(|| http_get(http, "x", "/cb"))).collect();
        calls.into_iter().filter_map(|c| c.join().ok().flatten()).collect()
    });
    let overflowed = replies.iter().filter(|r| r.status == 503 && r.header("x-envoy-overloaded").is_some()).count();
    assert!(overflowed >= 1, "{replies:?}");
    assert!(replies.iter().any(|r| r.status == 200 && r.body.starts_with("cb /sleep")), "{replies:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // MeshTCPRoute: the TCP listener forwards the connection to b.
    let r = http_get(tcp, "x", "/through-tcp").unwrap();
    assert_eq!(r.body.lines().next(), Some("b /through-tcp"));
}

/// A GET with extra headers; the raw reply.
fn request(port: u16, path: &str, headers: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\n{extra}connection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

#[test]
fn mesh_policies_on_listeners_and_clusters_through_envoy() {
    let (limited, faulty, delayed) =
        (smart_backend("limited", 200), smart_backend("faulty", 200), smart_backend("delayed", 200));
    let (healthy, sick) = (smart_backend("healthy", 200), smart_backend("sick", 503));
    let (sticky_a, sticky_b) = (smart_backend("sticky-a", 200), smart_backend("sticky-b", 200));
    let (http, aborting, delaying) = (free_port(), free_port(), free_port());
    let dir = temp_dir("mesh-policies");
    let log = dir.join("access.log");
    let inbound = |port: u16, name: &str| {
        format!("  - {{port: {port}, tags: {{kuma.io/service: {name}, kuma.io/protocol: http}}}}\n")
    };
    let route = |name: &str, prefix: &str, backend: &str| {
        format!(
            "---\ntype: MeshHTTPRoute\nname: {name}\nspec:\n  targetRef: {{kind: MeshGateway, name: gw}}\n  to:\n  - targetRef: {{kind: Mesh}}\n    rules:\n    - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]\n      default: {{backendRefs: [{{kind: MeshService, name: {backend}}}]}}\n"
        )
    };
    let yaml = [
        "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {type: BUILTIN, tags: {kuma.io/service: gw}}\n---\n".to_string(),
        format!(
            "type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf:\n  listeners:\n  - {{port: {http}, protocol: HTTP, tags: {{port: main}}}}\n  - {{port: {aborting}, protocol: HTTP, tags: {{port: aborting}}}}\n  - {{port: {delaying}, protocol: HTTP, tags: {{port: delaying}}}}\n---\n"
        ),
        "type: Dataplane\nname: backends\nnetworking:\n  address: 127.0.0.1\n  inbound:\n".into(),
        inbound(limited, "limited"),
        inbound(faulty, "faulty"),
        inbound(delayed, "delayed"),
        inbound(healthy, "hc"),
        inbound(sick, "hc"),
        inbound(sticky_a, "sticky"),
        inbound(sticky_b, "sticky"),
        route("sticky-route", "/sticky", "sticky"),
        route("limited-route", "/limited", "limited"),
        route("faulty-route", "/faulty", "faulty"),
        route("delayed-route", "/delayed", "delayed"),
        route("hc-route", "/hc", "hc"),
        format!(
            r#"---
type: MeshRateLimit
name: two-a-minute
spec:
  targetRef: {{kind: MeshHTTPRoute, name: limited-route}}
  to:
  - targetRef: {{kind: Mesh}}
    default:
      local:
        http:
          requestRate: {{num: 2, interval: 60s}}
          onRateLimit: {{status: 429, headers: {{add: [{{name: x-limited, value: "yes"}}]}}}}
---
type: MeshFaultInjection
name: abort
spec:
  targetRef: {{kind: MeshGateway, name: gw, tags: {{port: aborting}}}}
  to:
  - targetRef: {{kind: Mesh}}
    default:
      http: [{{abort: {{httpStatus: 418, percentage: 100}}}}]
---
type: MeshFaultInjection
name: delay
spec:
  targetRef: {{kind: MeshGateway, name: gw, tags: {{port: delaying}}}}
  to:
  - targetRef: {{kind: Mesh}}
    default:
      http: [{{delay: {{value: 400ms, percentage: "100.0"}}}}]
---
type: MeshHealthCheck
name: hc
spec:
  targetRef: {{kind: MeshGateway, name: gw}}
  to:
  - targetRef: {{kind: MeshService, name: hc}}
    default:
      interval: 200ms
      timeout: 200ms
      unhealthyThreshold: 1
      healthyThreshold: 1
      http: {{path: /health}}
---
type: MeshLoadBalancingStrategy
name: sticky-users
spec:
  targetRef: {{kind: Mesh}}
  to:
  - targetRef: {{kind: MeshService, name: sticky}}
    default:
      loadBalancer: {{type: RingHash, ringHash: {{hashFunction: XXHash}}}}
      hashPolicies: [{{type: Header, header: {{name: x-user}}}}]
---
type: MeshAccessLog
name: received
spec:
  targetRef: {{kind: MeshGateway, name: gw}}
  from:
  - targetRef: {{kind: Mesh}}
    default:
      backends: [{{type: File, file: {{path: {log}}}}}]
"#,
            log = log.display()
        ),
    ]
    .concat();
    std::fs::write(dir.join("all.yaml"), yaml).unwrap();
    let gateway = Gateway::start(&dir, "gw", 53);
    // A 200, not just an answer: before the route configuration arrives,
    // the listener answers 404, which the route's limit does not count.
    gateway.wait_for("the routes", Duration::from_secs(10), || {
        http_get(http, "x", "/limited/0").is_some_and(|r| r.status == 200)
    });

    // MeshRateLimit on one MeshHTTPRoute: 2 a minute; /limited/0 above was the first.
    assert_eq!(http_get(http, "x", "/limited/1").unwrap().status, 200);
    let r = http_get(http, "x", "/limited/2").unwrap();
    assert_eq!((r.status, r.header("x-limited")), (429, Some("yes")));
    // Other routes are not limited.
    assert!((0..4).all(|_| http_get(http, "x", "/faulty").unwrap().status == 200));

    // MeshFaultInjection on one listener each: abort, then delay.
    assert_eq!(http_get(aborting, "x", "/faulty").unwrap().status, 418);
    let start = Instant::now();
    assert_eq!(http_get(delaying, "x", "/delayed").unwrap().status, 200);
    assert!(start.elapsed() >= Duration::from_millis(350), "{:?}", start.elapsed());

    // MeshHealthCheck: the sick endpoint is ejected, the healthy one serves everything.
    gateway.wait_for("the sick endpoint ejected", Duration::from_secs(10), || {
        (0..10).all(|_| http_get(http, "x", "/hc").is_some_and(|r| r.body.starts_with("healthy")))
    });

    // MeshLoadBalancingStrategy: a ring hash on `x-user` keeps each user on one endpoint.
    for user in ["alice", "bob", "carol"] {
        let served: std::collections::BTreeSet<String> = (0..8)
            .map(|_| request(http, "/sticky", &[("x-user", user)]))
            .map(|r| r.split("\r\n\r\n").nth(1).unwrap_or("").split(' ').next().unwrap_or("").to_string())
            .collect();
        assert_eq!(served.len(), 1, "{user} reached {served:?}");
        assert!(served.iter().all(|s| s.starts_with("sticky-")), "{served:?}");
    }

    // MeshAccessLog `from`: a line per request received, source unknown, destination the gateway.
    gateway.wait_for("an access log line", Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("\"GET /limited/2 HTTP/1.1\" 429") && t.contains("\"unknown\" \"gw\""))
    });
}
