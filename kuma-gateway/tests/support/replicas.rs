//! Control-plane replicas on a PostgreSQL store, and Envoys bootstrapped
//! with their addresses: shared by the replica tests and the
//! `store_propagation` bench.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{capture_stderr, envoy_bin, free_port, http_get};

/// Runs `kuma-gateway ARGS` with `KUMA_GATEWAY_STORE=store`.
pub(crate) fn kuma_gateway(args: &[&str], store: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .args(args)
        .env("KUMA_GATEWAY_STORE", store)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

pub(crate) fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn apply_text(dir: &Path, store: &str, name: &str, text: &str) -> Output {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    kuma_gateway(&["apply", "-f", file.to_str().unwrap()], store)
}

pub(crate) fn gateway_yaml(http: u16, one: u16, two: u16) -> String {
    format!(
        "type: Dataplane\nname: gw\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: gw}}}}\n---\n\
type: MeshGateway\nname: gw\nmesh: default\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{listeners: [{{port: {http}, protocol: HTTP}}]}}\n---\n\
type: Dataplane\nname: backends\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - {{port: {one}, tags: {{kuma.io/service: one, kuma.io/protocol: http}}}}\n  - {{port: {two}, tags: {{kuma.io/service: two, kuma.io/protocol: http}}}}\n---\n\
type: MeshGatewayRoute\nname: root\nmesh: default\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{http: {{rules: [{{matches: [{{path: {{match: PREFIX, value: /}}}}], backends: [{{destination: {{kuma.io/service: one}}}}]}}]}}}}\n"
    )
}

/// A route sending exactly `marker` to backend two.
pub(crate) fn marker_yaml(marker: &str) -> String {
    format!(
        "type: MeshGatewayRoute\nname: marker\nmesh: default\nselectors: [{{match: {{kuma.io/service: gw}}}}]\nconf: {{http: {{rules: [{{matches: [{{path: {{match: EXACT, value: {marker}}}}}], backends: [{{destination: {{kuma.io/service: two}}}}]}}]}}}}\n"
    )
}

/// A `serve --store` replica.
pub(crate) struct Replica {
    pub(crate) child: Child,
    log: Arc<Mutex<String>>,
    pub(crate) xds: u16,
}

impl Replica {
    pub(crate) fn start(store: &str) -> Replica {
        Replica::start_with(store, &["--allow-unauthenticated"])
    }

    /// A replica with `extra` arguments (none: Envoys need tokens).
    pub(crate) fn start_with(store: &str, extra: &[&str]) -> Replica {
        Replica::serve(&["--store", store], free_port(), extra)
    }

    /// `serve SOURCE... --xds-address 127.0.0.1:XDS EXTRA...`.
    pub(crate) fn serve(source: &[&str], xds: u16, extra: &[&str]) -> Replica {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
            .arg("serve")
            .args(source)
            .args(["--xds-address", &format!("127.0.0.1:{xds}")])
            .args(["--admin-address", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = capture_stderr(&mut child);
        let replica = Replica { child, log, xds };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", xds)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "replica not serving; log:\n{}", replica.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        replica
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// GET `path` from its admin endpoint (the port its log names).
    pub(crate) fn admin_get(&self, path: &str) -> super::Reply {
        let admin = super::admin_port_in(&self.log()).expect("the admin endpoint's address in the log");
        http_get(admin, "localhost", path).expect("the admin endpoint answers")
    }

    /// The sum of the samples of metric `name` (all labels).
    pub(crate) fn metric_sum(&self, name: &str) -> f64 {
        self.admin_get("/metrics")
            .body
            .lines()
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Discovery responses it has sent, all types together.
    pub(crate) fn responses_sent(&self) -> f64 {
        self.metric_sum("kuma_gateway_xds_responses_total")
    }

    /// Discovery responses it has sent of one type (`Cluster`, ...).
    pub(crate) fn responses_of(&self, resource_type: &str) -> f64 {
        let sample = format!("kuma_gateway_xds_responses_total{{resource_type=\"{resource_type}\"}} ");
        let body = self.admin_get("/metrics").body;
        body.lines().find_map(|l| l.strip_prefix(&sample)?.parse().ok()).unwrap_or(0.0)
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An Envoy bootstrapped with `replicas`' addresses.
pub(crate) struct Envoy {
    pub(crate) child: Child,
    pub(crate) admin: u16,
}

impl Envoy {
    pub(crate) fn start(dir: &Path, dataplane: &str, replicas: &[u16], base_id: u32) -> Envoy {
        Envoy::start_with(dir, dataplane, replicas, base_id, &[])
    }

    /// With `extra` arguments to `kuma-gateway bootstrap`.
    pub(crate) fn start_with(dir: &Path, dataplane: &str, replicas: &[u16], base_id: u32, extra: &[&str]) -> Envoy {
        let admin = free_port();
        let mut args = vec!["bootstrap".to_string(), "--dataplane".into(), dataplane.into()];
        args.extend(extra.iter().map(|a| a.to_string()));
        for port in replicas {
            args.extend(["--xds-address".to_string(), format!("127.0.0.1:{port}")]);
        }
        args.extend(["--admin-port".to_string(), admin.to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let bootstrap = ok(kuma_gateway(&args, ""));
        let file = dir.join(format!("{dataplane}.yaml"));
        std::fs::write(&file, bootstrap).unwrap();
        let child = Command::new(envoy_bin())
            .arg("-c")
            .arg(&file)
            .args(["--base-id", &base_id.to_string(), "-l", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Envoy { child, admin }
    }

    /// The replica (xDS port) its ADS stream is on now.
    pub(crate) fn connected_to(&self) -> Option<u16> {
        let clusters = http_get(self.admin, "localhost", "/clusters")?.body;
        clusters.lines().find_map(|l| {
            let rest = l.strip_prefix("ads_cluster::127.0.0.1:")?;
            let (port, stat) = rest.split_once("::")?;
            (stat == "cx_active::1").then(|| port.parse().ok()).flatten()
        })
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn wait(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

pub(crate) fn serves(http: u16, marker: &str) -> bool {
    http_get(http, "x", marker).is_some_and(|r| r.status == 200 && r.body.starts_with("two"))
}
