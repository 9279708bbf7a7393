//! The `serve_in_memory` example, run as a user would, with a real Envoy:
//! Envoy starts from the bootstrap the example writes, gets its listener and
//! routes over ADS from the example's own snapshot source, and answers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Envoy: ENVOY_BIN, or the project's `.tools/envoy`. Panics with the
/// install command otherwise: this test must not pass without Envoy.
fn envoy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ENVOY_BIN") {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/envoy/bin/envoy");
    assert!(
        local.is_file(),
        "Envoy not found (ENVOY_BIN or {}); install it with scripts/install-envoy",
        local.display()
    );
    local
}

/// `cargo test` builds the examples beside the test binaries.
fn example_bin() -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let bin = deps.parent().unwrap().join("examples/serve_in_memory");
    assert!(
        bin.is_file(),
        "{} not built: `cargo test -p kuma-xds-server` builds it (a `--test` filter does not), or `cargo build -p kuma-xds-server --example serve_in_memory`",
        bin.display()
    );
    bin
}

/// One HTTP/1.1 request; the status line and headers of the answer.
fn get(port: u16, host: &str, path: &str) -> Option<String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn envoy_serves_what_an_in_memory_source_holds() {
    let dir = std::env::temp_dir().join(format!("kuma-xds-server-example-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let resources = dir.join("gateway.yaml");
    std::fs::write(
        &resources,
        format!(
            "type: Dataplane\nmesh: default\nname: gw-1\nnetworking:\n  address: 127.0.0.1\n  gateway:\n    type: BUILTIN\n    tags: {{kuma.io/service: edge}}\n\
             ---\ntype: MeshGateway\nmesh: default\nname: edge\nselectors: [{{match: {{kuma.io/service: edge}}}}]\n\
             conf: {{listeners: [{{port: {port}, protocol: HTTP, hostname: example.com}}]}}\n\
             ---\ntype: MeshGatewayRoute\nmesh: default\nname: moved\nselectors: [{{match: {{kuma.io/service: edge}}}}]\n\
             conf:\n  http:\n    rules:\n    - matches: [{{path: {{match: PREFIX, value: /old}}}}]\n      filters:\n      - redirect: {{scheme: https, hostname: new.example.com, statusCode: 301}}\n"
        ),
    )
    .unwrap();
    let xds = free_port();
    let mut server = Killed(
        Command::new(example_bin())
            .arg(format!("127.0.0.1:{xds}"))
            .arg(dir.join("bootstraps"))
            .arg(&resources)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(server.0.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let bootstrap = line.trim().strip_prefix("serving default/gw-1: envoy -c ").unwrap_or_else(|| panic!("{line:?}"));
    let base_id = u32::from(xds);
    let _envoy = Killed(
        Command::new(envoy_bin())
            .args(["-c", bootstrap, "--base-id", &base_id.to_string(), "-l", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Some(a) = get(port, "example.com", "/old/page").filter(|a| a.starts_with("HTTP/1.1 301")) {
            break a;
        }
        assert!(Instant::now() < deadline, "Envoy never served the gateway's route");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(answer.to_ascii_lowercase().contains("location: https://new.example.com/old/page"), "{answer}");
    // Another host is not this listener's: Envoy answers 404.
    assert!(get(port, "other.example.com", "/old/page").unwrap().starts_with("HTTP/1.1 404"));
    let _ = std::fs::remove_dir_all(&dir);
}
