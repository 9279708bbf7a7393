//! Several control-plane replicas on one PostgreSQL store (a private
//! cluster started for the test), with real Envoys: `apply` reaches every
//! Envoy, an Envoy fails over when its replica dies, PostgreSQL stopping
//! fails no request, and `export` then `apply` gives the same config.

#[path = "../../kuma-store/tests/support/postgres.rs"]
mod postgres;
mod support;

use std::time::{Duration, Instant};

use postgres::Postgres;
use support::replicas::{Envoy, Replica, apply_text, gateway_yaml, kuma_gateway, marker_yaml, ok, serves, wait};
use support::{ClientLoop, backend, free_port, http_get, temp_dir};

#[test]
fn replicas_on_postgres_serve_every_apply_and_survive_failures() {
    let mut pg = Postgres::start();
    let store = pg.url();
    let dir = temp_dir("replicas");
    let (one, two) = (backend("one"), backend("two"));
    let (http_a, http_b) = (free_port(), free_port());
    // Two gateways, one per Envoy: the same resources, each its own port.
    let text = gateway_yaml(http_a, one, two);
    let out = ok(apply_text(&dir, &store, "gateway.yaml", &text));
    assert!(out.contains("MeshGateway default/gw created"), "{out}");
    let second = format!(
        "type: Dataplane\nname: gw-b\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw-b}}}}\n---\n\
type: MeshGateway\nname: gw-b\nmesh: default\nselectors: [{{match: {{kuma.io/service: gw-b}}}}]\nconf: {{listeners: [{{port: {http_b}, protocol: HTTP}}]}}\n"
    );
    ok(apply_text(&dir, &store, "gateway-b.yaml", &second));
    let routes_b = "type: MeshGatewayRoute\nname: root-b\nmesh: default\nselectors: [{match: {kuma.io/service: gw-b}}]\nconf: {http: {rules: [{matches: [{path: {match: PREFIX, value: /}}], backends: [{destination: {kuma.io/service: one}}]}]}}\n---\ntype: MeshGatewayRoute\nname: marker-b\nmesh: default\nselectors: [{match: {kuma.io/service: gw-b}}]\nconf: {http: {rules: [{matches: [{path: {match: EXACT, value: /b-0}}], backends: [{destination: {kuma.io/service: two}}]}]}}\n";
    ok(apply_text(&dir, &store, "routes-b.yaml", routes_b));

    let mut r1 = Replica::start(&store);
    let mut r2 = Replica::start(&store);
    // Envoy A knows both replicas; Envoy B (data plane gw-b) only the second.
    let envoy_a = Envoy::start(&dir, "gw", &[r1.xds, r2.xds], 91);
    let envoy_b = Envoy::start(&dir, "gw-b", &[r2.xds], 92);
    wait("Envoy A serving", Duration::from_secs(30), || http_get(http_a, "x", "/").is_some_and(|r| r.status == 200));
    wait("Envoy B serving", Duration::from_secs(30), || http_get(http_b, "x", "/").is_some_and(|r| r.status == 200));

    // 1. An apply reaches both Envoys, whichever replica each is on.
    let mut latencies = Vec::new();
    for i in 0..5 {
        let marker = format!("/a-{i}");
        let applied = Instant::now();
        ok(apply_text(&dir, &store, "marker.yaml", &marker_yaml(&marker)));
        let b_marker = format!("/b-{}", i + 1);
        ok(apply_text(&dir, &store, "marker-b.yaml", &routes_b.replace("/b-0", &b_marker)));
        wait("the route on Envoy A", Duration::from_secs(10), || serves(http_a, &marker));
        wait("the route on Envoy B", Duration::from_secs(10), || serves(http_b, &b_marker));
        latencies.push(applied.elapsed());
    }
    eprintln!("apply -> served on both Envoys: {latencies:?}");

    // 2. The replica Envoy A is on dies during a request loop.
    let on = wait("Envoy A's ADS connection", Duration::from_secs(10), || envoy_a.connected_to().is_some());
    let _ = on;
    let victim = envoy_a.connected_to().unwrap();
    let client = ClientLoop::start(http_a);
    std::thread::sleep(Duration::from_millis(200));
    let (survivor_port, sent_before) = if victim == r1.xds {
        let sent = r2.responses_sent();
        r1.kill();
        (r2.xds, sent)
    } else {
        let sent = r1.responses_sent();
        r2.kill();
        (r1.xds, sent)
    };
    client.finish("replica killed", 300);
    wait("Envoy A on the other replica", Duration::from_secs(30), || envoy_a.connected_to() == Some(survivor_port));
    // Envoy named the versions it runs, which are the current ones (content
    // hashes): the new replica sent it nothing.
    let survivor = if survivor_port == r1.xds { &r1 } else { &r2 };
    wait("Envoy A's requests seen", Duration::from_secs(10), || {
        survivor.log().contains("Envoy already has the current version")
    });
    assert_eq!(survivor.responses_sent(), sent_before, "nothing resent after the failover");
    ok(apply_text(&dir, &store, "marker.yaml", &marker_yaml("/after-failover")));
    wait("a later apply through the other replica", Duration::from_secs(15), || serves(http_a, "/after-failover"));

    // 3. PostgreSQL stops during a request loop: nothing fails, apply fails
    //    clearly; when it is back, apply works and propagates.
    let client = ClientLoop::start(http_a);
    pg.stop();
    let refused = kuma_gateway(&["apply", "-f", dir.join("marker.yaml").to_str().unwrap()], &store);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{}/postgres", pg.port)), "{message}");
    assert!(!message.contains("postgres://"), "the URL is not repeated: {message}");
    // Every replica stays ready on its last good set, and says why.
    let alive = if r1.child.try_wait().unwrap().is_none() { &r1 } else { &r2 };
    wait("/ready to name the store", Duration::from_secs(10), || {
        let ready = alive.admin_get("/ready");
        ready.status == 200 && ready.body.contains("serving the last good resources")
    });
    assert_eq!(alive.metric_sum("kuma_gateway_store_connected"), 0.0);
    client.finish("PostgreSQL stopped", 300);
    let reconnects = alive.metric_sum("kuma_gateway_store_reconnects_total");
    pg.restart();
    ok(apply_text(&dir, &store, "marker.yaml", &marker_yaml("/after-restart")));
    wait("an apply after PostgreSQL came back", Duration::from_secs(20), || serves(http_a, "/after-restart"));
    wait("the store metrics", Duration::from_secs(10), || alive.metric_sum("kuma_gateway_store_connected") == 1.0);
    assert!(alive.metric_sum("kuma_gateway_store_reconnects_total") > reconnects);
    assert_eq!(alive.admin_get("/ready").body, "ready\n");
    let survivor = if r1.child.try_wait().unwrap().is_none() { &r1 } else { &r2 };
    let log = survivor.log();
    assert!(log.contains("lost the store's notification connection"), "{log}");
    assert!(log.contains("store reachable again"), "{log}");

    // 4. A row broken by hand: the replicas keep their last good set and
    //    name the resource; apply refuses to build on it until it is fixed.
    pg.psql(
        "UPDATE kuma_gateway_resources SET spec = '{\"conf\": {\"listeners\": [{\"port\": 0, \"protocol\": \"HTTP\"}]}, \"selectors\": [{\"match\": {\"kuma.io/service\": \"gw\"}}]}' WHERE type = 'MeshGateway' AND name = 'gw'",
    );
    wait("the broken row reported", Duration::from_secs(10), || {
        survivor.log().contains("invalid change, still serving the last good config")
            && survivor.log().contains("postgres:MeshGateway/default/gw")
    });
    assert!(serves(http_a, "/after-restart"), "the last good config is still served");
    let refused = apply_text(&dir, &store, "marker.yaml", &marker_yaml("/on-a-broken-store"));
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("postgres:MeshGateway/default/gw"));
    ok(apply_text(&dir, &store, "gateway.yaml", &text));
    ok(apply_text(&dir, &store, "marker.yaml", &marker_yaml("/fixed")));
    wait("an apply after the fix", Duration::from_secs(10), || serves(http_a, "/fixed"));

    // 5. A replica cannot start without its store.
    pg.stop();
    let xds = format!("127.0.0.1:{}", free_port());
    let down = kuma_gateway(&["serve", "--xds-address", &xds, "--admin-address", "127.0.0.1:0"], &store);
    assert_eq!(down.status.code(), Some(2));
    let message = String::from_utf8_lossy(&down.stderr);
    assert!(message.contains("cannot reach PostgreSQL at 127.0.0.1"), "{message}");
    drop(envoy_b);
}

