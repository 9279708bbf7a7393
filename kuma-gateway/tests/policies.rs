//! Connection policies through a real Envoy: each is configured on a gateway
//! route and shown by traffic.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn policies_shape_traffic_through_envoy() {
    let slow = smart_backend("slow", 200);
    let limited = smart_backend("limited", 200);
    let faulty = smart_backend("faulty", 200);
    let delayed = smart_backend("delayed", 200);
    let flaky = smart_backend("flaky", 200);
    let healthy = smart_backend("healthy", 200);
    let sick = smart_backend("sick", 503);
    let http = free_port();
    let dir = temp_dir("policies");
    let log = dir.join("access.log");
    let route = |name: &str, prefix: &str| {
        format!(
            "    - matches: [{{path: {{match: PREFIX, value: {prefix}}}}}]\n      backends: [{{destination: {{kuma.io/service: {name}}}}}]\n"
        )
    };
    let inbound = |port: u16, name: &str| {
        format!("  - {{port: {port}, tags: {{kuma.io/service: {name}, kuma.io/protocol: http}}}}\n")
    };
    let policy = |kind: &str, name: &str, conf: &str| {
        // FaultInjection destinations must name the protocol (Kuma's rule).
        let protocol = if kind == "FaultInjection" { ", kuma.io/protocol: http" } else { "" };
        format!(
            "---\ntype: {kind}\nname: {name}\nsources: [{{match: {{kuma.io/service: '*'}}}}]\ndestinations: [{{match: {{kuma.io/service: {name}{protocol}}}}}]\nconf: {conf}\n"
        )
    };
    let yaml = [
        format!(
            // Kuma's initial MeshTimeout and MeshRetry, applied after these
            // legacy policies, would override them (as in Kuma 2.x).
            "type: Mesh\nname: default\nskipCreatingInitialPolicies: ['*']\nlogging:\n  defaultBackend: file\n  backends: [{{name: file, type: file, conf: {{path: {}}}}}]\n---\n",
            log.display()
        ),
        "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {type: BUILTIN, tags: {kuma.io/service: gw}}\n---\n".into(),
        format!(
            "type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{listeners: [{{port: {http}, protocol: HTTP}}]}}\n---\n"
        ),
        "type: MeshGatewayRoute\nname: r\nselectors: [{match: {kuma.io/service: gw}}]\nconf:\n  http:\n    rules:\n".into(),
        route("slow", "/sleep"),
        route("limited", "/limited"),
        route("faulty", "/faulty"),
        route("delayed", "/delayed"),
        route("flaky", "/flaky"),
        route("hc", "/hc"),
        "---\ntype: Dataplane\nname: backends\nnetworking:\n  address: 127.0.0.1\n  inbound:\n".into(),
        inbound(slow, "slow"),
        inbound(limited, "limited"),
        inbound(faulty, "faulty"),
        inbound(delayed, "delayed"),
        inbound(flaky, "flaky"),
        inbound(healthy, "hc"),
        inbound(sick, "hc"),
        policy("Timeout", "slow", "{http: {requestTimeout: 500ms}}"),
        policy("RateLimit", "limited", "{http: {requests: 2, interval: 60s, onRateLimit: {status: 429}}}"),
        policy("FaultInjection", "faulty", "{abort: {httpStatus: 418, percentage: 100}}"),
        policy("FaultInjection", "delayed", "{delay: {value: 400ms, percentage: 100}}"),
        policy("Retry", "flaky", "{http: {numRetries: 3, retryOn: [all_5xx]}}"),
        policy(
            "HealthCheck",
            "hc",
            "{interval: 200ms, timeout: 200ms, unhealthyThreshold: 1, healthyThreshold: 1, http: {path: /health}}",
        ),
        "---\ntype: TrafficLog\nname: all\nsources: [{match: {kuma.io/service: '*'}}]\ndestinations: [{match: {kuma.io/service: '*'}}]\n".into(),
    ]
    .concat();
    std::fs::write(dir.join("all.yaml"), yaml).unwrap();
    let gateway = Gateway::start(&dir, "gw", 21);
    // A 200, not just an answer: before the route configuration arrives,
    // the listener answers 404, which the route's limit does not count.
    gateway.wait_for("the routes", Duration::from_secs(10), || {
        http_get(http, "x", "/limited/0").is_some_and(|r| r.status == 200)
    });
    // Timeout: the backend takes 2 s, the route allows 0.5 s.
    let start = Instant::now();
    assert_eq!(http_get(http, "x", "/sleep").unwrap().status, 504);
    assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());
    // RateLimit: 2 requests per minute; /limited/0 above was the first.
    assert_eq!(http_get(http, "x", "/limited/1").unwrap().status, 200);
    assert_eq!(http_get(http, "x", "/limited/2").unwrap().status, 429);
    // FaultInjection: abort and delay.
    assert_eq!(http_get(http, "x", "/faulty").unwrap().status, 418);
    let start = Instant::now();
    assert_eq!(http_get(http, "x", "/delayed").unwrap().status, 200);
    // (Envoy's timers may fire a little early against this clock.)
    assert!(start.elapsed() >= Duration::from_millis(350), "{:?}", start.elapsed());
    // Retry: the backend fails twice with 500 (not a gateway error, so the
    // default policy would not retry), then succeeds.
    let r = http_get(http, "x", "/flaky/a").unwrap();
    assert_eq!((r.status, r.body.lines().next()), (200, Some("flaky /flaky/a")));
    // HealthCheck: the sick endpoint is ejected, the healthy one serves everything.
    gateway.wait_for("the sick endpoint ejected", Duration::from_secs(10), || {
        (0..10).all(|_| http_get(http, "x", "/hc").is_some_and(|r| r.body.starts_with("healthy")))
    });
    // TrafficLog: a line per request in Kuma's format.
    gateway.wait_for("an access log line", Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("\"GET /faulty HTTP/1.1\" 418") && t.contains("\"gw\" \"*\""))
    });
}

