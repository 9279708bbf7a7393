//! Propagation: with a gateway of 1,000 and of 10,000 route rules (the mixed
//! set of `support/resources.rs`: 20 hosts, one third regular expressions,
//! some header matches), change the probe route (on a host of its own) 100
//! times and time each change until Envoy serves it (polled through Envoy
//! every millisecond), from the file write and from the moment the control
//! plane starts reading it; beside them, Envoy's own RDS `update_duration`.
//! Prints p50/p99/max, then the control plane's own steps (from its log)
//! and the time from its push to Envoy's ACK.
//!
//! `cargo bench -p kuma-gateway --bench propagation` (needs Envoy: ENVOY_BIN,
//! or `scripts/install-envoy`).

#![allow(missing_docs)]

#[path = "support/resources.rs"]
#[allow(dead_code, unreachable_pub)]
mod resources;

#[path = "../tests/support/mod.rs"]
#[allow(unreachable_pub)]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{backend, capture_stderr, envoy_bin, free_port, http_get};

/// The status of `GET path` with `host` through Envoy on `port`, from the
/// status line alone: reading to the end, as `http_get` does, waits for
/// Envoy's delayed close (1 s), far longer than the changes being timed.
fn status(port: u16, host: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").ok()?;
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).ok()?;
    std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
}

/// One gateway of `rules` rules (the mixed set of `support/resources.rs`)
/// and its probe route, written to a fresh folder.
fn write_resources(dir: &Path, rules: usize, http: u16, web: u16) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    resources::write_gateway(dir, "gw", http, rules);
    resources::write_backend(dir, web);
    std::fs::write(dir.join("probe.yaml"), resources::probe_route(&["gw".into()], "/probe-0")).unwrap();
}

/// What one run measured, in milliseconds.
struct Run {
    /// File written -> Envoy serves the new route (includes the file
    /// watcher's 100 ms quiet window).
    write_to_served: Vec<f64>,
    /// The control plane starts reading the change -> Envoy serves it.
    reload_to_served: Vec<f64>,
    /// Envoy's own RDS `update_duration` quantiles (P50, P99), ms.
    envoy_rds: Option<(f64, f64)>,
    /// The control plane's own steps, from its log: reading and checking
    /// the change (`reloaded took_ms`), then for the stream, translating
    /// (`pushing translate_ms`) and diffing and encoding (`diff_ms`).
    reload: Vec<f64>,
    translate: Vec<f64>,
    diff: Vec<f64>,
    /// The control plane sends the route configuration -> Envoy ACKs it
    /// (receiving, decoding and applying it): Envoy's whole share.
    push_to_ack: Vec<f64>,
}

/// For each "pushing" line, the time until the next route configuration ACK.
fn push_to_ack(log: &str) -> Vec<f64> {
    let at = |l: &str| kuma_model::Timestamp::parse(l.split_whitespace().next()?).map(|t| t.unix_nanos());
    let mut pushed = None;
    let mut v = Vec::new();
    for l in log.lines() {
        if l.contains(" pushing ") {
            pushed = at(l);
        } else if l.contains(" ACK ")
            && l.contains("RouteConfiguration")
            && let (Some(p), Some(a)) = (pushed.take(), at(l))
        {
            v.push((a - p) as f64 / 1e6);
        }
    }
    v.sort_by(f64::total_cmp);
    v
}

