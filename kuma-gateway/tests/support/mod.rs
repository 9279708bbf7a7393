//! Test support: tiny HTTP backends, free ports, the Envoy binary, and a
//! `kuma-gateway run` process with its log.

#![allow(dead_code)]

pub(crate) mod replicas;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released).
/// The child's stderr, collected line by line as it runs.
#[allow(dead_code)]
pub(crate) fn capture_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    log
}

/// A port nothing listens on now, and that no other test of this process
/// was given (the OS may hand a just-released port out again; two Envoys
/// given the same admin port would fail to start).
pub(crate) fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// An HTTP/1.1 backend answering 200 with `<name> <path>` and then every
/// request header as `name: value` lines, one request per connection.
pub(crate) fn backend(name: &'static str) -> u16 {
    smart_backend(name, 200)
}

/// The Envoy binary (ENVOY_BIN, PATH, or the project's .tools/envoy).
/// Panics with the install command when absent: these tests must not pass without Envoy.
pub(crate) fn envoy_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    if let Some(p) = std::env::var_os("ENVOY_BIN") {
        return PathBuf::from(p);
    }
    let local = root.join(".tools/envoy/bin/envoy");
    if local.is_file() {
        return local;
    }
    panic!("Envoy not found (ENVOY_BIN or {}); install it with scripts/install-envoy", local.display());
}

