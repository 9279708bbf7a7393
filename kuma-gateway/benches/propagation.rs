//! Propagation: with 1,000 and 10,000 route rules loaded, change one route
//! 100 times and time each file write until Envoy serves the new route
//! (polled through Envoy every millisecond). Prints p50/p99/max.
//! Target: p99 <= 50 ms at 10,000 routes (Kuma waits up to its 1 s refresh).
//!
//! `cargo bench -p kuma-gateway --bench propagation` (needs Envoy: ENVOY_BIN,
//! or `scripts/install-envoy`).

#![allow(missing_docs)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let mut s = stream;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            });
        }
    });
    port
}

fn status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n").ok()?;
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).ok()?;
    std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
}

fn admin_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_string())
}

fn envoy_bin() -> PathBuf {
    std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(".tools/envoy/bin/envoy"))
}

fn probe_route(path: &str) -> String {
    format!(
        "type: MeshGatewayRoute\nname: probe\nselectors: [{{match: {{kuma.io/service: bench}}}}]\nconf: {{http: {{rules: [{{matches: [{{path: {{match: EXACT, value: {path}}}}}], backends: [{{destination: {{kuma.io/service: web}}}}]}}]}}}}\n"
    )
}

fn run(routes: usize, iterations: usize) -> Vec<f64> {
    let web = backend();
    let http = free_port();
    let dir = std::env::temp_dir().join(format!("kuma-propagation-{routes}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("gateway.yaml"),
        format!(
            "type: Dataplane\nname: gw\nnetworking:\n  address: 127.0.0.1\n  gateway: {{type: BUILTIN, tags: {{kuma.io/service: bench}}}}\n---\ntype: MeshGateway\nname: gw\nselectors: [{{match: {{kuma.io/service: bench}}}}]\nconf: {{listeners: [{{port: {http}, protocol: HTTP}}]}}\n---\ntype: Dataplane\nname: web-1\nnetworking:\n  address: 127.0.0.1\n  inbound: [{{port: {web}, tags: {{kuma.io/service: web, kuma.io/protocol: http}}}}]\n"
        ),
    )
    .unwrap();
    // `routes` rules in files of 100 rules each.
    for f in 0..routes.div_ceil(100) {
        let mut y = format!(
            "type: MeshGatewayRoute\nname: routes-{f}\nselectors: [{{match: {{kuma.io/service: bench}}}}]\nconf:\n  http:\n    rules:\n"
        );
        // BENCH_MATCH=EXACT: one Envoy route per rule (PREFIX gives two).
        let kind = std::env::var("BENCH_MATCH").unwrap_or_else(|_| "PREFIX".into());
        for i in 0..100.min(routes - f * 100) {
            let n = f * 100 + i;
            let _ = writeln!(
                y,
                "    - matches: [{{path: {{match: {kind}, value: /r{n}}}}}]\n      backends: [{{destination: {{kuma.io/service: web}}}}]"
            );
        }
        std::fs::write(dir.join(format!("routes-{f:04}.yaml")), y).unwrap();
    }
    std::fs::write(dir.join("probe.yaml"), probe_route("/probe-0")).unwrap();
    let admin = free_port();
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .arg("run")
        .arg(&dir)
        .args(["--dataplane", "gw", "--admin-port", &admin.to_string(), "--base-id", "41"])
        .args(["--xds-address", &format!("127.0.0.1:{}", free_port()), "--admin-address", "127.0.0.1:0"])
        .arg("--envoy-bin")
        .arg(envoy_bin())
        .env("RUST_LOG", std::env::var("BENCH_LOG").unwrap_or("warn".into()))
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("BENCH_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
        .spawn()
        .unwrap();
    let ready = Instant::now();
    while status(http, "/probe-0") != Some(200) {
        assert!(ready.elapsed() < Duration::from_secs(60), "the gateway did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut samples = Vec::with_capacity(iterations);
    for i in 1..=iterations {
        let path = format!("/probe-{i}");
        let start = Instant::now();
        std::fs::write(dir.join("probe.yaml"), probe_route(&path)).unwrap();
        while status(http, &path) != Some(200) {
            assert!(start.elapsed() < Duration::from_secs(10), "update {i} never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    // Envoy's own time applying the updates (its xDS `update_duration`
    // histograms), to tell its share from ours.
    if let Some(stats) = admin_get(admin, "/stats?filter=update_duration") {
        for line in stats.lines().filter(|l| l.contains("rds") || l.contains("cds") || l.contains("lds")) {
            println!("  envoy {line}");
        }
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    samples
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // `cargo test` runs benches with --bench absent; keep that fast.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("BENCH_ROUTES")
        .map(|v| v.split(",").map(|s| s.parse().unwrap()).collect())
        .unwrap_or(vec![1_000, 10_000]);
    for routes in sizes {
        let mut s = run(routes, 100);
        s.sort_by(f64::total_cmp);
        println!(
            "propagation with {routes} routes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} updates)",
            percentile(&s, 0.5),
            percentile(&s, 0.99),
            s[s.len() - 1],
            s.len()
        );
    }
}