#[test]
fn export_then_apply_into_an_empty_store_renders_the_same() {
    let first = Postgres::start();
    let second = Postgres::start();
    let examples = support::root().join("examples/edge-gateway");
    ok(kuma_gateway(&["apply", "-f", examples.to_str().unwrap()], &first.url()));
    // Apply is idempotent: everything unchanged the second time.
    let again = ok(kuma_gateway(&["apply", "-f", examples.to_str().unwrap()], &first.url()));
    assert!(again.lines().all(|l| l.ends_with(" unchanged")), "{again}");
    let exported = ok(kuma_gateway(&["export"], &first.url()));
    let dir = temp_dir("export");
    std::fs::write(dir.join("export.yaml"), &exported).unwrap();
    ok(kuma_gateway(&["apply", "-f", dir.join("export.yaml").to_str().unwrap()], &second.url()));
    assert_eq!(ok(kuma_gateway(&["export"], &second.url())), exported, "export is a fixed point");
    let render = |url: &str| ok(kuma_gateway(&["render", "--dataplane", "gateway-instance-1"], url));
    let from_files = ok(kuma_gateway(&["render", examples.to_str().unwrap(), "--dataplane", "gateway-instance-1"], ""));
    assert_eq!(render(&first.url()), render(&second.url()));
    assert_eq!(render(&first.url()), from_files, "the store renders what the files render");
    assert!(ok(kuma_gateway(&["validate"], &second.url())).contains(": valid"));

    // get, and delete refused while something still needs the resource.
    let table = ok(kuma_gateway(&["get", "meshgateways"], &second.url()));
    assert!(table.starts_with("TYPE") && table.contains("MeshGateway"), "{table}");
    let yaml = ok(kuma_gateway(&["get", "MeshGateway", "edge-gateway", "-o", "yaml"], &second.url()));
    assert!(yaml.contains("type: MeshGateway"), "{yaml}");

    // An HTTPS listener needs its certificate Secret: deleting it is refused.
    let certs = support::root().join("testdata/certs");
    let cert = std::fs::read_to_string(certs.join("ec.crt")).unwrap();
    let key = std::fs::read_to_string(certs.join("ec.key")).unwrap();
    let bundle = support::base64(format!("{cert}{key}").as_bytes());
    let https = format!(
        "type: Secret\nname: tls-cert\nmesh: default\ndata: {bundle}\n---\n\
type: MeshGateway\nname: edge-gateway\nmesh: default\nselectors: [{{match: {{kuma.io/service: edge-gateway}}}}]\nconf: {{listeners: [{{port: 8443, protocol: HTTPS, hostname: secure.example.com, tls: {{mode: TERMINATE, certificates: [{{secret: tls-cert}}]}}}}]}}\n"
    );
    let out = ok(apply_text(&dir, &second.url(), "https.yaml", &https));
    assert!(
        out.contains("Secret default/tls-cert created") && out.contains("MeshGateway default/edge-gateway configured"),
        "{out}"
    );
    let refused = kuma_gateway(&["delete", "secret", "tls-cert"], &second.url());
    assert_eq!(refused.status.code(), Some(1));
    let report = String::from_utf8_lossy(&refused.stderr);
    assert!(report.contains("tls-cert") && report.contains("nothing was changed"), "{report}");
    assert!(!report.contains(&bundle), "no key material in messages");
    assert!(ok(kuma_gateway(&["get", "secrets"], &second.url())).contains("tls-cert"));
    // Without the listener that needs it, it can go.
    ok(kuma_gateway(&["apply", "-f", examples.join("gateway.yaml").to_str().unwrap()], &second.url()));
    assert!(ok(kuma_gateway(&["delete", "secret", "tls-cert"], &second.url())).contains("deleted"));
}