/// An ExternalService over TLS (a local TLS server with the test
/// certificate for `secure.example.com`): the gateway originates TLS with
/// SNI and verifies the server against the CA from a Secret.
#[test]
fn external_service_with_tls_is_reached() {
    let certs = root().join("testdata/certs");
    let (tls_port, _server) = tls_server("external", &certs.join("rsa.crt"), &certs.join("rsa.key"), None);
    let http = free_port();
    let dir = temp_dir("external");
    let ca = base64(std::fs::read(certs.join("rsa.crt")).unwrap().as_slice());
    std::fs::write(
        dir.join("all.yaml"),
        format!(
            "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw}}}}\n---\n\
type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{listeners: [{{port: {http}, protocol: HTTP}}]}}\n---\n\
type: MeshGatewayRoute\nname: r\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{http: {{rules: [{{matches: [{{path: {{match: PREFIX, value: /}}}}], backends: [{{destination: {{kuma.io/service: secure}}}}]}}]}}}}\n---\n\
type: ExternalService\nname: secure\nnetworking:\n  address: localhost:{tls_port}\n  tls: {{enabled: true, serverName: secure.example.com, caCert: {{secret: ca}}}}\ntags: {{kuma.io/service: secure, kuma.io/protocol: http}}\n---\n\
type: Secret\nname: ca\ndata: {ca}\n"
        ),
    )
    .unwrap();
    let gateway = Gateway::start(&dir, "gw", 22);
    let start = Instant::now();
    loop {
        let reply = http_get(http, "x", "/hello");
        if reply.as_ref().is_some_and(|r| r.status == 200 && r.body.starts_with("external /hello")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the external service was not reached; last reply {reply:?}; log:\n{}",
            gateway.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Python HTTPS server answering `<name> <path>`, and with `client_ca`
/// also requiring a client certificate from that CA and answering
/// `<name> <path> <client URI SANs>`. It binds port 0 and prints the port it
/// got: no race with other tests.
fn tls_server(name: &str, cert: &Path, key: &Path, client_ca: Option<&Path>) -> (u16, KillOnDrop) {
    let client = client_ca.map_or(String::new(), |ca| {
        format!("c.verify_mode = ssl.CERT_REQUIRED; c.load_verify_locations('{}')\n", ca.display())
    });
    let script = format!(
        "import http.server, ssl, sys\n\
class H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        peer = self.connection.getpeercert() or {{}}\n        uris = ','.join(v for k, v in peer.get('subjectAltName', ()) if k == 'URI')\n        body = ('{name} ' + self.path + (' ' + uris if uris else '')).encode()\n        self.send_response(200); self.send_header('content-length', str(len(body))); self.end_headers(); self.wfile.write(body)\n    def log_message(self, *a): pass\n\
s = http.server.HTTPServer(('127.0.0.1', 0), H)\n\
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('{}', '{}')\n{client}\
s.socket = c.wrap_socket(s.socket, server_side=True)\nprint(s.server_address[1], flush=True)\ns.serve_forever()\n",
        cert.display(),
        key.display()
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("TLS server did not start: {line:?}"));
    (port, KillOnDrop(child))
}

/// Stops a helper process however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Mesh mTLS resources: the builtin CA of `testdata/certs/mesh-ca-ec.*`
/// (its backend with `dp_cert`, if any), a gateway on `http` routing
/// `/allowed` and `/denied` to those services, and a TrafficPermission from
/// the gateway to `allowed` only.
fn mtls_resources(http: u16, allowed: u16, denied: u16, dp_cert: &str) -> String {
    let certs = root().join("testdata/certs");
    let ca = certs.join("mesh-ca-ec.crt");
    let yaml = [
        "type: Mesh".to_string(),
        "name: default".into(),
        format!("mtls: {{enabledBackend: ca-1, backends: [{{name: ca-1, type: builtin{dp_cert}}}]}}"),
        "---".into(),
        "type: Secret".into(),
        "name: default.ca-builtin-cert-ca-1".into(),
        format!("data: {}", base64(&std::fs::read(&ca).unwrap())),
        "---".into(),
        "type: Secret".into(),
        "name: default.ca-builtin-key-ca-1".into(),
        format!("data: {}", base64(&std::fs::read(certs.join("mesh-ca-ec.key")).unwrap())),
        "---".into(),
        "type: Dataplane".into(),
        "name: gw".into(),
        "networking: {address: 127.0.0.1, gateway: {type: BUILTIN, tags: {kuma.io/service: gw}}}".into(),
        "---".into(),
        "type: MeshGateway".into(),
        "name: gw".into(),
        "selectors: [{match: {kuma.io/service: gw}}]".into(),
        format!("conf: {{listeners: [{{port: {http}, protocol: HTTP}}]}}"),
        "---".into(),
        "type: MeshGatewayRoute".into(),
        "name: r".into(),
        "selectors: [{match: {kuma.io/service: gw}}]".into(),
        "conf:".into(),
        "  http:".into(),
        "    rules:".into(),
        "    - matches: [{path: {match: PREFIX, value: /allowed}}]".into(),
        "      backends: [{destination: {kuma.io/service: allowed}}]".into(),
        "    - matches: [{path: {match: PREFIX, value: /denied}}]".into(),
        "      backends: [{destination: {kuma.io/service: denied}}]".into(),
        "---".into(),
        "type: TrafficPermission".into(),
        "name: gw-to-allowed".into(),
        "sources: [{match: {kuma.io/service: gw}}]".into(),
        "destinations: [{match: {kuma.io/service: allowed}}]".into(),
        "---".into(),
        "type: Dataplane".into(),
        "name: backends".into(),
        "networking:".into(),
        "  address: 127.0.0.1".into(),
        "  inbound:".into(),
        format!("  - {{port: {allowed}, tags: {{kuma.io/service: allowed, kuma.io/protocol: http}}}}"),
        format!("  - {{port: {denied}, tags: {{kuma.io/service: denied, kuma.io/protocol: http}}}}"),
    ]
    .join("\n");
    yaml + "\n"
}

/// `run` over [`mtls_resources`] with the `allowed` mTLS server and a plain
/// `denied` backend: the gateway, its HTTP port, and the server to keep.
fn start_mtls(name: &str, base_id: u32, dp_cert: &str) -> (Gateway, u16, KillOnDrop) {
    let certs = root().join("testdata/certs");
    let ca = certs.join("mesh-ca-ec.crt");
    let (allowed, _server) =
        tls_server("allowed", &certs.join("mesh-service.crt"), &certs.join("mesh-service.key"), Some(&ca));
    let denied = backend("denied");
    let http = free_port();
    let dir = temp_dir(name);
    std::fs::write(dir.join("all.yaml"), mtls_resources(http, allowed, denied, dp_cert)).unwrap();
    (Gateway::start(&dir, "gw", base_id), http, _server)
}

/// With mesh mTLS on, the gateway reaches mesh services over mTLS with the
/// identity it issued from the mesh CA (the service, a TLS server with a
/// certificate from that CA for `spiffe://default/allowed`, requires it and
/// echoes the gateway's SPIFFE id), and a route to a service no
/// TrafficPermission allows from the gateway answers 403 at the edge.
#[test]
fn mesh_mtls_and_traffic_permission() {
    let (gateway, http, _server) = start_mtls("permission", 52, "");
    gateway.wait_for("the allowed route, over mesh mTLS", Duration::from_secs(10), || {
        http_get(http, "x", "/allowed").is_some_and(|r| {
            r.status == 200 && r.body == "allowed /allowed spiffe://default/gw,kuma://kuma.io/service/gw"
        })
    });
    let r = http_get(http, "x", "/denied").unwrap();
    assert_eq!((r.status, r.body.as_str()), (403, "RBAC: access denied"));
}

/// The serial numbers of the certificates Envoy holds (its admin `/certs`).
fn envoy_cert_serials(admin: u16) -> std::collections::BTreeSet<String> {
    let body = http_get(admin, "localhost", "/certs").map(|r| r.body).unwrap_or_default();
    body.split("\"serial_number\": \"").skip(1).filter_map(|s| s.split('"').next()).map(str::to_string).collect()
}

/// The gateway's mesh identity rotates: with a 10 s validity
/// (`dpCert.rotation.expiration`), a new certificate reaches Envoy over SDS
/// every 8 s, and requests over mesh mTLS never fail meanwhile.
#[test]
fn the_mesh_identity_rotates_without_failing_a_request() {
    let (gateway, http, _server) = start_mtls("rotation", 27, ", dpCert: {rotation: {expiration: 10s}}");
    let ok = || http_get(http, "x", "/allowed").is_some_and(|r| r.status == 200);
    gateway.wait_for("the allowed route, over mesh mTLS", Duration::from_secs(10), ok);
    let first = envoy_cert_serials(gateway.admin);
    let mut seen = first.clone();
    let (mut requests, mut failures) = (0, 0);
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        requests += 1;
        if !ok() {
            failures += 1;
        }
        if requests % 20 == 0 {
            seen.extend(envoy_cert_serials(gateway.admin));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(failures, 0, "{failures} of {requests} requests failed during rotation; log:\n{}", gateway.log());
    assert!(seen.len() >= first.len() + 2, "at least two new certificates in 20 s: {first:?} then {seen:?}");
}

/// TrafficLog to a `tcp` logging backend: Envoy formats the lines, sends
/// them to `kuma-gateway`'s log sink, which writes them to the backend's TCP
/// address — for an HTTP and a TCP listener.
#[test]
fn traffic_log_to_a_tcp_backend() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{Arc, Mutex};
    let collector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let collector_port = collector.local_addr().unwrap().port();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let received = lines.clone();
    std::thread::spawn(move || {
        for conn in collector.incoming().flatten() {
            let received = received.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(conn).lines().map_while(Result::ok) {
                    received.lock().unwrap().push(line);
                }
            });
        }
    });
    let web = backend("web");
    // An echo server for the TCP listener.
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in echo.incoming().flatten() {
            let mut buf = [0u8; 256];
            if let Ok(n) = conn.read(&mut buf) {
                let _ = conn.write_all(&buf[..n]);
            }
        }
    });
    let (http, tcp) = (free_port(), free_port());
    let dir = temp_dir("tcp-log");
    let yaml = format!(
        "type: Mesh\nname: default\nlogging:\n  defaultBackend: collector\n  backends: [{{name: collector, type: tcp, conf: {{address: '127.0.0.1:{collector_port}'}}}}]\n---\n\
type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw}}}}\n---\n\
type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{listeners: [{{port: {http}, protocol: HTTP}}, {{port: {tcp}, protocol: TCP}}]}}\n---\n\
type: MeshGatewayRoute\nname: web\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{http: {{rules: [{{matches: [{{path: {{match: PREFIX, value: /}}}}], backends: [{{destination: {{kuma.io/service: web}}}}]}}]}}}}\n---\n\
type: MeshGatewayRoute\nname: echo\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{tcp: {{rules: [{{backends: [{{destination: {{kuma.io/service: echo}}}}]}}]}}}}\n---\n\
type: Dataplane\nname: backends\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - {{port: {web}, tags: {{kuma.io/service: web, kuma.io/protocol: http}}}}\n  - {{port: {echo_port}, tags: {{kuma.io/service: echo, kuma.io/protocol: tcp}}}}\n---\n\
type: TrafficLog\nname: all\nsources: [{{match: {{kuma.io/service: '*'}}}}]\ndestinations: [{{match: {{kuma.io/service: '*'}}}}]\n"
    );
    std::fs::write(dir.join("all.yaml"), yaml).unwrap();
    let gateway = Gateway::start(&dir, "gw", 24);
    gateway.wait_for("the HTTP listener", Duration::from_secs(10), || {
        http_get(http, "x", "/logged").is_some_and(|r| r.status == 200)
    });
    // (Envoy's TLS inspector, on every gateway listener as in Kuma, waits
    // for more than a few bytes before it lets a plain-TCP client through.)
    let message = b"a line long enough for the TLS inspector to tell it is not TLS\n";
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(message).unwrap();
    let mut buf = vec![0u8; message.len()];
    let echoed = conn.read_exact(&mut buf);
    assert!(echoed.is_ok() && buf == message, "{echoed:?} {buf:?}; log:\n{}", gateway.log());
    drop(conn);
    // Envoy flushes its log buffer every second.
    gateway.wait_for("the HTTP and TCP lines at the collector", Duration::from_secs(15), || {
        let lines = lines.lock().unwrap();
        lines.iter().any(|l| l.contains("default \"GET /logged HTTP/1.1\" 200") && l.contains("\"gw\" \"*\""))
            && lines
                .iter()
                .any(|l| l.contains("default 127.0.0.1(gw)->") && l.contains(&format!("sent {} bytes", message.len())))
    });
}
