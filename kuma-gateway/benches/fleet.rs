//! The ADS load generator: `kuma-gateway serve` with generated gateways,
//! and many ADS clients (tonic, in this process) that subscribe to
//! clusters, endpoints, listeners and routes as an Envoy does and ACK every
//! response. It reports the server's memory (RSS) and CPU, and the time a
//! route change takes to reach every stream.
//!
//! Two scenarios, for each protocol (`delta`, `sotw`):
//! - **one gateway of 10,000 rules** (the mixed set of
//!   `support/resources.rs`): RSS with the resources loaded, with one
//!   stream, with 50 and with 100 streams (the cost of each additional
//!   stream); then 20 route changes, each timed until all 100 streams
//!   have it;
//! - **10 gateways of 1,000 rules, 100 streams each (1,000 streams)**: RSS
//!   and CPU, and 20 changes of a route every gateway has, timed per stream.
//!
//! `cargo bench -p kuma-gateway --bench fleet`. Knobs: `FLEET_PROTOCOLS`
//! (`delta,sotw`), `FLEET_SCENARIOS` (`single,fleet`), `FLEET_CHANGES` (20),
//! `FLEET_RULES` (rules per gateway of the fleet scenario, 1,000),
//! `FLEET_WRITE=DIR` (only write the one-gateway scenario's resources, for
//! profiling `serve` or `render` on them), `BENCH_LOG` (serve's `RUST_LOG`).

#![allow(missing_docs)]

#[path = "support/resources.rs"]
#[allow(dead_code, unreachable_pub)]
mod resources;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kuma_xds_gen::ResourceType;
use kuma_xds_gen::envoy_types::pb::envoy::config::core::v3::Node;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use kuma_xds_gen::envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The types a gateway's Envoy subscribes to (Secrets and the runtime
/// layer aside).
const TYPES: [ResourceType; 4] =
    [ResourceType::Cluster, ResourceType::Endpoint, ResourceType::Listener, ResourceType::Route];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `serve DIR` on free ports.