/// The values of `key=` on the log lines that contain `marker`.
fn logged(log: &str, marker: &str, key: &str) -> Vec<f64> {
    let mut v: Vec<f64> = log
        .lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| l.split(key).nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Start of each reload ("reloaded ... took_ms=" lines), as wall-clock
/// nanoseconds.
fn reload_starts(log: &str) -> Vec<i128> {
    log.lines()
        .filter(|l| l.contains(" reloaded ") && l.contains("took_ms="))
        .filter_map(|l| {
            let at = kuma_model::Timestamp::parse(l.split_whitespace().next()?)?.unix_nanos();
            let took: f64 = l.rsplit("took_ms=").next()?.split_whitespace().next()?.parse().ok()?;
            Some(at - (took * 1e6) as i128)
        })
        .collect()
}

/// P50 and P99 of Envoy's `...rds...update_duration` histogram (its
/// `P50(interval,cumulative)` text form; the cumulative values).
fn envoy_rds_update(admin: u16) -> Option<(f64, f64)> {
    let stats = http_get(admin, "localhost", "/stats?filter=rds.*update_duration")?.body;
    let line = stats.lines().find(|l| l.contains("rds") && l.contains("update_duration:"))?;
    let quantile = |q: &str| -> Option<f64> {
        let rest = line.split(&format!(" {q}(")).nth(1)?;
        rest.split(')').next()?.split(',').nth(1)?.parse().ok()
    };
    Some((quantile("P50")?, quantile("P99")?))
}

fn run(rules: usize, iterations: usize) -> Run {
    let web = backend("web");
    let http = free_port();
    let dir = std::env::temp_dir().join(format!("kuma-propagation-{rules}-{}", std::process::id()));
    write_resources(&dir, rules, http, web);
    let admin = free_port();
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
        .arg("run")
        .arg(&dir)
        .args(["--dataplane", "gw", "--admin-port", &admin.to_string(), "--base-id", "41"])
        .args(["--xds-address", &format!("127.0.0.1:{}", free_port()), "--admin-address", "127.0.0.1:0"])
        .arg("--envoy-bin")
        .arg(envoy_bin())
        .env("RUST_LOG", "warn,kuma_gateway::serve=info,kuma_xds_server::service=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = capture_stderr(&mut child);
    let ready = Instant::now();
    while status(http, "probe.example.com", "/probe-0") != Some(200) {
        assert!(ready.elapsed() < Duration::from_secs(60), "the gateway did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut run = Run {
        write_to_served: Vec::new(),
        reload_to_served: Vec::new(),
        envoy_rds: None,
        reload: Vec::new(),
        translate: Vec::new(),
        diff: Vec::new(),
        push_to_ack: Vec::new(),
    };
    let first_change = log.lock().unwrap().len();
    for i in 1..=iterations {
        let path = format!("/probe-{i}");
        let reloads = reload_starts(&log.lock().unwrap()).len();
        let start = Instant::now();
        std::fs::write(dir.join("probe.yaml"), resources::probe_route(&["gw".into()], &path)).unwrap();
        while status(http, "probe.example.com", &path) != Some(200) {
            assert!(start.elapsed() < Duration::from_secs(10), "update {i} never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
        let served = kuma_model::Timestamp::from_system_time(std::time::SystemTime::now()).unix_nanos();
        run.write_to_served.push(start.elapsed().as_secs_f64() * 1e3);
        // The reload that brought it (its log line may come a moment later).
        let waited = Instant::now();
        let begun = loop {
            if let Some(t) = reload_starts(&log.lock().unwrap()).get(reloads) {
                break *t;
            }
            assert!(waited.elapsed() < Duration::from_secs(5), "no reload logged for update {i}");
            std::thread::sleep(Duration::from_millis(1));
        };
        run.reload_to_served.push((served - begun) as f64 / 1e6);
        // A pause between changes, so that each is timed on its own.
        std::thread::sleep(Duration::from_millis(20));
    }
    // Envoy's own time applying the route configurations (its RDS
    // `update_duration` histogram, flushed every 5 s).
    std::thread::sleep(Duration::from_millis(5500));
    run.envoy_rds = envoy_rds_update(admin);
    let changes = log.lock().unwrap()[first_change..].to_string();
    run.reload = logged(&changes, " reloaded ", "took_ms=");
    run.translate = logged(&changes, " pushing ", "translate_ms=");
    run.diff = logged(&changes, " pushing ", "diff_ms=");
    run.push_to_ack = push_to_ack(&changes);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    run
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
    let iterations = std::env::var("BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    for rules in sizes {
        let mut r = run(rules, iterations);
        r.write_to_served.sort_by(f64::total_cmp);
        r.reload_to_served.sort_by(f64::total_cmp);
        let (w, c) = (&r.write_to_served, &r.reload_to_served);
        println!("mixed gateway of {rules} rules ({} changes):", w.len());
        println!(
            "  file written -> served:            p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (includes the 100 ms quiet window)",
            percentile(w, 0.5),
            percentile(w, 0.99),
            w[w.len() - 1]
        );
        println!(
            "  control plane reads it -> served:  p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(c, 0.5),
            percentile(c, 0.99),
            c[c.len() - 1]
        );
        match r.envoy_rds {
            Some((p50, p99)) => println!(
                "  Envoy's own RDS update_duration:   p50 {p50:.1} ms, p99 {p99:.1} ms; target for the line above: p99 <= 1.2 x {p99:.1} + 10 = {:.1} ms",
                1.2 * p99 + 10.0
            ),
            None => println!("  Envoy's RDS update_duration: not found in its stats"),
        }
        let p50 = |v: &[f64]| if v.is_empty() { f64::NAN } else { percentile(v, 0.5) };
        println!(
            "  the control plane's steps, p50:     read and check {:.1} ms, translate {:.1} ms, diff and encode {:.1} ms",
            p50(&r.reload),
            p50(&r.translate),
            p50(&r.diff)
        );
        println!(
            "  control plane sends it -> Envoy ACKs: p50 {:.1} ms (Envoy receiving, decoding and applying it)",
            p50(&r.push_to_ack)
        );
    }
}