/// The repository root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A fresh temporary folder, removed when dropped (a failing test's too:
/// drops run as its panic unwinds).
pub(crate) fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("kuma-gateway-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// See [`temp_dir`].
pub(crate) struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `kuma-gateway run` (control plane + Envoy); killed on drop.
pub(crate) struct Gateway {
    child: Child,
    log: Arc<Mutex<String>>,
    /// Envoy's admin port.
    pub admin: u16,
    /// The control plane's admin port (`/metrics`, `/ready`).
    pub control_admin: u16,
}

impl Gateway {
    /// Starts `kuma-gateway run <dir> --dataplane <dp>` and waits for Envoy to be ready.
    pub(crate) fn start(dir: &Path, dataplane: &str, base_id: u32) -> Gateway {
        let admin = free_port();
        let xds = free_port();

        let mut child = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
            .arg("run")
            .arg(dir)
            .args(["--dataplane", dataplane, "--admin-port", &admin.to_string()])
            .args(["--xds-address", &format!("127.0.0.1:{xds}"), "--base-id", &base_id.to_string()])
            .args(["--admin-address", "127.0.0.1:0"])
            .arg("--envoy-bin")
            .arg(envoy_bin())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut gw = Gateway { child, log, admin, control_admin: 0 };
        let start = Instant::now();
        while http_get(admin, "localhost", "/ready").is_none_or(|r| r.body.trim() != "LIVE") {
            if let Ok(Some(status)) = gw.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("kuma-gateway run exited ({status}); log:\n{}", gw.log());
            }
            assert!(start.elapsed() < Duration::from_secs(30), "Envoy not ready in 30 s; log:\n{}", gw.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        // The control plane's admin endpoint took a free port; its log says which.
        gw.control_admin = admin_port_in(&gw.log()).expect("the admin endpoint's address in the log");
        gw
    }

    /// The control plane's metrics, parsed as Prometheus text (a parse
    /// error fails the test).
    pub(crate) fn metrics(&self) -> prometheus_parse::Scrape {
        let reply = http_get(self.control_admin, "localhost", "/metrics").expect("/metrics answers");
        assert_eq!(reply.status, 200, "{}", reply.body);
        prometheus_parse::Scrape::parse(reply.body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
    }

    /// The value of the sample of `name` whose labels include `labels`.
    pub(crate) fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.metrics()
            .samples
            .into_iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                prometheus_parse::Value::Untyped(v) => v,
                other => panic!("{name}: unexpected {other:?}"),
            })
    }

    /// How many observations the histogram `name` (its base name, e.g.
    /// `kuma_gateway_xds_change_to_ack_seconds`) holds.
    pub(crate) fn histogram_count(&self, name: &str) -> f64 {
        self.metrics()
            .samples
            .into_iter()
            .find_map(|s| match s.value {
                prometheus_parse::Value::Histogram(buckets) if s.metric == name => {
                    Some(buckets.iter().map(|b| b.count).fold(0.0, f64::max))
                }
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v)
                    if s.metric == format!("{name}_count") =>
                {
                    Some(v)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no histogram {name} in the metrics"))
    }

    /// `/dataplanes`, parsed.
    pub(crate) fn dataplanes(&self) -> serde_json::Value {
        let reply = http_get(self.control_admin, "localhost", "/dataplanes").expect("/dataplanes answers");
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str(&reply.body).expect("JSON")
    }

    /// `kuma-gateway status` against this control plane: exit code, output.
    pub(crate) fn status(&self) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_kuma-gateway"))
            .args(["status", "--admin-address", &format!("127.0.0.1:{}", self.control_admin)])
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Everything `kuma-gateway run` logged so far (Envoy's lines start with `[envoy]`).
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The process id of `kuma-gateway run` (the control plane).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills Envoy (the child of `run`) as a crash would; `run` restarts it.
    pub(crate) fn kill_envoy(&self) {
        let status = Command::new("pkill").args(["-KILL", "-P", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "no Envoy to kill");
    }

    /// Sends SIGTERM and waits (up to 30 s) for `run` to exit: how long it took.
    pub(crate) fn terminate(&mut self) -> Duration {
        let start = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "run still running 30 s after SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        start.elapsed()
    }

    /// Polls `check` every 20 ms until it holds; panics with the log after `timeout`.
    pub(crate) fn wait_for(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; log:\n{}", self.log());
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// Status code.
    pub status: u16,
    /// Lower-cased header lines `name: value`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// A header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends a raw HTTP/1.1 request over `stream` and reads the reply to EOF.
pub(crate) fn exchange(mut stream: impl Read + Write, host: &str, path: &str) -> Option<Reply> {
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut reply = Reply { status, headers, body: body.to_string() };
    if reply.header("transfer-encoding") == Some("chunked") {
        reply.body = dechunk(&reply.body);
    }
    Some(reply)
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        text = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// GET `path` on 127.0.0.1:`port` with a Host header.
pub(crate) fn http_get(port: u16, host: &str, path: &str) -> Option<Reply> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    exchange(stream, host, path)
}

/// GET over HTTPS with curl (SNI = `host`, trusting `ca`): (status, body).
pub(crate) fn https_get(port: u16, host: &str, path: &str, ca: &Path) -> Option<(u16, String)> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1"), "-w", "\n%{http_code}"])
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_string()))
}

/// A backend with behaviours by path: `/sleep` answers after 2 s, `/flaky/<key>`
/// answers 500 twice per key then 200, `/health` answers `health_status`,
/// anything else 200. The body is `<name> <path>` and then every request
/// header as `name: value` lines.
pub(crate) fn smart_backend(name: &'static str, health_status: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let failures: Arc<Mutex<std::collections::HashMap<String, u32>>> = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let failures = failures.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = String::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    headers.push_str(&h.to_ascii_lowercase().replace("\r\n", "\n"));
                }
                let status = if path == "/health" {
                    health_status
                } else if path.starts_with("/sleep") {
                    std::thread::sleep(Duration::from_secs(2));
                    200
                } else if let Some(key) = path.strip_prefix("/flaky/") {
                    let mut f = failures.lock().unwrap();
                    let n = f.entry(key.to_string()).or_insert(0);
                    *n += 1;
                    if *n <= 2 { 500 } else { 200 }
                } else {
                    200
                };
                let body = format!("{name} {path}\n{headers}");
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// Standard base64 of `bytes` (Secrets in test YAML).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= chunk.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// Requests `/` until stopped: (requests, failures).
pub(crate) struct ClientLoop {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClientLoop {
    pub(crate) fn start(port: u16) -> ClientLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let (s, n, f) = (stop.clone(), sent.clone(), failures.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: at most 20,000 requests, whatever happens.
            for _ in 0..20_000 {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let reply = http_get(port, "x", "/");
                n.fetch_add(1, Ordering::Relaxed);
                match reply {
                    Some(r) if r.status == 200 && r.body.starts_with("one") => {}
                    other => f.lock().unwrap().push(format!("{:?}", other.map(|r| (r.status, r.body)))),
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        ClientLoop { stop, sent, failures, thread: Some(thread) }
    }

    /// Lets the loop reach `min` requests, stops it, and panics unless all
    /// were answered 200.
    pub(crate) fn finish(mut self, phase: &str, min: usize) {
        let start = Instant::now();
        while self.sent.load(Ordering::Relaxed) < min && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let sent = self.sent.load(Ordering::Relaxed);
        let failures = self.failures.lock().unwrap();
        assert!(failures.is_empty(), "{phase}: {} of {sent} requests failed: {:?}", failures.len(), &failures[..]);
        assert!(sent >= min, "{phase}: only {sent} requests");
        eprintln!("{phase}: {sent} requests, all 200");
    }
}

/// The control plane's admin port, as its log names it.
pub(crate) fn admin_port_in(log: &str) -> Option<u16> {
    log.lines().find_map(|l| {
        l.split("admin endpoint listening")
            .nth(1)?
            .split("address=127.0.0.1:")
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}