struct Server {
    child: Child,
    xds: u16,
    admin: u16,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let (xds, admin) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
            .arg("serve")
            .arg(dir)
            .args(["--xds-address", &format!("127.0.0.1:{xds}"), "--admin-address", &format!("127.0.0.1:{admin}")])
            .args(["--allow-unauthenticated", "--max-streams", "5000"])
            .env("RUST_LOG", std::env::var("BENCH_LOG").unwrap_or("warn".into()))
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("BENCH_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .unwrap();
        let server = Server { child, xds, admin };
        let start = Instant::now();
        while !server.ready() {
            assert!(start.elapsed() < Duration::from_secs(60), "serve did not get ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn ready(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.admin)) else { return false };
        let _ = write!(s, "GET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.starts_with("HTTP/1.1 200")
    }

    /// Resident memory, MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        kib / 1024.0
    }

    /// CPU time used so far (user + system), seconds.
    fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which ends with ')'): utime and
        // stime are the 12th and 13th, in clock ticks of 1/100 s.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one client stream saw.
#[derive(Default)]
struct StreamStats {
    /// RouteConfiguration responses received.
    routes: AtomicU64,
    /// When the last one came, in nanoseconds since the run's start.
    last_route_ns: AtomicU64,
}

fn node(name: &str) -> Node {
    let mesh = Value { kind: Some(Kind::StringValue("default".into())) };
    Node {
        id: name.into(),
        metadata: Some(Struct { fields: [("mesh".to_string(), mesh)].into_iter().collect() }),
        ..Default::default()
    }
}

/// Opens one stream for data plane `dataplane` and keeps it: every
/// response is ACKed; route responses are counted in `stats`.
async fn open(address: String, dataplane: String, delta: bool, stats: Arc<StreamStats>, base: Instant) {
    let channel = tonic::transport::Endpoint::from_shared(address).unwrap().connect().await.unwrap();
    let mut client = AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let count = |type_url: &str| {
        if type_url == ResourceType::Route.type_url() {
            stats.last_route_ns.store(base.elapsed().as_nanos() as u64, Ordering::Release);
            stats.routes.fetch_add(1, Ordering::AcqRel);
        }
    };
    if delta {
        let (tx, rx) = mpsc::channel(16);
        for (i, t) in TYPES.into_iter().enumerate() {
            let first = DeltaDiscoveryRequest {
                node: (i == 0).then(|| node(&dataplane)),
                type_url: t.type_url(),
                ..Default::default()
            };
            tx.send(first).await.unwrap();
        }
        let mut responses = client.delta_aggregated_resources(ReceiverStream::new(rx)).await.unwrap().into_inner();
        while let Ok(Some(r)) = responses.message().await {
            count(&r.type_url);
            let ack = DeltaDiscoveryRequest { type_url: r.type_url, response_nonce: r.nonce, ..Default::default() };
            if tx.send(ack).await.is_err() {
                return;
            }
        }
    } else {
        let (tx, rx) = mpsc::channel(16);
        for (i, t) in TYPES.into_iter().enumerate() {
            let first = DiscoveryRequest {
                node: (i == 0).then(|| node(&dataplane)),
                type_url: t.type_url(),
                ..Default::default()
            };
            tx.send(first).await.unwrap();
        }
        let mut responses = client.stream_aggregated_resources(ReceiverStream::new(rx)).await.unwrap().into_inner();
        while let Ok(Some(r)) = responses.message().await {
            count(&r.type_url);
            let ack = DiscoveryRequest {
                type_url: r.type_url,
                version_info: r.version_info,
                response_nonce: r.nonce,
                ..Default::default()
            };
            if tx.send(ack).await.is_err() {
                return;
            }
        }
    }
}

/// The client streams of one run.
struct Load {
    runtime: tokio::runtime::Runtime,
    streams: Vec<Arc<StreamStats>>,
    base: Instant,
}

impl Load {
    fn new() -> Load {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        Load { runtime, streams: Vec::new(), base: Instant::now() }
    }

    /// Opens `n` more streams for `dataplane` and waits until each has its routes.
    fn open(&mut self, server: &Server, dataplane: &str, n: usize, delta: bool) {
        let address = format!("http://127.0.0.1:{}", server.xds);
        let first = self.streams.len();
        for _ in 0..n {
            let stats = Arc::new(StreamStats::default());
            self.streams.push(stats.clone());
            self.runtime.spawn(open(address.clone(), dataplane.to_string(), delta, stats, self.base));
        }
        let start = Instant::now();
        while self.streams[first..].iter().any(|s| s.routes.load(Ordering::Acquire) == 0) {
            assert!(start.elapsed() < Duration::from_secs(120), "streams of {dataplane} got no routes");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Writes `text` to `file` and returns, per stream, the time from the
    /// write to its next route response.
    fn change(&self, file: &Path, text: &str) -> Vec<f64> {
        let before: Vec<u64> = self.streams.iter().map(|s| s.routes.load(Ordering::Acquire)).collect();
        let written = self.base.elapsed().as_nanos() as u64;
        std::fs::write(file, text).unwrap();
        let start = Instant::now();
        while self.streams.iter().zip(&before).any(|(s, b)| s.routes.load(Ordering::Acquire) == *b) {
            assert!(start.elapsed() < Duration::from_secs(60), "a change never reached every stream");
            std::thread::sleep(Duration::from_millis(1));
        }
        self.streams
            .iter()
            .map(|s| (s.last_route_ns.load(Ordering::Acquire).saturating_sub(written)) as f64 / 1e6)
            .collect()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Settles, then measures RSS.
fn settled_rss(server: &Server) -> f64 {
    std::thread::sleep(Duration::from_millis(3000));
    server.rss_mib()
}

/// Runs `changes` probe changes and prints the delivery times.
fn changes(load: &Load, dir: &Path, gateways: &[String], changes: usize, label: &str) {
    let mut all = Vec::new();
    let mut slowest = Vec::new();
    for i in 1..=changes {
        let mut t = load.change(&dir.join("probe.yaml"), &resources::probe_route(gateways, &format!("/probe-{i}")));
        t.sort_by(f64::total_cmp);
        slowest.push(t[t.len() - 1]);
        all.extend(t);
        std::thread::sleep(Duration::from_millis(50));
    }
    all.sort_by(f64::total_cmp);
    slowest.sort_by(f64::total_cmp);
    println!(
        "  {label}: change -> every stream: per stream p50 {:.1} ms, p99 {:.1} ms; all streams reached p50 {:.1} ms, max {:.1} ms ({changes} changes x {} streams)",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        percentile(&slowest, 0.5),
        slowest[slowest.len() - 1],
        load.streams.len()
    );
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kuma-fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn single(delta: bool, n_changes: usize) {
    let protocol = if delta { "delta" } else { "sotw" };
    let dir = fresh_dir(&format!("single-{protocol}"));
    let gateways = vec!["gw".to_string()];
    resources::write_gateway(&dir, "gw", free_port(), 10_000);
    resources::write_backend(&dir, free_port());
    std::fs::write(dir.join("probe.yaml"), resources::probe_route(&gateways, "/probe-0")).unwrap();
    let server = Server::start(&dir);
    let loaded = settled_rss(&server);
    let mut load = Load::new();
    load.open(&server, "gw", 1, delta);
    let one = settled_rss(&server);
    load.open(&server, "gw", 49, delta);
    let fifty = settled_rss(&server);
    load.open(&server, "gw", 50, delta);
    let hundred = settled_rss(&server);
    println!(
        "{protocol}, one gateway of 10,000 rules: RSS loaded {loaded:.1} MiB, 1 stream {one:.1} MiB, 50 streams {fifty:.1} MiB, 100 streams {hundred:.1} MiB: {:.2} MiB per additional stream (from 50 to 100)",
        (hundred - fifty) / 50.0
    );
    let cpu = server.cpu_secs();
    changes(&load, &dir, &gateways, n_changes, "100 streams");
    println!("  server CPU for the changes: {:.2} s", server.cpu_secs() - cpu);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn fleet(delta: bool, n_changes: usize) {
    let protocol = if delta { "delta" } else { "sotw" };
    let dir = fresh_dir(&format!("fleet-{protocol}"));
    let gateways: Vec<String> = (0..10).map(|g| format!("gw-{g}")).collect();
    let rules = std::env::var("FLEET_RULES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    for g in &gateways {
        resources::write_gateway(&dir, g, free_port(), rules);
    }
    resources::write_backend(&dir, free_port());
    std::fs::write(dir.join("probe.yaml"), resources::probe_route(&gateways, "/probe-0")).unwrap();
    let server = Server::start(&dir);
    let loaded = settled_rss(&server);
    let cpu = server.cpu_secs();
    let started = Instant::now();
    let mut load = Load::new();
    for g in &gateways {
        load.open(&server, g, 100, delta);
    }
    let connected = started.elapsed();
    let cpu_connect = server.cpu_secs() - cpu;
    let all = settled_rss(&server);
    println!(
        "{protocol}, 10 gateways of 1,000 rules, 1,000 streams: RSS loaded {loaded:.1} MiB, with the streams {all:.1} MiB; \
connecting them all took {:.2} s and {cpu_connect:.2} s of server CPU",
        connected.as_secs_f64()
    );
    let cpu = server.cpu_secs();
    changes(&load, &dir, &gateways, n_changes, "1,000 streams");
    println!(
        "  server CPU for the changes: {:.2} s; RSS after them {:.1} MiB",
        server.cpu_secs() - cpu,
        server.rss_mib()
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo test` runs benches without --bench; keep that fast.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let list = |name: &str, default: &str| -> Vec<String> {
        std::env::var(name).unwrap_or(default.into()).split(',').map(str::to_string).collect()
    };
    // FLEET_WRITE=DIR: only write the one-gateway scenario's resources
    // there (for profiling `serve` or `render` on them).
    if let Some(dir) = std::env::var_os("FLEET_WRITE") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        resources::write_gateway(&dir, "gw", 8080, 10_000);
        resources::write_backend(&dir, 9000);
        std::fs::write(dir.join("probe.yaml"), resources::probe_route(&["gw".into()], "/probe-0")).unwrap();
        return;
    }
    let n_changes = std::env::var("FLEET_CHANGES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    for protocol in list("FLEET_PROTOCOLS", "delta,sotw") {
        let delta = protocol == "delta";
        for scenario in list("FLEET_SCENARIOS", "single,fleet") {
            match scenario.as_str() {
                "single" => single(delta, n_changes),
                "fleet" => fleet(delta, n_changes),
                other => panic!("unknown scenario {other}"),
            }
        }
    }
}
