//! End to end: real backends, the `kuma-gateway` binary (ADS server +
//! Envoy supervisor) and a real Envoy 1.40, with traffic sent through it.

mod support;

use std::time::Duration;

use support::*;

fn ok_from(reply: Option<Reply>, backend: &str) -> bool {
    reply.is_some_and(|r| r.status == 200 && r.body.starts_with(backend))
}

/// The seed's example (examples/edge-gateway) with the backends on their
/// own ports, plus HTTPS with SNI, a TCP listener, a redirect and a header filter.
#[test]
fn builtin_gateway_serves_http_https_tcp() {
    let frontend = backend("frontend");
    let api = backend("api");
    let (http, https, tcp, idle) = (free_port(), free_port(), free_port(), free_port());
    let dir = temp_dir("builtin");
    // The example, with its ports moved to free ones.
    for file in ["dataplane.yaml", "gateway.yaml", "routes.yaml", "services.yaml"] {
        let text = std::fs::read_to_string(root().join("examples/edge-gateway").join(file)).unwrap();
        let text = text
            .replace("8080", &http.to_string())
            .replace("18081", &frontend.to_string())
            .replace("18082", &api.to_string());
        std::fs::write(dir.join(file), text).unwrap();
    }
    let cert = std::fs::read_to_string(root().join("testdata/certs/rsa.crt")).unwrap();
    let key = std::fs::read_to_string(root().join("testdata/certs/rsa.key")).unwrap();
    let bundle = base64(format!("{cert}{key}").as_bytes());
    let more = [
        "type: MeshGatewayRoute",
        "name: filters",
        "selectors: [{match: {kuma.io/service: edge-gateway}}]",
        "conf:",
        "  http:",
        "    hostnames: [foo.example.com]",
        "    rules:",
        "    - matches: [{path: {match: PREFIX, value: /old}}]",
        "      filters: [{redirect: {hostname: new.example.com, statusCode: 302, path: {replacePrefixMatch: /new}}}]",
        "    - matches: [{path: {match: PREFIX, value: /headers}}]",
        "      filters:",
        "      - requestHeader: {set: [{name: x-set-me, value: one}], remove: [x-drop-me]}",
        "      - responseHeader: {add: [{name: x-gateway, value: kuma}]}",
        "      backends: [{destination: {kuma.io/service: api}}]",
        "---",
        "type: MeshGatewayRoute",
        "name: tcp",
        "selectors: [{match: {kuma.io/service: edge-gateway, port: tcp}}]",
        "conf: {tcp: {rules: [{backends: [{destination: {kuma.io/service: api}}]}]}}",
        "---",
        "type: MeshGatewayRoute",
        "name: secure",
        "selectors: [{match: {kuma.io/service: edge-gateway, port: https}}]",
        "conf: {http: {rules: [{matches: [{path: {match: PREFIX, value: /}}], backends: [{destination: {kuma.io/service: api}}]}]}}",
        "---",
        "type: Secret",
        "name: tls-cert",
        &format!("data: {bundle}"),
    ]
    .join("\n");
    std::fs::write(dir.join("more.yaml"), more + "\n").unwrap();
    // HTTPS and TCP listeners join the gateway.
    let gw = std::fs::read_to_string(dir.join("gateway.yaml")).unwrap();
    std::fs::write(
        dir.join("gateway.yaml"),
        format!(
            "{gw}  - port: {https}\n    protocol: HTTPS\n    hostname: secure.example.com\n    tls: {{mode: TERMINATE, certificates: [{{secret: tls-cert}}]}}\n    tags: {{port: https}}\n  - port: {https}\n    protocol: HTTPS\n    hostname: other.example.com\n    tls: {{mode: TERMINATE, certificates: [{{secret: tls-cert}}]}}\n    tags: {{port: https-other}}\n  - port: {tcp}\n    protocol: TCP\n    tags: {{port: tcp}}\n  - port: {idle}\n    protocol: TCP\n    tags: {{port: idle}}\n"
        ),
    )
    .unwrap();
    let gateway = Gateway::start(&dir, "gateway-instance-1", 11);
    gateway.wait_for("the HTTP listener", Duration::from_secs(10), || {
        http_get(http, "foo.example.com", "/asset").is_some()
    });
    // The seed's example.
    assert!(ok_from(http_get(http, "foo.example.com", "/api/foo"), "api /api/foo"));
    assert!(ok_from(http_get(http, "foo.example.com", "/api"), "api /api"));
    assert!(ok_from(http_get(http, "foo.example.com", "/asset"), "frontend /asset"));
    assert!(ok_from(http_get(http, "foo.example.com", "/apiary"), "frontend"), "prefixes match whole segments");
    assert_eq!(http_get(http, "other.example.com", "/asset").unwrap().status, 404);
    // Redirect.
    let r = http_get(http, "foo.example.com", "/old/page?x=1").unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(format!("http://new.example.com:{http}/new/page").as_str()));
    // Header filters: set on the request, add on the response.
    let r = http_get(http, "foo.example.com", "/headers").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("x-set-me: one"), "{}", r.body);
    // Like Kuma's config, the route configuration removes `x-kuma-tags` after
    // the cluster level added it (Envoy applies the least specific level last).
    assert!(!r.body.contains("x-kuma-tags"), "{}", r.body);
    assert_eq!(r.header("x-gateway"), Some("kuma"));
    // HTTPS with SNI.
    let ca = root().join("testdata/certs/rsa.crt");
    let (status, body) = https_get(https, "secure.example.com", "/api/x", &ca).unwrap();
    assert_eq!((status, body.starts_with("api /api/x")), (200, true), "{body}\n{}", gateway.log());
    // A request for the port's other HTTPS hostname on this connection is
    // misdirected (421), not routed under secure.example.com's certificate
    // (which covers *.example.com too); on its own connection it is served
    // (no route there: 404).
    assert_eq!(https_get_as(https, "secure.example.com", "other.example.com", &ca), Some(421));
    assert_eq!(https_get_as(https, "other.example.com", "other.example.com", &ca), Some(404));
    assert_eq!(https_get_as(https, "secure.example.com", "secure.example.com", &ca), Some(200));
    // TCP.
    let stream = std::net::TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let r = exchange(stream, "anything", "/through-tcp").unwrap();
    assert!(r.body.starts_with("api /through-tcp"), "{}", r.body);
    // A TCP listener without routes closes a connection as soon as the
    // client speaks (the TLS inspector waits for the first bytes).
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", idle)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::io::Write::write_all(&mut stream, b"hello\r\n").unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    match std::io::Read::read(&mut stream, &mut buf) {
        Ok(n) => assert_eq!(n, 0, "closed without data"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// The seed's delegated gateway: traffic to the outbound reaches the service.
#[test]
fn delegated_gateway_outbound_reaches_the_service() {
    let backend_port = backend("backend");
    let outbound = free_port();
    let dir = temp_dir("delegated");
    let text = std::fs::read_to_string(root().join("examples/delegated/kong-01.yaml")).unwrap();
    let text = text.replace("33033", &outbound.to_string()).replace("18083", &backend_port.to_string());
    std::fs::write(dir.join("kong-01.yaml"), text).unwrap();
    let gateway = Gateway::start(&dir, "kong-01", 12);
    gateway.wait_for("the outbound listener", Duration::from_secs(10), || {
        ok_from(http_get(outbound, "backend", "/hello"), "backend /hello")
    });
    // `run` owns Envoy: killed, it is restarted and serves again. (An Envoy
    // that dies within 2 s of its first start counts as unable to start.)
    std::thread::sleep(Duration::from_secs(2));
    let killed = std::process::Command::new("pkill").args(["-KILL", "-f", "base-id 12 --log-level"]).status().unwrap();
    assert!(killed.success(), "Envoy process not found");
    gateway.wait_for("the restart", Duration::from_secs(10), || gateway.log().contains("Envoy exited; restarting"));
    gateway.wait_for("traffic after the restart", Duration::from_secs(15), || {
        ok_from(http_get(outbound, "backend", "/again"), "backend /again")
    });
}

/// Edits reach Envoy; an invalid edit is reported and the old config keeps
/// serving; a config Envoy rejects (NACK) is logged and the old one stays.
#[test]
fn live_updates_invalid_edits_and_nacks() {
    let one = backend("one");
    let two = backend("two");
    let http = free_port();
    let dir = temp_dir("live");
    std::fs::write(
        dir.join("gateway.yaml"),
        format!(
            "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw}}}}\n---\n\
type: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{listeners: [{{port: {http}, protocol: HTTP}}]}}\n---\n\
type: Dataplane\nname: backends\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - {{port: {one}, tags: {{kuma.io/service: one, kuma.io/protocol: http}}}}\n  - {{port: {two}, tags: {{kuma.io/service: two, kuma.io/protocol: http}}}}\n"
        ),
    )
    .unwrap();
    let route = |service: &str| {
        format!(
            "type: MeshGatewayRoute\nname: r\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{http: {{rules: [{{matches: [{{path: {{value: /}}}}], backends: [{{destination: {{kuma.io/service: {service}}}}}]}}]}}}}\n"
        )
    };
    std::fs::write(dir.join("route.yaml"), route("one")).unwrap();
    let gateway = Gateway::start(&dir, "gw", 13);
    gateway.wait_for("route to one", Duration::from_secs(10), || ok_from(http_get(http, "x", "/"), "one"));
    let ready = http_get(gateway.control_admin, "localhost", "/ready").unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    assert_eq!(gateway.metric("kuma_gateway_xds_streams", &[]), Some(1.0));
    assert!(gateway.metric("kuma_gateway_xds_acks_total", &[("resource_type", "Listener")]) >= Some(1.0));
    let acks = |gateway: &Gateway| {
        gateway.metric(
            "kuma_gateway_xds_acks_total",
            &[("mesh", "default"), ("dataplane", "gw"), ("resource_type", "Listener")],
        )
    };
    assert!(acks(&gateway) >= Some(1.0), "{:?}", gateway.metrics());
    assert_eq!(gateway.metric("kuma_gateway_resources", &[("kind", "MeshGateway"), ("mesh", "default")]), Some(1.0));
    assert_eq!(gateway.metric("kuma_gateway_resources", &[("kind", "Dataplane"), ("mesh", "default")]), Some(2.0));
    // /dataplanes and `status` show the Envoy connected and up to date.
    gateway.wait_for("up to date", Duration::from_secs(10), || gateway.dataplanes()[0]["up_to_date"] == true);
    let planes = gateway.dataplanes();
    assert_eq!(planes.as_array().unwrap().len(), 1, "{planes}");
    assert_eq!((planes[0]["mesh"].as_str(), planes[0]["dataplane"].as_str()), (Some("default"), Some("gw")));
    assert_eq!(planes[0]["protocol"], "delta", "the bootstrap's default");
    assert!(planes[0]["address"].as_str().unwrap().starts_with("127.0.0.1:"), "{planes}");
    assert_eq!(planes[0]["types"]["Listener"]["sent"], planes[0]["types"]["Listener"]["acked"]);
    let (code, table) = gateway.status();
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("default/gw") && table.contains("up to date"), "{table}");
    let changes_acked = gateway.histogram_count("kuma_gateway_xds_change_to_ack_seconds");
    let reloads_timed = gateway.histogram_count("kuma_gateway_reload_duration_seconds");
    // An edit arrives.
    std::fs::write(dir.join("route.yaml"), route("two")).unwrap();
    gateway.wait_for("route to two", Duration::from_secs(10), || ok_from(http_get(http, "x", "/"), "two"));
    gateway.wait_for("the change ACKed", Duration::from_secs(10), || {
        gateway.histogram_count("kuma_gateway_xds_change_to_ack_seconds") > changes_acked
    });
    assert!(gateway.histogram_count("kuma_gateway_reload_duration_seconds") > reloads_timed);
    assert!(gateway.histogram_count("kuma_gateway_xds_translation_seconds") >= 1.0);
    gateway.wait_for("up to date after the change", Duration::from_secs(10), || gateway.status().0 == 0);
    // An invalid edit is reported; traffic keeps flowing on the old config.
    std::fs::write(dir.join("route.yaml"), route("two").replace("PREFIX", "").replace("value: /", "value: no-slash"))
        .unwrap();
    gateway.wait_for("the error report", Duration::from_secs(10), || gateway.log().contains("invalid change"));
    assert_eq!(gateway.metric("kuma_gateway_reloads_total", &[("result", "invalid")]), Some(1.0));
    assert!(gateway.log().contains("route.yaml"), "the report names the file");
    assert!(ok_from(http_get(http, "x", "/"), "two"));
    // Fixed: the update arrives.
    std::fs::write(dir.join("route.yaml"), route("one")).unwrap();
    gateway.wait_for("route back to one", Duration::from_secs(10), || ok_from(http_get(http, "x", "/"), "one"));
    // A listener on a port someone else holds: Envoy cannot bind it and
    // rejects the update (NACK); the old listener keeps serving.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let gw = std::fs::read_to_string(dir.join("gateway.yaml")).unwrap();
    std::fs::write(
        dir.join("gateway.yaml"),
        gw.replace(
            &format!("{{port: {http}, protocol: HTTP}}"),
            &format!("{{port: {http}, protocol: HTTP}}, {{port: {port}, protocol: HTTP, hostname: b.example.com}}"),
        ),
    )
    .unwrap();
    gateway.wait_for("the NACK", Duration::from_secs(10), || gateway.log().contains("NACK"));
    assert!(ok_from(http_get(http, "x", "/"), "one"));
    drop(taken);
    // A ProxyTemplate adding a route Envoy cannot compile (a broken regex):
    // RDS is rejected with Envoy's error, and the old routes keep serving.
    std::fs::write(
        dir.join("template.yaml"),
        "type: ProxyTemplate\nname: broken\nselectors: [{match: {kuma.io/service: gw}}]\nconf:\n  modifications:\n  - virtualHost:\n      operation: add\n      value: |\n        name: broken\n        domains: [broken.example.com]\n        routes: [{match: {safeRegex: {regex: '(['}}, directResponse: {status: 200}}]\n",
    )
    .unwrap();
    gateway.wait_for("the RDS NACK", Duration::from_secs(10), || {
        gateway.log().lines().any(|l| l.contains("NACK") && l.contains("RouteConfiguration"))
    });
    assert!(ok_from(http_get(http, "x", "/"), "one"));
    // The NACKs stay visible to an operator, by data plane and type.
    let nacks = |t: &str| {
        gateway
            .metric("kuma_gateway_xds_nacks_total", &[("mesh", "default"), ("dataplane", "gw"), ("resource_type", t)])
    };
    assert!(nacks("Listener") >= Some(1.0) && nacks("RouteConfiguration") >= Some(1.0), "{:?}", gateway.metrics());
    // And in /dataplanes and `status`, with Envoy's error.
    let planes = gateway.dataplanes();
    let routes = &planes[0]["types"]["RouteConfiguration"];
    assert_eq!(routes["rejected"], true, "{planes}");
    assert!(routes["last_nack"]["error"].as_str().unwrap().contains("missing ]"), "Envoy's own words: {planes}");
    assert_eq!(planes[0]["up_to_date"], false);
    let (code, table) = gateway.status();
    assert_eq!(code, 1, "{table}");
    assert!(table.contains("NACK") && table.contains("RouteConfiguration rejected (NACK)"), "{table}");
    // Fixed: the template goes, the routes are accepted again.
    std::fs::remove_file(dir.join("template.yaml")).unwrap();
    let gw = std::fs::read_to_string(dir.join("gateway.yaml")).unwrap();
    std::fs::write(
        dir.join("gateway.yaml"),
        gw.replace(&format!(", {{port: {port}, protocol: HTTP, hostname: b.example.com}}"), ""),
    )
    .unwrap();
    gateway.wait_for("recovered", Duration::from_secs(10), || gateway.status().0 == 0);
    assert!(gateway.status().1.contains("up to date"));
    // Envoy crashes and `run` starts a new one, which asks for everything
    // again: it gets the last config an Envoy accepted, never the rejected
    // one, and the routes keep serving.
    let connected = |log: &str| log.matches("Envoy connected").count();
    let before = connected(&gateway.log());
    let acks_before = acks(&gateway);
    // (`run` takes an Envoy that dies within 2 s of its first start for one
    // that cannot start, and gives up.)
    std::thread::sleep(Duration::from_secs(3));
    gateway.kill_envoy();
    gateway.wait_for("the new Envoy", Duration::from_secs(20), || connected(&gateway.log()) > before);
    gateway.wait_for("traffic after the restart", Duration::from_secs(20), || ok_from(http_get(http, "x", "/"), "one"));
    // The reconnect, in the metrics: one stream again, and the new Envoy's ACKs.
    gateway.wait_for("the new Envoy's ACK counted", Duration::from_secs(10), || acks(&gateway) > acks_before);
    assert_eq!(gateway.metric("kuma_gateway_xds_streams", &[]), Some(1.0));
    let after_restart = gateway.log().split("Envoy connected").last().unwrap_or_default().to_string();
    assert!(!after_restart.contains("NACK"), "the new Envoy was sent nothing it rejects:\n{after_restart}");
}

/// The status of a GET `/api/x` over HTTPS with TLS server name `sni` and
/// `Host: host` (curl, trusting `ca`).
fn https_get_as(port: u16, sni: &str, host: &str, ca: &std::path::Path) -> Option<u16> {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{sni}:{port}:127.0.0.1"), "-H", &format!("Host: {host}")])
        .args(["-w", "%{http_code}", &format!("https://{sni}:{port}/api/x")])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