#[test]
fn run_with_replica_addresses_signs_its_token_with_the_store_key() {
    let pg = Postgres::start();
    let store = pg.url();
    let dir = temp_dir("run-replicas");
    let (one, two) = (backend("one"), backend("two"));
    let http = free_port();
    ok(apply_text(&dir, &store, "gateway.yaml", &gateway_yaml(http, one, two)));
    // Without a signing key in the store, other replicas could not accept
    // run's Envoy: refused before anything starts.
    let r2 = Replica::start_with(&store, &[]);
    let replica = format!("127.0.0.1:{}", r2.xds);
    let xds = format!("127.0.0.1:{}", free_port());
    let run_args = |admin: u16| {
        vec![
            "run".to_string(),
            "--dataplane".into(),
            "gw".into(),
            "--replica-address".into(),
            replica.clone(),
            "--xds-address".into(),
            xds.clone(),
            "--admin-port".into(),
            admin.to_string(),
            "--admin-address".into(),
            "127.0.0.1:0".into(),
            "--base-id".into(),
            "93".into(),
            "--envoy-bin".into(),
            support::envoy_bin().display().to_string(),
        ]
    };
    let args = run_args(free_port());
    let refused = kuma_gateway(&args.iter().map(String::as_str).collect::<Vec<_>>(), &store);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("token signing-key --mesh default"), "{refused:?}");

    let key = ok(kuma_gateway(&["token", "signing-key", "--mesh", "default"], ""));
    ok(apply_text(&dir, &store, "key.yaml", &key));
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .args(run_args(free_port()))
        .env("KUMA_GATEWAY_STORE", &store)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = support::capture_stderr(&mut run);
    wait("run's Envoy serving", Duration::from_secs(30), || http_get(http, "x", "/").is_some_and(|r| r.status == 200));
    // Its bootstrap lists both replicas ...
    let path = log
        .lock()
        .unwrap()
        .lines()
        .find_map(|l| Some(l.split("Envoy bootstrap written path=").nth(1)?.trim().to_string()))
        .expect("the bootstrap's path in the log");
    let mut bootstrap: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let endpoints = &mut bootstrap["staticResources"]["clusters"][0]["loadAssignment"]["endpoints"][0]["lbEndpoints"];
    assert_eq!(endpoints.as_array().unwrap().len(), 2, "{endpoints}");
    // ... and its token is accepted by the other replica, which checks
    // tokens: an Envoy with the same bootstrap, pointed at that replica
    // only, gets its config from it.
    endpoints.as_array_mut().unwrap().remove(0);
    bootstrap["admin"]["address"]["socketAddress"]["portValue"] = serde_json::json!(free_port());
    let copy = dir.join("copy.json");
    std::fs::write(&copy, bootstrap.to_string()).unwrap();
    let mut envoy = std::process::Command::new(support::envoy_bin())
        .arg("-c")
        .arg(&copy)
        .args(["--base-id", "94", "-l", "warning"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait("the other replica serving run's data plane", Duration::from_secs(30), || {
        r2.log().lines().any(|l| l.contains("ACK") && l.contains("dataplane=gw"))
    });
    assert!(!r2.log().contains("unauthenticated"), "{}", r2.log());
    let _ = envoy.kill();
    let _ = envoy.wait();
    // SIGTERM, so that `run` stops its Envoy too.
    let _ = std::process::Command::new("kill").args(["-TERM", &run.id().to_string()]).status();
    let _ = run.wait();
}

#[test]
fn not_ready_until_the_store_is_read() {
    // A "database" that accepts connections and never answers: the first
    // read waits (up to the 5 s connect timeout), and /ready says so.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let admin = free_port();
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .args(["serve", "--store", &format!("postgres://kuma@127.0.0.1:{port}/kuma")])
        .args(["--xds-address", &format!("127.0.0.1:{}", free_port()), "--admin-address"])
        .arg(format!("127.0.0.1:{admin}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = support::capture_stderr(&mut serve);
    let mut ready = None;
    wait("/ready to answer", Duration::from_secs(5), || {
        ready = http_get(admin, "localhost", "/ready");
        ready.is_some()
    });
    let ready = ready.unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (503, "not ready: the resources are not loaded yet\n"));
    let status = serve.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    // The process is gone, but its last lines may still be in the pipe.
    let reason = "cannot reach PostgreSQL at 127.0.0.1";
    let exited = Instant::now();
    while !log.lock().unwrap().contains(reason) {
        let text = log.lock().unwrap().clone();
        assert!(exited.elapsed() < Duration::from_secs(5), "no {reason:?} in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(silent);
}
